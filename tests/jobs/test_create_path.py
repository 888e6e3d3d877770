"""Issue #24 item 4: the create path is one parsed value, read by small steps.

On real parts: the GCS, Firestore and Pub/Sub emulators and the Vertex simulator.
"""

import copy

import pytest

from shared.core import clients, keys
from shared.core.errors import ApiError
from shared.cost import estimate
from shared.jobs import create_request, submit
from tests.jobs.lifecycle_support import make_world
from tests.support import gemini_request, job_body, upload_jsonl


@pytest.fixture
def world(gcp, monkeypatch, tmp_path):
    made = make_world(gcp, monkeypatch, tmp_path, speed=0.2)
    yield made
    made.sim.stop()


def staging() -> str:
    from shared.core.config import settings

    return settings().staging_bucket


def test_the_create_never_writes_into_the_callers_body(world):
    bucket = world.gcp["bucket"]
    uri = upload_jsonl(bucket, "in/a.jsonl", [gemini_request("hello")])
    body = {
        **job_body(bucket, input_uri=uri, labels={"project": "x"}),
        "model": "gemini-3.5-flash-lite",
    }
    before = copy.deepcopy(body)
    submitted = submit.create_job(caller=keys.master_caller(), request=create_request.parse(body))
    assert submitted.record is not None
    assert body == before
    # What Vertex got is the gateway's choice: the sealed copy, the publisher model, the stamps.
    [sealed] = submitted.record["sealed_inputs"]
    assert submitted.record["input_uris"] == [uri]
    assert sealed["uri"].startswith(f"gs://{staging()}/sealed/")
    assert submitted.record["labels"] == {"project": "x", "vbg-key": "master"}


def test_the_vertex_body_is_a_new_dict_with_the_gateways_choices():
    body = job_body("bkt", labels={"a": "b"})
    body["inputConfig"]["gcsSource"]["extra"] = 1
    before = copy.deepcopy(body)
    request = create_request.parse(body)
    sent = request.vertex_body(
        model="publishers/google/models/m",
        input_uris=["gs://s/x"],
        output_prefix="gs://s/out/",
        labels={"vbg-key": "k"},
    )
    assert body == before
    assert sent["model"] == "publishers/google/models/m"
    assert sent["inputConfig"]["gcsSource"] == {"uris": ["gs://s/x"], "extra": 1}
    assert sent["outputConfig"]["gcsDestination"] == {"outputUriPrefix": "gs://s/out/"}
    assert sent["labels"] == {"vbg-key": "k"} and sent["displayName"] == body["displayName"]
    with pytest.raises(TypeError):
        request.body["model"] = "x"  # type: ignore[index]


def test_the_inputs_are_listed_once_per_create(world, monkeypatch):
    bucket = world.gcp["bucket"]
    upload_jsonl(bucket, "in/a.jsonl", [gemini_request("hello")])
    upload_jsonl(bucket, "in/b.jsonl", [gemini_request("again")])
    listed = []
    real = estimate.list_inputs

    def counting(uris):
        listed.append(list(uris))
        return real(uris)

    monkeypatch.setattr(estimate, "list_inputs", counting)
    body = job_body(bucket, input_uri=f"gs://{bucket}/in/*.jsonl")
    submitted = submit.create_job(caller=keys.master_caller(), request=create_request.parse(body))
    assert submitted.record is not None
    assert listed == [[f"gs://{bucket}/in/*.jsonl"]]


def test_a_refusal_after_sealing_deletes_every_copy(world):
    bucket = world.gcp["bucket"]
    upload_jsonl(bucket, "in/a.jsonl", [gemini_request("fine")])
    upload_jsonl(bucket, "in/b.jsonl", ["not json"])
    body = job_body(bucket, input_uri=f"gs://{bucket}/in/*.jsonl")
    with pytest.raises(ApiError) as refused:
        submit.create_job(caller=keys.master_caller(), request=create_request.parse(body))
    assert refused.value.code == 400 and "in/b.jsonl line 1: not valid JSON" in str(
        refused.value.message
    )
    assert list(clients.storage().list_blobs(staging(), prefix="sealed/")) == []
