"""`vbg keys` against the running gateway: create shows the key once, list, revoke."""

import json

import pytest
import requests

from tests.e2e.helpers import vbg

pytestmark = pytest.mark.e2e


def keys(stack, *args):
    target = ["--gateway", stack["gateway_url"], "--master-key", stack["master_key"], "--json"]
    return vbg("keys", *args, *target)


def test_create_list_revoke(stack):
    created = keys(
        stack,
        "create",
        "--alias",
        "cli-user",
        "--team",
        "cli",
        "--model",
        "gemini-3.5-flash-lite",
        "--input-prefix",
        f"gs://{stack['bucket']}/cli/",
        "--label",
        "owner=cli",
    )
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["key"].startswith("vbg-") and key["models"] == ["gemini-3.5-flash-lite"]
    assert key["labels"] == {"owner": "cli"}

    jobs = f"{stack['gateway_url']}/v1/projects/p/locations/l/batchPredictionJobs"
    assert requests.get(jobs, headers={"x-goog-api-key": key["key"]}).status_code == 200

    listed = json.loads(keys(stack, "list").stdout)
    assert key["id"] in {k["id"] for k in listed}
    assert all("key" not in k for k in listed)

    revoked = keys(stack, "revoke", key["id"])
    assert revoked.returncode == 0, revoked.stderr
    assert requests.get(jobs, headers={"x-goog-api-key": key["key"]}).status_code == 401
    assert key["id"] not in {k["id"] for k in json.loads(keys(stack, "list").stdout)}


def test_errors_are_one_line_not_a_traceback(stack):
    result = keys(stack, "create", "--alias", "x", "--model", "no-such-model")
    assert result.returncode == 2
    assert "Unknown model(s) no-such-model" in result.stderr
    assert "Traceback" not in result.stderr
