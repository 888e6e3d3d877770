"""Issue #24 item 4: the create path is one parsed value, read by small steps.

On real parts: the GCS, Firestore and Pub/Sub emulators and the Vertex simulator.
"""

import copy
import json
import re
from datetime import UTC, datetime

import pytest

from local.vertex_sim import SimulatorThread
from shared.core import clients, keys, vertex
from shared.core.errors import ApiError
from shared.cost import estimate
from shared.jobs import create_request, intents, records, submit
from tests.jobs.lifecycle_support import make_world
from tests.support import (
    DEFAULT_MODEL_LIST,
    DIRECT_MODEL_LIST,
    gateway_env,
    gemini_request,
    job_body,
    upload_jsonl,
)


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
    intent_id = submitted.record["intent_id"]
    assert submitted.record["labels"] == {
        "project": "x",
        "vbg-key": "master",
        "vbg-intent": intent_id,
    }


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


SEALED_OUTPUTS = DEFAULT_MODEL_LIST.replace(
    "  - model_name: gemini-3.1-pro-preview\n",
    "  - model_name: gemini-3.1-pro-preview\n    model_info: {seal_outputs: true}\n",
)


@pytest.fixture
def sealed_world(gcp, monkeypatch, tmp_path):
    """The gateway on the simulator with gemini-3.1-pro-preview's outputs sealed."""
    with SimulatorThread(speed=0.2) as sim:
        gateway_env(monkeypatch, tmp_path, vertex_url=sim.url, model_list=SEALED_OUTPUTS)
        yield gcp["bucket"], sim


def test_sealed_outputs_go_to_a_per_job_staging_folder_named_and_recorded_before_vertex(
    sealed_world, monkeypatch
):
    """Issue #22 item 1 (create side): Vertex writes into
    gs://<staging>/outputs/<day>/<key id>/<intent id>/, known before Vertex is called."""
    bucket, _ = sealed_world
    uri = upload_jsonl(bucket, "in/a.jsonl", [gemini_request("hello")])
    body = {**job_body(bucket, input_uri=uri), "model": "gemini-3.1-pro-preview"}
    seen_at_vertex = []
    real = vertex.create_job

    def create_with_a_look(deployment, data, **kwargs):
        sent = json.loads(data)
        seen_at_vertex.append((sent, intents.get(sent["labels"]["vbg-intent"])))
        return real(deployment, data, **kwargs)

    monkeypatch.setattr(vertex, "create_job", create_with_a_look)
    submitted = submit.create_job(caller=keys.master_caller(), request=create_request.parse(body))
    made = submitted.record
    intent_id = made["intent_id"]
    assert re.fullmatch(r"[0-9a-f]{16}", intent_id)
    today = datetime.now(UTC).date().isoformat()
    folder = f"gs://{staging()}/outputs/{today}/master/{intent_id}/"
    assert made["output_prefix"] == folder
    assert made["client_output_prefix"] == f"gs://{bucket}/out/"
    assert made["outputs_sealed"] is True
    assert made["labels"]["vbg-intent"] == intent_id
    [(sent, intent)] = seen_at_vertex
    assert sent["outputConfig"]["gcsDestination"]["outputUriPrefix"] == folder
    assert intent["state"] == "pending" and intent["job_name"] is None
    assert intent["output_prefix"] == folder
    assert intent["client_output_prefix"] == f"gs://{bucket}/out/"
    assert records.jobs_for_folder(folder) == [made["job_id"]]
    assert records.jobs_for_folder(f"gs://{bucket}/out/") == []
    done = intents.get(intent_id)
    assert done["state"] == "created" and done["job_name"] == made["name"]
    assert done["job_id"] == made["job_id"] and done["deployment"] == made["deployment"]


