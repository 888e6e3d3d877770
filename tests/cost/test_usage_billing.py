"""What Vertex bills, row shape by row shape: every figure below is computed by hand from the
rates in shared/cost/prices.json (batch unless said), never by the code under test."""

import json

import pytest

from shared.cost import usage
from shared.cost.usage import MAX_ROW_TOKENS, parse_predictions


def jl(*rows) -> bytes:
    return b"".join(
        (row if isinstance(row, bytes) else json.dumps(row, ensure_ascii=False).encode()) + b"\n"
        for row in rows
    )


def text_embedding_row(content, title=None, token_count=3):
    instance = {"content": content}
    if title is not None:
        instance["title"] = title
    return {
        "instance": instance,
        "predictions": [
            {"embeddings": {"statistics": {"token_count": token_count, "truncated": False}}}
        ],
        "status": "",
    }


def gemini(usage_block, model_version="gemini-2.5-pro"):
    return {
        "status": "",
        "request": {"contents": [{"role": "user", "parts": [{"text": "q"}]}]},
        "response": {"usageMetadata": usage_block, "modelVersion": model_version},
    }


def test_cjk_text_embedding_is_billed_per_character():
    # "日本語の文書です。" 9 code points; "東京 タワー" 5 (the space is not billed);
    # title "見出し" 3. A CJK character is about one token: token_count is only a statistic.
    rows = [
        text_embedding_row("日本語の文書です。", token_count=9),
        text_embedding_row("東京 タワー", title="見出し", token_count=6),
    ]
    result = parse_predictions([jl(*rows)], model="text-multilingual-embedding-002")
    assert result.embedding_characters == 9 + 5 + 3
    assert result.embedding_tokens == 15
    assert result.cost_nanos == 17 * 20  # $0.00002 / 1k chars = 20 nanos per char
    online = parse_predictions([jl(*rows)], model="text-embedding-004", batch=False)
    assert online.cost_nanos == 17 * 25  # $0.000025 / 1k chars


def test_whitespace_and_astral_characters():
    # "a b\tc\nd" -> 4; "😀 x" -> 2 (one code point for the emoji, 4 bytes in UTF-8).
    rows = [text_embedding_row("a b\tc\nd"), text_embedding_row("😀 x")]
    result = parse_predictions([jl(*rows)], model="text-embedding-005")
    assert (result.embedding_characters, result.cost_nanos) == (6, 6 * 20)


def test_text_embedding_row_without_echoed_content_is_no_usage_not_free():
    row = text_embedding_row("ok")
    del row["instance"]
    result = parse_predictions([jl(row, text_embedding_row("ok"))], model="text-embedding-005")
    assert (result.succeeded, result.no_usage_rows, result.cost_nanos) == (2, 1, 2 * 20)
    assert result.unpriced_samples == [
        {"line": 1, "model": "text-embedding-005", "reason": usage.NO_TEXT}
    ]


@pytest.mark.parametrize(
    "response",
    [
        {"embedding": {"values": [0.1]}, "usageMetadata": {"promptTokenCount": 7}},
        {"embedding": {"values": [0.1], "statistics": {"tokenCount": 7, "truncated": False}}},
        {"embedding": {"values": [0.1], "statistics": {"token_count": 7}}},
        {"embeddings": [{"values": [0.1], "statistics": {"tokenCount": 7}}]},
        {"embedding": {"values": [0.1], "tokenCount": 7}},
    ],
)
def test_both_gemini_embedding_shapes_are_priced(response):
    row = {"status": "", "request": {"content": {"parts": [{"text": "hi"}]}}, "response": response}
    result = parse_predictions([jl(row, row)], model="gemini-embedding-001")
    assert (result.embedding_tokens, result.no_usage_rows) == (14, 0)
    assert result.cost_nanos == 14 * 120  # $0.12 per 1M tokens in batch


def test_long_context_pro_rows_take_the_higher_tier_per_row():
    small = gemini({"promptTokenCount": 200_000, "candidatesTokenCount": 10})
    large = gemini(
        {"promptTokenCount": 200_001, "cachedContentTokenCount": 1, "candidatesTokenCount": 10}
    )
    result = parse_predictions([jl(small, large)], model="gemini-2.5-pro")
    # <=200k batch: 0.625 in, 5 out; >200k batch: 1.25 in, 7.5 out, cached online 0.25.
    expected = 200_000 * 625 + 10 * 5000 + 200_000 * 1250 + 1 * 250 + 10 * 7500
    assert result.cost_nanos == expected


