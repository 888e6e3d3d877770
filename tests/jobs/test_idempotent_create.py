"""Issue #22 item 8: a create retried with the same idempotency key returns the first job.

Clients that saw a connection reset retry; each retry used to be a second job Vertex bills.
On the emulators and the simulator, through the HTTP layer.
"""

import pytest

from tests.jobs.lifecycle_support import JOBS_PATH, make_world
from tests.support import auth, create_key, gemini_request, job_body, upload_jsonl


@pytest.fixture
def world(gcp, monkeypatch, tmp_path):
    made = make_world(gcp, monkeypatch, tmp_path, speed=0.5)
    yield made
    made.sim.stop()


def body_of(world, labels=None) -> dict:
    bucket = world.gcp["bucket"]
    uri = upload_jsonl(bucket, "in/a.jsonl", [gemini_request("hello")])
    return job_body(bucket, input_uri=uri, labels=labels)


def post(world, body, key=None, headers=None, query=""):
    return world.gateway.post(
        JOBS_PATH + query, json=body, headers={**auth(key or world.key), **(headers or {})}
    )


def test_a_retried_create_gets_the_first_job_back(world):
    body = body_of(world)
    first = post(world, body, headers={"Idempotency-Key": "reset-1"})
    assert first.status_code == 200, first.get_data(as_text=True)
    again = post(world, body, headers={"Idempotency-Key": "reset-1"})
    assert again.status_code == 200
    assert again.get_json()["name"] == first.get_json()["name"]
    assert len(world.sim.sim.jobs) == 1
    by_query = post(world, body, query="?requestId=req-7")
    assert (
        post(world, body, query="?requestId=req-7").get_json()["name"]
        == (by_query.get_json()["name"])
    )
    assert len(world.sim.sim.jobs) == 2
    assert post(world, body).get_json()["name"] != first.get_json()["name"]  # no key: a new job


def test_the_key_belongs_to_the_calling_key_and_to_one_body(world):
    body = body_of(world)
    first = post(world, body, headers={"Idempotency-Key": "k"})
    other = create_key(
        world.gateway,
        alias="other",
        inputPrefixes=[f"gs://{world.gcp['bucket']}/in/"],
        outputPrefixes=[f"gs://{world.gcp['bucket']}/out/"],
    )
    theirs = post(world, body, key=other, headers={"Idempotency-Key": "k"})
    assert theirs.status_code == 200
    assert theirs.get_json()["name"] != first.get_json()["name"]
    changed = post(world, {**body, "displayName": "else"}, headers={"Idempotency-Key": "k"})
    assert changed.status_code == 400
    assert "was used for a different create" in changed.get_json()["error"]["message"]
    for bad in ("has space", "x" * 256, "é"):
        refused = post(world, body, headers={"Idempotency-Key": bad})
        assert refused.status_code == 400 and refused.get_json()["error"]["details"]


def test_a_create_still_in_flight_is_a_409_and_a_refused_one_is_tried_again(world):
    from shared.core.keys import hash_key, key_id_of
    from shared.jobs import idempotency, intents

    body = body_of(world)
    key_id = key_id_of(hash_key(world.key))
    assert idempotency.claim(key_id, "busy", body, "feedfacefeedface") is None
    intents.write({"intent_id": "feedfacefeedface", "state": intents.PENDING})
    busy = post(world, body, headers={"Idempotency-Key": "busy"})
    assert busy.status_code == 409 and busy.get_json()["error"]["status"] == "ABORTED"

    world.sim.sim.create_429_locations.update({"us-central1", "europe-west4"})
    refused = post(world, body, headers={"Idempotency-Key": "later"})
    assert refused.status_code == 429
    world.sim.sim.create_429_locations.clear()
    retried = post(world, body, headers={"Idempotency-Key": "later"})
    assert retried.status_code == 200, retried.get_data(as_text=True)
    assert (
        post(world, body, headers={"Idempotency-Key": "later"}).get_json()["name"]
        == (retried.get_json()["name"])
    )
    assert len(world.sim.sim.jobs) == 1


def test_a_claim_whose_create_died_before_its_intent_is_taken_after_the_adoption_delay(world):
    """Killed between the key's claim and the intent (reading or sealing inputs): nothing
    reached Vertex, so after the adoption delay (120 s by default) the retry creates."""
    from datetime import UTC, datetime, timedelta

    from shared.core.keys import hash_key, key_id_of
    from shared.jobs import idempotency

    body = body_of(world)
    key_id = key_id_of(hash_key(world.key))
    assert idempotency.claim(key_id, "died", body, "deadbeefdeadbeef") is None
    young = post(world, body, headers={"Idempotency-Key": "died"})
    assert young.status_code == 409
    assert world.sim.sim.jobs == {}

    idempotency._ref(key_id, "died").update({"created": datetime.now(UTC) - timedelta(seconds=121)})
    retried = post(world, body, headers={"Idempotency-Key": "died"})
    assert retried.status_code == 200, retried.get_data(as_text=True)
    assert len(world.sim.sim.jobs) == 1
    again = post(world, body, headers={"Idempotency-Key": "died"})
    assert again.get_json()["name"] == retried.get_json()["name"]
