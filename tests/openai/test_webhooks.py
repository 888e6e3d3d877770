"""Webhooks per key (#26 item 5) on real parts: the gateway's routes, the emulators, the
simulator, and a receiver on 127.0.0.1 started by the fixture. Every delivery is verified
with the openai SDK's own `client.webhooks.unwrap(...)`, never with the gateway's signer."""

import time
from datetime import UTC, datetime, timedelta

import openai
import pytest

from shared.core import clients
from shared.jobs import job_end, lifecycle, records, ticks
from shared.openai import webhooks
from tests.jobs.test_alerts import Receiver
from tests.openai.test_openai_api import chat_line, create_batch, jsonl, sync_until_final, upload
from tests.support import (
    auth,
    create_key,
    gemini_request,
    job_body,
    upload_jsonl,
)

HOOKS = "/v1/gateway/webhooks"
JOBS = "/v1/projects/p/locations/us-central1/batchPredictionJobs"


def register(gateway, key, url, **fields) -> dict:
    reply = gateway.post(HOOKS, json={"url": url, **fields}, headers=auth(key))
    assert reply.status_code == 200, reply.get_json()
    return reply.get_json()


def unwrap(secret: str, headers: dict, body: bytes):
    """The SDK's verification: raises InvalidWebhookSignatureError on a bad signature."""
    client = openai.OpenAI(api_key="unused", webhook_secret=secret)
    return client.webhooks.unwrap(body.decode(), {k.lower(): v for k, v in headers.items()})


def run_batch(gateway, key, **create) -> dict:
    file_id = upload(gateway, key, jsonl([chat_line("a", "hi"), chat_line("b", "yo")]))
    batch = create_batch(gateway, key, file_id.get_json()["id"], **create).get_json()
    sync_until_final(batch["vertex_job_id"])
    return batch


# --- endpoints -------------------------------------------------------------------------------


def test_an_endpoint_shows_its_secret_once_and_only_to_its_key(gateway, alice, bob, receiver):
    made = register(gateway, alice, receiver.url, description="ci")
    assert made["secret"].startswith("whsec_") and made["id"].startswith("we_")
    listed = gateway.get(HOOKS, headers=auth(alice)).get_json()["webhooks"]
    assert [w["id"] for w in listed] == [made["id"]] and "secret" not in listed[0]
    got = gateway.get(f"{HOOKS}/{made['id']}", headers=auth(alice)).get_json()
    assert "secret" not in got and got["url"] == receiver.url
    assert gateway.get(f"{HOOKS}/{made['id']}", headers=auth(bob)).status_code == 404
    assert gateway.get(HOOKS, headers=auth(bob)).get_json()["webhooks"] == []
    assert gateway.delete(f"{HOOKS}/{made['id']}", headers=auth(bob)).status_code == 404
    assert gateway.delete(f"{HOOKS}/{made['id']}", headers=auth(alice)).status_code == 200
    assert gateway.get(HOOKS, headers=auth(alice)).get_json()["webhooks"] == []


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/hook",
        "https://10.0.0.8/hook",
        "https://169.254.169.254/computeMetadata",
        "https://[::1]/x",
        "https://user:pw@example.com/x",
        "ftp://example.com/x",
        "https://",
        "https://example.com:99999/x",
        "https://exa mple.com/x",
        "https://example.com/" + "x" * 2100,
        42,
        None,
    ],
)
def test_endpoints_a_key_may_not_register(gateway, alice, url):
    reply = gateway.post(HOOKS, json={"url": url}, headers=auth(alice))
    assert reply.status_code == 400, reply.get_json()
    assert reply.get_json()["error"]["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    "fields", [{"events": []}, {"events": ["batch.done"]}, {"events": "batch.failed"}, {"x": 1}]
)
def test_bad_event_filters_and_fields_are_refused(gateway, alice, receiver, fields):
    reply = gateway.post(HOOKS, json={"url": receiver.url, **fields}, headers=auth(alice))
    assert reply.status_code == 400


def test_a_key_has_at_most_ten_endpoints(gateway, alice, receiver):
    for _ in range(10):
        register(gateway, alice, receiver.url)
    assert gateway.post(HOOKS, json={"url": receiver.url}, headers=auth(alice)).status_code == 400