def test_rows_without_usage_and_of_unknown_models_are_counted_and_sampled():
    rows = [
        {"status": "", "response": {"candidates": []}},  # no usage in any shape
        {"status": "", "something": "else"},  # unrecognised shape
        gemini({"promptTokenCount": 10}, model_version="gemini-1.5-flash-002"),
        gemini({"promptTokenCount": 10}, model_version="gemini-2.5-flash"),
    ]
    result = parse_predictions([jl(*rows)], model=None)
    assert (result.rows, result.succeeded, result.no_usage_rows, result.unpriced_rows) == (
        4,
        4,
        2,
        1,
    )
    assert result.cost_nanos == 10 * 150
    assert [(s["line"], s["reason"]) for s in result.unpriced_samples] == [
        (1, usage.NO_USAGE),
        (2, usage.NO_USAGE),
        (3, usage.NO_PRICE),
    ]


BAD_COUNTS = [
    -1,
    1.5,
    5.0,
    True,
    "12",
    MAX_ROW_TOKENS + 1,
    99999999999999999999999999999,
    10**300,
]


@pytest.mark.parametrize("bad", BAD_COUNTS, ids=repr)
@pytest.mark.parametrize("field", ["promptTokenCount", "candidatesTokenCount"])
def test_implausible_counts_make_a_malformed_row_never_an_exception(bad, field):
    good = gemini({"promptTokenCount": 100, "candidatesTokenCount": 10}, "gemini-2.5-flash")
    poisoned = gemini({"promptTokenCount": 100, "candidatesTokenCount": 10}, "gemini-2.5-flash")
    poisoned["response"]["usageMetadata"][field] = bad
    for model in ("gemini-2.5-flash", None):
        result = parse_predictions([jl(good, poisoned, good)], model=model)
        assert (result.rows, result.succeeded, result.malformed) == (3, 2, 1)
        assert result.cost_nanos == 2 * (100 * 150 + 10 * 1250)
        assert result.malformed_samples[0]["line"] == 2
        assert max(getattr(result, f) for f in usage.COUNTER_FIELDS) < 2**63


def test_the_bound_itself_is_plausible():
    row = gemini({"promptTokenCount": MAX_ROW_TOKENS}, "gemini-2.5-flash")
    result = parse_predictions([jl(row)], model="gemini-2.5-flash")
    assert (result.malformed, result.prompt_tokens) == (0, MAX_ROW_TOKENS)


@pytest.mark.parametrize("bad", [-4, 2.5, MAX_ROW_TOKENS + 1])
def test_implausible_embedding_counts_are_malformed(bad):
    rows = [text_embedding_row("abc", token_count=bad), text_embedding_row("abc")]
    result = parse_predictions([jl(*rows)], model="text-embedding-005")
    assert (result.malformed, result.succeeded, result.cost_nanos) == (1, 1, 3 * 20)


def test_embedding_rows_that_name_no_model_are_priced_by_their_family():
    # Text-embedding rows carry no model name; the three character-billed models share one
    # price, so a file priced without --model still costs 20 nanos per character (batch).
    text = parse_predictions([jl(text_embedding_row("abc d"))], model=None)
    assert (text.cost_nanos, text.unpriced_rows, list(text.by_model)) == (
        4 * 20,
        0,
        ["text-embedding"],
    )
    row = {
        "status": "",
        "request": {"content": {"parts": [{"text": "hi"}]}},
        "response": {"embedding": {"values": [0.1]}, "usageMetadata": {"promptTokenCount": 9}},
    }
    # gemini-embedding-001 ($0.12 batch) and gemini-embedding-2 ($0.10) share a row shape but
    # not a price: without --model such rows are counted unpriced and announced, never $0.
    gemb = parse_predictions([jl(row, row)], model=None)
    assert (gemb.cost_nanos, gemb.unpriced_rows) == (0, 2)
    named = parse_predictions([jl(row, row)], model="gemini-embedding-001")
    assert (named.cost_nanos, named.unpriced_rows) == (18 * 120, 0)
