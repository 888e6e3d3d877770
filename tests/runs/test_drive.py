"""The run driver against the emulators and the simulator: queueing under the concurrency
limits, backing off on 429, idempotent deliveries, and the event dispatch of functions/main.py."""

import base64
import json
from datetime import timedelta

import pytest

from local.vertex_sim import SimulatorThread
from shared.core import keys
from shared.runs import create, drive, store
from tests.support import (
    auth,
    cloudevent_client,
    create_key,
    gateway_env,
    gemini_request,
    passthrough_client,
    reset_process,
    upload_jsonl,
)

CAPPED = """
model_list:
  - model_name: small
    litellm_params:
      model: vertex_ai/gemini-3.5-flash-lite
      vertex_project: proj-a
      vertex_location: us-central1
    model_info: {max_job_rows: 2}
"""


@pytest.fixture
def sim(gcp):
    with SimulatorThread(speed=0.05) as simulator:
        yield simulator


@pytest.fixture
def world(gcp, sim, monkeypatch, tmp_path):
    gateway_env(monkeypatch, tmp_path, vertex_url=sim.url, model_list=CAPPED)
    client = passthrough_client()
    key = create_key(
        client,
        alias="driver",
        inputPrefixes=[f"gs://{gcp['bucket']}/in/"],
        outputPrefixes=[f"gs://{gcp['bucket']}/out/"],
    )
    caller = keys.authenticate(key)
    return {"client": client, "key": key, "caller": caller, "bucket": gcp["bucket"]}


def new_run(world, rows=6, **extra) -> dict:
    uri = upload_jsonl(
        world["bucket"], "in/six.jsonl", [gemini_request(f"q{n}") for n in range(rows)]
    )
    body = {
        "displayName": "six",
        "model": "small",
        "inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": [uri]}},
        "outputConfig": {
            "predictionsFormat": "jsonl",
            "gcsDestination": {"outputUriPrefix": f"gs://{world['bucket']}/out/"},
        },
    }
    return create.create_run(caller=world["caller"], body=body, **extra).run


def states(run_id):
    return [p["state"] for p in store.pieces(run_id)]


def test_pieces_queue_under_the_per_key_limit_and_a_second_delivery_adds_nothing(
    world, sim, monkeypatch
):
    monkeypatch.setenv("VBG_RUN_JOBS_PER_KEY", "2")
    reset_process()
    run = new_run(world)
    assert run["pieces_total"] == 3
    assert drive.advance(run["run_id"]) == "advanced"
    assert states(run["run_id"]) == ["running", "running", "queued"]
    drive.advance(run["run_id"])  # redelivered: the two slots are taken, nothing new
    assert states(run["run_id"]) == ["running", "running", "queued"]
    assert len(sim.sim.jobs) == 2


def test_the_run_limit_is_the_tightest(world, sim):
    run = new_run(world, max_concurrent=1)
    drive.advance(run["run_id"])
    assert states(run["run_id"]) == ["running", "queued", "queued"]


def test_429_on_every_deployment_queues_the_piece_again_with_a_backoff(world, sim):
    sim.sim.create_429_locations = {"us-central1"}
    run = new_run(world, rows=2)
    before = store.now()
    drive.advance(run["run_id"])
    (piece,) = store.pieces(run["run_id"])
    assert piece["state"] == "queued" and piece["attempts"] == 1
    assert "429" in piece["last_error"]
    wait = piece["not_before"] - before
    assert timedelta(seconds=drive.BACKOFF_SECONDS) <= wait < timedelta(seconds=60)
    drive.advance(run["run_id"])  # not yet due: not tried again
    assert store.pieces(run["run_id"])[0]["attempts"] == 1
    assert drive._backoff(1) == timedelta(seconds=30)
    assert drive._backoff(3) == timedelta(seconds=120)
    assert drive._backoff(30) == timedelta(seconds=drive.MAX_BACKOFF_SECONDS)


def test_a_piece_its_create_refuses_fails_with_the_reason(world, sim):
    """The budget fitted the whole run at create; spent since, a piece's own admission
    refuses it: that piece fails (it is not queued forever), saying why."""
    run = new_run(world, rows=4)
    keys.update_key(world["caller"].key_id, {"budgetUsd": "0.000000001"})
    reset_process()
    drive.advance(run["run_id"])
    pieces = store.pieces(run["run_id"])
    assert [p["state"] for p in pieces] == ["failed", "failed"]
    assert pieces[0]["error"].startswith("429 RESOURCE_EXHAUSTED: Budget exceeded")
    assert sim.sim.jobs == {}


def test_a_revoked_owner_fails_the_queued_pieces(world, sim):
    run = new_run(world, rows=4)
    keys.revoke_key(world["caller"].key_id)
    reset_process()
    drive.advance(run["run_id"])
    pieces = store.pieces(run["run_id"])
    assert [p["state"] for p in pieces] == ["failed", "failed"]
    assert "revoked" in pieces[0]["error"]


def message(kind, **attributes):
    data = base64.b64encode(json.dumps({"type": kind, **attributes}).encode()).decode()
    return {"message": {"data": data, "attributes": {"type": kind, **attributes}}}


def test_main_hands_run_events_to_the_driver(world, sim):
    run = new_run(world, rows=2)
    events = cloudevent_client("on_job_event")
    headers = {
        "ce-id": "1",
        "ce-source": "//pubsub",
        "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
        "ce-specversion": "1.0",
    }
    response = events.post("/", json=message("run.advance", run_id=run["run_id"]), headers=headers)
    assert response.status_code == 200
    assert states(run["run_id"]) == ["running"]
    assert (
        drive.handle_message(
            message_id="m", data=None, attributes={"type": "run.advance", "run_id": "nope"}
        )
        == "malformed"
    )
    assert (
        drive.handle_message(
            message_id="m",
            data=None,
            attributes={"type": "run.merge", "run_id": run["run_id"], "index": "x"},
        )
        == "malformed"
    )
    assert (
        drive.handle_message(
            message_id="m", data=None, attributes={"type": "run.what", "run_id": run["run_id"]}
        )
        == "unknown"
    )
    assert drive.is_run_event({"type": "run.tick"}) and not drive.is_run_event({"type": "sync"})


def test_routes_refuse_what_they_must(world):
    client, key = world["client"], world["key"]
    assert client.get("/v1/gateway/runs/run-0123456789abcdef", headers=auth(key)).status_code == 404
    assert client.get("/v1/gateway/runs/../x", headers=auth(key)).status_code in (400, 404)
    bad = client.post("/v1/gateway/runs", json={"maxConcurrentJobs": "two"}, headers=auth(key))
    assert bad.status_code == 400
    outside = client.post(
        "/v1/gateway/uploads",
        json={"name": "a.jsonl", "inputPrefix": "gs://elsewhere/x/"},
        headers=auth(key),
    )
    assert outside.status_code == 403
    session = client.post(
        "/v1/gateway/uploads", json={"name": "../we ird.jsonl", "size": 3}, headers=auth(key)
    )
    assert session.status_code == 200
    uri = session.get_json()["uri"]
    assert uri.startswith(f"gs://{world['bucket']}/in/uploads/") and uri.endswith("/we-ird.jsonl")