# --- events ----------------------------------------------------------------------------------


def test_the_batch_files_are_written_before_its_event_is_sent():
    order = [f"{h.__module__}.{h.__name__}" for h in job_end.hooks()]
    assert order.index("shared.openai.batches.finish_for_job") < order.index(
        "shared.openai.webhooks.on_job_end"
    )
    assert webhooks.deliver_due in ticks.hooks()


def test_a_completed_batch_sends_batch_completed_signed_as_openai_signs(
    gateway, alice, bob, receiver
):
    secret = register(gateway, alice, receiver.url)["secret"]
    other = Receiver()
    try:
        register(gateway, bob, other.url)
        batch = run_batch(gateway, alice)
        assert len(receiver.requests) == 1
        headers, body = receiver.requests[0]
        event = unwrap(secret, headers, body)
        assert event.type == "batch.completed" and event.data.id == batch["id"]
        assert event.object == "event" and event.id == headers["webhook-id"]
        assert abs(event.created_at - time.time()) < 60
        # the files were written before the event left
        done = gateway.get(f"/v1/batches/{batch['id']}", headers=auth(alice)).get_json()
        assert done["status"] == "completed" and done["output_file_id"]
        assert other.requests == []  # bob's endpoint hears nothing of alice's batch
        with pytest.raises(openai.InvalidWebhookSignatureError):
            unwrap(webhooks.new_secret(), headers, body)
        # the job's end again (events come at least once): no second delivery
        record = records.get(batch["vertex_job_id"])
        job_end.run(record)
        lifecycle.sync_tick()
        assert len(receiver.requests) == 1
    finally:
        other.stop()


@pytest.mark.parametrize(
    ("fault", "kind"), [("failed", "batch.failed"), ("expired", "batch.expired")]
)
def test_a_batch_that_ends_badly_sends_its_event(gateway, alice, receiver, fault, kind):
    secret = register(gateway, alice, receiver.url)["secret"]
    batch = run_batch(gateway, alice, metadata={"sim-fault": fault})
    (headers, body) = receiver.requests[0]
    event = unwrap(secret, headers, body)
    assert (event.type, event.data.id) == (kind, batch["id"])


def test_a_cancelled_batch_sends_batch_cancelled(gateway, alice, receiver):
    secret = register(gateway, alice, receiver.url)["secret"]
    file_id = upload(gateway, alice, jsonl([chat_line("a", "hi")])).get_json()["id"]
    batch = create_batch(gateway, alice, file_id, metadata={"sim-fault": "stuck-queued"})
    batch = batch.get_json()
    assert gateway.post(f"/v1/batches/{batch['id']}/cancel", headers=auth(alice)).status_code == 200
    sync_until_final(batch["vertex_job_id"])
    event = unwrap(secret, *receiver.requests[0])
    assert (event.type, event.data.id) == ("batch.cancelled", batch["id"])


def test_a_batch_refused_at_validation_sends_batch_failed_at_once(gateway, alice, receiver):
    secret = register(gateway, alice, receiver.url)["secret"]
    file_id = upload(gateway, alice, jsonl([chat_line("a", "hi"), chat_line("a", "dup")]))
    batch = create_batch(gateway, alice, file_id.get_json()["id"]).get_json()
    assert batch["status"] == "failed"
    event = unwrap(secret, *receiver.requests[0])
    assert (event.type, event.data.id) == ("batch.failed", batch["id"])


def test_a_vertex_door_job_sends_its_terminal_state(gateway, receiver, gcp):
    bucket = gcp["bucket"]
    carol = create_key(
        gateway,
        alias="carol",
        models=["gemini-3.5-flash-lite"],
        inputPrefixes=[f"gs://{bucket}/"],
        outputPrefixes=[f"gs://{bucket}/"],
    )
    secret = register(gateway, carol, receiver.url)["secret"]
    upload_jsonl(bucket, "in/input.jsonl", [gemini_request("hi")])
    created = gateway.post(JOBS, json=job_body(bucket), headers=auth(carol))
    assert created.status_code == 200, created.get_json()
    job_id = created.get_json()["name"].rsplit("/", 1)[-1]
    sync_until_final(job_id)
    event = unwrap(secret, *receiver.requests[0])
    assert event.type == "batch_prediction_job.succeeded"
    assert event.data.id == job_id and event.data.state == "JOB_STATE_SUCCEEDED"


