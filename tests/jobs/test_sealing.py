"""Issue #10 finding 2: what runs is what was estimated and budgeted (sealed inputs).

On real parts: the GCS emulator, Firestore/Pub/Sub emulators and the Vertex simulator. The
owner swaps the input object for an 800-row one right after the create; the job must still
run the 2 rows the gateway estimated.
"""

import json

import pytest

from shared.core import clients
from shared.core.config import ConfigError, parse_model_list
from shared.jobs import records
from tests.jobs.lifecycle_support import JOBS_PATH, make_world
from tests.support import DEFAULT_MODEL_LIST, auth, create_key, gemini_request, upload_jsonl


@pytest.fixture
def world(gcp, monkeypatch, tmp_path):
    made = make_world(gcp, monkeypatch, tmp_path, speed=0.2)
    yield made
    made.sim.stop()


def body_for(bucket: str, uris: list[str]) -> dict:
    return {
        "displayName": "sealed",
        "model": "gemini-3.5-flash-lite",
        "inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": uris}},
        "outputConfig": {
            "predictionsFormat": "jsonl",
            "gcsDestination": {"outputUriPrefix": f"gs://{bucket}/out/"},
        },
    }


def test_swapping_the_input_after_create_changes_nothing(world):
    bucket = world.gcp["bucket"]
    key = create_key(
        world.gateway,
        alias="mallory",
        inputPrefixes=[f"gs://{bucket}/in/"],
        outputPrefixes=[f"gs://{bucket}/out/"],
        budgetUsd="0.001",
        budgetPeriod="day",
    )
    two = [gemini_request(f"row {i}") for i in range(2)]
    uri = upload_jsonl(bucket, "in/swap/input.jsonl", two)
    two_bytes = ("\n".join(json.dumps(r) for r in two) + "\n").encode()
    response = world.gateway.post(
        JOBS_PATH, json=body_for(bucket, [f"gs://{bucket}/in/swap/*.jsonl"]), headers=auth(key)
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    job_id = response.get_json()["name"].rsplit("/", 1)[-1]
    upload_jsonl(bucket, "in/swap/input.jsonl", [gemini_request("swapped")] * 800)

    record = records.get(job_id)
    assert record["input_uris"] == [f"gs://{bucket}/in/swap/*.jsonl"]
    [sealed] = record["sealed_inputs"]
    staging = world_staging()
    assert sealed["source"] == uri and sealed["generation"] > 0
    assert sealed["uri"].startswith(f"gs://{staging}/sealed/")
    assert sealed["size"] == len(two_bytes)
    assert record["estimate"]["input_bytes"] == len(two_bytes)
    assert record["estimate"]["rows"] == 2
    staged = clients.storage().bucket(staging).blob(sealed["uri"].split("/", 3)[3])
    assert staged.download_as_bytes() == two_bytes

    shown = world.gateway.get(f"{JOBS_PATH}/{job_id}", headers=auth(key)).get_json()
    assert shown["inputConfig"]["gcsSource"]["uris"] == [sealed["uri"]]
    listed = world.gateway.get(JOBS_PATH, headers=auth(key)).get_json()
    assert listed["batchPredictionJobs"][0]["inputConfig"]["gcsSource"]["uris"] == [sealed["uri"]]

    final = world.drive(job_id)
    assert final["completion_stats"]["successfulCount"] == "2"
    assert final["cost"]["rows"] == 2


def world_staging() -> str:
    from shared.core.config import settings

    return settings().staging_bucket


def test_a_refused_create_leaves_no_sealed_copy(world):
    bucket = world.gcp["bucket"]
    key = create_key(
        world.gateway,
        alias="poor",
        inputPrefixes=[f"gs://{bucket}/in/"],
        outputPrefixes=[f"gs://{bucket}/out/"],
        budgetUsd="0",
        budgetPeriod="day",
    )
    uri = upload_jsonl(bucket, "in/poor.jsonl", [gemini_request("hello")])
    response = world.gateway.post(JOBS_PATH, json=body_for(bucket, [uri]), headers=auth(key))
    assert response.status_code == 429
    assert list(clients.storage().list_blobs(world_staging(), prefix="sealed/")) == []


def test_a_deployment_may_turn_sealing_off(gcp, monkeypatch, tmp_path):
    unsealed = DEFAULT_MODEL_LIST.replace(
        "  - model_name: gemini-3.1-pro-preview\n",
        "  - model_name: gemini-3.1-pro-preview\n    model_info: {seal_inputs: false}\n",
    )
    assert not parse_model_list(unsealed).deployments_for("gemini-3.1-pro-preview")[0].seal_inputs
    assert parse_model_list(unsealed).deployments_for("gemini-3.5-flash-lite")[0].seal_inputs
    with pytest.raises(ConfigError, match="seal_inputs"):
        parse_model_list(unsealed.replace("seal_inputs: false", "seal_inputs: nope"))

    from local.vertex_sim import SimulatorThread
    from tests.support import gateway_env, passthrough_client

    with SimulatorThread(speed=0.2) as sim:
        gateway_env(monkeypatch, tmp_path, vertex_url=sim.url, model_list=unsealed)
        gateway = passthrough_client()
        bucket = gcp["bucket"]
        key = create_key(
            gateway,
            inputPrefixes=[f"gs://{bucket}/in/"],
            outputPrefixes=[f"gs://{bucket}/out/"],
        )
        uri = upload_jsonl(bucket, "in/open.jsonl", [gemini_request("hello")])
        body = {**body_for(bucket, [uri]), "model": "gemini-3.1-pro-preview"}
        created = gateway.post(JOBS_PATH, json=body, headers=auth(key))
        assert created.status_code == 200, created.get_data(as_text=True)
        assert created.get_json()["inputConfig"]["gcsSource"]["uris"] == [uri]
        job_id = created.get_json()["name"].rsplit("/", 1)[-1]
        assert records.get(job_id)["sealed_inputs"] is None


def test_discard_deletes_the_copies_of_a_refused_create(world):
    """The copies are named per create; discarding them removes exactly those objects."""
    from shared.core.config import model_list
    from shared.cost import estimate
    from shared.jobs import sealing

    bucket = world.gcp["bucket"]
    uris = [
        upload_jsonl(bucket, f"in/part-{i}.jsonl", [gemini_request(f"row {i}")]) for i in range(2)
    ]
    deployment = model_list().deployments_for("gemini-3.5-flash-lite")[0]
    sealed = sealing.seal_inputs(
        estimate.list_inputs(uris), client_uris=uris, deployment=deployment, key_id="k" * 16
    )
    assert len(sealed.objects) == 2 and all(o.bucket == world_staging() for o in sealed.objects)
    names = sorted(o.name for o in sealed.objects)
    staged = sorted(b.name for b in clients.storage().list_blobs(world_staging()))
    assert [n for n in staged if n in names] == names
    sealing.discard(sealed)
    left = {b.name for b in clients.storage().list_blobs(world_staging())}
    assert not left & set(names)
    # The client's own inputs are untouched.
    assert all(clients.storage().bucket(bucket).blob(u.split("/", 3)[3]).exists() for u in uris)
