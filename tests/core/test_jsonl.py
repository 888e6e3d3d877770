"""JSONL lines end at "\n" alone (issue #22 item 11): the characters `str.splitlines()` also
breaks at stay inside their record, in every reader."""

import itertools
import json

from hypothesis import given
from hypothesis import strategies as st

from shared.core import jsonl

# What str.splitlines() breaks at besides "\n"; U+0085, U+2028 and U+2029 may stand raw in a
# JSON string, the others only escaped (json.dumps escapes them; the split must not care).
OTHER_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


def test_a_line_ends_at_newline_alone():
    text = '{"t": "a\u2028b\u2029c\x85d"}\n\n \t\r\n{"t": 2}\r\n{"t": 3}'
    assert jsonl.split(text) == [
        '{"t": "a\u2028b\u2029c\x85d"}',
        "",
        " \t\r",
        '{"t": 2}\r',
        '{"t": 3}',
    ]
    assert [json.loads(line) for line in jsonl.records(text)] == [
        {"t": "a\u2028b\u2029c\x85d"},
        {"t": 2},
        {"t": 3},
    ]
    assert list(jsonl.numbered(text)) == [
        (1, jsonl.split(text)[0]),
        (4, '{"t": 2}\r'),
        (5, '{"t": 3}'),
    ]
    assert jsonl.split("a\n") == ["a"] and jsonl.split("") == [] and jsonl.split("\n") == [""]


def test_only_json_whitespace_is_blank():
    assert all(jsonl.is_blank(s) for s in ("", " ", "\t", "\r", " \r\n", b"", b" \t\r"))
    # Not JSON whitespace: such a line is a record (and a broken one), not skipped.
    assert not any(jsonl.is_blank(c) for c in OTHER_BREAKS.replace("\r", ""))
    assert not jsonl.is_blank(b"\x0b") and not jsonl.is_blank("\u3000")


texts = st.text(
    alphabet=st.sampled_from('ab \n"\\{}' + OTHER_BREAKS) | st.characters(codec="utf-8")
)
rows = st.lists(st.dictionaries(st.sampled_from(["t", "u"]), texts, min_size=1), max_size=6)


@given(rows=rows, ascii_only=st.booleans(), cuts=st.lists(st.integers(0, 400), max_size=5))
def test_records_round_trip_whatever_their_text_and_the_chunking(rows, ascii_only, cuts):
    text = "".join(json.dumps(row, ensure_ascii=ascii_only) + "\n" for row in rows)
    assert [json.loads(line) for line in jsonl.records(text)] == rows
    data = text.encode()
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    assert [json.loads(line) for line in jsonl.byte_records(chunks)] == rows
    # The last record may lack its "\n".
    assert [json.loads(line) for line in jsonl.byte_records([data.rstrip(b"\n")])] == rows


@given(text=texts, cuts=st.lists(st.integers(0, 200), max_size=6))
def test_the_line_counter_counts_what_records_finds_whatever_the_chunking(text, cuts):
    data = text.encode()
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    counter = jsonl.LineCounter()
    counts = [counter.feed(data[a:b]) for a, b in itertools.pairwise(bounds)]
    assert counts == sorted(counts)  # a running count: each feed returns it
    assert counter.finish() == len(jsonl.records(text)) == counter.count
    assert counter.finish() == counter.count  # finishing twice counts the last line once


def test_the_line_counter_on_the_edges():
    counter = jsonl.LineCounter()
    assert (counter.feed(b"  "), counter.feed(b"\t\n"), counter.feed(b"{")) == (0, 0, 0)
    assert (counter.feed(b"}\n"), counter.feed(b"\n"), counter.feed(b"x")) == (1, 1, 1)
    assert counter.finish() == 2
    assert jsonl.LineCounter().finish() == 0
    assert list(jsonl.numbered_byte_records([b"a\n\n", b" \nb", b"c\r"])) == [
        (1, b"a"),
        (4, b"bc\r"),
    ]
