"""Property test (hypothesis), on the emulators: `on_job_event` given any bytes and any
attributes acknowledges the message or raises an error a retry could fix; it never loops."""

import base64
import json
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.core.transient import is_transient
from shared.jobs import lifecycle
from tests.strategies import client_text

TYPES = st.sampled_from(["sync", "job.created", "job.cancel_requested", "x", "", "SYNC"])
JOB_IDS = st.one_of(
    client_text(max_size=30),
    st.from_regex(r"[0-9]{1,25}", fullmatch=True),
    st.sampled_from(["__x__", "..", "a/b", "1" * 41]),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | client_text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(client_text(max_size=8), children, max_size=4)
    ),
    max_leaves=15,
)


@st.composite
def payloads(draw):
    kind = draw(st.sampled_from(["body", "bytes", "deep", "text"]))
    if kind == "body":
        body = draw(
            st.fixed_dictionaries(
                {}, optional={"type": TYPES | JSON_VALUES, "job_id": JOB_IDS | JSON_VALUES}
            )
        )
        raw = json.dumps(body).encode()
    elif kind == "deep":
        depth = draw(st.integers(min_value=500, max_value=20_000))
        raw = b'{"a":' * depth + b"1" + b"}" * depth
    elif kind == "text":
        return draw(client_text(max_size=50))
    else:
        raw = draw(st.binary(max_size=100))
    return base64.b64encode(raw).decode() if draw(st.booleans()) else raw


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=payloads(),
    attributes=st.dictionaries(st.sampled_from(["type", "job_id", "x"]), TYPES | JOB_IDS),
    attempt=st.none() | st.integers(min_value=0, max_value=20),
)
def test_any_message_is_acknowledged_or_a_transient_error(gcp, data, attributes, attempt):
    started = time.monotonic()
    try:
        outcome = lifecycle.handle_message(
            message_id="m", data=data, attributes=attributes, delivery_attempt=attempt
        )
    except Exception as exc:
        assert is_transient(exc), repr(exc)
    else:
        assert isinstance(outcome, str)
    assert time.monotonic() - started < 30
