"""Sealed outputs after the create (issue #22 item 1): priced in the staging bucket, copied to
the client's folder once per generation, shown there by get and list, held until delivered.

On real parts: the simulator writes into the per-job staging folder, `on_output_finalized`
gets every event (each twice: at-least-once delivery), `on_job_event` finishes the job.
Money is compared with tests/cost/reference.py, from the bytes the simulator wrote."""

import pytest

from shared.core import clients
from shared.jobs import records, sealed_outputs
from tests.cost.reference import expected_cost
from tests.jobs.lifecycle_support import JOBS_PATH, make_world
from tests.jobs.sealed_support import deliver_folder, objects, read, sealed_create, split
from tests.jobs.test_finalize import deliver
from tests.support import MASTER_KEY, auth, cloudevent_client, upload_jsonl

# --- pure: paths and what clients see ----------------------------------------------------------

SEALED = {
    "outputs_sealed": True,
    "output_prefix": "gs://stage/outputs/2025-03-04/k/i1/",
    "client_output_prefix": "gs://cb/ana/out/",
}
DIRECTORY = "gs://stage/outputs/2025-03-04/k/i1/prediction-model-2025-03-04T10:00:00.000000Z"


def test_a_staging_object_goes_below_the_clients_folder():
    name = "outputs/2025-03-04/k/i1/prediction-model-X/incremental_predictions/p_00001.jsonl"
    planned = sealed_outputs.plan(SEALED, "stage", name, 7)
    assert planned.destination_uri == (
        "gs://cb/ana/out/prediction-model-X/incremental_predictions/p_00001.jsonl"
    )
    assert (planned.bucket, planned.name, planned.generation) == ("stage", name, 7)
    assert sealed_outputs.client_directory(SEALED, f"gs://stage/{name}") == (
        "gs://cb/ana/out/prediction-model-X/"
    )


@pytest.mark.parametrize(
    "uri",
    [
        "gs://stage/outputs/2025-03-04/k/i2/prediction-model-X/predictions.jsonl",  # another job
        "gs://stage/outputs/2025-03-04/k/i1",  # the folder itself
        "gs://cb/ana/out/prediction-model-X/predictions.jsonl",  # the client's side
    ],
)
def test_objects_outside_the_per_job_folder_are_not_the_jobs(uri):
    bucket, name = split(uri)
    assert sealed_outputs.plan(SEALED, bucket, name, 1) is None


def test_an_unsealed_job_is_shown_as_vertex_sent_it():
    record = {"output_prefix": "gs://cb/out/", "outputs_sealed": False}
    job = {"state": "JOB_STATE_SUCCEEDED", "outputInfo": {"gcsOutputDirectory": "gs://cb/out/x"}}
    assert sealed_outputs.present(job, record) is job
    assert sealed_outputs.plan(record, "cb", "out/x/predictions.jsonl", 1) is None


def _vertex_job(state):
    return {
        "state": state,
        "endTime": "2025-03-04T10:05:00Z",
        "outputInfo": {"gcsOutputDirectory": DIRECTORY},
        "outputConfig": {
            "predictionsFormat": "jsonl",
            "gcsDestination": {"outputUriPrefix": SEALED["output_prefix"]},
        },
    }


@pytest.mark.parametrize(
    ("state", "shown"),
    [
        ("JOB_STATE_SUCCEEDED", "JOB_STATE_RUNNING"),
        ("JOB_STATE_FAILED", "JOB_STATE_RUNNING"),
        ("JOB_STATE_CANCELLED", "JOB_STATE_CANCELLING"),
        (4, 3),  # enum-encoding=int: SUCCEEDED shown as RUNNING
        (7, 6),
    ],
)
def test_an_ended_sealed_job_is_held_until_its_outputs_are_delivered(state, shown):
    held = sealed_outputs.present(_vertex_job(state), SEALED)
    assert held["state"] == shown and "endTime" not in held
    assert held["outputInfo"]["gcsOutputDirectory"] == (
        "gs://cb/ana/out/prediction-model-2025-03-04T10:00:00.000000Z"
    )
    assert held["outputConfig"] == {
        "predictionsFormat": "jsonl",
        "gcsDestination": {"outputUriPrefix": "gs://cb/ana/out/"},
    }
    delivered = sealed_outputs.present(_vertex_job(state), {**SEALED, "outputs_delivered": True})
    assert delivered["state"] == state and delivered["endTime"] == "2025-03-04T10:05:00Z"
    given_up = {**SEALED, "alerts": {"reconcile": "2025-03-04T11:00:00Z"}}
    assert sealed_outputs.present(_vertex_job(state), given_up)["state"] == state


