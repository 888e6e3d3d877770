"""Issue #10 finding 3: a job whose outputs cannot be priced still ends.

A reconciliation that keeps failing raises a `reconcile` alert and never blocks the job's
terminal alert or the release of its budget commitment; a file that cannot be priced at all
still gets its record.
"""

import json

import pytest

from shared.jobs import finalize, records
from tests.cost.cost_helpers import make_job, upload
from tests.jobs.lifecycle_support import make_world
from tests.support import DIRECT_MODEL_LIST, auth, create_key


@pytest.fixture
def world(gcp, monkeypatch, tmp_path):
    made = make_world(gcp, monkeypatch, tmp_path, speed=0.1, model_list=DIRECT_MODEL_LIST)
    yield made
    made.sim.stop()


def committed_usd(world, key) -> str:
    budgets = world.gateway.get("/v1/gateway/budget", headers=auth(key)).get_json()["budgets"]
    return budgets[0]["committedUsd"]


def test_a_reconcile_that_keeps_failing_alerts_and_releases_the_budget(world):
    bucket = world.gcp["bucket"]
    key = create_key(
        world.gateway,
        alias="ana",
        inputPrefixes=[f"gs://{bucket}/in/"],
        outputPrefixes=[f"gs://{bucket}/out/"],
        budgetUsd="5",
        budgetPeriod="day",
    )
    job_id = world.create(key=key)
    assert committed_usd(world, key) != "0.000000000"
    good = records.get(job_id)
    # Vertex ended the job and wrote to a bucket the gateway cannot read (here: gone).
    records.mark(
        job_id,
        state="JOB_STATE_SUCCEEDED",
        terminal=True,
        output_directory="gs://no-such-bucket-for-vbg/out/prediction-model-x/",
    )
    for _ in range(2):
        world.tick()
    assert world.alerts(settle=0.5) == []
    assert records.get(job_id)["reconcile_failures"] == 2

    world.tick()
    sent = {attributes["kind"]: body for attributes, body in world.alerts()}
    assert set(sent) == {"reconcile", "terminal"}
    assert sent["terminal"]["cost"]["final"] is False
    assert "could not be priced 3 times" in sent["reconcile"]["text"]
    assert committed_usd(world, key) == "0.000000000"
    assert records.get(job_id)["cost_final"] is False

    world.tick()
    assert world.alerts(settle=0.5) == []  # once per kind
    world.wait_sim(job_id, "JOB_STATE_SUCCEEDED")
    directory = world.sim.sim.get(good["name"]).pb.output_info.gcs_output_directory
    records.mark(job_id, output_directory=directory)
    world.tick()
    assert records.get(job_id)["cost_final"] is True


def test_a_file_that_cannot_be_priced_still_gets_its_record(gcp):
    """A value Firestore cannot hold (int64) raised on every retry and left the file with no
    record; now the row is malformed (shared/cost/usage.py) or the file is recorded with its
    error: either way it has its record and the job's totals hold no impossible value."""
    bucket = gcp["bucket"]
    make_job(bucket, "301")
    name = "out/prediction-model-2025-03-04T10:01:00.000000Z/predictions.jsonl"
    row = {
        "request": {},
        "response": {"usageMetadata": {"promptTokenCount": 99999999999999999999999999999}},
        "status": "",
    }
    generation = upload(bucket, name, (json.dumps(row) + "\n").encode())
    try:
        finalize.handle_object(bucket=bucket, name=name, generation=generation, size=1)
    except Exception as exc:  # old main: raised on every delivery
        pytest.fail(f"on_output_finalized raised {exc!r}")
    [record] = [s.to_dict() for s in records.job_ref("301").collection("outputs").stream()]
    assert record["generation"] == generation
    assert record.get("error") or record["counters"]["malformed"] == 1
    assert all(0 <= int(v) < 2**63 for v in records.get("301")["cost"].values())
