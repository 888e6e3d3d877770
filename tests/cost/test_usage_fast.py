"""The bulk path of the usage parser (msgspec) held to the per-line reference reading
(json.loads) on valid, adversarial and corrupt lines."""

import json
import threading
from decimal import Decimal

import pytest

from shared.cost import usage as usage_module
from tests.cost.test_usage import adversarial_rows, gemini_row, jl

USAGE = {
    "promptTokenCount": 5000,
    "cachedContentTokenCount": 2048,
    "candidatesTokenCount": 70,
    "thoughtsTokenCount": 30,
    "toolUsePromptTokenCount": 9,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 5000}],
}


def _paths(monkeypatch, name):
    """Force one path: 'reference' (json.loads of every line) or 'default' (msgspec)."""
    if name == "reference":
        monkeypatch.setattr(usage_module._Parser, "block", usage_module._Parser.lines)


def _parse(data, chunk, **kwargs):
    chunks = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    return usage_module.parse_predictions(chunks, **kwargs).to_dict()


def corrupt_lines() -> list[bytes]:
    ok = json.dumps(gemini_row(USAGE)).encode()
    ok_sim = json.dumps(gemini_row(USAGE, order="sim")).encode()
    failed = json.dumps({"status": "boom", "request": {"contents": []}}).encode()
    audio = dict(USAGE, promptTokensDetails=[{"modality": "AUDIO", "tokenCount": 100}])
    return [
        ok,
        ok[:-1],  # truncated
        ok[: len(ok) // 2],  # cut in the middle
        b"xx" + ok,  # garbage prefix
        b" " + ok + b" ",
        ok + ok,  # two rows glued
        ok + b" " + ok,
        failed + ok,
        ok + failed,
        ok[:300] + ok,  # a row cut short, then the next one on the same line
        ok_sim[:200] + ok_sim,
        ok[:12] + ok,
        ok + b"\r",
        ok.replace(b'"status": ""', b'"status": "", "status": "late"'),
        ok.replace(b"2048", b"02048"),  # leading zero: not JSON
        ok.replace(b"5000,", b"5000.0,", 1),
        ok.replace(b"5000,", b"-5000,", 1),
        ok.replace(b"5000,", b"true,", 1),
        ok.replace(b"5000,", b"null,", 1),
        ok.replace(b'"status"', b'"st\\u0061tus"'),
        ok.replace(b'"response"', b'"resp\\u006fnse"'),
        json.dumps(gemini_row(audio)).encode(),
        json.dumps(gemini_row(dict(USAGE, cachedContentTokenCount=9000))).encode(),
        json.dumps(gemini_row({"promptTokenCount": 250_000, "candidatesTokenCount": 3})).encode(),
        b'{"status": "", "response": {"usageMetadata": {"promptTokenCount": NaN}}}',
        b'{"status": "", "response": {"usageMetadata": {"promptTokenCount": 1}}, "x": NaN}',
        b'{"status": "", "request": {"t": "\\ud800"}, "response": {"usageMetadata": '
        b'{"promptTokenCount": 1}}}',
        b"\xff" + ok,
        b"[" + ok + b"]",
        b"",
        b"   ",
        ok.replace(b"5000,", b"1000000001,", 1),  # above usage.MAX_ROW_TOKENS
        ok.replace(b"5000,", b"99999999999999999999999999999,", 1),  # beyond int64
        ok.replace(b'"candidatesTokenCount": 70', b'"candidatesTokenCount": 1e3'),
    ]


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash-lite"])
@pytest.mark.parametrize("chunk", [7, 1000, 1 << 20])
def test_bulk_paths_match_the_reference(monkeypatch, model, chunk):
    embedding_rows = [
        {
            "instance": {"content": "東京 x", "title": "t"},
            "predictions": [{"embeddings": {"statistics": {"token_count": 3}}}],
            "status": "",
        },
        {"status": "", "response": {"embedding": {"statistics": {"tokenCount": 4}}}},
        {"status": "", "response": {"candidates": []}},
    ]
    rows = [*adversarial_rows(), {"status": "bad", "request": {}}, *embedding_rows]
    data = jl(*rows) + b"\n".join(corrupt_lines()) + b"\n" + jl(*rows[:3])
    results = {}
    for name in ("reference", "default"):
        with monkeypatch.context() as patch:
            _paths(patch, name)
            results[name] = _parse(data, chunk, model=model)
    assert results["default"] == results["reference"]
    assert results["reference"]["malformed"] >= 14


def test_corrupt_lines_are_malformed_on_every_path(monkeypatch):
    bad = corrupt_lines()
    expected_malformed = [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 14, 15, 16, 17, 24, 27, 28, 31, 32, 33]
    data = b"\n".join(bad) + b"\n"
    for name in ("reference", "default"):
        with monkeypatch.context() as patch:
            _paths(patch, name)
            result = usage_module.parse_predictions([data], model="gemini-2.5-flash")
        lines = [s["line"] for s in result.malformed_samples]
        assert result.malformed == len(expected_malformed), name
        assert lines == [i + 1 for i in expected_malformed[:5]], name
        # The duplicate status member: json.loads keeps the last one, so the row failed.
        assert [s["line"] for s in result.failed_samples] == [14], name


def test_cost_is_rounded_once_per_file_on_every_path(monkeypatch):
    rows = [gemini_row({"promptTokenCount": p, "candidatesTokenCount": 1}) for p in range(1, 40)]
    one_token = gemini_row({"promptTokenCount": 1})
    for name in ("reference", "default"):
        with monkeypatch.context() as patch:
            _paths(patch, name)
            result = usage_module.parse_predictions([jl(*rows)], model="gemini-2.0-flash-lite")
            pair = usage_module.parse_predictions(
                [jl(one_token, one_token)], model="gemini-2.0-flash-lite"
            )
        # 37.5 nano-dollars per batch input token, 150 per output token, summed exactly:
        # (1 + ... + 39) * 37.5 + 39 * 150 = 29250 + 5850; rounding each row would give 35110.
        assert result.cost_nanos == 35_100, name
        # Two rows of 37.5: 75, not 2 x round(37.5) = 76.
        assert pair.cost_nanos == 75, name


def test_lines_stay_aligned_with_blank_and_glued_lines(monkeypatch):
    ok = jl(gemini_row(USAGE))
    failed = jl({"status": "boom"})
    spans = ok[:-1] + b"\n"
    data = ok + b"\n" + ok[:-1] + ok + failed + b'{"status": "",\n"x": 1}\n' + failed + spans
    for name in ("reference", "default"):
        with monkeypatch.context() as patch:
            _paths(patch, name)
            result = usage_module.parse_predictions([data], model="gemini-2.5-flash")
        assert [s["line"] for s in result.failed_samples] == [4, 7], name
        assert [s["line"] for s in result.malformed_samples] == [3, 5, 6], name
        assert (result.succeeded, result.rows) == (2, 7), name


def test_fine_overrides_are_summed_exactly_then_rounded(monkeypatch):
    # 1e-16 USD/token online = 0.1 nano-dollar per 1M tokens: each row 0.1, five rows 0.5 -> 1.
    rows = [gemini_row({"promptTokenCount": 1_000_000}) for _ in range(5)]
    overrides = {"input_cost_per_token": Decimal("1e-16")}
    for name in ("reference", "default"):
        with monkeypatch.context() as patch:
            _paths(patch, name)
            result = usage_module.parse_predictions(
                [jl(*rows)], model="gemini-2.5-flash", overrides=overrides, batch=False
            )
        assert result.cost_nanos == 1, name


def test_bulk_columns_with_unknown_model_and_odd_rows(monkeypatch):
    escaped_audio = dict(USAGE, promptTokensDetails=[{"modality": "\\u0041UDIO", "tokenCount": 7}])
    rows = [
        gemini_row(USAGE),
        gemini_row(USAGE, model_version="gemini-2.5-pro"),
        gemini_row(dict(USAGE, promptTokenCount=250_000), model_version="gemini-2.5-pro"),
        gemini_row(USAGE, model_version="mystery-model"),
        gemini_row(None),
        {"status": "", "response": None},
        {"status": "", "response": {"modelVersion": "gemini-2.5-flash"}},
        gemini_row(dict(USAGE, promptTokensDetails=[{"modality": "AUDIO", "tokenCount": 9}])),
        gemini_row({**USAGE, "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": "x"}]}),
        gemini_row(escaped_audio),
        {"status": {"code": 3}, "response": {"usageMetadata": {"promptTokenCount": "x"}}},
        gemini_row(USAGE),
    ]
    data = jl(*rows).replace(b"\\\\u0041UDIO", b"\\u0041UDIO")
    assert b'"\\u0041UDIO"' in data
    results = {}
    for name in ("reference", "default"):
        with monkeypatch.context() as patch:
            _paths(patch, name)
            results[name] = _parse(data, 1 << 20, model=None)
    assert results["default"] == results["reference"]
    ref = results["reference"]
    assert sorted(ref["by_model"]) == [
        "gemini-2.5-flash",
        "gemini-2.5-pro",
        "mystery-model",
        "unknown",
    ]
    assert (ref["failed"], ref["malformed"], ref["no_usage_rows"], ref["unpriced_rows"]) == (
        1,
        1,
        3,
        1,
    )
    assert ref["audio_prompt_tokens"] == 9 + 7


def test_read_file_chunks_reads_ahead_and_stops_when_closed(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b"x" * 100)
    assert b"".join(usage_module.read_file_chunks(path, chunk_size=7)) == b"x" * 100
    before = threading.active_count()
    chunks = usage_module.read_file_chunks(path, chunk_size=7)
    assert next(chunks) == b"x" * 7
    chunks.close()
    assert threading.active_count() == before
    with pytest.raises(FileNotFoundError):
        next(usage_module.read_file_chunks(tmp_path / "missing"))