def test_a_sealed_job_that_wrote_nothing_is_not_held():
    """Cancelled while queued, or failed before writing: nothing to copy, nothing to wait for."""
    shown = sealed_outputs.present(_vertex_job("JOB_STATE_CANCELLED"), SEALED, has_outputs=False)
    assert shown["state"] == "JOB_STATE_CANCELLED" and shown["endTime"]
    assert shown["outputConfig"]["gcsDestination"]["outputUriPrefix"] == "gs://cb/ana/out/"


def test_a_running_sealed_job_shows_its_state():
    shown = sealed_outputs.present(_vertex_job("JOB_STATE_RUNNING"), SEALED)
    assert shown["state"] == "JOB_STATE_RUNNING" and shown["endTime"]


# --- on the emulators and the simulator --------------------------------------------------------


@pytest.fixture
def world(gcp, monkeypatch, tmp_path):
    made = make_world(gcp, monkeypatch, tmp_path, speed=0.1)
    yield made
    made.sim.stop()


def test_sealed_outputs_are_priced_in_staging_copied_once_and_shown_on_the_clients_side(world):
    finalized = cloudevent_client("on_output_finalized")
    bucket = world.gcp["bucket"]
    job_id, folder, client = sealed_create(world, rows=4)
    get = f"{JOBS_PATH}/{job_id}"
    world.wait_sim(job_id, "JOB_STATE_SUCCEEDED")

    # Vertex says SUCCEEDED; nothing is copied yet: the client is told RUNNING, and where.
    held = world.gateway.get(get, headers=auth(world.key)).get_json()
    assert held["state"] == "JOB_STATE_RUNNING"
    staging_files = objects(folder)
    [final_name] = [n for n in staging_files if n.endswith("/predictions.jsonl")]
    directory = final_name.rsplit("/", 1)[0]
    leaf = directory.rsplit("/", 1)[1]
    assert held["outputInfo"]["gcsOutputDirectory"] == f"{client}{leaf}"
    assert held["outputConfig"]["gcsDestination"]["outputUriPrefix"] == client
    assert objects(client) == {}

    for _ in range(2):  # at-least-once: every event twice
        assert set(deliver_folder(finalized, folder)) == {200}
    copies = objects(client)
    assert sorted(copies) == sorted(
        f"out/{name.removeprefix(split(folder)[1])}" for name in staging_files
    )
    generations = {name: blob.generation for name, blob in copies.items()}
    staging_bucket = split(folder)[0]
    for name in staging_files:
        assert read(bucket, f"out/{name.removeprefix(split(folder)[1])}") == read(
            staging_bucket, name
        )
    want = expected_cost(
        read(staging_bucket, final_name), "gemini-3.5-flash-lite", location="us-central1"
    )
    assert records.get(job_id)["cost"]["cost_nanos"] == want.cost_nanos
    assert want.succeeded == 4

    # The copies' own events (the client's bucket is watched too) change nothing.
    assert set(deliver_folder(finalized, client)) == {200}
    assert records.get(job_id)["cost"]["cost_nanos"] == want.cost_nanos

    record = world.drive(job_id)
    assert record["outputs_delivered"] is True and record["cost_final"] is True
    assert record["client_output_directory"] == f"{client}{leaf}/"
    assert {n: b.generation for n, b in objects(client).items()} == generations
    done = world.gateway.get(get, headers=auth(world.key)).get_json()
    assert done["state"] == "JOB_STATE_SUCCEEDED"
    assert done["outputInfo"]["gcsOutputDirectory"] == f"{client}{leaf}"
    # Listed by the master key: the job carries the labels of the key that created it.
    listed = world.gateway.get(JOBS_PATH, headers=auth(MASTER_KEY)).get_json()
    [mine] = [j for j in listed["batchPredictionJobs"] if j["name"].endswith(job_id)]
    assert mine["outputInfo"] == done["outputInfo"] and mine["state"] == "JOB_STATE_SUCCEEDED"


def test_lost_events_are_delivered_at_the_end(world):
    """No finalize event arrives: the terminal reconciliation prices and copies everything."""
    job_id, folder, client = sealed_create(world, rows=3)
    world.wait_sim(job_id, "JOB_STATE_SUCCEEDED")
    record = world.drive(job_id)
    staging_bucket, staging_path = split(folder)
    copies = objects(client)
    assert sorted(copies) == sorted(
        f"out/{name.removeprefix(staging_path)}" for name in objects(folder)
    )
    [final_name] = [n for n in objects(folder) if n.endswith("/predictions.jsonl")]
    want = expected_cost(
        read(staging_bucket, final_name), "gemini-3.5-flash-lite", location="us-central1"
    )
    assert record["cost"]["cost_nanos"] == want.cost_nanos
    assert record["outputs_delivered"] is True


