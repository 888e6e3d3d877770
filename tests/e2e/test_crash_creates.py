"""Issue #22 item 8: `passthrough` killed during concurrent creates left Vertex jobs without a
record (5 of 195), run and never costed or adopted; an OpenAI batch whose create died
stayed `validating` for ever. Now the sync adopts a Vertex job that carries the gateway's
labels but has no record (from its create's intent: owner, inputs, output folders,
estimate), costs it from its own files and raises one `adopted` alert; a retried create
with the same idempotency key gets that job; a stale batch gets its job, or fails saying why.

Each is reproduced with a real SIGKILL at the moment that matters, every time: the Vertex
simulator's `reply-late` fault creates the job and holds its answer (the gateway is killed
after Vertex accepted the job), `create-hang` holds the create before Vertex accepts it
(killed before Vertex had it: the simulator drops the create of a caller gone).
"""

import contextlib
import json
import threading
import time
import uuid

import pytest
import requests
from google.cloud import pubsub_v1

from tests.cost.reference import expected_cost
from tests.e2e.chaos_support import drain, kill, predictions, wait_back
from tests.e2e.helpers import make_key, wait_for

pytestmark = pytest.mark.e2e

MODEL = "gemini-3.5-flash-lite"


def _sim_jobs(info: dict, filter_text: str) -> list[dict]:
    response = requests.get(
        f"{info['vertex_url']}/v1/projects/{info['project']}/locations/global/batchPredictionJobs",
        params={"filter": filter_text},
        timeout=10,
    )
    response.raise_for_status()
    return response.json().get("batchPredictionJobs", [])


def _in_background(call) -> threading.Thread:
    """`call` in a thread, its connection error (the gateway killed under it) swallowed."""

    def run():
        with contextlib.suppress(requests.RequestException):
            call()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _kill_passthrough_when(stack, ready, what: str):
    value = wait_for(ready, timeout=30, what=what)
    pid = kill(stack, "passthrough")
    wait_back(stack, "passthrough", pid)
    return value


def _create_body(info: dict, folder: str, name: str, *, fault: str, rows: int) -> dict:
    """A create of `rows` rows written to `folder`, with the simulator's `fault`."""
    from shared.core import clients

    lines = [
        {"request": {"contents": [{"role": "user", "parts": [{"text": f"a{i}"}]}]}}
        for i in range(rows)
    ]
    clients.storage().bucket(info["bucket"]).blob(f"{folder}/in.jsonl").upload_from_string(
        "".join(json.dumps(line) + "\n" for line in lines)
    )
    return {
        "displayName": name,
        "model": MODEL,
        "inputConfig": {
            "instancesFormat": "jsonl",
            "gcsSource": {"uris": [f"gs://{info['bucket']}/{folder}/in.jsonl"]},
        },
        "outputConfig": {
            "predictionsFormat": "jsonl",
            "gcsDestination": {"outputUriPrefix": f"gs://{info['bucket']}/{folder}/out/"},
        },
        "labels": {"sim-fault": fault},
    }


