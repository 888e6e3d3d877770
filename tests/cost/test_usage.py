"""The streaming usage parser: every row rule with hand-computed figures, and the fast path
held to the full json.loads reading on adversarial rows and arbitrary chunk boundaries."""

import json

import pytest

from shared.cost import usage as usage_module
from shared.cost.usage import parse_predictions


def jl(*rows) -> bytes:
    return b"".join(
        (row if isinstance(row, bytes) else json.dumps(row, separators=(",", ":")).encode()) + b"\n"
        for row in rows
    )


def gemini_row(usage, *, model_version="gemini-2.5-flash", text="hi", order="vertex", **extra):
    request = {"contents": [{"role": "user", "parts": [{"text": text}]}], **extra}
    response = {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "ok"}]}}],
        "usageMetadata": usage,
        "modelVersion": model_version,
        "createTime": "2026-01-01T00:00:00.000000Z",
        "responseId": "abc",
    }
    if order == "vertex":
        return {
            "status": "",
            "processed_time": "2026-01-01T00:00:00.000+00:00",
            "request": request,
            "response": response,
        }
    if order == "sim":
        return {
            "request": request,
            "status": "",
            "processed_time": "2026-01-01T00:00:00.000+00:00",
            "response": response,
        }
    return {"request": request, "response": response, "status": ""}


def parse(data: bytes, **kwargs):
    return parse_predictions([data], **kwargs)


def test_gemini_row_with_cached_and_thinking_tokens():
    usage = {
        "promptTokenCount": 10000,
        "cachedContentTokenCount": 4096,
        "candidatesTokenCount": 200,
        "thoughtsTokenCount": 300,
        "totalTokenCount": 10500,
    }
    result = parse(jl(gemini_row(usage)), model="gemini-2.5-flash")
    assert result.cost_nanos == (10000 - 4096) * 150 + 4096 * 30 + 500 * 1250 == 1_633_480
    assert (result.rows, result.succeeded, result.failed, result.malformed) == (1, 1, 0, 0)
    assert (result.prompt_tokens, result.cached_tokens) == (10000, 4096)
    assert (result.candidates_tokens, result.thoughts_tokens) == (200, 300)
    assert result.cost_usd == "0.001633480"


def test_gemini_2_5_pro_row_above_200k():
    usage = {"promptTokenCount": 250_000, "candidatesTokenCount": 1000, "thoughtsTokenCount": 500}
    result = parse(jl(gemini_row(usage, model_version="gemini-2.5-pro")), model="gemini-2.5-pro")
    assert result.cost_nanos == 250_000 * 1250 + 1500 * 7500 == 323_750_000
    online = parse(jl(gemini_row(usage)), model="gemini-2.5-pro", batch=False)
    assert online.cost_nanos == 250_000 * 2500 + 1500 * 15000


def test_tool_use_and_audio_details():
    usage = {
        "promptTokenCount": 1000,
        "cachedContentTokenCount": 300,
        "toolUsePromptTokenCount": 40,
        "candidatesTokenCount": 10,
        "promptTokensDetails": [
            {"modality": "TEXT", "tokenCount": 400},
            {"modality": "AUDIO", "tokenCount": 600},
        ],
        "cacheTokensDetails": [
            {"modality": "TEXT", "tokenCount": 100},
            {"modality": "AUDIO", "tokenCount": 200},
        ],
    }
    result = parse(jl(gemini_row(usage)), model="gemini-2.5-flash")
    expected = (300 + 40) * 150 + 400 * 500 + 100 * 30 + 200 * 100 + 10 * 1250
    assert result.cost_nanos == expected
    assert (result.tool_use_prompt_tokens, result.audio_prompt_tokens) == (40, 600)


def test_failed_row_costs_nothing_and_is_sampled():
    failed = {"status": "Bad Request: contents is required", "request": {"contents": []}}
    ok = gemini_row({"promptTokenCount": 10, "candidatesTokenCount": 2})
    result = parse(jl(ok, failed), model="gemini-2.5-flash")
    assert (result.rows, result.succeeded, result.failed) == (2, 1, 1)
    assert result.cost_nanos == 10 * 150 + 2 * 1250
    assert result.failed_samples == [{"line": 2, "message": "Bad Request: contents is required"}]


