"""`make smoke` against the local stack: the same script a user runs after `terraform apply`."""

import json
import subprocess
import sys
from decimal import Decimal

import pytest
import requests

from local import smoke
from tests.e2e.helpers import vbg
from tests.support import emulator_storage

pytestmark = pytest.mark.e2e

STEPS = ["health", "key", "input", "model", "job", "alert", "cost", "revoke"]


def run_smoke(*args, timeout=180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "local.smoke", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=smoke.REPO_ROOT,
    )


def key_aliases(stack) -> set[str]:
    response = requests.get(
        f"{stack['gateway_url']}/v1/gateway/keys?showRevoked=true",
        headers={"Authorization": f"Bearer {stack['master_key']}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return {k["alias"] for k in response.json()["keys"]}


def test_smoke_passes_against_the_local_stack(local_stack, stack, tmp_path):
    stack_file = tmp_path / "stack.json"
    stack_file.write_text(json.dumps(stack))
    report_file = tmp_path / "report.json"
    done = run_smoke("--yes", "--stack", str(stack_file), "--report", str(report_file))
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(report_file.read_text())
    assert report["passed"] is True
    assert [s["name"] for s in report["steps"]] == STEPS
    assert all(s["ok"] for s in report["steps"])
    for step in report["steps"]:
        assert f"{step['name']:<8}" in done.stdout and "¢" in done.stdout

    # The cheapest Gemini model of the stack's list (shared/prices.json: $0.10 / $0.40 per 1M
    # input / output tokens online, half in batch; it does not think by default).
    assert report["model"] == "gemini-3.1-flash-lite"
    # The cost figure against the test's own pricing of what the job wrote.
    out_prefix = report["folder"].removeprefix(f"gs://{stack['bucket']}/") + "out/"
    client = emulator_storage(stack["storage_url"], stack["project"])
    outputs = [
        b.name
        for b in client.list_blobs(stack["bucket"], prefix=out_prefix)
        if b.name.endswith("predictions.jsonl")
    ]
    assert len(outputs) == 1
    result = vbg("cost", "--json", f"gs://{stack['bucket']}/{outputs[0]}", stack=stack, check=True)
    independent = Decimal(json.loads(result.stdout)["cost_usd"])
    assert report["cost_nanos"] == int(independent * 10**9) > 0
    (cost,) = [s for s in report["steps"] if s["name"] == "cost"]
    assert cost["cost_nanos"] == report["cost_nanos"]

    # The temporary key is revoked.
    keys = requests.get(
        f"{stack['gateway_url']}/v1/gateway/keys?showRevoked=true",
        headers={"Authorization": f"Bearer {stack['master_key']}"},
        timeout=30,
    ).json()["keys"]
    (key,) = [k for k in keys if k["alias"] == f"vbg-smoke-{report['run']}"]
    assert key["revokeTime"]


def test_smoke_refuses_without_yes(stack, tmp_path):
    stack_file = tmp_path / "stack.json"
    stack_file.write_text(json.dumps(stack))
    before = key_aliases(stack)
    done = run_smoke("--stack", str(stack_file), timeout=60)
    assert done.returncode == 2
    assert "--yes" in done.stderr and done.stdout == ""
    assert key_aliases(stack) == before


def test_a_job_that_never_ends_is_cancelled_and_the_key_revoked(stack, tmp_path):
    stack_file = tmp_path / "stack.json"
    stack_file.write_text(json.dumps(stack))
    report_file = tmp_path / "report.json"
    done = run_smoke(
        "--yes",
        "--stack",
        str(stack_file),
        "--timeout",
        "3",
        "--label",
        "sim-fault=stuck-queued",
        "--report",
        str(report_file),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads(report_file.read_text())
    outcome = {s["name"]: s["ok"] for s in report["steps"]}
    assert outcome == {
        "health": True,
        "key": True,
        "input": True,
        "model": True,
        "job": True,
        "alert": False,
        "cancel": True,
        "revoke": True,
    }
    assert "smoke FAILED" in done.stdout
    job = requests.get(
        f"{stack['gateway_url']}/v1/projects/p/locations/l/batchPredictionJobs/{report['job_id']}",
        headers={"Authorization": f"Bearer {stack['master_key']}"},
        timeout=30,
    ).json()
    assert job["state"] in ("JOB_STATE_CANCELLING", "JOB_STATE_CANCELLED")