def test_a_copy_is_not_attributed_to_an_unsealed_job_sharing_the_clients_prefix(world):
    """An unsealed job of the same client prefix, its output directory still unknown, would
    take any `prediction-*` folder under that prefix: the sealed job's copy is not one."""
    finalized = cloudevent_client("on_output_finalized")
    bucket = world.gcp["bucket"]
    neighbour = world.create(labels={"sim-fault": "stuck-queued"})
    job_id, folder, client = sealed_create(world, rows=2)
    world.wait_sim(job_id, "JOB_STATE_SUCCEEDED")
    assert set(deliver_folder(finalized, folder)) == {200}
    assert set(deliver_folder(finalized, client)) == {200}
    assert records.get(neighbour).get("cost") in ({}, None)
    assert records.get(job_id)["cost"]["cost_nanos"] > 0
    assert any(n.startswith("out/prediction-") for n in objects(f"gs://{bucket}/out/"))


def test_a_replaced_generation_is_copied_as_the_live_one_only(world):
    """A generation that is no longer live is not copied (and is a vanished generation for
    the books); the live one is, whatever order the events come in."""
    finalized = cloudevent_client("on_output_finalized")
    _, folder, _ = sealed_create(world, rows=2, labels={"sim-fault": "stuck-queued"})
    staging_bucket, staging_path = split(folder)
    name = f"{staging_path}prediction-model-2025-03-04T10:00:00.000000Z/other.txt"
    first = upload_jsonl(staging_bucket, name, ["one"])
    first_generation = objects(folder)[name].generation
    upload_jsonl(staging_bucket, name, ["two"])
    second_generation = objects(folder)[name].generation
    assert first.endswith("other.txt") and first_generation != second_generation
    assert deliver(finalized, staging_bucket, name, second_generation).status_code == 200
    assert deliver(finalized, staging_bucket, name, first_generation).status_code == 200
    copy = f"out/{name.removeprefix(staging_path)}"
    assert read(world.gcp["bucket"], copy) == b"two\n"


def test_staging_objects_that_are_no_outputs_are_ignored(world):
    """Sealed inputs and the gateway's own staging files are never priced or copied, even
    when named like predictions."""
    finalized = cloudevent_client("on_output_finalized")
    job_id, folder, _ = sealed_create(world, rows=1, labels={"sim-fault": "stuck-queued"})
    staging_bucket, _ = split(folder)
    name = "sealed/2025-03-04/k/abc/prediction-model-X/predictions.jsonl"
    upload_jsonl(staging_bucket, name, ['{"response": {}}'])
    generation = objects(f"gs://{staging_bucket}/sealed/")[name].generation
    assert deliver(finalized, staging_bucket, name, generation).status_code == 200
    assert records.get(job_id).get("cost") in ({}, None)


def test_what_the_key_holder_does_to_its_own_folder_does_not_move_the_books(world):
    """Issue #22's attack on a sealed job: the key holder deletes each copy as it appears and
    writes a zero-usage predictions file into its folder. The books are read in staging."""
    finalized = cloudevent_client("on_output_finalized")
    bucket = world.gcp["bucket"]
    job_id, folder, client = sealed_create(world, rows=3)
    world.wait_sim(job_id, "JOB_STATE_SUCCEEDED")
    assert set(deliver_folder(finalized, folder)) == {200}
    for name in objects(client):
        clients.storage().bucket(bucket).blob(name).delete()
    [final_name] = [n for n in objects(folder) if n.endswith("/predictions.jsonl")]
    leaf = final_name.rsplit("/", 2)[-2]
    forged = f"out/{leaf}/predictions.jsonl"
    upload_jsonl(bucket, forged, ['{"response": {"usageMetadata": {}}, "status": ""}'])
    assert set(deliver_folder(finalized, client)) == {200}
    record = world.drive(job_id)
    want = expected_cost(
        read(split(folder)[0], final_name), "gemini-3.5-flash-lite", location="us-central1"
    )
    assert record["cost"]["cost_nanos"] == want.cost_nanos
    assert int(record["cost"].get("estimated_rows") or 0) == 0
    # Each generation is copied once: what the owner then does to its own copy stays its own.
    assert read(bucket, forged) == b'{"response": {"usageMetadata": {}}, "status": ""}\n'
    assert int(record["cost"]["succeeded"]) == 3
