"""The estimator on bytes: every row read and priced on its own (no sample is scaled)."""

import json
import math
import random

import pytest

from local import sim_rows
from shared.cost import estimate, pricing

WORDS = [
    "the",
    "batch",
    "job",
    "reads",
    "every",
    "line",
    "of",
    "its",
    "input",
    "and",
    "writes",
    "one",
    "prediction",
    "per",
    "row",
    "while",
    "a",
    "model",
    "answers",
    "questions",
    "about",
    "invoices",
    "contracts",
    "tickets",
    "reviews",
    "and",
    "summaries",
]


def text_of(rng: random.Random, chars: int) -> str:
    words = rng.choices(WORDS, k=chars // 4 + 1)
    return " ".join(words)[:chars]


def gemini_line(text: str, *, max_output=None, budget=None, system=None) -> dict:
    request: dict = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    config: dict = {}
    if max_output:
        config["maxOutputTokens"] = max_output
    if budget is not None:
        config["thinkingConfig"] = {"thinkingBudget": budget}
    if config:
        request["generationConfig"] = config
    if system:
        request["systemInstruction"] = {"parts": [{"text": system}]}
    return {"request": request}


def jsonl(rows) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in rows)


def typical_rows(n: int, seed: int = 7) -> list[dict]:
    """Short-to-medium prompts (below the 2048-token implicit-cache line), mixed configs."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        rows.append(
            gemini_line(
                text_of(rng, rng.randint(200, 6000)),
                max_output=rng.choice([None, 1024, 2048]),
                system="You are a careful analyst. Answer in JSON." if i % 3 == 0 else None,
            )
        )
    return rows


def scan_bytes(data: bytes, model: str, chunk: int = 4096) -> estimate.Tally:
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    return estimate.scan(chunks, estimate.RowEstimator(model))


def test_lines_are_split_across_chunk_boundaries_and_a_last_line_without_newline_counts():
    data = b'{"a":1}\n{"b":2}\n{"c":3}'
    for size in (1, 2, 5, 100):
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        assert list(estimate.iter_lines(chunks)) == [b'{"a":1}', b'{"b":2}', b'{"c":3}']


def test_small_input_counts_rows_chars_tokens_and_prices_each_row():
    rows = [
        gemini_line("a" * 400, max_output=1000),
        gemini_line("b" * 10, max_output=20),
        gemini_line("c" * 4001, system="d" * 99),
    ]
    tally = scan_bytes(jsonl(rows) + b"\n\n", "gemini-2.5-flash", chunk=7)
    assert tally.rows == 3
    assert tally.text_chars == 400 + 10 + 4001 + 99
    assert tally.input_tokens["expected"] == 100 + 3 + 1025
    assert tally.input_tokens["low"] == 80 + 2 + 820
    assert tally.input_tokens["high"] == 200 + 5 + 2050
    # expected output: 64 answer + 160 thinking, each bounded by maxOutputTokens (20 here).
    assert tally.output_tokens["expected"] == (64 + 160) + (20 + 0) + (64 + 160)
    assert tally.output_tokens["low"] == 10 + 10 + 10
    assert tally.output_tokens["high"] == 1000 + 20 + 65536
    model = pricing.pricing("gemini-2.5-flash")
    want = sum(
        model.row_nanos(pricing.RowTokens(prompt=p, candidates=c, thoughts=t))
        for p, c, t in ((100, 64, 160), (3, 20, 0), (1025, 64, 160))
    )
    assert tally.cost_nanos["expected"] == want
    assert tally.cost_nanos["low"] < tally.cost_nanos["expected"] < tally.cost_nanos["high"]


@pytest.mark.parametrize(
    ("model", "budget", "thoughts"),
    [
        ("gemini-2.5-flash", None, 160),
        ("gemini-2.5-flash", 0, 0),
        ("gemini-2.5-flash", 100, 100),
        ("gemini-2.5-pro", None, 160),
        ("gemini-2.5-flash-lite", None, 0),
        ("gemini-2.5-flash-lite", 500, 160),
        ("gemini-2.0-flash", None, 0),
    ],
)
def test_thinking_follows_the_model_and_the_thinking_budget(model, budget, thoughts):
    tally = scan_bytes(jsonl([gemini_line("x" * 40, budget=budget)]), model)
    assert tally.output_tokens["expected"] == 64 + thoughts


def test_without_max_output_tokens_the_high_bound_is_the_models_limit():
    assert scan_bytes(jsonl([gemini_line("x")]), "gemini-2.0-flash").output_tokens["high"] == 8192
    assert scan_bytes(jsonl([gemini_line("x")]), "gemini-2.5-pro").output_tokens["high"] == 65536


def test_a_referenced_image_of_unknown_size_counts_four_tiles_expected():
    """A fileData image the estimator cannot size (no lookup here): 258 low, 4 tiles
    expected, 16 tiles high (cost/media_tokens.py; figures by hand: 4 x 258, 16 x 258)."""
    row = {
        "request": {
            "contents": [
                {
                    "role": "user",
                    "parts": [
                        {"text": "describe"},
                        {"fileData": {"mimeType": "image/png", "fileUri": "gs://b/i.png"}},
                    ],
                }
            ]
        }
    }
    tally = scan_bytes(jsonl([row]), "gemini-2.0-flash")
    assert tally.media_parts == 1
    assert tally.input_tokens == {"low": 2 + 258, "expected": 2 + 1032, "high": 4 + 4128}


def test_embeddings_are_input_only_and_text_embedding_is_cut_at_2048_tokens():
    rows = [{"content": "x" * 400}, {"content": "y" * 40000}]
    tally = scan_bytes(jsonl(rows), "text-embedding-005")
    assert tally.output_tokens == {"low": 0, "expected": 0, "high": 0}
    assert tally.input_tokens["expected"] == 100 + 2048
    # Billed per character (all of them, the cut is a token statistic): 40,400 characters at
    # the batch $0.00002 per 1k characters = 20 nanos each, at every level.
    assert tally.cost_nanos == dict.fromkeys(("low", "expected", "high"), 40_400 * 20)
    cjk = scan_bytes(jsonl([{"content": "東京 タワー", "title": "東 京"}]), "text-embedding-005")
    assert cjk.cost_nanos["expected"] == (5 + 2) * 20
    gemini_embedding = {"request": {"content": {"parts": [{"text": "z" * 4000}]}}}
    tally = scan_bytes(jsonl([gemini_embedding]), "gemini-embedding-001")
    assert tally.input_tokens["expected"] == 1000
    assert tally.output_tokens["high"] == 0


def test_malformed_lines_are_counted_not_fatal():
    data = jsonl([gemini_line("hello")]) + b"{not json\n[1,2]\n" + jsonl([gemini_line("again")])
    tally = scan_bytes(data, "gemini-2.5-flash")
    assert (tally.rows, tally.malformed) == (2, 2)


def test_long_context_tier_is_chosen_per_row():
    long_row = gemini_line("x" * 4 * 250_000)
    short_row = gemini_line("x" * 4 * 1000)
    tally = scan_bytes(jsonl([long_row, short_row]), "gemini-2.5-pro", chunk=1 << 20)
    model = pricing.pricing("gemini-2.5-pro")
    want = model.row_nanos(
        pricing.RowTokens(prompt=250_000, candidates=64, thoughts=160)
    ) + model.row_nanos(pricing.RowTokens(prompt=1000, candidates=64, thoughts=160))
    assert tally.cost_nanos["expected"] == want


def simulator_cost(model: str, rows: list[dict], location: str | None = None) -> int:
    """What the simulator will bill for these rows: its own usage rule, priced as the ledger."""
    priced = pricing.pricing(model, location=location)
    total = 0
    for row in rows:
        usage = sim_rows.expected_usage(model, row["request"])
        total += priced.row_nanos(
            pricing.RowTokens(
                prompt=usage["promptTokenCount"],
                cached=usage.get("cachedContentTokenCount", 0),
                candidates=usage["candidatesTokenCount"],
                thoughts=usage.get("thoughtsTokenCount", 0),
            )
        )
    return total


@pytest.mark.parametrize(
    "model", ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite", "gemini-2.0-flash"]
)
def test_expected_estimate_is_within_25_percent_of_the_simulators_cost(model):
    """The simulator counts input as ceil(chars/4) per row, exactly as the estimator, and its
    output is 10-99 answer tokens (+50-249 thinking on 2.5 models), deterministic per row:
    the estimator's 64 + 160 sit near those means, so the error over a few hundred rows is a
    few percent, and 25% leaves room for skewed inputs. On real Vertex the output length is
    the model's choice: expect the expected figure within 2x, bracketed by low/high."""
    rows = typical_rows(300)
    actual = simulator_cost(model, rows)
    tally = scan_bytes(jsonl(rows), model)
    error = (tally.cost_nanos["expected"] - actual) / actual
    assert abs(error) < 0.25, f"{model}: estimate off by {error:.1%}"
    assert tally.cost_nanos["low"] <= actual <= tally.cost_nanos["high"]


