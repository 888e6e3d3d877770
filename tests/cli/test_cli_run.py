"""The local parts of `vbg run`: counting a file's rows as a stream."""

import pytest

from shared.cli.errors import CliError
from shared.cli.run import count_lines


def test_count_lines_skips_blank_lines_and_refuses_an_empty_file(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"a": 1}\n\n  \n{"b": 2}\n\t\r\n{"c": 3}')
    assert count_lines(path) == 3
    path.write_text("\n \n")
    with pytest.raises(CliError, match="has no rows"):
        count_lines(path)
    with pytest.raises(CliError, match="cannot read"):
        count_lines(tmp_path / "missing.jsonl")


def test_count_lines_splits_at_newline_alone(tmp_path):
    """Issue #22 item 11: U+2028, U+2029, U+0085 and a raw "\\r" (JSON whitespace) stay inside
    their line."""
    path = tmp_path / "in.jsonl"
    lines = ['{"t": "a\u2028b"}', '{"t": "c\u2029d"}', '{"t":\r"e\x85f"}']
    path.write_bytes(("\n".join(lines) + "\n").encode())
    assert count_lines(path) == 3
