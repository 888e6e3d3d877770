"""The passthrough on real parts: Firestore and Pub/Sub emulators, GCS emulator, simulator."""

import json
import time

import pytest
from google.cloud import pubsub_v1

from shared.core import clients
from shared.jobs import records
from tests.support import (
    MASTER_KEY,
    auth,
    create_key,
    job_body,
)

JOBS = "/v1/projects/my-project/locations/us-central1/batchPredictionJobs"


def error_of(response) -> dict:
    body = response.get_json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == response.status_code
    return body["error"]


def create(gateway, key, body, path=JOBS):
    return gateway.post(path, json=body, headers=auth(key))


def job_id(response) -> str:
    return response.get_json()["name"].rsplit("/", 1)[-1]


def wait_state(gateway, key, jid, wanted, timeout=20):
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = gateway.get(f"{JOBS}/{jid}", headers=auth(key)).get_json()["state"]
        if state == wanted:
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {jid} is {state}, not {wanted}")


def test_create_records_owner_labels_index_and_publishes_event(gateway, gcp, alice):
    subscriber = pubsub_v1.SubscriberClient()
    topic = clients.topic_path("batch-job-events")
    clients.publisher().create_topic(name=topic)
    subscription = subscriber.subscription_path(gcp["project"], "events-watch")
    subscriber.create_subscription(name=subscription, topic=topic)

    body = job_body(gcp["bucket"], labels={"cost-center": "cc-42"})
    body["model"] = (
        "projects/whatever/locations/us-central1/publishers/google/models/gemini-3.5-flash-lite"
    )
    response = create(gateway, alice, body)
    assert response.status_code == 200, response.get_data(as_text=True)
    job = response.get_json()
    jid = job_id(response)
    assert job["name"].startswith("projects/proj-a/locations/us-central1/")
    assert job["labels"]["cost-center"] == "cc-42"
    assert job["labels"]["vbg-team"] == "data-science"

    record = records.get(jid)
    assert record["owner_alias"] == "alice"
    assert record["owner_key_id"] == job["labels"]["vbg-key"]
    assert record["team"] == "Data Science"
    assert record["model"] == "gemini-3.5-flash-lite"
    assert record["deployment"]["location"] == "us-central1"
    assert record["input_uris"] == [f"gs://{gcp['bucket']}/in/input.jsonl"]
    # Sealed outputs: the index names the per-job folder Vertex writes into.
    assert record["client_output_prefix"] == f"gs://{gcp['bucket']}/out/"
    assert records.jobs_for_folder(record["output_prefix"]) == [jid]

    pulled = subscriber.pull(subscription=subscription, max_messages=10, timeout=10)
    events = [json.loads(m.message.data) for m in pulled.received_messages]
    assert {"type": "job.created", "job_id": jid} in events


@pytest.mark.parametrize(
    "model", ["gemini-3.5-flash-lite", "publishers/google/models/gemini-3.5-flash-lite"]
)
def test_model_name_forms_resolve(gateway, gcp, alice, model):
    response = create(gateway, alice, {**job_body(gcp["bucket"]), "model": model})
    assert response.status_code == 200
    assert response.get_json()["model"].endswith("/models/gemini-3.5-flash-lite")


def test_get_cancel_delete_and_v1beta1(gateway, gcp, alice):
    body = job_body(gcp["bucket"], labels={"sim-fault": "stuck-queued"})
    jid = job_id(create(gateway, alice, body))
    got = gateway.get(
        f"/v1beta1/projects/x/locations/y/batchPredictionJobs/{jid}", headers=auth(alice)
    )
    assert got.status_code == 200
    assert got.get_json()["displayName"] == "test-job"

    cancelled = gateway.post(f"{JOBS}/{jid}:cancel", headers=auth(alice))
    assert cancelled.status_code == 200
    assert cancelled.get_json() == {}
    wait_state(gateway, alice, jid, "JOB_STATE_CANCELLED")

    deleted = gateway.delete(f"{JOBS}/{jid}", headers=auth(alice))
    assert deleted.status_code == 200
    assert deleted.get_json()["name"].split("/")[-2] == "operations"
    assert gateway.get(f"{JOBS}/{jid}", headers=auth(alice)).status_code == 404
    assert records.get(jid)["deleted"] is True


def test_enum_encoding_int_is_honoured(gateway, gcp, alice):
    response = gateway.post(
        JOBS + "?$alt=json;enum-encoding=int", json=job_body(gcp["bucket"]), headers=auth(alice)
    )
    assert response.status_code == 200
    assert response.get_json()["state"] == 2


