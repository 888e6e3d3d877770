"""Property tests (hypothesis) of the usage parser: it never raises on any line, and a file's
totals are the sum over its rows."""

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.cost import usage
from shared.cost.usage import COUNTER_FIELDS
from tests.strategies import client_text

COUNTS = st.one_of(
    st.integers(min_value=0, max_value=2_000_000),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.none(),
    st.booleans(),
)
USAGE_KEYS = st.sampled_from(
    [
        "promptTokenCount",
        "candidatesTokenCount",
        "thoughtsTokenCount",
        "cachedContentTokenCount",
        "toolUsePromptTokenCount",
        "totalTokenCount",
    ]
)


@st.composite
def gemini_row(draw) -> bytes:
    row = {
        "request": {
            "contents": [{"role": "user", "parts": [{"text": draw(client_text(max_size=20))}]}]
        },
        "response": {
            "candidates": [{"content": {"parts": [{"text": "ok"}]}}],
            "usageMetadata": draw(st.dictionaries(USAGE_KEYS, COUNTS, max_size=6)),
            "modelVersion": draw(st.sampled_from(["gemini-2.5-flash", "gemini-2.5-pro", "x"])),
        },
        "status": draw(st.sampled_from(["", "", "", "boom"])),
    }
    if draw(st.booleans()):
        row = {draw(st.sampled_from(["response", "status", "x"])): row}
    return json.dumps(row).encode()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
LINES = st.one_of(
    gemini_row(),
    st.binary(max_size=200).map(lambda b: b.replace(b"\n", b" ")),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.just(b'{"response": {"usageMetadata": {"promptTokenCount": 99999999999999999999999}}}'),
    st.just(b"[" * 3000),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(LINES, max_size=12), model=st.sampled_from(["gemini-2.5-flash", None]))
def test_parser_never_raises_and_totals_are_the_sum_over_rows(lines, model):
    whole = usage.parse_predictions([b"\n".join(lines) + b"\n"], model=model)
    rows = [usage.parse_predictions([line + b"\n"], model=model) for line in lines]
    for name in COUNTER_FIELDS:
        total = sum(getattr(r, name) for r in rows)
        if name == "cost_nanos":
            # A file's common rows are priced in sub-nano units and rounded once; each row
            # alone is rounded on its own: at most half a nano each way per row.
            assert abs(getattr(whole, name) - total) <= len(lines), name
        else:
            assert getattr(whole, name) == total, name
        assert getattr(whole, name) >= 0, name