def test_failed_row_with_status_in_the_middle_and_last():
    middle = {"request": {"contents": []}, "status": "quota", "processed_time": "t"}
    last = {"instance": {"content": "x"}, "status": "Invalid instance"}
    result = parse(jl(middle, last), model="gemini-2.5-flash")
    assert result.failed == 2
    assert [s["message"] for s in result.failed_samples] == ["quota", "Invalid instance"]


def test_malformed_lines_are_counted_sampled_and_never_fatal():
    ok = gemini_row({"promptTokenCount": 10, "candidatesTokenCount": 2})
    data = jl(ok) + b'{"status":"","response":{"usageMetadata":{"promptTok\n' + b"[1,2]\n" + jl(ok)
    result = parse(data, model="gemini-2.5-flash")
    assert (result.rows, result.succeeded, result.malformed) == (4, 2, 2)
    assert [s["line"] for s in result.malformed_samples] == [2, 3]
    assert result.malformed_samples[0]["text"].startswith('{"status":""')
    assert "not a JSON object" in result.malformed_samples[1]["error"]
    assert result.cost_nanos == 2 * (10 * 150 + 2 * 1250)


def test_bad_token_counts_are_malformed_not_priced():
    row = gemini_row({"promptTokenCount": "10", "candidatesTokenCount": 2})
    result = parse(jl(row), model="gemini-2.5-flash")
    assert (result.malformed, result.cost_nanos) == (1, 0)


def test_only_the_first_five_samples_are_kept():
    result = parse(b"nope\n" * 9, model="gemini-2.5-flash")
    assert result.malformed == 9
    assert [s["line"] for s in result.malformed_samples] == [1, 2, 3, 4, 5]


def test_text_embedding_file():
    rows = [
        {
            "instance": {"content": "hello world"},
            "predictions": [
                {
                    "embeddings": {
                        "statistics": {"token_count": 7, "truncated": False},
                        "values": [0.1],
                    }
                }
            ],
            "status": "",
        },
        {
            "instance": {"content": "a"},
            "predictions": [
                {"embeddings": {"values": [0.2, 0.3], "statistics": {"token_count": 5}}}
            ],
        },
        {"instance": {"content": ""}, "status": "Invalid instance: content is required"},
    ]
    result = parse(jl(*rows), model="text-embedding-005")
    assert (result.rows, result.succeeded, result.failed) == (3, 2, 1)
    assert result.embedding_tokens == 12
    assert result.prompt_tokens == 0
    # Billed per character, not per token: "helloworld" 10 + "a" 1, at 20 nanos/char (batch).
    assert result.embedding_characters == 11
    assert result.cost_nanos == 11 * 20 == 220


def test_gemini_embedding_file():
    rows = [
        {
            "request": {"content": {"parts": [{"text": "hello"}]}},
            "status": "",
            "processed_time": "t",
            "response": {
                "embedding": {"values": [0.1, 0.2]},
                "usageMetadata": {"promptTokenCount": 10, "totalTokenCount": 10},
            },
        },
        {
            "status": "",
            "request": {"content": {"parts": [{"text": "x"}]}},
            "response": {
                "embedding": {"values": [0.1]},
                "usageMetadata": {"promptTokenCount": 4, "totalTokenCount": 4},
            },
        },
    ]
    result = parse(jl(*rows), model="publishers/google/models/gemini-embedding-001")
    assert result.embedding_tokens == 14
    assert result.prompt_tokens == 0
    assert result.cost_nanos == 14 * 120 == 1680  # batch $0.12 per 1M tokens
    assert list(result.by_model) == ["gemini-embedding-001"]


def test_model_from_model_version_when_the_job_model_is_unknown():
    flash = gemini_row({"promptTokenCount": 100}, model_version="gemini-2.5-flash-001")
    lite = gemini_row({"promptTokenCount": 100}, model_version="gemini-2.0-flash-lite@default")
    for model in (None, "my-custom-alias"):
        result = parse(jl(flash, lite), model=model)
        assert result.cost_nanos == 100 * 150 + round(100 * 37.5)
        assert sorted(result.by_model) == ["gemini-2.0-flash-lite", "gemini-2.5-flash"]
        assert result.by_model["gemini-2.5-flash"].cost_nanos == 15000
        assert result.unpriced_rows == 0


