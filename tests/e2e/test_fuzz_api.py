"""Schemathesis against the running stack's gateway, from the gateway's own OpenAPI document.

For every operation of `GET /v1/gateway/openapi.json`, positive and negative examples
(bounded: `VBG_FUZZ_EXAMPLES` per operation and mode, 10 by default; derandomized, so a
failure reproduces), sent once with a valid key and once with the master key. Fails on any
5xx, and on any error that is not in the error shape the route declares (`x-vbg-errors`:
the Google envelope unless a door declares its own). The figures (examples sent, seconds)
are printed.
"""

import json
import os
import time

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
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


def problem(response, errors: str) -> str | None:
    if response.status_code >= 500:
        return f"server error {response.status_code}: {response.text[:300]}"
    if response.status_code >= 400:
        return SHAPE_CHECKS[errors](response)
    return None


def fuzz_operation(operation, mode, *, gateway: str, token: str, session) -> tuple[int, list]:
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
    @given(case=operation.as_strategy(generation_mode=mode))
    def send(case):
        nonlocal sent
        sent += 1
        response = case.call(
            base_url=gateway,
            session=session,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        found = problem(response, errors)
        if found and len(failures) < 5:
            failures.append(
                f"{operation.label} ({mode.value}): {found}\n  {case.as_curl_command()}"
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
    started = time.monotonic()
    for result in schema.get_all_operations():
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            count, found = fuzz_operation(
                result.ok(), mode, gateway=gateway, token=token, session=session
            )
            sent += count
            failures += found
    seconds = time.monotonic() - started
    figures = {"caller": caller, "operations": operations, "examples_sent": sent}
    print(json.dumps({"fuzz": figures, "seconds": round(seconds, 1)}))
    assert sent >= operations * 2
    assert not failures, "\n".join(failures)