def test_the_intent_holds_what_an_adoption_needs(sealed_world):
    bucket, _ = sealed_world
    key = keys.Caller(
        key_id="a" * 16,
        alias="ana",
        team="Search",
        input_prefixes=(f"gs://{bucket}/in/",),
        output_prefixes=(f"gs://{bucket}/out/",),
    )
    uri = upload_jsonl(bucket, "in/a.jsonl", [gemini_request("hello")])
    body = {**job_body(bucket, input_uri=uri, labels={"p": "q"}), "model": "gemini-3.1-pro-preview"}
    request = create_request.parse(body, idempotency_key="retry-me-1")
    made = submit.create_job(caller=key, request=request, api_version="v1beta1").record
    intent = intents.get(made["intent_id"])
    for name in (
        "owner_key_id",
        "owner_alias",
        "team",
        "model",
        "deployment",
        "labels",
        "input_uris",
        "sealed_inputs",
        "output_prefix",
        "client_output_prefix",
        "outputs_sealed",
        "estimate",
        "intent_id",
    ):
        assert intent[name] == made[name], name
    assert (intent["owner_key_id"], intent["owner_alias"], intent["team"]) == (
        "a" * 16,
        "ana",
        "Search",
    )
    assert intent["api_version"] == "v1beta1" and intent["idempotency_key"] == "retry-me-1"
    assert intent["deployments"] == [made["deployment"]]
    assert intent["display_name"] == "test-job"


def test_a_refused_create_completes_its_intent_as_refused(sealed_world):
    bucket, _ = sealed_world
    uri = upload_jsonl(bucket, "in/a.jsonl", [gemini_request("hello")])
    body = {
        **job_body(bucket, input_uri=uri, labels={"sim-fault": "create-429"}),
        "model": "gemini-3.1-pro-preview",
    }
    submitted = submit.create_job(caller=keys.master_caller(), request=create_request.parse(body))
    assert submitted.record is None and submitted.upstream.status == 429
    [intent] = [d.to_dict() for d in clients.firestore().collection(intents.COLLECTION).stream()]
    assert intent["state"] == "refused" and intent["upstream_status"] == 429
    assert intent["outputs_sealed"] is True


@pytest.fixture
def direct_world(gcp, monkeypatch, tmp_path):
    made = make_world(gcp, monkeypatch, tmp_path, speed=0.2, model_list=DIRECT_MODEL_LIST)
    yield made
    made.sim.stop()


def test_without_seal_outputs_vertex_writes_to_the_clients_folder(direct_world):
    """A deployment with `seal_outputs: false` (and the OpenAI door) keeps direct writes:
    both prefixes are the client's."""
    world = direct_world
    bucket = world.gcp["bucket"]
    uri = upload_jsonl(bucket, "in/a.jsonl", [gemini_request("hello")])
    made = submit.create_job(
        caller=keys.master_caller(), request=create_request.parse(job_body(bucket, input_uri=uri))
    ).record
    assert made["output_prefix"] == made["client_output_prefix"] == f"gs://{bucket}/out/"
    assert made["outputs_sealed"] is False and made["intent_id"]


def test_the_openai_doors_folder_is_not_sealed_again(sealed_world):
    bucket, _ = sealed_world
    folder = f"gs://{staging()}/openai/k/batches/b/output/"
    clients.storage().bucket(staging()).blob("openai/k/in.jsonl").upload_from_string(
        json.dumps(gemini_request("hi")) + "\n"
    )
    body = {
        **job_body(bucket, input_uri=f"gs://{staging()}/openai/k/in.jsonl"),
        "model": "gemini-3.1-pro-preview",
    }
    body["outputConfig"]["gcsDestination"]["outputUriPrefix"] = folder
    request = create_request.parse(body, door=create_request.Door.GATEWAY)
    made = submit.create_job(caller=keys.master_caller(), request=request).record
    assert made["output_prefix"] == made["client_output_prefix"] == folder
    assert made["outputs_sealed"] is False


def test_seal_outputs_is_a_boolean_model_info_option():
    from shared.core.config import ConfigError, parse_model_list

    listed = parse_model_list(SEALED_OUTPUTS)
    assert listed.deployments_for("gemini-3.1-pro-preview")[0].seal_outputs
    assert listed.deployments_for("gemini-3.5-flash-lite")[0].seal_outputs  # the default
    direct = parse_model_list(DIRECT_MODEL_LIST)
    assert not direct.deployments_for("gemini-3.5-flash-lite")[0].seal_outputs
    must = r"model_info\.seal_outputs \(line \d+\) must be true or false"
    with pytest.raises(ConfigError, match=must):
        parse_model_list(SEALED_OUTPUTS.replace("seal_outputs: true", "seal_outputs: 1"))