def test_error_pct_and_cost_view():
    assert estimate.error_pct(110, 100) == "10.0"
    assert estimate.error_pct(95, 100) == "-5.0"
    assert estimate.error_pct(1, 3) == "-66.7"
    assert estimate.error_pct(5, 0) is None
    record = {
        "model": "gemini-2.5-flash",
        "method": "read",
        "rows": 2,
        "input_tokens": {"low": 1, "expected": 2, "high": 3},
        "output_tokens": {"low": 1, "expected": 2, "high": 3},
        "cost_nanos": {"low": 100, "expected": 1_250_000_000, "high": 9_000_000_000},
    }
    running = estimate.cost_view({"estimate": record, "cost": {"cost_nanos": 5}})
    assert running["estimateErrorPct"] is None
    assert running["estimate"]["costUsd"] == {
        "low": "0.000000100",
        "expected": "1.250000000",
        "high": "9.000000000",
    }
    done = estimate.cost_view(
        {"estimate": record, "cost": {"cost_nanos": 1_000_000_000}, "cost_final": True}
    )
    assert done["estimateErrorPct"] == "25.0"
    assert estimate.cost_view({"estimate": None}) == {"estimate": None, "estimateErrorPct": None}


def test_token_rule_is_four_characters_per_token():
    assert estimate._tokens(0, 4) == 1
    assert estimate._tokens(9, 4) == math.ceil(9 / 4)


def test_a_typical_row_is_1740_characters_and_224_output_tokens():
    """The floor's row for a job without an estimate. By hand on gemini-2.5-flash: ceil(1740
    / 4) = 435 input tokens at 150 nanos + (64 + 160) output tokens at 1,250 = 345,250."""
    tally = estimate.typical_row(estimate.RowEstimator("gemini-2.5-flash"))
    assert (tally.rows, tally.text_chars) == (1, 1740)
    assert tally.cost_nanos["expected"] == 345_250
