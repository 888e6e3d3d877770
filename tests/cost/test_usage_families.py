"""Hand-priced output files for every family of the catalog: the parser (shared/cost/usage.py)
against figures worked out by hand here from the published rates, and against the independent
reference (tests/cost/reference.py). Rows are written as Vertex writes them (processed_time,
usageMetadata with its modality details, modelVersion)."""

import json

import pytest

from shared.cost.usage import parse_predictions
from tests.cost.reference import expected_cost


def row(usage: dict, *, when="2026-12-07T10:00:00.123+00:00", version=None, **extra) -> dict:
    response = {"usageMetadata": usage}
    if version:
        response["modelVersion"] = version
    return {"status": "", "processed_time": when, "response": response, **extra}


def jsonl(*rows) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def parse(data: bytes, model, **kwargs):
    return parse_predictions([data], model=model, **kwargs)


def both(data: bytes, model: str, **kwargs) -> int:
    """The parser's cost, checked against the reference first (the parser never sets it)."""
    found = parse(data, model, **kwargs)
    reference = expected_cost(data, model, location=kwargs.get("location"))
    assert found.cost_nanos == reference.cost_nanos, model
    assert (found.unpriced_rows, found.malformed) == (0, 0)
    return found.cost_nanos


TEXT = {"promptTokenCount": 1000, "candidatesTokenCount": 200, "thoughtsTokenCount": 300}


@pytest.mark.parametrize(
    ("model", "nanos"),
    [
        # batch rates per 1M: input x 1000 + (candidates + thoughts = 500) x output x 1000
        ("gemini-3.5-flash", 1000 * 750 + 500 * 4500),
        ("gemini-3.5-flash-lite", 1000 * 150 + 500 * 1250),
        ("gemini-3.1-flash-lite", 1000 * 125 + 500 * 750),
        ("gemini-3-flash-preview", 1000 * 250 + 500 * 1500),
        ("gemini-3.1-pro-preview", 1000 * 1000 + 500 * 6000),
        ("gemini-3.6-flash", 1000 * 375 + 500 * 1875),
        ("gemini-3.7-flash", 1000 * 375 + 500 * 1875),
        ("gemini-3.8-flash", 1000 * 375 + 500 * 1875),
    ],
)
def test_each_text_family_in_global(model, nanos):
    data = jsonl(row(TEXT), row(TEXT, when="2026-12-07T11:00:00Z"))
    assert both(data, model) == 2 * nanos


def test_the_regional_uplift_by_the_jobs_location():
    data = jsonl(row(TEXT), row(TEXT))
    base = 2 * (1000 * 750 + 500 * 4500)
    assert both(data, "gemini-3.5-flash", location="global") == base
    for location in ("us-central1", "us", "eu"):
        assert both(data, "gemini-3.5-flash", location=location) == base * 11 // 10
    # the 3.1 Pro preview carries none
    pro = both(data, "gemini-3.1-pro-preview", location="europe-west4")
    assert pro == 2 * (1000 * 1000 + 500 * 6000)


def test_the_whole_request_above_200k_at_the_long_rate():
    small = {"promptTokenCount": 200_000, "candidatesTokenCount": 100}
    large = {"promptTokenCount": 250_000, "candidatesTokenCount": 100, "thoughtsTokenCount": 50}
    data = jsonl(row(small), row(large))
    expected = (200_000 * 1000 + 100 * 6000) + (250_000 * 2000 + 150 * 9000)
    assert both(data, "gemini-3.1-pro-preview") == expected


def test_rows_of_a_job_across_new_year_are_priced_by_their_own_day():
    usage = {"promptTokenCount": 100, "candidatesTokenCount": 10}
    data = jsonl(
        row(usage, when="2026-12-31T23:59:59.999999+00:00"),
        row(usage, when="2026-12-31T17:00:00-08:00"),  # 01:00 on Jan 1 in UTC
        row(usage, when="2027-01-01T00:00:01Z"),
    )
    before = 100 * 375 + 10 * 1875
    after = 100 * 750 + 10 * 3750
    assert both(data, "gemini-3.8-flash") == before + 2 * after
    assert both(data, "gemini-3.8-flash", location="us") == round((before + 2 * after) * 1.1)