def test_keys_cannot_see_each_others_jobs(gateway, gcp, alice, bob):
    alice_job = job_id(create(gateway, alice, job_body(gcp["bucket"])))
    bob_job = job_id(create(gateway, bob, job_body(gcp["bucket"])))

    for path in (f"{JOBS}/{bob_job}",):
        response = gateway.get(path, headers=auth(alice))
        assert response.status_code == 404
        assert error_of(response)["status"] == "NOT_FOUND"
    assert gateway.post(f"{JOBS}/{bob_job}:cancel", headers=auth(alice)).status_code == 404
    assert gateway.delete(f"{JOBS}/{bob_job}", headers=auth(alice)).status_code == 404

    listed = gateway.get(JOBS, headers=auth(alice)).get_json()["batchPredictionJobs"]
    assert [job["name"].rsplit("/", 1)[-1] for job in listed] == [alice_job]
    everything = gateway.get(JOBS, headers=auth(MASTER_KEY)).get_json()["batchPredictionJobs"]
    assert {job["name"].rsplit("/", 1)[-1] for job in everything} == {alice_job, bob_job}


def test_a_deleted_record_hides_its_job_even_while_vertex_still_has_it(gateway, gcp, alice):
    jid = job_id(create(gateway, alice, job_body(gcp["bucket"])))
    records.mark(jid, deleted=True)
    for response in (
        gateway.get(f"{JOBS}/{jid}", headers=auth(alice)),
        gateway.post(f"{JOBS}/{jid}:cancel", headers=auth(alice)),
        gateway.delete(f"{JOBS}/{jid}", headers=auth(MASTER_KEY)),
    ):
        assert response.status_code == 404, response.get_data(as_text=True)
        assert error_of(response)["status"] == "NOT_FOUND"
    assert gateway.get(JOBS, headers=auth(alice)).get_json() == {}


def test_team_admin_sees_the_team(gateway, gcp, alice):
    lead = create_key(gateway, alias="lead", team="Data Science", teamAdmin=True)
    outsider = create_key(gateway, alias="outsider", team="Other", teamAdmin=True)
    jid = job_id(create(gateway, alice, job_body(gcp["bucket"])))
    assert gateway.get(f"{JOBS}/{jid}", headers=auth(lead)).status_code == 200
    assert gateway.get(f"{JOBS}/{jid}", headers=auth(outsider)).status_code == 404
    listed = gateway.get(JOBS, headers=auth(lead)).get_json()["batchPredictionJobs"]
    assert [job["name"].rsplit("/", 1)[-1] for job in listed] == [jid]


def test_list_pages_across_locations_newest_first_with_filter(gateway, gcp, sim, alice):
    created = []
    for i in range(5):
        if i == 2:
            sim.sim.create_429_locations = {"us-central1"}
        if i == 4:
            sim.sim.create_429_locations = set()
        body = {**job_body(gcp["bucket"]), "displayName": f"job-{i}"}
        response = create(gateway, alice, body)
        assert response.status_code == 200, response.get_data(as_text=True)
        created.append(job_id(response))
        time.sleep(0.01)
    locations = {records.get(j)["deployment"]["location"] for j in created}
    assert locations == {"us-central1", "europe-west4"}

    seen, token = [], None
    for _ in range(10):
        query = "?pageSize=2" + (f"&pageToken={token}" if token else "")
        page = gateway.get(JOBS + query, headers=auth(alice)).get_json()
        seen += [job["name"].rsplit("/", 1)[-1] for job in page.get("batchPredictionJobs", [])]
        token = page.get("nextPageToken")
        if not token:
            break
    assert seen == list(reversed(created))

    filtered = gateway.get(
        JOBS + '?filter=display_name="job-3"&readMask=displayName', headers=auth(alice)
    ).get_json()["batchPredictionJobs"]
    assert filtered == [{"displayName": "job-3"}]
    snake = gateway.get(
        JOBS + '?filter=display_name="job-3"&readMask=display_name,create_time',
        headers=auth(alice),
    ).get_json()["batchPredictionJobs"]
    assert set(snake[0]) == {"displayName", "createTime"}


def test_failover_on_429_records_the_deployment_used(gateway, gcp, sim, alice):
    sim.sim.create_429_locations = {"us-central1"}
    response = create(gateway, alice, job_body(gcp["bucket"]))
    assert response.status_code == 200
    assert records.get(job_id(response))["deployment"]["location"] == "europe-west4"


def test_upstream_429_passes_through_when_every_deployment_is_exhausted(gateway, gcp, sim, alice):
    sim.sim.create_429_locations = {"us-central1", "europe-west4"}
    response = create(gateway, alice, job_body(gcp["bucket"]))
    assert response.status_code == 429
    assert error_of(response)["status"] == "RESOURCE_EXHAUSTED"


