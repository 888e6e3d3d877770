"""JSON text parsed into values the gateway may store and send on (issue #22 item 14)."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core import json_text, jsonl
from shared.jobs import rows
from shared.openai import results as openai_results

text = st.text(st.characters(codec="utf-8"), max_size=8)
values = st.recursive(
    st.none() | st.booleans() | st.integers() | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)


@given(value=values, ascii_only=st.booleans())
def test_text_without_lone_surrogates_round_trips(value, ascii_only):
    assert json_text.loads(json.dumps(value, ensure_ascii=ascii_only)) == value


@given(value=values, surrogate=st.integers(0xD800, 0xDFFF), data=st.data())
def test_a_lone_surrogate_anywhere_is_refused_and_located(value, surrogate, data):
    where = data.draw(st.sampled_from(["in a value", "in a key"]))
    bad = f"x{chr(surrogate)}"
    wrapped = {"v": value, "bad": [bad]} if where == "in a value" else {"v": value, bad: 1}
    with pytest.raises(json_text.LoneSurrogate) as raised:
        json_text.loads(json.dumps(wrapped))
    assert raised.value.where == ("bad[0]" if where == "in a value" else "an object key")
    assert json_text.loads(json.dumps(wrapped), surrogates=True) == wrapped


def test_pairs_are_characters_and_deep_nesting_is_a_value_error():
    assert json_text.loads('"\\ud83d\\ude00"') == "\U0001f600"
    with pytest.raises(json_text.LoneSurrogate, match=r"^a\.b\[1\] holds a lone"):
        json_text.loads('{"a": {"b": ["ok", "\\udfff"]}}')
    with pytest.raises(json_text.TooDeep):
        json_text.loads("[" * 100_000)
    assert issubclass(json_text.TooDeep, ValueError)


def test_lines_written_keep_escapes_where_utf8_has_none():
    assert jsonl.dumps({"t": "é"}) == '{"t":"é"}\n'.encode()
    assert jsonl.dumps({"t": "é\ud800"}) == b'{"t":"\\u00e9\\ud800"}\n'
    assert json.loads(jsonl.dumps({"t": "é\ud800"})) == {"t": "é\ud800"}


def test_rows_matched_on_fingerprints_take_lone_surrogates_and_deep_nesting():
    """An output row a key holder wrote (unsealed outputs) is matched, never a crash."""
    line = '{"request": {"t": "\\ud800"}}'
    assert rows.line_key(line) == rows.request_key({"t": "\ud800"})
    assert rows.line_key("[" * 100_000) == rows.request_key("[" * 100_000)
    assert openai_results.fingerprint({"t": "\ud800"}) != openai_results.fingerprint({"t": "x"})
