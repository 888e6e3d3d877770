"""Every pricing rule, pinned with figures computed by hand from shared/cost/prices.json.

Rates are USD per 1M tokens, so a rate R costs R * 1000 nano-dollars per token.
"""

from decimal import Decimal

import pytest

from shared.core.config import PRICE_OVERRIDE_FIELDS
from shared.cost import pricing
from shared.cost.pricing import RowTokens, UnknownModelError, row_cost_nanos

REQUIRED = (
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-2.0-flash",
    "gemini-2.0-flash-lite",
    "text-embedding-005",
    "text-embedding-004",
    "text-multilingual-embedding-002",
    "gemini-embedding-001",
)


def test_every_entry_names_its_sources_and_date_and_writes_rates_as_strings():
    table = pricing.table()
    sources = table["sources"]
    for name, entry in table["models"].items():
        assert entry["sources"], name
        for key in entry["sources"]:
            assert sources[key]["url"].startswith("https://"), (name, key)
            assert sources[key]["as_of"], (name, key)
        assert entry["as_of"], name
        assert isinstance(entry["inferred"], list), name
        for period in entry["prices"]:
            for tier in period["tiers"]:
                for block in (tier["online"], tier.get("batch", {})):
                    for value in block.values():
                        assert isinstance(value, str)
                        assert Decimal(value) >= 0
    assert set(REQUIRED) <= set(pricing.known_models())


def test_gemini_2_5_pro_has_two_tiers_and_2_5_flash_one():
    assert [t.max_prompt_tokens for t in pricing.pricing("gemini-2.5-pro").tiers] == [
        200000,
        None,
    ]
    assert len(pricing.pricing("gemini-2.5-flash").tiers) == 1


def test_2_0_models_get_no_implicit_cache_in_batch():
    assert pricing.pricing("gemini-2.0-flash").batch_implicit_cache is False
    assert pricing.pricing("gemini-2.0-flash-lite").batch_implicit_cache is False
    assert pricing.pricing("gemini-2.5-flash").batch_implicit_cache is True


@pytest.mark.parametrize(
    "name",
    [
        "gemini-2.5-flash",
        "gemini-2.5-flash-001",
        "gemini-2.5-flash@default",
        "gemini-2.5-flash-001@default",
        "publishers/google/models/gemini-2.5-flash",
        "projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash-001",
        "vertex_ai/gemini-2.5-flash",
        " gemini-2.5-flash ",
    ],
)
def test_model_names_resolve_to_the_base_name(name):
    assert pricing.resolve_model(name) == "gemini-2.5-flash"


def test_flash_lite_is_not_confused_with_flash():
    assert pricing.resolve_model("gemini-2.5-flash-lite-001") == "gemini-2.5-flash-lite"
    assert pricing.resolve_model("gemini-2.0-flash-lite@001") == "gemini-2.0-flash-lite"


def test_unknown_model_names_the_known_ones():
    with pytest.raises(UnknownModelError) as info:
        pricing.resolve_model("gemini-9-ultra")
    message = str(info.value)
    assert "gemini-9-ultra" in message
    for name in REQUIRED:
        assert name in message
    assert pricing.try_resolve("gemini-9-ultra") is None
    assert pricing.try_resolve(None) is None
    assert pricing.try_resolve("gemini-9-ultra-preview-05-20") is None


def test_batch_rate_from_the_table():
    # 2.5 Flash batch: input 0.15 -> 150 nanos/token, output 1.25 -> 1250.
    tokens = RowTokens(prompt=1000, candidates=100)
    assert row_cost_nanos("gemini-2.5-flash", tokens) == 1000 * 150 + 100 * 1250


def test_online_rate():
    tokens = RowTokens(prompt=1000, candidates=100)
    assert row_cost_nanos("gemini-2.5-flash", tokens, batch=False) == 1000 * 300 + 100 * 2500


def test_batch_is_half_of_online_without_a_batch_rate():
    # gemini-2.0-flash-lite output lists 0.3 online, batch block 0.15; drop the batch block's
    # figure by overriding only the online rate: batch derives 50% of it.
    overrides = {"output_cost_per_token": Decimal("4e-7")}  # 400 nanos/token online
    tokens = RowTokens(candidates=10)
    assert row_cost_nanos("gemini-2.0-flash-lite", tokens, overrides, batch=False) == 4000
    assert row_cost_nanos("gemini-2.0-flash-lite", tokens, overrides) == 2000


def test_gemini_embedding_batch_is_20_percent_off_not_50():
    # $0.15 per 1M online = 150 nanos/token; batch $0.12 per 1M = 120 nanos/token.
    tokens = RowTokens(embedding=10)
    assert row_cost_nanos("gemini-embedding-001", tokens) == 1200
    assert row_cost_nanos("gemini-embedding-001", tokens, batch=False) == 1500


