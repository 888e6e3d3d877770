"""Each billed quantity at its own rate, on both arithmetic paths of `row_subunits` (whole
sub-units in integers; fractional overrides in exact Decimal), with every expected figure
worked out by hand below from the price table's numbers (online, USD per 1M tokens):
gemini-2.5-flash input 0.3, output 2.5, cached 0.03, audio 1, cached audio 0.1, i.e. 300,
2500, 30, 1000 and 100 nano-dollars a token; gemini-2.5-pro output 10 (10,000 nanos);
text-embedding-005 0.025 per 1M characters (25 nanos a character); gemini-embedding-001 0.15
(150 nanos a token). One sub-unit is 10**-6 nano-dollar."""

import dataclasses
from decimal import Decimal

from shared.cost.pricing import RowTokens, nanos_to_usd, pricing

SUB = 10**6  # sub-units per nano-dollar


def online(model, overrides=None):
    return pricing(model, overrides, batch=False)


def test_cached_audio_is_bounded_by_the_cached_and_the_audio_tokens():
    flash = online("gemini-2.5-flash")
    # 50 cached audio but only 30 cached: 30 count as cached audio (100), audio fresh 170
    # (1000), text fresh 1000 - 30 - 170 = 800 (300): 240,000 + 170,000 + 3,000.
    row = RowTokens(prompt=1000, cached=30, audio=200, cached_audio=50)
    assert flash.row_subunits(row) == 413_000 * SUB
    # 50 cached audio but only 20 audio: 20 cached audio, no fresh audio, cached text 280 (30),
    # text fresh 1000 - 300 = 700: 210,000 + 8,400 + 2,000.
    row = RowTokens(prompt=1000, cached=300, audio=20, cached_audio=50)
    assert flash.row_subunits(row) == 220_400 * SUB
    # No cached audio: audio fresh 200, cached text 300, text fresh 500:
    # 150,000 + 9,000 + 200,000.
    row = RowTokens(prompt=1000, cached=300, audio=200, cached_audio=0)
    assert flash.row_subunits(row) == 359_000 * SUB


def test_the_exact_path_prices_every_quantity_at_its_own_rate():
    # Fractional per-token overrides (USD): 1.5e-16 input, 2.5e-16 output, 0.5e-16 cached,
    # 3.5e-16 audio = 0.15, 0.25, 0.05, 0.35 sub-units a token: no integer path.
    overrides = {
        "input_cost_per_token": Decimal("1.5e-16"),
        "output_cost_per_token": Decimal("2.5e-16"),
        "cache_read_input_token_cost": Decimal("0.5e-16"),
        "input_cost_per_audio_token": Decimal("3.5e-16"),
    }
    flash = online("gemini-2.5-flash", overrides)
    assert flash.tiers[0].subunit_rates is None
    row = RowTokens(
        prompt=1000, cached=300, audio=200, cached_audio=50, candidates=70, thoughts=30, tool_use=9
    )
    # input 1000 - 300 - 150 fresh audio + 9 tool use = 559 x 0.15 = 83.85; output 100 x 0.25
    # = 25; cached text 250 x 0.05 = 12.5; fresh audio 150 x 0.35 = 52.5; cached audio 50 at
    # the table's 100 nanos = 5,000,000,000 sub-units.
    assert flash.row_subunits(row) == Decimal("5000000173.85")


def test_the_exact_path_without_audio_rates_bills_audio_as_text_and_returns_whole_ints():
    pro = online("gemini-2.5-pro", {"input_cost_per_token": Decimal("1.5e-16")})
    assert pro.tiers[0].subunit_rates is None
    # gemini-2.5-pro has no audio rate: 1000 prompt tokens (200 of them audio) at 0.15
    # sub-units = 150, 10 output at 10,000 nanos = 100,000,000,000 sub-units: a whole number,
    # returned as an int.
    cost = pro.row_subunits(RowTokens(prompt=1000, audio=200, cached_audio=0, candidates=10))
    assert cost == 100_000_000_150 and type(cost) is int


def test_embeddings_bill_their_unit_alone_whatever_other_rates_say():
    # Per-token overrides an embedding row has no use for: 1e-6 USD = 1,000 nanos a token.
    others = {
        "output_cost_per_token": Decimal("1e-6"),
        "cache_read_input_token_cost": Decimal("1e-6"),
        "input_cost_per_audio_token": Decimal("1e-6"),
    }
    busy = RowTokens(prompt=7, cached=3, candidates=5, thoughts=1, audio=2, cached_audio=1)
    text = online("text-embedding-005", others)
    assert text.row_subunits(dataclasses.replace(busy, characters=40)) == 40 * 25 * SUB
    assert text.row_subunits(dataclasses.replace(busy, characters=0)) == 0
    gemini = online("gemini-embedding-001", others)
    assert gemini.row_subunits(dataclasses.replace(busy, embedding=40)) == 40 * 150 * SUB


def test_embeddings_on_the_exact_path_use_their_own_unit_rate():
    # 1.5e-16 USD a character (or token) = 0.15 sub-units; 20 of them = 3 sub-units.
    text = online("text-embedding-005", {"input_cost_per_character": Decimal("1.5e-16")})
    assert text.tiers[0].subunit_rates is None
    assert text.row_subunits(RowTokens(characters=20)) == 3
    gemini = online("gemini-embedding-001", {"input_cost_per_token": Decimal("1.5e-16")})
    assert gemini.tiers[0].subunit_rates is None
    assert gemini.row_subunits(RowTokens(embedding=20)) == 3


def test_a_character_rate_never_reaches_a_token_billed_row():
    flash = online("gemini-2.5-flash", {"input_cost_per_character": Decimal("1e-6")})
    assert flash.row_subunits(RowTokens(prompt=10, characters=99)) == 10 * 300 * SUB


def test_a_prompt_beyond_every_tier_takes_the_last():
    pro = online("gemini-2.5-pro")
    base, long = pro.tiers
    tiers = (
        dataclasses.replace(base, max_prompt_tokens=100),
        dataclasses.replace(long, max_prompt_tokens=200),
        dataclasses.replace(long, max_prompt_tokens=300),
    )
    bounded = dataclasses.replace(pro, tiers=tiers)
    assert bounded.tier_for(1000) is tiers[2]
    assert bounded.tier_for(150) is tiers[1]


def test_negative_amounts_keep_their_sign():
    assert nanos_to_usd(-1_500) == "-0.000001500"
    assert nanos_to_usd(-2_000_000_001) == "-2.000000001"
    assert nanos_to_usd(1_500) == "0.000001500"
