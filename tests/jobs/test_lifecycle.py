"""on_job_event on real parts: Firestore + Pub/Sub + GCS emulators and the Vertex simulator,
driven through functions-framework with Pub/Sub CloudEvents, as Pub/Sub delivers them."""

import itertools
import threading

import pytest

from shared.core import clients
from shared.jobs import finalize, lifecycle, records
from tests.jobs.lifecycle_support import make_world
from tests.support import auth, reset_process

JOBS_PATH = "/v1/projects/my-project/locations/us-central1/batchPredictionJobs"


@pytest.fixture
def world(gcp, monkeypatch, tmp_path):
    made = make_world(gcp, monkeypatch, tmp_path, speed=0.4)
    yield made
    made.sim.stop()


def outputs(job_id: str) -> list[dict]:
    return [s.to_dict() for s in records.job_ref(job_id).collection("outputs").stream()]


def assert_history_consistent(history: list[dict]) -> None:
    targets = [entry["to"] for entry in history]
    assert len(targets) == len(set(targets)), f"a transition was recorded twice: {targets}"
    for before, after in itertools.pairwise(history):
        assert after["from"] == before["to"], history


def test_pending_running_succeeded_through_ticks_each_recorded_once(world):
    job_id = world.create()
    assert records.get(job_id)["state"] == "JOB_STATE_PENDING"
    record = world.drive(job_id, interval=0.05)

    history = record["state_history"]
    targets = [entry["to"] for entry in history]
    assert targets[0] == "JOB_STATE_PENDING"
    assert "JOB_STATE_RUNNING" in targets
    assert targets[-1] == "JOB_STATE_SUCCEEDED"
    assert_history_consistent(history)
    assert all(entry["update_time"] for entry in history[1:])
    assert record["terminal"] is True
    assert record["completion_stats"]["successfulCount"] == "3"
    # Vertex's folder: the per-job staging folder (sealed outputs); the client's copy of it.
    assert record["output_directory"].startswith(record["output_prefix"] + "prediction-")
    assert records.jobs_for_folder(record["output_directory"]) == [job_id]
    leaf = record["output_directory"].rsplit("/", 1)[1]
    assert record["client_output_directory"] == f"gs://{world.gcp['bucket']}/out/{leaf}/"

    for _ in range(3):
        world.tick()
    again = records.get(job_id)
    assert again["state_history"] == history
    alerts = world.alerts()
    assert [a["kind"] for a, _ in alerts] == ["terminal"]
    assert alerts[0][0]["state"] == "JOB_STATE_SUCCEEDED"