def test_a_create_killed_after_vertex_accepted_it_is_adopted_costed_and_alerted_once(chaos_env):
    from shared.core import clients
    from shared.jobs import records

    stack, info = chaos_env, chaos_env.info
    run = uuid.uuid4().hex[:8]
    subscriber = pubsub_v1.SubscriberClient()
    subscription = subscriber.subscription_path(info["project"], f"adopt-{run}")
    subscriber.create_subscription(name=subscription, topic=clients.topic_path("batch-job-alerts"))
    key = make_key(info, f"adopt-{run}", folder=f"adopt/{run}", team="crash")
    body = _create_body(info, f"adopt/{run}", f"adopt-{run}", fault="reply-late", rows=4)
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": f"adopt-{run}"}
    url = info["gateway_url"] + "/v1/projects/p/locations/global/batchPredictionJobs"
    # A job queued on the same output folder: the orphan's files must never be booked on it
    # (issue #22 item 8: one ended final at the orphan's cost, having run no row).
    neighbour = requests.post(
        url,
        json={**body, "displayName": f"neighbour-{run}", "labels": {"sim-fault": "stuck-queued"}},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    assert neighbour.status_code == 200, neighbour.text
    neighbour_id = neighbour.json()["name"].rsplit("/", 1)[-1]
    client = _in_background(lambda: requests.post(url, json=body, headers=headers, timeout=60))
    [job] = _kill_passthrough_when(
        stack,
        lambda: _sim_jobs(info, f'display_name="adopt-{run}"'),
        "Vertex to accept the job",
    )
    client.join(timeout=60)
    job_id = job["name"].rsplit("/", 1)[-1]

    record = wait_for(
        lambda: (r := records.get(job_id)) and r.get("cost_final") and r,
        timeout=90,
        what=f"the orphaned job {job_id} adopted and costed",
    )
    assert record["owner_key_id"] == job["labels"]["vbg-key"]
    assert record["intent_id"] == job["labels"]["vbg-intent"]
    assert (record["owner_alias"], record["team"], record["model"]) == (
        f"adopt-{run}",
        "crash",
        MODEL,
    )
    assert record["input_uris"] == [f"gs://{info['bucket']}/adopt/{run}/in.jsonl"]
    assert record["estimate"]["rows"] == 4
    want = expected_cost(predictions(record), MODEL)
    assert want.succeeded == 4 and want.cost_nanos > 0
    assert record["cost"]["cost_nanos"] == want.cost_nanos
    assert not (records.get(neighbour_id).get("cost") or {}).get("rows")
    cancelled = requests.post(
        f"{url}/{neighbour_id}:cancel", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert cancelled.status_code == 200, cancelled.text

    # The client's retry, with the same idempotency key, is given the adopted job.
    retried = requests.post(url, json=body, headers=headers, timeout=60)
    assert retried.status_code == 200, retried.text
    assert retried.json()["name"].rsplit("/", 1)[-1] == job_id
    assert len(_sim_jobs(info, f'display_name="adopt-{run}"')) == 1

    time.sleep(3)
    alerts = [a for a in drain(subscriber, subscription) if a["attributes"]["job_id"] == job_id]
    kinds = sorted(a["attributes"]["kind"] for a in alerts)
    assert kinds == ["adopted", "terminal"], kinds
    terminal = next(a for a in alerts if a["attributes"]["kind"] == "terminal")
    assert terminal["body"]["cost"]["cost_nanos"] == want.cost_nanos


def test_a_create_killed_before_vertex_had_it_is_abandoned_and_its_retry_runs(chaos_env):
    """The create never reached Vertex: its intent is abandoned once Vertex shows no job for
    it (three adoption delays), and the client's retry with the same idempotency key is a
    new create, not a 409 for ever (the simulator holds it too, then creates it: its caller
    waited)."""
    from shared.jobs import intents

    stack, info = chaos_env, chaos_env.info
    run = uuid.uuid4().hex[:8]
    key = make_key(info, f"lost-{run}", folder=f"lost/{run}")
    body = _create_body(info, f"lost/{run}", f"lost-{run}", fault="create-hang", rows=2)
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": f"lost-{run}"}
    url = info["gateway_url"] + "/v1/projects/p/locations/global/batchPredictionJobs"
    client = _in_background(lambda: requests.post(url, json=body, headers=headers, timeout=60))
    [intent] = _kill_passthrough_when(
        stack,
        lambda: [i for i in intents_of_run(info, f"lost-{run}") if i["state"] == intents.PENDING],
        "the create's intent (Vertex holding the create)",
    )
    client.join(timeout=60)
    wait_for(
        lambda: intents.get(intent["intent_id"])["state"] == intents.ABANDONED,
        timeout=60,
        what="the intent abandoned",
    )
    assert _sim_jobs(info, f'display_name="lost-{run}"') == []

    retried = requests.post(url, json=body, headers=headers, timeout=60)
    assert retried.status_code == 200, retried.text
    [job] = _sim_jobs(info, f'display_name="lost-{run}"')
    assert retried.json()["name"] == job["name"]
    assert job["labels"]["vbg-intent"] != intent["intent_id"]


def intents_of_run(info: dict, display_name: str) -> list[dict]:
    from google.cloud.firestore_v1.base_query import FieldFilter

    from shared.core import clients

    query = clients.firestore().collection("intents")
    query = query.where(filter=FieldFilter("display_name", "==", display_name))
    return [s.to_dict() for s in query.stream()]


def _openai_batch(info: dict, key: str, run: str, fault: str) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    line = {
        "custom_id": "only",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": MODEL, "messages": [{"role": "user", "content": "Name a river."}]},
    }
    uploaded = requests.post(
        info["gateway_url"] + "/v1/files",
        headers=headers,
        data={"purpose": "batch"},
        files={"file": ("in.jsonl", json.dumps(line).encode() + b"\n")},
        timeout=30,
    )
    assert uploaded.status_code == 200, uploaded.text
    requests.post(
        info["gateway_url"] + "/v1/batches",
        headers=headers,
        json={
            "input_file_id": uploaded.json()["id"],
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
            "metadata": {"run": run, "sim-fault": fault},
        },
        timeout=60,
    )


def _batches(info: dict, key: str) -> list[dict]:
    response = requests.get(
        info["gateway_url"] + "/v1/batches",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_an_openai_batch_whose_create_died_after_vertex_accepted_it_finishes(chaos_env):
    stack, info = chaos_env, chaos_env.info
    run = uuid.uuid4().hex[:8]
    key = make_key(info, f"batch-ok-{run}", folder=f"batch-ok/{run}")
    client = _in_background(lambda: _openai_batch(info, key, run, "reply-late"))
    _kill_passthrough_when(
        stack, lambda: _sim_jobs(info, f"labels.run={run}"), "Vertex to accept the batch's job"
    )
    client.join(timeout=60)
    [batch] = wait_for(
        lambda: (b := _batches(info, key)) and b[0]["status"] == "completed" and b,
        timeout=90,
        what="the stale batch to complete",
    )
    assert batch["request_counts"] == {"total": 1, "completed": 1, "failed": 0}
    content = requests.get(
        f"{info['gateway_url']}/v1/files/{batch['output_file_id']}/content",
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert [json.loads(line)["custom_id"] for line in content.text.splitlines()] == ["only"]


def test_an_openai_batch_whose_create_died_before_vertex_had_a_job_fails_saying_why(chaos_env):
    from google.cloud.firestore_v1.base_query import FieldFilter

    from shared.core import clients

    stack, info = chaos_env, chaos_env.info
    run = uuid.uuid4().hex[:8]
    key = make_key(info, f"batch-lost-{run}", folder=f"batch-lost/{run}")
    client = _in_background(lambda: _openai_batch(info, key, run, "create-hang"))
    intents = clients.firestore().collection("intents")
    _kill_passthrough_when(
        stack,
        lambda: list(intents.where(filter=FieldFilter("labels.run", "==", run)).stream()),
        "the create's intent (Vertex holding the create)",
    )
    client.join(timeout=60)
    [batch] = wait_for(
        lambda: (b := _batches(info, key)) and b[0]["status"] == "failed" and b,
        timeout=90,
        what="the stale batch to fail",
    )
    [error] = batch["errors"]["data"]
    assert "stopped while creating this batch" in error["message"]
    assert "nothing is billed" in error["message"] and "again" in error["message"]
    assert _sim_jobs(info, f"labels.run={run}") == []
