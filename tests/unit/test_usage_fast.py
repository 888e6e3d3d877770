"""The bulk paths of the usage parser (msgspec when installed, else the regex block) held to
the per-line reference reading on valid, adversarial and corrupt lines."""

import json

import pytest

from shared import usage as usage_module
from tests.unit.test_usage import adversarial_rows, gemini_row, jl

USAGE = {
    "promptTokenCount": 5000,
    "cachedContentTokenCount": 2048,
    "candidatesTokenCount": 70,
    "thoughtsTokenCount": 30,
    "toolUsePromptTokenCount": 9,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 5000}],
}


def _no_fast_row(line, need_model_version):
    raise usage_module._Unsure


def _paths(monkeypatch, name):
    """Force one path: 'reference' (json.loads of every line), 'regex' (block, no msgspec), or
    'default' (msgspec when installed)."""
    if name in ("reference", "regex"):
        monkeypatch.setattr(usage_module, "_DECODER", None)
    if name == "reference":
        monkeypatch.setattr(usage_module._Parser, "block", usage_module._Parser.lines)
        monkeypatch.setattr(usage_module, "_fast_row", _no_fast_row)


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
    ]


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash-lite"])
@pytest.mark.parametrize("chunk", [7, 1000, 1 << 20])
def test_bulk_paths_match_the_reference(monkeypatch, model, chunk):
    rows = [*adversarial_rows(), {"status": "bad", "request": {}}]
    data = jl(*rows) + b"\n".join(corrupt_lines()) + b"\n" + jl(*rows[:3])
    results = {}
    for name in ("reference", "regex", "default"):
        with monkeypatch.context() as patch:
            _paths(patch, name)
            results[name] = _parse(data, chunk, model=model)
    assert results["regex"] == results["reference"]
    assert results["default"] == results["reference"]
    assert results["reference"]["malformed"] >= 14


def test_corrupt_lines_are_malformed_on_every_path(monkeypatch):
    bad = corrupt_lines()
    expected_malformed = [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 14, 15, 16, 17, 24, 27, 28]
    data = b"\n".join(bad) + b"\n"
    for name in ("reference", "regex", "default"):
        with monkeypatch.context() as patch:
            _paths(patch, name)
            result = usage_module.parse_predictions([data], model="gemini-2.5-flash")
        lines = [s["line"] for s in result.malformed_samples]
        assert result.malformed == len(expected_malformed), name
        assert lines == [i + 1 for i in expected_malformed[:5]], name
        # The duplicate status member: json.loads keeps the last one, so the row failed.
        assert [s["line"] for s in result.failed_samples] == [14], name


def test_bulk_cost_is_the_sum_of_per_row_rounded_costs(monkeypatch):
    rows = [gemini_row({"promptTokenCount": p, "candidatesTokenCount": 1}) for p in range(1, 40)]
    data = jl(*rows)
    for name in ("reference", "regex", "default"):
        with monkeypatch.context() as patch:
            _paths(patch, name)
            result = usage_module.parse_predictions([data], model="gemini-2.0-flash-lite")
        # 37.5 nano-dollars per input token: each row rounds half-up on its own.
        assert result.cost_nanos == sum((p * 375 + 5) // 10 + 150 for p in range(1, 40)), name


def test_lines_stay_aligned_with_blank_and_glued_lines(monkeypatch):
    ok = jl(gemini_row(USAGE))
    failed = jl({"status": "boom"})
    spans = ok[:-1] + b"\n"
    data = ok + b"\n" + ok[:-1] + ok + failed + b'{"status": "",\n"x": 1}\n' + failed + spans
    for name in ("reference", "regex", "default"):
        with monkeypatch.context() as patch:
            _paths(patch, name)
            result = usage_module.parse_predictions([data], model="gemini-2.5-flash")
        assert [s["line"] for s in result.failed_samples] == [4, 7], name
        assert [s["line"] for s in result.malformed_samples] == [3, 5, 6], name
        assert (result.succeeded, result.rows) == (2, 7), name