def test_cached_and_thinking_tokens():
    # 2.5 Flash batch: 10000 prompt of which 4096 cached, 200 candidates + 300 thoughts.
    tokens = RowTokens(prompt=10000, cached=4096, candidates=200, thoughts=300)
    expected = (10000 - 4096) * 150 + 4096 * 30 + (200 + 300) * 1250
    assert expected == 1_633_480
    assert row_cost_nanos("gemini-2.5-flash", tokens) == expected


def test_cache_and_batch_discounts_do_not_stack():
    tokens = RowTokens(prompt=1000, cached=1000)
    assert row_cost_nanos("gemini-2.5-flash", tokens) == 1000 * 30
    assert row_cost_nanos("gemini-2.5-flash", tokens, batch=False) == 1000 * 30


def test_long_context_tier_chosen_by_the_rows_prompt_tokens():
    # 2.5 Pro batch above 200k: input 1.25 -> 1250, output 7.5 -> 7500.
    above = RowTokens(prompt=250_000, candidates=1000, thoughts=500)
    assert row_cost_nanos("gemini-2.5-pro", above) == 250_000 * 1250 + 1500 * 7500
    assert row_cost_nanos("gemini-2.5-pro", above) == 323_750_000
    assert row_cost_nanos("gemini-2.5-pro", above, batch=False) == 647_500_000
    at_limit = RowTokens(prompt=200_000, candidates=1000)
    assert row_cost_nanos("gemini-2.5-pro", at_limit) == 200_000 * 625 + 1000 * 5000


def test_long_context_cached_rate():
    # Above 200k the cached rate is 0.25 -> 250 nanos/token.
    tokens = RowTokens(prompt=300_000, cached=100_000)
    assert row_cost_nanos("gemini-2.5-pro", tokens) == 200_000 * 1250 + 100_000 * 250


def test_audio_priced_apart():
    # 2.5 Flash batch audio 0.5 -> 500; cached audio 0.1 -> 100 (online cache rate).
    plain = RowTokens(prompt=1000, audio=600, candidates=10)
    assert row_cost_nanos("gemini-2.5-flash", plain) == 400 * 150 + 600 * 500 + 10 * 1250
    cached = RowTokens(prompt=1000, cached=300, audio=600, cached_audio=200, candidates=10)
    expected = 300 * 150 + 400 * 500 + 100 * 30 + 200 * 100 + 10 * 1250
    assert expected == 280_500
    assert row_cost_nanos("gemini-2.5-flash", cached) == expected


def test_audio_billed_as_input_where_not_priced_apart():
    tokens = RowTokens(prompt=1000, audio=600)
    assert row_cost_nanos("gemini-2.5-pro", tokens) == 1000 * 625


def test_tool_use_prompt_tokens_are_input():
    # 2.0 Flash batch: input 0.075 -> 75, output 0.3 -> 300.
    tokens = RowTokens(prompt=100, tool_use=50, candidates=10)
    assert row_cost_nanos("gemini-2.0-flash", tokens) == 150 * 75 + 10 * 300


def test_exact_subunits_round_half_up_once():
    assert pricing.SUBUNITS == 10**6
    flash_lite = pricing.pricing("gemini-2.0-flash-lite")
    assert flash_lite.row_subunits(RowTokens(prompt=1)) == 37_500_000
    assert pricing.round_subunits(2 * 37_500_000) == 75
    assert [pricing.round_subunits(v) for v in (499_999, 500_000, 1_500_000)] == [0, 1, 2]
    assert pricing.round_subunits(Decimal("499999.5")) == 0
    assert pricing.round_subunits(Decimal("500000.0")) == 1
    # Both paths give whole nano-dollars as int, and round a half away from zero.
    for total in (75_000_000, Decimal("500000.0"), Decimal("1.5e6"), -500_000):
        assert type(pricing.round_subunits(total)) is int
    assert [pricing.round_subunits(v) for v in (-499_999, -500_000, -1_500_000)] == [0, -1, -2]
    assert pricing.round_subunits(Decimal("-500000")) == -1
    # 1e-16 USD/token = 1e-7 nano-dollars = 0.1 sub-unit per token: exact Decimal sub-units.
    fine = pricing.pricing("gemini-2.5-flash", {"input_cost_per_token": Decimal("1e-16")})
    assert fine.row_subunits(RowTokens(prompt=3)) == Decimal("0.15")
    assert (
        pricing.pricing("gemini-2.5-flash", batch=False).row_subunits(RowTokens(prompt=3))
        == 3 * 300 * 10**6
    )


def test_rounding_is_half_up_per_row():
    # 2.0 Flash-Lite batch input 0.0375 -> 37.5 nanos/token.
    assert row_cost_nanos("gemini-2.0-flash-lite", RowTokens(prompt=1)) == 38
    assert row_cost_nanos("gemini-2.0-flash-lite", RowTokens(prompt=3)) == 113
    assert row_cost_nanos("gemini-2.0-flash-lite", RowTokens(prompt=2)) == 75