def test_job_model_wins_over_model_version():
    row = gemini_row({"promptTokenCount": 100}, model_version="gemini-2.5-flash-001")
    result = parse(jl(row), model="gemini-2.5-pro")
    assert result.cost_nanos == 100 * 625


def test_unknown_model_rows_are_unpriced_and_sampled():
    row = gemini_row({"promptTokenCount": 100, "candidatesTokenCount": 1}, model_version="x-1")
    result = parse(jl(row, row), model=None)
    assert (result.succeeded, result.unpriced_rows, result.cost_nanos) == (2, 2, 0)
    assert result.prompt_tokens == 200
    reason = usage_module.NO_PRICE
    assert result.unpriced_samples == [
        {"line": 1, "model": "x-1", "reason": reason},
        {"line": 2, "model": "x-1", "reason": reason},
    ]
    assert result.by_model["x-1"].unpriced_rows == 2


def test_rows_without_usage_are_counted():
    row = {"status": "", "request": {}, "response": {"candidates": []}}
    result = parse(jl(row), model="gemini-2.5-flash")
    assert (result.succeeded, result.no_usage_rows, result.cost_nanos) == (1, 1, 0)


def test_blank_lines_crlf_and_missing_final_newline():
    row = json.dumps(gemini_row({"promptTokenCount": 10})).encode()
    data = row + b"\r\n\n   \n" + row
    result = parse(data, model="gemini-2.5-flash")
    assert (result.rows, result.succeeded, result.malformed) == (2, 2, 0)
    assert result.cost_nanos == 2 * 10 * 150


ADVERSARIAL_TEXTS = [
    'please mention "usageMetadata": {"promptTokenCount": 999999} here',
    '"status": "failed", "usageMetadata"',
    "ends with a backslash \\",
    'quote then key \\"usageMetadata\\":{}',
    '{"status":"x"}',
    'non-ascii: héllo ✓ \u2028 "modelVersion": "gemini-2.5-pro"',
    '"predictions" "token_count": 50',
]


def adversarial_rows():
    usage = {"promptTokenCount": 1000, "cachedContentTokenCount": 256, "candidatesTokenCount": 7}
    rows = []
    for text in ADVERSARIAL_TEXTS:
        for order in ("vertex", "sim", "last"):
            rows.append(gemini_row(usage, text=text, order=order))
    # Structural decoys: keys named like ours, nested deeper than the real ones.
    decoy_schema = {
        "responseSchema": {
            "type": "OBJECT",
            "properties": {"usageMetadata": {"type": "OBJECT"}, "status": {"type": "STRING"}},
        }
    }
    for order in ("vertex", "sim", "last"):
        rows.append(gemini_row(usage, order=order, generationConfig=decoy_schema))
        row = gemini_row(usage, order=order)
        row["response"]["candidates"][0]["content"]["parts"] = [
            {
                "functionCall": {
                    "name": "f",
                    "args": {
                        "status": "broken",
                        "usageMetadata": {"promptTokenCount": 5},
                        "modelVersion": "gemini-2.5-pro",
                        "token_count": 3,
                    },
                }
            }
        ]
        rows.append(row)
        moved = gemini_row(usage, order=order)
        moved["response"] = {"usageMetadata": usage, **moved["response"]}
        rows.append(moved)
    # A response without usage whose request carries decoys.
    no_usage = gemini_row(usage, order="last", generationConfig=decoy_schema)
    del no_usage["response"]["usageMetadata"]
    rows.append(no_usage)
    # Text-embedding rows whose echoed instance carries decoys.
    rows.append(
        {
            "instance": {"content": '"token_count": 99', "extra": {"token_count": 1000}},
            "predictions": [{"embeddings": {"statistics": {"token_count": 4}, "values": [1.0]}}],
            "status": "",
        }
    )
    rows.append(
        {
            "predictions": [{"embeddings": {"statistics": {"token_count": 4}, "values": [1.0]}}],
            "instance": {"content": "x", "status": "decoy"},
            "status": "",
        }
    )
    return rows


