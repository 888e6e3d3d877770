"""Issue #22 item 2, "pure API, no storage access": a key holder who only ever talks to the
gateway must not be able to bring a job's books to $0.

The finding, reproduced on real parts: two jobs share one output prefix; each is deleted
through the gateway the moment Vertex says it succeeded. On the code before this issue,
their output folders were never recorded (Vertex forgot the jobs before any sync read
them), every finalize event stayed ambiguous (two candidate jobs) until dropped, and both
jobs ended final at $0 for the rows they ran. Now the delete reads and records the job
first, so each file finds its job and each job is costed exactly.
"""

import pytest

from shared.core import clients
from shared.jobs import records
from tests.cost.reference import expected_cost
from tests.jobs.lifecycle_support import JOBS_PATH, make_world
from tests.jobs.test_finalize import deliver
from tests.support import DIRECT_MODEL_LIST, auth, cloudevent_client


@pytest.fixture
def world(gcp, monkeypatch, tmp_path):
    made = make_world(gcp, monkeypatch, tmp_path, speed=0.1, model_list=DIRECT_MODEL_LIST)
    yield made
    made.sim.stop()


def _predictions(bucket: str) -> dict[str, bytes]:
    """Final predictions files under out/, by their output directory."""
    return {
        blob.name.rsplit("/", 1)[0]: blob.download_as_bytes()
        for blob in clients.storage().list_blobs(bucket, prefix="out/")
        if blob.name.endswith("/predictions.jsonl")
    }


def test_jobs_deleted_the_moment_they_succeed_are_still_costed_exactly(world):
    bucket = world.gcp["bucket"]
    finalized = cloudevent_client("on_output_finalized")
    first, second = world.create(rows=3), world.create(rows=5)
    for job_id in (first, second):
        world.wait_sim(job_id, "JOB_STATE_SUCCEEDED")
        deleted = world.gateway.delete(f"{JOBS_PATH}/{job_id}", headers=auth(world.key))
        assert deleted.status_code == 200, deleted.get_data(as_text=True)

    # Eventarc delivers each file (twice: at least once); then the sync ticks run.
    for _ in range(2):
        for blob in clients.storage().list_blobs(bucket, prefix="out/"):
            deliver(finalized, bucket, blob.name, blob.generation)
    files = _predictions(bucket)
    assert len(files) == 2
    for job_id, rows in ((first, 3), (second, 5)):
        record = world.drive(job_id)
        directory = record["output_directory"].removeprefix(f"gs://{bucket}/")
        want = expected_cost(files[directory], "gemini-3.5-flash-lite", location="us-central1")
        assert want.succeeded == rows and want.cost_nanos > 0
        assert record["cost"]["cost_nanos"] == want.cost_nanos
        assert record["cost"]["succeeded"] == rows
        assert record["deleted"] is True and record["state"] == "JOB_STATE_SUCCEEDED"
        assert record["completion_stats"]["successfulCount"] in (rows, str(rows))


def test_the_delete_records_the_job_before_vertex_forgets_it(world):
    job_id = world.create(rows=2)
    world.wait_sim(job_id, "JOB_STATE_SUCCEEDED")
    assert records.get(job_id)["output_directory"] is None  # no sync has run
    deleted = world.gateway.delete(f"{JOBS_PATH}/{job_id}", headers=auth(world.key))
    assert deleted.status_code == 200
    record = records.get(job_id)
    assert record["state"] == "JOB_STATE_SUCCEEDED" and record["terminal"] is True
    assert record["output_directory"].startswith(f"gs://{world.gcp['bucket']}/out/prediction-")
    assert records.jobs_for_folder(record["output_directory"]) == [job_id]


def test_a_get_records_the_output_folder_when_it_is_new(world):
    job_id = world.create(rows=2)
    world.wait_sim(job_id, "JOB_STATE_SUCCEEDED")
    assert records.get(job_id)["output_directory"] is None
    got = world.gateway.get(f"{JOBS_PATH}/{job_id}", headers=auth(world.key)).get_json()
    record = records.get(job_id)
    assert record["output_directory"] == got["outputInfo"]["gcsOutputDirectory"]
    assert record["state"] == got["state"] == "JOB_STATE_SUCCEEDED"
    assert records.jobs_for_folder(record["output_directory"]) == [job_id]
    updated = record["updated"]
    world.gateway.get(f"{JOBS_PATH}/{job_id}", headers=auth(world.key))
    assert records.get(job_id)["updated"] == updated  # nothing new: nothing written


def test_a_list_records_the_output_folder_when_it_is_new(world):
    job_id = world.create(rows=2)
    world.wait_sim(job_id, "JOB_STATE_SUCCEEDED")
    listed = world.gateway.get(JOBS_PATH, headers=auth(world.key)).get_json()
    [job] = listed["batchPredictionJobs"]
    assert records.get(job_id)["output_directory"] == job["outputInfo"]["gcsOutputDirectory"]
    masked = world.gateway.get(f"{JOBS_PATH}?readMask=displayName", headers=auth(world.key))
    assert masked.status_code == 200
    assert records.get(job_id)["state"] == "JOB_STATE_SUCCEEDED"  # a mask changes nothing


def test_a_job_whose_output_folder_was_never_learnt_is_never_final(world):
    """Deleted on Vertex behind the gateway's back before any read: closed, alerted, not
    final (its cost cannot be read from files nobody knows)."""
    job_id = world.create(rows=2)
    world.wait_sim(job_id, "JOB_STATE_SUCCEEDED")
    world.sim.sim.jobs.pop(records.get(job_id)["name"])
    for _ in range(4):
        world.tick()
    record = records.get(job_id)
    assert record["upstream_missing"] is True and record["terminal"] is True
    assert record["cost_final"] is False
    kinds = sorted(a["kind"] for a, _ in world.alerts())
    assert kinds == ["reconcile", "terminal"]


@pytest.fixture
def sealed_world(gcp, monkeypatch, tmp_path):
    made = make_world(gcp, monkeypatch, tmp_path, speed=0.1)
    yield made
    made.sim.stop()


def test_sealed_jobs_deleted_the_moment_they_succeed_are_costed_from_their_own_folders(
    sealed_world,
):
    """The same finding with sealed outputs (the default): each job's folder is known from
    its create, so even with no event at all each job is costed exactly, and its files are
    in the client's shared folder."""
    world = sealed_world
    first, second = world.create(rows=3), world.create(rows=5)
    for job_id in (first, second):
        world.wait_sim(job_id, "JOB_STATE_SUCCEEDED")
        deleted = world.gateway.delete(f"{JOBS_PATH}/{job_id}", headers=auth(world.key))
        assert deleted.status_code == 200, deleted.get_data(as_text=True)
    for job_id, rows in ((first, 3), (second, 5)):
        record = world.drive(job_id)
        staging, _, path = record["output_directory"].removeprefix("gs://").partition("/")
        data = clients.storage().bucket(staging).blob(f"{path}/predictions.jsonl")
        want = expected_cost(
            data.download_as_bytes(), "gemini-3.5-flash-lite", location="us-central1"
        )
        assert want.succeeded == rows and record["cost"]["cost_nanos"] == want.cost_nanos
        assert record["outputs_delivered"] is True
    assert len(_predictions(world.gcp["bucket"])) == 2