def test_text_embedding_is_billed_per_character_not_per_token():
    # $0.000025 / 1k chars online = 25 nanos/char; $0.00002 / 1k chars batch = 20 nanos/char.
    # token_count is a statistic: 12 tokens and 7 characters bill the 7 characters.
    tokens = RowTokens(embedding=12, characters=7)
    for name in ("text-embedding-005", "text-embedding-004", "text-multilingual-embedding-002"):
        assert pricing.pricing(name).billing == "characters"
        assert row_cost_nanos(name, tokens) == 7 * 20
        assert row_cost_nanos(name, tokens, batch=False) == 7 * 25


def test_billable_characters_are_code_points_without_whitespace():
    assert pricing.billable_characters("ab c") == 3
    assert pricing.billable_characters("東京 タワー\n") == 5  # CJK: one code point each
    assert pricing.billable_characters("e\u0301") == 2  # combining accent: its own code point
    assert pricing.billable_characters("😀\t😀") == 2  # astral: one code point, 4 UTF-8 bytes
    assert pricing.billable_characters(" \u3000\n") == 0  # ideographic space is whitespace


def test_character_override_and_token_override_on_a_character_model():
    # input_cost_per_character 1e-7 USD = 100 nanos/char online; batch derives 50.
    overrides = {"input_cost_per_character": Decimal("1e-7")}
    tokens = RowTokens(embedding=3, characters=10)
    assert row_cost_nanos("text-embedding-005", tokens, overrides, batch=False) == 1000
    assert row_cost_nanos("text-embedding-005", tokens, overrides) == 500
    # A per-token figure cannot price a per-character model: it is ignored.
    per_token = {"input_cost_per_token": Decimal("1e-7")}
    assert row_cost_nanos("text-embedding-005", tokens, per_token) == 10 * 20


def test_overrides_take_precedence():
    # input_cost_per_token 2e-7 USD/token = 200 nanos online, so batch derives 100 (not 150).
    overrides = {"input_cost_per_token": Decimal("2e-7")}
    tokens = RowTokens(prompt=1000)
    assert row_cost_nanos("gemini-2.5-flash", tokens, overrides) == 100_000
    assert row_cost_nanos("gemini-2.5-flash", tokens, overrides, batch=False) == 200_000
    explicit = {**overrides, "input_cost_per_token_batches": Decimal("3e-8")}
    assert row_cost_nanos("gemini-2.5-flash", tokens, explicit) == 30_000


def test_each_override_field_has_an_effect():
    tokens = RowTokens(prompt=300_000, cached=1000, audio=10, candidates=10)
    base = row_cost_nanos("gemini-2.5-flash", tokens)
    base_online = row_cost_nanos("gemini-2.5-flash", tokens, batch=False)
    for name in PRICE_OVERRIDE_FIELDS:
        overrides = {name: Decimal("0.00009")}
        if name == "output_cost_per_image_token":
            image = RowTokens(prompt=10, candidates=1300, image_output=1290)
            plain = row_cost_nanos("gemini-2.5-flash-image", image, batch=False)
            assert row_cost_nanos("gemini-2.5-flash-image", image, overrides, batch=False) != plain
            continue
        if name == "regional_endpoint_uplift_multiplier":
            regional = row_cost_nanos("gemini-3.5-flash", tokens, location="us-central1")
            moved = row_cost_nanos("gemini-3.5-flash", tokens, overrides, location="us-central1")
            assert moved != regional
            continue
        if "character" in name:
            chars = RowTokens(characters=10)
            plain = row_cost_nanos("text-embedding-005", chars, batch=False)
            assert row_cost_nanos("text-embedding-005", chars, overrides, batch=False) != plain
            continue
        batch = "batches" in name
        got = row_cost_nanos("gemini-2.5-flash", tokens, overrides, batch=batch)
        assert got != (base if batch else base_online), name


def test_above_200k_override_adds_a_tier_to_a_flat_model():
    overrides = {"input_cost_per_token_above_200k_tokens": Decimal("1e-6")}
    small = RowTokens(prompt=1000)
    large = RowTokens(prompt=200_001)
    assert row_cost_nanos("gemini-2.5-flash", small, overrides, batch=False) == 300_000
    assert row_cost_nanos("gemini-2.5-flash", large, overrides, batch=False) == 200_001 * 1000


def test_fine_grained_override_uses_exact_decimal():
    overrides = {"input_cost_per_token": Decimal("0.0000000000001")}  # 0.0001 nanos/token
    assert row_cost_nanos("gemini-2.5-flash", RowTokens(prompt=4999), overrides, batch=False) == 0
    assert row_cost_nanos("gemini-2.5-flash", RowTokens(prompt=5000), overrides, batch=False) == 1


def test_nanos_to_usd_is_exact():
    assert pricing.nanos_to_usd(323_750_000) == "0.323750000"
    assert pricing.nanos_to_usd(12_000_000_001) == "12.000000001"
    assert pricing.nanos_to_usd(0) == "0.000000000"
