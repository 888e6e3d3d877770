"""Issue #10 finding 1: a finished job's cost cannot be erased by rewriting its outputs.

On real parts: the simulator writes the job's predictions, the sync makes the cost final;
then the owner (whose key has write access to the output folder) uploads a new generation
of `predictions.jsonl` with one zero-usage row and `on_output_finalized` gets the event.
"""

import json

import pytest

from shared.core import clients
from shared.jobs import records
from tests.cost.cost_helpers import upload
from tests.jobs.lifecycle_support import make_world
from tests.jobs.test_finalize import deliver
from tests.support import DIRECT_MODEL_LIST, auth, cloudevent_client, create_key

ZERO_ROW = {
    "request": {"contents": [{"role": "user", "parts": [{"text": "x"}]}]},
    "response": {
        "candidates": [{"content": {"parts": [{"text": ""}]}}],
        "usageMetadata": {"promptTokenCount": 0, "candidatesTokenCount": 0, "totalTokenCount": 0},
    },
    "status": "",
}


@pytest.fixture
def world(gcp, monkeypatch, tmp_path):
    made = make_world(gcp, monkeypatch, tmp_path, speed=0.1, model_list=DIRECT_MODEL_LIST)
    yield made
    made.sim.stop()


def test_rewriting_a_final_jobs_output_changes_nothing_and_alerts_tamper_once(world):
    bucket = world.gcp["bucket"]
    key = create_key(
        world.gateway,
        alias="mallory",
        inputPrefixes=[f"gs://{bucket}/in/"],
        outputPrefixes=[f"gs://{bucket}/out/"],
        budgetUsd="1",
        budgetPeriod="day",
    )
    job_id = world.create(key=key)
    record = world.drive(job_id)
    spent = int(record["cost"]["cost_nanos"])
    assert spent > 0
    # The admin lowers the budget below what was spent: the key is over it.
    world.gateway.patch(
        f"/v1/gateway/keys/{_key_id(world, 'mallory')}",
        json={"budgetUsd": "0.000001"},
        headers=auth("vbg-master-test-key"),
    )
    budget_before = world.gateway.get("/v1/gateway/budget", headers=auth(key)).get_json()
    assert budget_before["budgets"][0]["spentUsd"] != "0.000000000"
    [blob] = [
        b
        for b in clients.storage().list_blobs(bucket, prefix="out/")
        if b.name.endswith("predictions.jsonl")
    ]
    old_generation = int(blob.generation)
    world.alerts()  # drain the terminal alert

    new_generation = upload(bucket, blob.name, (json.dumps(ZERO_ROW) + "\n").encode())
    finalized = cloudevent_client("on_output_finalized")
    for _ in range(2):  # at-least-once delivery: the second changes nothing, alerts nothing
        assert deliver(finalized, bucket, blob.name, new_generation).status_code == 200

    after = records.get(job_id)
    assert int(after["cost"]["cost_nanos"]) == spent
    budget_after = world.gateway.get("/v1/gateway/budget", headers=auth(key)).get_json()
    assert budget_after["budgets"][0]["spentUsd"] == budget_before["budgets"][0]["spentUsd"]
    refused = world.gateway.post(
        "/v1/projects/p/locations/us-central1/batchPredictionJobs",
        json=world_body(world),
        headers=auth(key),
    )
    assert refused.status_code == 429, refused.get_data(as_text=True)

    alerts = world.alerts()
    assert [a["kind"] for a, _ in alerts] == ["tamper"]
    attributes, body = alerts[0]
    assert attributes == {
        "kind": "tamper",
        "state": "JOB_STATE_SUCCEEDED",
        "severity": "ERROR",
        "job_id": job_id,
        "alert_id": body["alert_id"],
    }
    assert body["alert_id"].startswith(f"{job_id}:tamper:gs:__{bucket}_out_prediction-model-")
    tamper = body["tamper"]
    assert tamper["uri"] == f"gs://{bucket}/{blob.name}"
    assert (tamper["previous_generation"], tamper["generation"]) == (
        old_generation,
        new_generation,
    )
    assert tamper["difference_nanos"] == -spent
    assert tamper["job_cost_final"] is True
    assert body["job_id"] == job_id and "rewritten" in body["text"]


def _key_id(world, alias: str) -> str:
    keys = world.gateway.get("/v1/gateway/keys", headers=auth("vbg-master-test-key")).get_json()
    return next(k["id"] for k in keys["keys"] if k["alias"] == alias)


def world_body(world) -> dict:
    from tests.support import gemini_request, job_body, upload_jsonl

    uri = upload_jsonl(world.gcp["bucket"], "in/again.jsonl", [gemini_request("again")])
    return job_body(world.gcp["bucket"], input_uri=uri)
