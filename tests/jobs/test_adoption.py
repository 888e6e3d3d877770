"""Adoption's rules (shared/jobs/adoption.py), on the emulators and the simulator: a create
that dies after Vertex accepted its job is adopted from its intent once, and only for the
intent's owner; a create Vertex never had is abandoned only after three adoption delays.

The crash is the create's record step failing after Vertex answered (the kill tests in
tests/e2e/test_crash_creates.py use a real SIGKILL).
"""

from datetime import UTC, datetime, timedelta

import pytest

from shared.jobs import adoption, intents, records, submit
from tests.jobs.lifecycle_support import JOBS_PATH, make_world
from tests.support import auth, gemini_request, job_body, upload_jsonl

LATER = timedelta(seconds=121)  # past the default adoption delay (120 s)


@pytest.fixture
def world(gcp, monkeypatch, tmp_path):
    made = make_world(gcp, monkeypatch, tmp_path, speed=0.2)
    yield made
    made.sim.stop()


def create_that_dies_after_vertex(world, monkeypatch) -> dict:
    """A create whose process dies once Vertex has the job: the intent stays pending."""

    def died(*args, **kwargs):
        raise RuntimeError("killed after Vertex accepted the job")

    monkeypatch.setattr(submit, "record", died)
    uri = upload_jsonl(world.gcp["bucket"], "in/adopt.jsonl", [gemini_request("hi")] * 2)
    body = job_body(world.gcp["bucket"], input_uri=uri)
    died_answer = world.gateway.post(JOBS_PATH, json=body, headers=auth(world.key))
    assert died_answer.status_code == 500
    monkeypatch.undo()
    [job] = world.sim.sim.jobs.values()
    intent_id = dict(job.pb.labels)["vbg-intent"]
    assert records.get(records.id_of(job.pb.name)) is None
    return intents.get(intent_id)


def test_a_job_is_adopted_once_and_only_for_its_intents_owner(world, monkeypatch):
    intent = create_that_dies_after_vertex(world, monkeypatch)
    now = datetime.now(UTC)
    assert adoption.adopt_pending(now=now) == {}  # younger than the delay: not looked at

    owner = intent["owner_key_id"]
    intents.ref(intent["intent_id"]).update({"owner_key_id": "someone-else"})
    assert adoption.adopt_pending(now=now + LATER) == {adoption.REFUSED: 1}
    [job] = world.sim.sim.jobs.values()
    job_id = records.id_of(job.pb.name)
    assert records.get(job_id) is None

    intents.ref(intent["intent_id"]).update({"owner_key_id": owner})
    assert adoption.adopt_pending(now=now + LATER) == {adoption.ADOPTED: 1}
    record = records.get(job_id)
    assert record["owner_key_id"] == owner
    assert record["intent_id"] == intent["intent_id"]
    assert record["output_prefix"] == intent["output_prefix"]
    assert record["adopted"]["intent_id"] == intent["intent_id"]
    assert intents.get(intent["intent_id"])["state"] == intents.CREATED
    assert adoption.adopt_pending(now=now + LATER) == {}
    world.drive(job_id)
    kinds = sorted(a["kind"] for a, _ in world.alerts() if a["job_id"] == job_id)
    assert kinds == ["adopted", "terminal"]


def test_a_create_vertex_never_had_is_abandoned_after_three_delays(world):
    intent_id = intents.new_id()
    intents.write(
        {
            "intent_id": intent_id,
            "state": intents.PENDING,
            "created": datetime.now(UTC),
            "owner_key_id": "k",
            "deployment": world_deployment(),
        }
    )
    now = datetime.now(UTC)
    assert adoption.adopt_pending(now=now + LATER) == {adoption.WAITING: 1}
    assert adoption.adopt_pending(now=now + 2 * LATER) == {adoption.WAITING: 1}
    assert adoption.adopt_pending(now=now + 3 * LATER) == {adoption.ABANDONED: 1}
    assert intents.get(intent_id)["state"] == intents.ABANDONED
    assert adoption.adopt_pending(now=now + 4 * LATER) == {}


def world_deployment() -> dict:
    from shared.core.config import model_list

    return model_list().deployments[0].describe()
