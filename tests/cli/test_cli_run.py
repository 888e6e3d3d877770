"""The pure parts of `vbg run`: one result per input line, in input order."""

import json
import random

import pytest

from shared.cli.errors import CliError
from shared.cli.run import ordered_results, read_lines


def test_results_follow_input_order_and_fill_gaps():
    lines = [json.dumps({"request": {"n": n % 3}}) for n in range(9)]  # duplicates
    outputs = [{"request": {"n": n % 3}, "status": "", "response": n} for n in range(8)]
    outputs[4]["status"] = "Internal error"
    random.Random(3).shuffle(outputs)
    results, counts = ordered_results(lines, outputs, "PARTIALLY_SUCCEEDED")
    assert [r["request"] for r in results] == [{"n": n % 3} for n in range(9)]
    assert counts == {
        "rows": 9,
        "succeeded": 7,
        "failed": 1,
        "notProcessed": 1,
        "unmatchedOutputRows": 0,
    }
    gaps = [r for r in results if r["status"].startswith("not processed")]
    assert len(gaps) == 1
    assert gaps[0]["status"] == "not processed: the job ended PARTIALLY_SUCCEEDED"
    # Each output row is used once: the seven answers are seven distinct rows.
    answered = [r["response"] for r in results if "response" in r and not r["status"]]
    assert sorted(answered) == sorted(set(answered)) and len(answered) == 7


def test_read_lines_skips_blank_lines_and_refuses_an_empty_file(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"a": 1}\n\n  \n{"b": 2}\n')
    assert read_lines(path) == ['{"a": 1}', '{"b": 2}']
    path.write_text("\n")
    with pytest.raises(CliError, match="has no rows"):
        read_lines(path)
    with pytest.raises(CliError, match="cannot read"):
        read_lines(tmp_path / "missing.jsonl")


def test_read_lines_splits_at_newline_alone(tmp_path):
    """Issue #22 item 11: U+2028, U+2029, U+0085 and a raw "\\r" (JSON whitespace) stay inside
    their line."""
    path = tmp_path / "in.jsonl"
    lines = ['{"t": "a\u2028b"}', '{"t": "c\u2029d"}', '{"t":\r"e\x85f"}']
    path.write_bytes(("\n".join(lines) + "\n").encode())
    assert read_lines(path) == lines
    results, counts = ordered_results(read_lines(path), [], "FAILED")
    assert [r["request"] for r in results] == [
        {"t": "a\u2028b"},
        {"t": "c\u2029d"},
        {"t": "e\x85f"},
    ]
    assert counts["rows"] == counts["notProcessed"] == 3