def test_two_concurrent_syncs_record_one_transition(world):
    job_id = world.create(labels={"sim-fault": "stuck-queued"})
    world.wait_sim(job_id, "JOB_STATE_QUEUED")
    barrier = threading.Barrier(4)
    results = []

    def sync():
        barrier.wait()
        try:
            results.append(lifecycle.sync_job(job_id))
        except Exception as exc:  # shown by the assertion below
            results.append(repr(exc))

    threads = [threading.Thread(target=sync) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    record = records.get(job_id)
    assert [(e["from"], e["to"]) for e in record["state_history"]] == [
        (None, "JOB_STATE_PENDING"),
        ("JOB_STATE_PENDING", "JOB_STATE_QUEUED"),
    ]
    assert sorted(results) == ["changed", "unchanged", "unchanged", "unchanged"]


def test_no_finalize_delivery_the_terminal_sync_prices_the_file_once(world):
    job_id = world.create(rows=4)
    record = world.drive(job_id)
    files = outputs(job_id)
    # One row per incremental file (4 rows: 4 quarters) and the final file.
    assert sorted(f["group"] for f in files) == ["final"] + ["incremental"] * 4, files
    assert record["cost_basis"] == "final"
    cost = record["cost"]
    assert cost["cost_nanos"] > 0
    assert cost["rows"] == 4

    # A late finalize delivery, more ticks, a second finish: nothing counted twice.
    directory = record["output_directory"]
    bucket, _, path = directory.removeprefix("gs://").partition("/")
    blob = clients.storage().bucket(bucket).get_blob(f"{path}/predictions.jsonl")
    assert not finalize.handle_object(
        bucket=bucket, name=blob.name, generation=blob.generation, size=blob.size
    )
    world.tick()
    lifecycle.finish_job(job_id)
    assert records.get(job_id)["cost"] == cost
    assert len(outputs(job_id)) == 5

    (attributes, alert) = world.alerts()[0]
    assert attributes["kind"] == "terminal"
    assert alert["cost"]["cost_nanos"] == cost["cost_nanos"]
    assert alert["tokens"]["prompt_tokens"] == cost["prompt_tokens"]


def test_job_created_and_cancel_requested_sync_that_job(world):
    job_id = world.create(labels={"sim-fault": "stuck-queued"})
    world.wait_sim(job_id, "JOB_STATE_QUEUED")
    response = world.send({"type": "job.created", "job_id": job_id}, {"type": "job.created"})
    assert response.status_code == 200
    assert records.get(job_id)["state"] == "JOB_STATE_QUEUED"

    cancelled = world.gateway.post(f"{JOBS_PATH}/{job_id}:cancel", headers=auth(world.key))
    assert cancelled.status_code == 200
    world.wait_sim(job_id, "JOB_STATE_CANCELLED")
    response = world.send(
        {"type": "job.cancel_requested", "job_id": job_id},
        {"type": "job.cancel_requested", "job_id": job_id},
    )
    assert response.status_code == 200
    record = records.get(job_id)
    assert record["state"] == "JOB_STATE_CANCELLED"
    assert record["cost_final"] is True


def test_malformed_and_unknown_messages_are_acknowledged(world):
    assert world.send(None, raw="%%% not base64").status_code == 200
    assert world.send(None, raw="bm90IGpzb24=").status_code == 200  # "not json"
    assert world.send({"type": "job.exploded"}, {"type": "job.exploded"}).status_code == 200
    assert world.send({"type": "job.created"}, {"type": "job.created"}).status_code == 200
    assert world.send({"type": "job.created", "job_id": "12345"}).status_code == 200
    assert world.alerts(settle=0.3) == []


def test_a_job_gone_from_vertex_does_not_block_the_others(world, monkeypatch):
    gone = world.create(labels={"sim-fault": "stuck-queued"})
    healthy = world.create()
    world.sim.sim.jobs.pop(records.get(gone)["name"])
    record = world.drive(healthy)
    assert record["state"] == "JOB_STATE_SUCCEEDED"
    for _ in range(lifecycle.MISSING_LIMIT):
        world.tick()
    closed = records.get(gone)
    assert closed["upstream_missing"] is True
    # Its outputs are sealed, so its output folder is known from its create (and empty):
    # closed and final. (A job of direct writes whose folder was never learnt is never final:
    # tests/jobs/test_pure_api.py.)
    assert closed["terminal"] is True and closed["cost_final"] is True
    kinds = sorted((a["job_id"], a["kind"]) for a, _ in world.alerts())
    assert kinds == sorted([(gone, "terminal"), (healthy, "terminal")])


def test_sync_is_bounded_and_carries_on_at_the_next_tick(world, monkeypatch):
    monkeypatch.setenv("VBG_SYNC_MAX_JOBS", "2")
    reset_process()
    ids = [world.create(labels={"sim-fault": "stuck-queued"}) for _ in range(5)]
    for job_id in ids:
        world.wait_sim(job_id, "JOB_STATE_QUEUED")
    world.tick()
    synced = [job_id for job_id in ids if records.get(job_id)["synced"] is not None]
    assert len(synced) == 2
    world.tick()
    world.tick()
    assert all(records.get(job_id)["state"] == "JOB_STATE_QUEUED" for job_id in ids)