def test_upstream_down_is_503(gateway, gcp, alice, monkeypatch):
    from local.processes import free_port
    from shared.core.config import settings

    monkeypatch.setenv("VBG_VERTEX_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    settings.cache_clear()
    response = create(gateway, alice, job_body(gcp["bucket"]))
    assert response.status_code == 503
    assert error_of(response)["status"] == "UNAVAILABLE"


@pytest.mark.parametrize(
    ("headers", "message"),
    [({}, "No gateway API key"), (auth("vbg-nope"), "not valid")],
)
def test_missing_or_bad_key_is_401(gateway, gcp, headers, message):
    response = gateway.post(JOBS, json=job_body(gcp["bucket"]), headers=headers)
    assert response.status_code == 401
    assert message in error_of(response)["message"]


def test_revoked_key_is_401_and_update_applies(gateway, gcp, alice):
    keys = gateway.get("/v1/gateway/keys", headers=auth(MASTER_KEY)).get_json()["keys"]
    assert "key" not in keys[0] and "hash" not in keys[0]
    key_id = next(k["id"] for k in keys if k["alias"] == "alice")
    updated = gateway.patch(
        f"/v1/gateway/keys/{key_id}",
        json={"models": ["gemini-3.1-pro-preview"]},
        headers=auth(MASTER_KEY),
    )
    assert updated.get_json()["models"] == ["gemini-3.1-pro-preview"]
    denied = create(gateway, alice, job_body(gcp["bucket"]))
    assert denied.status_code == 403
    assert "gemini-3.1-pro-preview" in error_of(denied)["message"]

    revoked = gateway.post(f"/v1/gateway/keys/{key_id}:revoke", headers=auth(MASTER_KEY))
    assert revoked.get_json()["revokeTime"]
    assert create(gateway, alice, job_body(gcp["bucket"])).status_code == 401


def test_x_goog_api_key_wins_over_a_google_token(gateway, gcp, alice):
    headers = {"x-goog-api-key": alice, "Authorization": "Bearer ya29.some-google-token"}
    assert gateway.post(JOBS, json=job_body(gcp["bucket"]), headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("mutate", "code", "text"),
    [
        (
            lambda b: b.update(model="gemini-9"),
            400,
            "Known models: gemini-3.1-pro-preview, gemini-3.5-flash-lite",
        ),
        (
            lambda b: b.update(model="text-embedding-005"),
            403,
            "Allowed models: gemini-3.5-flash-lite",
        ),
        (
            lambda b: b["inputConfig"]["gcsSource"].update(uris=["gs://elsewhere/x.jsonl"]),
            403,
            "inputConfig.gcsSource.uris",
        ),
        (
            lambda b: b["outputConfig"]["gcsDestination"].update(outputUriPrefix="gs://b2/o/"),
            403,
            "outputUriPrefix",
        ),
        (lambda b: b.update(labels={"Bad Key": "x"}), 400, "Label key"),
        (lambda b: b.update(labels={"vbg-key": "spoof"}), 400, "reserved"),
        (lambda b: b.pop("inputConfig"), 400, "inputConfig.gcsSource.uris"),
    ],
)
def test_create_refusals_name_the_fix(gateway, gcp, mutate, code, text):
    key = create_key(
        gateway,
        alias="limited",
        models=["gemini-3.5-flash-lite"],
        inputPrefixes=[f"gs://{gcp['bucket']}/in/"],
        outputPrefixes=[f"gs://{gcp['bucket']}/out/"],
    )
    body = job_body(gcp["bucket"])
    mutate(body)
    response = create(gateway, key, body)
    assert response.status_code == code, response.get_data(as_text=True)
    assert text in error_of(response)["message"]


def test_a_prefix_is_a_folder_not_a_string_prefix(gateway, gcp):
    key = create_key(
        gateway,
        alias="narrow",
        inputPrefixes=[f"gs://{gcp['bucket']}/in"],
        outputPrefixes=[f"gs://{gcp['bucket']}/out/"],
    )
    body = job_body(gcp["bucket"], input_uri=f"gs://{gcp['bucket']}/in-other/x.jsonl")
    assert create(gateway, key, body).status_code == 403
    # ... and `gs://b/in` grants the folder gs://b/in/.
    inside = create(gateway, key, job_body(gcp["bucket"]))
    assert inside.status_code == 200, inside.get_data(as_text=True)


def test_upstream_validation_error_passes_through(gateway, gcp, alice):
    body = {**job_body(gcp["bucket"]), "unknownField": 1}
    response = create(gateway, alice, body)
    assert response.status_code == 400
    assert error_of(response)["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "code"),
    [
        ("post", JOBS, {"data": "not json", "content_type": "application/json"}, 400),
        ("post", JOBS, {"data": "[1]", "content_type": "application/json"}, 400),
        ("post", JOBS, {"data": "{}", "content_type": "text/plain"}, 415),
        ("post", JOBS, {"data": "x" * (2 * 1024 * 1024), "content_type": "application/json"}, 413),
        ("get", "/v1/nothing/here", {}, 404),
        ("put", JOBS, {}, 405),
        ("get", f"{JOBS}/not-a-number", {}, 400),
        ("get", f"{JOBS}/123456", {}, 404),
    ],
)
def test_bad_input_gets_the_envelope(gateway, alice, method, path, kwargs, code):
    response = getattr(gateway, method)(path, headers=auth(alice), **kwargs)
    assert response.status_code == code
    assert response.content_type.startswith("application/json")
    error = error_of(response)
    assert error["message"] and error["status"]


def test_audit_log_names_who_and_what_but_never_the_key(gateway, gcp, alice, capsys):
    capsys.readouterr()
    body = job_body(gcp["bucket"], labels={"sim-fault": "stuck-queued"})
    jid = job_id(create(gateway, alice, body))
    gateway.post(f"{JOBS}/{jid}:cancel", data=b"", headers=auth(alice))
    out = capsys.readouterr().out
    entries = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    audits = [e for e in entries if e.get("audit")]
    assert [(e["route"], e["outcome"], e["job_id"]) for e in audits] == [
        ("jobs.create", 200, jid),
        ("jobs.cancel", 200, jid),
    ]
    assert audits[0]["key_alias"] == "alice" and audits[0]["model"] == "gemini-3.5-flash-lite"
    assert audits[0]["deployment"] == "proj-a/us-central1/gemini-3.5-flash-lite"
    assert alice not in out


def test_health_lists_deployments_to_the_master_key_only(gateway):
    response = gateway.get("/v1/gateway/health", headers=auth(MASTER_KEY))
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["firestore"]["status"] == "ok"
    assert {d["location"] for d in body["deployments"]} == {"us-central1", "europe-west4"}

    public = gateway.get("/v1/gateway/health").get_json()
    assert public["status"] == "ok" and public["deploymentCount"] == 4
    assert "deployments" not in public
    assert public["models"] == [
        "gemini-3.1-pro-preview",
        "gemini-3.5-flash-lite",
        "text-embedding-005",
    ]


def test_a_failing_record_write_is_retried_and_never_loses_the_job(
    gateway, gcp, alice, monkeypatch, capsys
):
    """Vertex has accepted the job: the record write is retried, and if Firestore never
    takes it the caller still gets the job and the log has all it takes to restore it."""
    from google.api_core import exceptions

    monkeypatch.setattr(records.time, "sleep", lambda _: None)
    real_batch = clients.firestore().batch
    failures = {"left": 2}

    def flaky_batch():
        batch = real_batch()
        commit = batch.commit

        def failing_commit(*args, **kwargs):
            names = [w.update.name for w in batch._write_pbs]
            if failures["left"] > 0 and not any("/intents/" in name for name in names):
                failures["left"] -= 1
                raise exceptions.ServiceUnavailable("firestore hiccup")
            return commit(*args, **kwargs)

        batch.commit = failing_commit
        return batch

    monkeypatch.setattr(clients.firestore(), "batch", flaky_batch)
    response = create(gateway, alice, job_body(gcp["bucket"]))
    assert response.status_code == 200
    assert records.get(job_id(response))["owner_alias"] == "alice"

    failures["left"] = 100
    capsys.readouterr()
    response = create(gateway, alice, job_body(gcp["bucket"]))
    assert response.status_code == 200
    lost = job_id(response)
    assert records.get(lost) is None
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line[:1] == "{"]
    [critical] = [e for e in entries if e["severity"] == "CRITICAL"]
    assert critical["job_id"] == lost and critical["owner_alias"] == "alice"
    assert critical["job_name"] == response.get_json()["name"]


def test_a_read_of_an_unchanged_job_writes_nothing(gateway, gcp, alice):
    """GET and list compare Vertex's job with the record they read (the list reads a field
    mask of it, passthrough.LIST_FIELDS): a job that did not move costs no write, no
    transaction."""
    jid = job_id(
        create(gateway, alice, job_body(gcp["bucket"], labels={"sim-fault": "stuck-queued"}))
    )
    wait_state(gateway, alice, jid, "JOB_STATE_QUEUED")
    gateway.get(f"{JOBS}/{jid}", headers=auth(alice))  # records what the last read saw
    written = records.job_ref(jid).get().update_time
    for _ in range(3):
        assert gateway.get(f"{JOBS}/{jid}", headers=auth(alice)).status_code == 200
        listed = gateway.get(JOBS, headers=auth(alice)).get_json()["batchPredictionJobs"]
        assert [job["name"].rsplit("/", 1)[-1] for job in listed] == [jid]
    assert records.job_ref(jid).get().update_time == written