@pytest.mark.parametrize("model", ["gemini-2.5-flash", None])
def test_long_row_reading_matches_full_parse_on_adversarial_rows(model):
    # Every row read as a row too long to hold (max_line_bytes=0), in chunks of every size
    # up to 100 bytes: the same books as json.loads of each line.
    for separators in ((",", ":"), (", ", ": ")):
        data = b"".join(
            json.dumps(row, separators=separators).encode() + b"\n" for row in adversarial_rows()
        )
        whole = parse(data, model=model).to_dict()
        assert whole["succeeded"] == len(adversarial_rows())
        for size in (1, 2, 3, 7, 64, 100):
            chunks = [data[i : i + size] for i in range(0, len(data), size)]
            long = parse_predictions(chunks, model=model, max_line_bytes=0).to_dict()
            assert long == whole, (separators, size)


def test_adversarial_file_totals_match_a_naive_parse():
    rows = adversarial_rows()
    result = parse(jl(*rows), model="gemini-2.5-flash")
    naive_prompt = sum(
        r.get("response", {}).get("usageMetadata", {}).get("promptTokenCount", 0)
        for r in rows
        if not r.get("status")
    )
    assert result.prompt_tokens == naive_prompt
    assert result.failed == 0
    assert result.embedding_tokens == 8
    assert result.cost_nanos == (len(rows) - 3) * (744 * 150 + 256 * 30 + 7 * 1250)


def sample_file() -> bytes:
    rows = adversarial_rows()
    rows.append({"status": "boom", "request": {}})
    return jl(*rows) + b"garbage\n" + jl(rows[0])[:-1]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 1000])
def test_chunk_boundaries_anywhere(size):
    data = sample_file()
    whole = parse(data, model="gemini-2.5-flash").to_dict()
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    assert parse_predictions(chunks, model="gemini-2.5-flash").to_dict() == whole


def test_every_split_point_of_a_small_file():
    data = (
        jl(
            gemini_row({"promptTokenCount": 10, "candidatesTokenCount": 1}),
            {"status": "bad"},
        )
        + b"{oops\n"
    )
    whole = parse(data, model="gemini-2.5-flash").to_dict()
    assert whole["rows"] == 3
    for cut in range(len(data) + 1):
        assert parse_predictions([data[:cut], data[cut:]], model="gemini-2.5-flash").to_dict() == (
            whole
        )


def test_a_line_longer_than_the_parser_holds_is_read_as_it_streams():
    ok = jl(gemini_row({"promptTokenCount": 10}))
    big = b'{"status":"","pad":"' + b"x" * 5000 + b'"}\n'
    data = ok + big + ok + b'{"status":"","pad":"' + b"x" * 5000 + b"\n" + ok
    chunks = [data[i : i + 100] for i in range(0, len(data), 100)]
    result = parse_predictions(chunks, model="gemini-2.5-flash", max_line_bytes=1000)
    assert (result.rows, result.succeeded, result.no_usage_rows, result.malformed) == (5, 4, 1, 1)
    assert result.cost_nanos == 3 * 10 * 150
    assert [s["line"] for s in result.malformed_samples] == [4]
    assert result.malformed_samples[0]["error"] == "the row ends inside a value (cut short)"
    assert result.malformed_samples[0]["text"] == '{"status":"","pad":"' + "x" * 180


def test_to_dict_and_counters_are_json_ints():
    result = parse(jl(gemini_row({"promptTokenCount": 3})), model="gemini-2.0-flash-lite")
    out = result.to_dict()
    json.dumps(out)
    assert out["cost_nanos"] == 113 and out["cost_usd"] == "0.000000113"
    counters = result.counters()
    assert all(type(v) is int for v in counters.values())
    assert set(counters) == set(usage_module.COUNTER_FIELDS)


def test_read_file_chunks(tmp_path):
    path = tmp_path / "predictions.jsonl"
    data = sample_file()
    path.write_bytes(data)
    chunks = list(usage_module.read_file_chunks(path, chunk_size=10))
    assert b"".join(chunks) == data and max(map(len, chunks)) == 10
