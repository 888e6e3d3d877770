"""The catalog's rules for the 3.x models, pinned by figures worked out by hand from the
published rates (USD per 1M tokens; R costs R x 1000 nano-dollars a token), never from the
code under test. Sources are in shared/cost/prices.json."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from shared.cost import pricing
from shared.cost.pricing import RowTokens, UnknownModelError, row_cost_nanos

NEW_YEAR = "2027-01-01T00:00:00Z"
LAST_DAY = "2026-12-31T23:59:59.999999999Z"

ISSUE_MODELS = (
    "gemini-3-pro-preview",
    "gemini-3.1-pro-preview",
    "gemini-3-flash-preview",
    "gemini-3.1-flash-lite",
    "gemini-3.5-flash",
    "gemini-3.5-flash-lite",
    "gemini-3.6-flash",
    "gemini-3.7-flash",
    "gemini-3.8-flash",
    "gemini-embedding-2",
    "gemini-2.5-flash-image",
    "gemini-3-pro-image",
    "gemini-3.1-flash-image",
)


@pytest.mark.parametrize("model", ISSUE_MODELS)
def test_every_model_of_the_issue_is_priced(model):
    assert pricing.resolve_model(model) == model
    assert row_cost_nanos(model, RowTokens(prompt=1000, candidates=10, embedding=1000)) > 0


def test_3_5_flash_batch_is_half_the_published_rate():
    # online 1.50 in / 9.00 out; batch half: 0.75 / 4.50 -> 750 + 4500 nanos a token
    tokens = RowTokens(prompt=1000, candidates=100, thoughts=300)
    assert row_cost_nanos("gemini-3.5-flash", tokens) == 1000 * 750 + 400 * 4500
    assert row_cost_nanos("gemini-3.5-flash", tokens, batch=False) == 1000 * 1500 + 400 * 9000


def test_thinking_is_billed_as_output():
    # 3.8 Flash batch output 3.75 / 2 = 1.875 USD per 1M: 1875 nanos a token, thoughts alike
    with_thoughts = row_cost_nanos(
        "gemini-3.8-flash", RowTokens(candidates=10, thoughts=90), at=LAST_DAY
    )
    assert with_thoughts == 100 * 1875


def test_a_dated_price_change_applies_by_the_rows_time():
    # 3.8 Flash: $0.75 / $3.75 through 2026-12-31, $1.50 / $7.50 from 2027-01-01 (batch half)
    tokens = RowTokens(prompt=1000, candidates=100)
    before = row_cost_nanos("gemini-3.8-flash", tokens, at=LAST_DAY)
    after = row_cost_nanos("gemini-3.8-flash", tokens, at=NEW_YEAR)
    assert before == 1000 * 375 + 100 * 1875
    assert after == 1000 * 750 + 100 * 3750
    # the boundary is the UTC day: 16:00 in California on Dec 31 is already 2027 in UTC
    pacific = "2026-12-31T16:00:00-08:00"
    assert row_cost_nanos("gemini-3.8-flash", tokens, at=pacific) == after
    # a datetime and a date name the same day
    assert row_cost_nanos("gemini-3.8-flash", tokens, at=date(2027, 1, 1)) == after
    moment = datetime(2026, 12, 31, 12, tzinfo=UTC)
    assert row_cost_nanos("gemini-3.8-flash", tokens, at=moment) == before


@pytest.mark.parametrize("model", ["gemini-3.6-flash", "gemini-3.7-flash", "gemini-3.8-flash"])
def test_the_introductory_flash_models_change_on_new_year(model):
    tokens = RowTokens(prompt=2, cached=1, candidates=1)
    # before: fresh 1 x 375 + cached 1 x 75 + out 1 x 1875; after each doubles
    assert row_cost_nanos(model, tokens, at=LAST_DAY) == 375 + 75 + 1875
    assert row_cost_nanos(model, tokens, at=NEW_YEAR) == 750 + 150 + 3750


def test_the_whole_request_above_200k_is_at_the_long_rate():
    # 3.1 Pro: <= 200k 2 / 12 (batch 1 / 6); above: 4 / 18 (batch 2 / 9), every token
    at_limit = RowTokens(prompt=200_000, candidates=1000)
    above = RowTokens(prompt=200_001, candidates=1000)
    assert row_cost_nanos("gemini-3.1-pro-preview", at_limit) == 200_000 * 1000 + 1000 * 6000
    assert row_cost_nanos("gemini-3.1-pro-preview", above) == 200_001 * 2000 + 1000 * 9000
    assert (
        row_cost_nanos("gemini-3.1-pro-preview", above, batch=False)
        == 200_001 * 4000 + 1000 * 18000
    )


def test_3_x_cache_reads_in_batch_are_not_discounted_again():
    # Google: the cache and batch discounts do not stack for 2.5 and 3 models. 3.5 Flash:
    # cached 0.15 online, and 0.15 (not 0.075) in batch; fresh input at batch 0.75.
    tokens = RowTokens(prompt=10_000, cached=8_000)
    batch = row_cost_nanos("gemini-3.5-flash", tokens)
    online = row_cost_nanos("gemini-3.5-flash", tokens, batch=False)
    assert batch == 2_000 * 750 + 8_000 * 150
    assert online == 2_000 * 1500 + 8_000 * 150
    assert batch - online == 2_000 * (750 - 1500)  # only the fresh part got the batch discount


@pytest.mark.parametrize("location", ["us-central1", "europe-west4", "us", "eu"])
def test_non_global_endpoints_cost_ten_percent_more_for_models_that_carry_it(location):
    # 3.5 Flash batch 0.75 / 4.50 x 1.1 = 0.825 / 4.95
    tokens = RowTokens(prompt=1000, candidates=100)
    assert row_cost_nanos("gemini-3.5-flash", tokens, location=location) == 1000 * 825 + 100 * 4950
    assert row_cost_nanos("gemini-3.5-flash", tokens, location="global") == 1000 * 750 + 100 * 4500
    assert row_cost_nanos("gemini-3.5-flash", tokens) == 1000 * 750 + 100 * 4500


def test_models_without_the_uplift_cost_the_same_everywhere():
    tokens = RowTokens(prompt=1000, candidates=100)
    # 3.1 Pro preview (global endpoint only): 1 / 6 in any location
    assert row_cost_nanos("gemini-3.1-pro-preview", tokens, location="us-central1") == (
        1000 * 1000 + 100 * 6000
    )


def test_the_uplift_applies_to_the_cached_rate_and_the_long_tier_alike():
    # 3.6 Flash before new year, in us: fresh 0.375 x 1.1, cached 0.075 x 1.1, out 1.875 x 1.1
    tokens = RowTokens(prompt=100, cached=60, candidates=10)
    got = row_cost_nanos("gemini-3.6-flash", tokens, location="us", at=LAST_DAY)
    assert got == round(40 * 412.5 + 60 * 82.5 + 10 * 2062.5)


def test_image_output_tokens_at_the_image_rate():
    # 3 Pro Image batch: input 1, text/thinking output 6, image output 60 per 1M; one 1K image
    # is 1120 image tokens: 50 x 1000 + (10 + 20 thoughts) x 6000 + 1120 x 60000
    tokens = RowTokens(prompt=50, candidates=1130, image_output=1120, thoughts=20)
    assert row_cost_nanos("gemini-3-pro-image", tokens) == 50_000 + 30 * 6000 + 1120 * 60_000
    # 2.5 Flash Image online: 30 per 1M image tokens, 1290 tokens an image = $0.0387
    image = RowTokens(prompt=10, candidates=1290, image_output=1290)
    assert row_cost_nanos("gemini-2.5-flash-image", image, batch=False) == 10 * 300 + 38_700_000


def test_image_tokens_of_a_text_model_are_output():
    tokens = RowTokens(candidates=100, image_output=100)
    assert row_cost_nanos("gemini-3.5-flash", tokens) == 100 * 4500


def test_gemini_embedding_2_by_modality():
    # batch: text 0.10, image 0.225, audio 3.25, video 6 per 1M tokens
    tokens = RowTokens(
        embedding=2000, embedding_image=258, embedding_audio=100, embedding_video=300
    )
    text = 2000 - 258 - 100 - 300
    assert row_cost_nanos("gemini-embedding-2", tokens) == (
        text * 100 + 258 * 225 + 100 * 3250 + 300 * 6000
    )
    # online text 0.20; the uplift in us (batch runs only in global, us and eu)
    assert row_cost_nanos("gemini-embedding-2", RowTokens(embedding=1000), batch=False) == 200_000
    us = row_cost_nanos("gemini-embedding-2", RowTokens(embedding=1000), location="us")
    assert us == 110_000


def test_embedding_parts_never_exceed_the_whole():
    tokens = RowTokens(embedding=10, embedding_image=8, embedding_audio=8, embedding_video=8)
    # 8 image + 2 audio: 8 x 225 + 2 x 3250
    assert row_cost_nanos("gemini-embedding-2", tokens) == 8 * 225 + 2 * 3250


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("gemini-3.1-pro", "gemini-3.1-pro-preview"),
        ("gemini-3-pro-image-preview", "gemini-3-pro-image"),
        ("gemini-3.1-flash-lite-preview", "gemini-3.1-flash-lite"),
        ("gemini-3.5-flash-preview-05-19", "gemini-3.5-flash"),
        ("gemini-3.8-flash-001", "gemini-3.8-flash"),
        ("gemini-3.8-flash-latest", "gemini-3.8-flash"),
        ("publishers/google/models/gemini-3.7-flash", "gemini-3.7-flash"),
        (
            "projects/p/locations/us/publishers/google/models/gemini-3.6-flash@default",
            "gemini-3.6-flash",
        ),
        ("gemini-embedding-2-preview", "gemini-embedding-2"),
        ("vertex_ai/gemini-3-flash-preview", "gemini-3-flash-preview"),
        ("gemini-3-flash", "gemini-3-flash-preview"),
    ],
)
def test_aliases_versions_previews_and_resource_names(name, model):
    assert pricing.resolve_model(name) == model


def test_overrides_price_a_model_the_catalog_lacks():
    overrides = {"input_cost_per_token": Decimal("1e-6"), "output_cost_per_token": Decimal("4e-6")}
    tokens = RowTokens(prompt=100, candidates=10)
    # online 1000 / 4000 nanos a token; batch derives half
    assert row_cost_nanos("gemini-9-nova", tokens, overrides, batch=False) == 100_000 + 40_000
    assert row_cost_nanos("gemini-9-nova", tokens, overrides) == 50_000 + 20_000
    with pytest.raises(UnknownModelError):
        row_cost_nanos("gemini-9-nova", tokens)
    with pytest.raises(UnknownModelError):
        row_cost_nanos("gemini-9-nova", tokens, {"not_a_price_field": Decimal(1)})
    characters = {"input_cost_per_character": Decimal("1e-7")}
    priced = pricing.pricing("my-text-embedder", characters, batch=False)
    assert (priced.kind, priced.billing) == ("embedding", "characters")
    assert priced.row_nanos(RowTokens(characters=10)) == 1000
    assert pricing.pricing("my-gemini-embedding-x", overrides).kind == "embedding"


def test_overrides_are_global_rates_and_the_uplift_still_applies():
    overrides = {"input_cost_per_token_batches": Decimal("1e-6")}
    tokens = RowTokens(prompt=100)
    assert row_cost_nanos("gemini-3.5-flash", tokens, overrides, location="us") == 110_000
    flat = {**overrides, "regional_endpoint_uplift_multiplier": Decimal("1")}
    assert row_cost_nanos("gemini-3.5-flash", tokens, flat, location="us") == 100_000


def test_facts_for_the_estimate():
    flash = pricing.facts("gemini-3.8-flash")
    assert (flash.thinks_by_default, flash.max_output_tokens) == (True, 65536)
    lite = pricing.facts("gemini-3.5-flash-lite")
    assert lite.thinks_by_default is False
    assert pricing.facts("gemini-2.0-flash-001").max_output_tokens == 8192
    assert pricing.facts("gemini-embedding-2").batch_locations == ("global", "us", "eu")
    assert pricing.facts("gemini-3-pro-image").max_output_tokens == 32768


def test_retirement_facts_and_successors():
    pro = pricing.facts("gemini-3-pro-preview")
    assert (pro.retires, pro.successor) == (date(2026, 3, 26), "gemini-3.1-pro-preview")
    assert pro.retired(date(2026, 3, 26)) and not pro.retired(date(2026, 3, 25))
    flash = pricing.facts("gemini-2.5-flash")
    assert (flash.retires, flash.successor) == (date(2026, 10, 20), "gemini-3.8-flash")
    assert pricing.facts("gemini-3.8-flash").retires is None


def test_family_limits_carry_their_sources():
    gemini = pricing.family_limits("gemini")
    assert gemini["limits"] == {"rows": 200_000, "bytes": 2**30, "noun": "requests"}
    assert gemini["sources"] and gemini["inferred"]
    assert pricing.family_limits("gemini-embedding")["limits"]["rows"] == 1_000_000
    assert pricing.family_limits("text-embedding")["limits"]["bytes"] is None
    assert pricing.family_limits("nope") is None


def test_describe_names_the_period_in_force_and_its_sources():
    before = pricing.describe("gemini-3.8-flash", at=LAST_DAY)
    after = pricing.describe("gemini-3.8-flash", at=NEW_YEAR)
    assert before["in_force"]["from"] is None and after["in_force"]["from"] == "2027-01-01"
    assert before["catalog_version"] == pricing.version()
    assert all(v["url"].startswith("https://") for v in before["sources_detail"].values())


def test_pricing_names_its_catalog_version_uplift_and_period():
    priced = pricing.pricing("gemini-3.7-flash", location="eu", at=NEW_YEAR)
    assert priced.catalog_version == pricing.version()
    assert priced.uplift == Decimal("1.1")
    assert priced.period_from == date(2027, 1, 1)
    assert pricing.pricing("gemini-3.7-flash", at=LAST_DAY).period_from is None
    assert pricing.as_date("not a time") is None
    assert pricing.as_date(None) is None


def test_an_embedding_row_without_tokens_costs_nothing():
    assert row_cost_nanos("gemini-embedding-2", RowTokens()) == 0
    assert row_cost_nanos("gemini-embedding-2", RowTokens(prompt=-5)) == 0


def test_a_per_character_figure_never_prices_a_token_billed_row():
    per_character = {"input_cost_per_character": Decimal("0.001")}
    tokens = RowTokens(prompt=100, candidates=10, embedding=100, characters=50)
    assert row_cost_nanos("gemini-embedding-2", tokens, per_character) == row_cost_nanos(
        "gemini-embedding-2", tokens
    )
    assert row_cost_nanos("gemini-3.5-flash", tokens, per_character) == row_cost_nanos(
        "gemini-3.5-flash", tokens
    )
