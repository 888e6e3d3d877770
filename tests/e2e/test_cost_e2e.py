"""A job created through the gateway on the simulator is costed exactly as `vbg cost` prices
its predictions file: the whole path (create, sync, GCS finalize bridge, on_output_finalized,
ledger, cost route) on the local stack."""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e

VBG_SCRIPT = Path(sys.executable).with_name("vbg")
VBG = [str(VBG_SCRIPT)] if VBG_SCRIPT.exists() else [sys.executable, "-m", "shared.cli"]
JOBS = "/v1/projects/my-project/locations/us-central1/batchPredictionJobs"


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_job_cost_equals_vbg_cost_of_its_predictions(stack_env):
    from shared import clients

    stack = stack_env
    base = f"{stack['bucket']}/cost-{uuid.uuid4().hex[:8]}"
    master = {"Authorization": f"Bearer {stack['master_key']}"}
    response = requests.post(
        f"{stack['gateway_url']}/v1/gateway/keys",
        json={
            "alias": "coster",
            "team": "e2e",
            "inputPrefixes": [f"gs://{base}/in/"],
            "outputPrefixes": [f"gs://{base}/out/"],
        },
        headers=master,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    key = {"Authorization": f"Bearer {response.json()['key']}"}

    bucket_name, _, folder = base.partition("/")
    lines = [
        {"request": {"contents": [{"role": "user", "parts": [{"text": f"Count to {i}. " * i}]}]}}
        for i in range(1, 9)
    ]
    clients.storage().bucket(bucket_name).blob(f"{folder}/in/input.jsonl").upload_from_string(
        "".join(json.dumps(line) + "\n" for line in lines) + "not json\n"
    )
    body = {
        "displayName": "costed",
        "model": "gemini-2.5-pro",
        "inputConfig": {
            "instancesFormat": "jsonl",
            "gcsSource": {"uris": [f"gs://{base}/in/input.jsonl"]},
        },
        "outputConfig": {
            "predictionsFormat": "jsonl",
            "gcsDestination": {"outputUriPrefix": f"gs://{base}/out/"},
        },
        "labels": {"project": "e2e-cost"},
    }
    created = requests.post(f"{stack['gateway_url']}{JOBS}", json=body, headers=key, timeout=30)
    assert created.status_code == 200, created.text
    job_id = created.json()["name"].rsplit("/", 1)[-1]

    def final_cost():
        reply = requests.get(
            f"{stack['gateway_url']}/v1/gateway/jobs/{job_id}/cost", headers=key, timeout=10
        )
        assert reply.status_code == 200, reply.text
        cost = reply.json()
        return cost if cost["costFinal"] and cost["files"] else None

    cost = wait_for(final_cost, 60, f"job {job_id} to have a final cost")
    [record] = cost["files"]
    assert record["uri"].startswith(f"gs://{base}/out/prediction-model-")
    assert record["uri"].endswith("/predictions.jsonl")

    offline = subprocess.run(
        [*VBG, "cost", record["uri"], "--json"],
        env={**os.environ, "STORAGE_EMULATOR_HOST": stack["storage_url"]},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    vbg = json.loads(offline.stdout)
    assert vbg["model"] == "gemini-2.5-pro"
    assert cost["costUsd"] == vbg["cost_usd"]
    assert cost["costUsd"] != "0.000000000"
    totals = cost["totals"]
    for field, name in (
        ("rows", "rows"),
        ("succeeded", "succeeded"),
        ("failed", "failed"),
        ("malformed", "malformed"),
        ("promptTokens", "prompt_tokens"),
        ("cachedTokens", "cached_tokens"),
        ("candidatesTokens", "candidates_tokens"),
        ("thoughtsTokens", "thoughts_tokens"),
        ("embeddingTokens", "embedding_tokens"),
    ):
        assert totals[field] == vbg[name], field
    assert totals["failed"] == 1

    spend = requests.get(
        f"{stack['gateway_url']}/v1/gateway/spend",
        params={"groupBy": "label:project", "start": "2000-01-01"},
        headers=key,
        timeout=10,
    )
    assert spend.status_code == 400  # more than 366 days
    spend = requests.get(
        f"{stack['gateway_url']}/v1/gateway/spend",
        params={"groupBy": "label:project"},
        headers=key,
        timeout=10,
    )
    assert spend.status_code == 200, spend.text
    groups = {g["value"]: g["costUsd"] for g in spend.json()["groups"]}
    assert groups == {"e2e-cost": vbg["cost_usd"]}