def test_an_endpoint_hears_only_the_events_it_asked_for(gateway, alice, receiver):
    register(gateway, alice, receiver.url, events=["batch.failed"])
    run_batch(gateway, alice)
    assert receiver.requests == []


# --- durability ------------------------------------------------------------------------------


def deliveries(gateway, key, endpoint_id) -> list[dict]:
    reply = gateway.get(f"{HOOKS}/{endpoint_id}/deliveries", headers=auth(key))
    assert reply.status_code == 200, reply.get_json()
    return reply.get_json()["deliveries"]


def make_due(delivery_id: str, **fields) -> None:
    ref = clients.firestore().collection(webhooks.DELIVERIES).document(delivery_id)
    ref.update({"next_attempt_at": datetime.now(UTC) - timedelta(seconds=1), **fields})


def test_a_failed_delivery_is_retried_with_backoff_then_delivered(gateway, alice, receiver):
    receiver.statuses = [500, 503]
    endpoint = register(gateway, alice, receiver.url)
    run_batch(gateway, alice)
    [log] = deliveries(gateway, alice, endpoint["id"])
    assert log["status"] == "pending" and log["attempts"] == 1
    assert log["last_status_code"] == 500
    first = datetime.fromisoformat(log["last_attempt_at"])
    assert datetime.fromisoformat(log["next_attempt_at"]) - first == timedelta(seconds=60)
    # not due yet: the tick sends nothing
    lifecycle.sync_tick()
    assert len(receiver.requests) == 1
    make_due(log["id"])
    lifecycle.sync_tick()
    [log] = deliveries(gateway, alice, endpoint["id"])
    assert log["attempts"] == 2 and log["last_status_code"] == 503
    assert datetime.fromisoformat(log["next_attempt_at"]) - first == timedelta(seconds=300)
    make_due(log["id"])
    lifecycle.sync_tick()
    [log] = deliveries(gateway, alice, endpoint["id"])
    assert log["status"] == "delivered" and log["next_attempt_at"] is None
    assert [a["status_code"] for a in log["attempt_log"]] == [500, 503, 200]
    # one event id on every attempt, so the receiver can deduplicate
    assert len({h["webhook-id"] for h, _ in receiver.requests}) == 1
    for headers, body in receiver.requests:
        unwrap(endpoint["secret"], headers, body)


def test_a_delivery_gives_up_after_a_day(gateway, alice, receiver):
    receiver.statuses = [500] * 20
    endpoint = register(gateway, alice, receiver.url)
    run_batch(gateway, alice)
    [log] = deliveries(gateway, alice, endpoint["id"])
    first = log["attempt_log"][0]["at"]
    offsets = []
    while log["status"] == "pending":
        offsets.append(datetime.fromisoformat(log["next_attempt_at"]).timestamp() - first)
        make_due(log["id"])
        webhooks.deliver_due()
        [log] = deliveries(gateway, alice, endpoint["id"])
    # 1 min, 5 min, 30 min, 2 h, 5 h, 10 h, 24 h after the first attempt (seconds resolution)
    expected = [60, 300, 1800, 7200, 18000, 36000, 86400]
    assert [round(o) for o in offsets] in ([e + d for e in expected] for d in (0, 1))
    assert log["status"] == "failed" and log["attempts"] == 8 and log["next_attempt_at"] is None
    assert len(receiver.requests) == 8


