"""Schemathesis against the running stack's gateway, from the gateway's own OpenAPI document.

For every operation of `GET /v1/gateway/openapi.json`, positive and negative examples
(bounded: `VBG_FUZZ_EXAMPLES` per operation and mode, 10 by default; derandomized, so a
failure reproduces), sent once with a valid key and once with the master key. Fails on any
5xx, and on any error that is not in the error shape the route declares (`x-vbg-errors`:
the Google envelope unless a door declares its own). The figures (examples sent, seconds)
are printed.

Each generated case is sent one of three ways, drawn with the case (so the run sends as many
requests as before, issue #22): as generated; with a lone surrogate, which JSON's grammar
allows (`"\\ud800"`) but no generator makes, added to one string of its JSON body (a form
field gets its CESU-8 bytes, a body-less call a query parameter holding them); or with its body
sent in chunks (`Transfer-Encoding: chunked`, no Content-Length).
"""

import copy
import json
import os
import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.e2e.helpers import make_key

EXAMPLES = int(os.environ.get("VBG_FUZZ_EXAMPLES", "10"))


def google_envelope_problem(response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return f"not JSON: {response.text[:200]!r}"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or set(body) != {"error"}:
        return f"not the Google envelope: {response.text[:200]}"
    if error.get("code") != response.status_code:
        return f"envelope code {error.get('code')} != HTTP {response.status_code}"
    if not isinstance(error.get("message"), str) or not isinstance(error.get("status"), str):
        return f"envelope without message/status: {response.text[:200]}"
    return None


def openai_error_problem(response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return f"not JSON: {response.text[:200]!r}"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return f"not OpenAI's error shape: {response.text[:200]}"
    if not isinstance(error.get("type"), str):
        return f"OpenAI error without a type: {response.text[:200]}"
    return None


SHAPE_CHECKS = {"google": google_envelope_problem, "openai": openai_error_problem}
TWISTS = ("as generated", "lone surrogate", "chunked")
LONE = "\ud800"


def with_lone_surrogate(value, pick: int):
    """A copy of a JSON value with a lone surrogate added to its `pick`-th string (modulo),
    or, holding no string, as a new member of an object."""
    value = copy.deepcopy(value)
    slots, stack = [], [value]
    while stack:
        item = stack.pop()
        pairs = (
            item.items()
            if isinstance(item, dict)
            else enumerate(item)
            if isinstance(item, list)
            else ()
        )
        for key, child in pairs:
            if isinstance(child, str):
                slots.append((item, key))
            else:
                stack.append(child)
    if slots:
        container, key = slots[pick % len(slots)]
        container[key] += LONE
    elif isinstance(value, dict):
        value[LONE] = LONE
    elif isinstance(value, str):
        value += LONE
    return value


def twisted(kwargs: dict, twist: str, pick: int) -> dict:
    """The request arguments of a case, with the twist applied before it is prepared."""
    if twist != "lone surrogate":
        return kwargs
    if kwargs.get("json") is not None:
        return {**kwargs, "json": with_lone_surrogate(kwargs["json"], pick)}
    cesu = LONE.encode("utf-8", "surrogatepass")
    if isinstance(kwargs.get("data"), dict) and kwargs["data"]:
        name = sorted(kwargs["data"])[pick % len(kwargs["data"])]
        return {**kwargs, "data": {**kwargs["data"], name: cesu}}
    return {**kwargs, "params": {**(kwargs.get("params") or {}), "q": cesu}}


def chunked(prepared, pick: int):
    """The prepared request with its body sent in two chunks and no Content-Length."""
    body = prepared.body
    if body is None:
        return prepared
    body = body.encode() if isinstance(body, str) else body
    cut = pick % (len(body) + 1)
    prepared.body = iter([body[:cut], body[cut:]])
    prepared.headers.pop("Content-Length", None)
    prepared.headers["Transfer-Encoding"] = "chunked"
    return prepared


def problem(response, errors: str) -> str | None:
    if response.status_code >= 500:
        return f"server error {response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        return SHAPE_CHECKS[errors](response)
    return None


def fuzz_operation(
    operation, mode, *, gateway: str, token: str, session, twists: dict
) -> tuple[int, list]:
    """Send up to EXAMPLES generated cases of one operation; (cases sent, problems found)."""
    errors = operation.definition.raw.get("x-vbg-errors", "google")
    sent, failures = 0, []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=operation.as_strategy(generation_mode=mode),
        twist=st.sampled_from(TWISTS),
        pick=st.integers(min_value=0, max_value=1 << 16),
    )
    def send(case, twist, pick):
        nonlocal sent
        sent += 1
        twists[twist] += 1
        # One connection per request: gunicorn closes a keep-alive connection idle for 2 s,
        # and reusing one it is closing fails as a dropped connection, not a server error.
        kwargs = case.as_transport_kwargs(
            base_url=gateway, headers={"Authorization": f"Bearer {token}", "Connection": "close"}
        )
        prepared = session.prepare_request(requests.Request(**twisted(kwargs, twist, pick)))
        if twist == "chunked":
            prepared = chunked(prepared, pick)
        response = session.send(prepared, timeout=60)
        found = problem(response, errors)
        if found and len(failures) < 5:
            failures.append(
                f"{operation.label} ({mode.value}, {twist}, pick {pick}): {found}\n  "
                f"{case.as_curl_command()}"
            )

    try:
        send()
    except Unsatisfiable:
        # Negative mode of an operation with nothing to get wrong (no parameter, no body).
        assert mode == GenerationMode.NEGATIVE, operation.label
    return sent, failures


@pytest.fixture(scope="module")
def fuzz_key(stack):
    return make_key(stack, "fuzzer", folder="fuzz", budgetUsd="1", budgetPeriod="day")


@pytest.mark.parametrize("caller", ["key", "master"])
def test_fuzzing_finds_no_server_error_and_no_foreign_error_shape(stack, fuzz_key, caller):
    gateway = stack["gateway_url"]
    schema = schemathesis.openapi.from_url(f"{gateway}/v1/gateway/openapi.json")
    token = fuzz_key if caller == "key" else stack["master_key"]
    session = requests.Session()
    failures: list[str] = []
    sent = operations = 0
    twists = dict.fromkeys(TWISTS, 0)
    started = time.monotonic()
    for result in schema.get_all_operations():
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            count, found = fuzz_operation(
                result.ok(), mode, gateway=gateway, token=token, session=session, twists=twists
            )
            sent += count
            failures += found
    seconds = time.monotonic() - started
    figures = {"caller": caller, "operations": operations, "examples_sent": sent, **twists}
    print(json.dumps({"fuzz": figures, "seconds": round(seconds, 1)}))
    assert sent >= operations * 2
    assert min(twists.values()) > sent // 6, twists  # each way is sent, about a third each
    assert not failures, "\n".join(failures)


def test_the_twists_do_what_they_say():
    body = {"a": ["x", {"b": "y"}], "n": 1}
    assert with_lone_surrogate(body, 0) != body and body["a"][0] == "x"  # a copy
    assert {json.dumps(with_lone_surrogate(body, pick)) for pick in range(2)} == {
        '{"a": ["x\\ud800", {"b": "y"}], "n": 1}',
        '{"a": ["x", {"b": "y\\ud800"}], "n": 1}',
    }
    assert with_lone_surrogate({"n": 1}, 5) == {"n": 1, LONE: LONE}
    form = twisted({"data": {"purpose": "batch"}, "files": []}, "lone surrogate", 3)
    assert form["data"] == {"purpose": b"\xed\xa0\x80"}
    assert twisted({"params": {}}, "lone surrogate", 0)["params"] == {"q": b"\xed\xa0\x80"}
    prepared = requests.Request("POST", "http://h/x", json={"k": "v"}).prepare()
    prepared = chunked(prepared, 3)
    assert "Content-Length" not in prepared.headers
    assert prepared.headers["Transfer-Encoding"] == "chunked"
    assert list(prepared.body) == [b'{"k', b'": "v"}']