def test_cache_reads_in_batch_keep_the_online_cached_rate():
    usage = {
        "promptTokenCount": 10_000,
        "cachedContentTokenCount": 6_000,
        "candidatesTokenCount": 1,
    }
    # 4,000 fresh x 750 + 6,000 cached x 150 (not 75: the discounts do not stack) + 1 x 4500
    assert both(jsonl(row(usage)), "gemini-3.5-flash") == 4_000 * 750 + 6_000 * 150 + 4500


def test_image_output_at_the_image_rate():
    usage = {
        "promptTokenCount": 20,
        "candidatesTokenCount": 1150,
        "thoughtsTokenCount": 40,
        "candidatesTokensDetails": [
            {"modality": "TEXT", "tokenCount": 30},
            {"modality": "IMAGE", "tokenCount": 1120},
        ],
    }
    # 3 Pro Image batch: 20 x 1000 + (30 text + 40 thoughts) x 6000 + 1120 x 60000
    one = 20 * 1000 + 70 * 6000 + 1120 * 60_000
    assert both(jsonl(row(usage), row(usage)), "gemini-3-pro-image") == 2 * one
    # 3.1 Flash Image in a region: (20 x 250 + 70 x 1500 + 1120 x 30000) x 1.1
    flash = both(jsonl(row(usage)), "gemini-3.1-flash-image", location="us-central1")
    assert flash == round((20 * 250 + 70 * 1500 + 1120 * 30_000) * 1.1)


def test_image_rows_mixed_with_text_rows_in_one_chunk():
    text = {"promptTokenCount": 20, "candidatesTokenCount": 30}
    image = {
        **text,
        "candidatesTokenCount": 1150,
        "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1120}],
    }
    data = jsonl(*[row(text)] * 5, row(image), *[row(text)] * 5)
    expected = 10 * (20 * 1000 + 30 * 6000) + (20 * 1000 + 30 * 6000 + 1120 * 60_000)
    assert both(data, "gemini-3-pro-image") == expected


def test_gemini_embedding_2_rows_by_modality():
    def embedding(usage):
        return {
            "key": "k",
            "request": {"content": {"parts": [{"text": "x"}]}},
            "status": "",
            "processed_time": "2026-12-07T10:00:00Z",
            "response": {"embedding": {"values": [0.1]}, "usageMetadata": usage},
        }

    text = {
        "promptTokenCount": 800,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 800}],
    }
    mixed = {
        "promptTokenCount": 1600,
        "promptTokensDetails": [
            {"modality": "TEXT", "tokenCount": 300},
            {"modality": "IMAGE", "tokenCount": 258},
            {"modality": "AUDIO", "tokenCount": 242},
            {"modality": "VIDEO", "tokenCount": 800},
        ],
    }
    data = jsonl(embedding(text), embedding(mixed))
    # batch per 1M: text 0.10, image 0.225, audio 3.25, video 6
    expected = 800 * 100 + (300 * 100 + 258 * 225 + 242 * 3250 + 800 * 6000)
    assert both(data, "gemini-embedding-2") == expected
    assert both(data, "gemini-embedding-2", location="eu") == round(expected * 1.1)


def test_rows_name_their_model_when_the_job_does_not():
    data = jsonl(row(TEXT, version="gemini-3.5-flash-001"), row(TEXT, version="gemini-3.8-flash"))
    found = parse(data, None)
    assert found.cost_nanos == (1000 * 750 + 500 * 4500) + (1000 * 375 + 500 * 1875)
    assert set(found.by_model) == {"gemini-3.5-flash", "gemini-3.8-flash"}


def test_a_model_without_a_price_is_counted_never_zero():
    found = parse(jsonl(row(TEXT)), "gemini-9-nova")
    assert (found.unpriced_rows, found.cost_nanos) == (1, 0)


def test_rows_without_a_time_are_priced_on_the_jobs_day():
    usage = {"promptTokenCount": 100, "candidatesTokenCount": 10}
    data = jsonl({"status": "", "response": {"usageMetadata": usage}})
    assert parse(data, "gemini-3.8-flash", at="2027-02-01").cost_nanos == 100 * 750 + 10 * 3750
    assert parse(data, "gemini-3.8-flash", at="2026-12-30").cost_nanos == 100 * 375 + 10 * 1875