def test_replay_sends_the_same_event_again_now(gateway, alice, receiver):
    endpoint = register(gateway, alice, receiver.url)
    run_batch(gateway, alice)
    [log] = deliveries(gateway, alice, endpoint["id"])
    assert log["status"] == "delivered"
    path = f"{HOOKS}/{endpoint['id']}/deliveries/{log['id']}:replay"
    replayed = gateway.post(path, headers=auth(alice))
    assert replayed.status_code == 200, replayed.get_json()
    assert replayed.get_json()["status"] == "delivered"
    assert len(receiver.requests) == 2
    (h1, b1), (h2, b2) = receiver.requests
    assert h1["webhook-id"] == h2["webhook-id"] and b1 == b2
    unwrap(endpoint["secret"], h2, b2)
    [log] = deliveries(gateway, alice, endpoint["id"])
    assert [a["replay"] for a in log["attempt_log"]] == [False, True]


def test_replay_and_the_log_are_the_keys_own(gateway, alice, bob, receiver):
    endpoint = register(gateway, alice, receiver.url)
    run_batch(gateway, alice)
    [log] = deliveries(gateway, alice, endpoint["id"])
    base = f"{HOOKS}/{endpoint['id']}/deliveries"
    assert gateway.get(base, headers=auth(bob)).status_code == 404
    assert gateway.post(f"{base}/{log['id']}:replay", headers=auth(bob)).status_code == 404
    assert gateway.post(f"{base}/wd_{'0' * 24}:replay", headers=auth(alice)).status_code == 404
    assert gateway.get(f"{base}?limit=0", headers=auth(alice)).status_code == 400
    assert gateway.get(f"{base}?after=nope", headers=auth(alice)).status_code == 404


def test_after_a_rotation_both_secrets_verify_for_a_day(gateway, alice, receiver):
    endpoint = register(gateway, alice, receiver.url)
    rotated = gateway.post(f"{HOOKS}/{endpoint['id']}:rotateSecret", headers=auth(alice))
    assert rotated.status_code == 200
    new_secret = rotated.get_json()["secret"]
    assert new_secret != endpoint["secret"]
    run_batch(gateway, alice)
    headers, body = receiver.requests[0]
    assert len(headers["webhook-signature"].split()) == 2
    unwrap(new_secret, headers, body)
    unwrap(endpoint["secret"], headers, body)


def test_a_delivery_to_a_deleted_endpoint_stops(gateway, alice, receiver):
    receiver.statuses = [500]
    endpoint = register(gateway, alice, receiver.url)
    run_batch(gateway, alice)
    [log] = deliveries(gateway, alice, endpoint["id"])
    gateway.delete(f"{HOOKS}/{endpoint['id']}", headers=auth(alice))
    make_due(log["id"])
    webhooks.deliver_due()
    doc = clients.firestore().collection(webhooks.DELIVERIES).document(log["id"]).get()
    assert doc.to_dict()["status"] == "failed" and len(receiver.requests) == 1
    # Firestore's TTL deletes the delivery 30 days after it was made (infra/firestore.tf)
    kept = doc.to_dict()["expire_at"] - doc.to_dict()["created_at"]
    assert kept == timedelta(days=30)


def test_a_slow_receiver_does_not_hold_up_the_jobs_end(gateway, alice, monkeypatch):
    """A receiver that answers after 10 s: the job's end waits at most ENQUEUE_WAIT_SECONDS
    (2 s here) for it, and the delivery stays pending for the tick to finish or retry."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    release = threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            release.wait(10)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(webhooks, "ENQUEUE_WAIT_SECONDS", 2)
        # a read timeout longer than the receiver's delay: only the bounded wait helps
        monkeypatch.setattr(webhooks, "TIMEOUT", (3, 30))
        endpoint = register(gateway, alice, f"http://127.0.0.1:{server.server_address[1]}/h")
        file_id = upload(gateway, alice, jsonl([chat_line("a", "hi")])).get_json()["id"]
        batch = create_batch(gateway, alice, file_id).get_json()
        deadline = time.monotonic() + 30
        while not records.get(batch["vertex_job_id"]).get("terminal"):
            lifecycle.sync_job(batch["vertex_job_id"])
            assert time.monotonic() < deadline
            time.sleep(0.05)
        started = time.monotonic()
        lifecycle.sync_job(batch["vertex_job_id"])  # the job's end: files, then the event
        assert time.monotonic() - started < 8
        [log] = deliveries(gateway, alice, endpoint["id"])
        assert log["status"] == "pending"
    finally:
        release.set()
        server.shutdown()
        server.server_close()
