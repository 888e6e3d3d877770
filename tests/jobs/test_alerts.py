"""Alerts on real parts: what lands on `batch-job-alerts` (and a webhook) for terminal,
stuck and budget events, once each."""

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shared.cost.pricing import nanos_to_usd
from shared.jobs import alerts, records, webhooks
from tests.jobs.lifecycle_support import JOBS_PATH, make_world
from tests.support import MASTER_KEY, auth, create_key

SECRET = "webhook-test-secret"


class Receiver:
    """A tiny webhook receiver on 127.0.0.1: answers the queued statuses, then 200."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.requests: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def bodies(self) -> list[dict]:
        return [json.loads(body) for _, body in self.requests]


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.stop()


def by_job(found):
    return {attributes["job_id"]: (attributes, body) for attributes, body in found}


def test_failed_cancelled_expired_each_one_terminal_alert_with_the_error(
    gcp, monkeypatch, tmp_path, receiver
):
    world = make_world(
        gcp,
        monkeypatch,
        tmp_path,
        speed=0.1,
        env={"VBG_ALERT_WEBHOOK_URL": receiver.url, "VBG_ALERT_WEBHOOK_SECRET": SECRET},
    )
    try:
        failed = world.create(labels={"sim-fault": "failed", "cost-center": "cc-7"})
        expired = world.create(labels={"sim-fault": "expired"})
        cancelled = world.create(labels={"sim-fault": "stuck-queued"})
        world.wait_sim(cancelled, "JOB_STATE_QUEUED")
        response = world.gateway.post(f"{JOBS_PATH}/{cancelled}:cancel", headers=auth(world.key))
        assert response.status_code == 200
        for job_id in (failed, expired, cancelled):
            world.drive(job_id)
        for _ in range(2):
            world.tick()
        found = world.alerts()
        as_vertex_reports = world.gateway.get(f"{JOBS_PATH}/{cancelled}", headers=auth(world.key))
        cancelled_error = as_vertex_reports.get_json().get("error")
    finally:
        world.sim.stop()

    assert len(found) == 3, found
    got = by_job(found)
    assert set(got) == {failed, expired, cancelled}
    assert {a["kind"] for a, _ in found} == {"terminal"}

    attributes, body = got[failed]
    assert attributes["state"] == "JOB_STATE_FAILED"
    assert attributes["severity"] == "ERROR"
    assert body["error"]["code"] == 13
    assert "Internal error" in body["text"]
    assert body["labels"]["cost-center"] == "cc-7"
    assert body["owner_alias"] == "alice" and body["team"] == "Data Science"
    assert body["model"] == "gemini-3.5-flash-lite"
    assert body["display_name"] == "test-job"
    assert body["cost"]["usd"] == "0.000000000"
    assert body["console_url"] == (
        "https://console.cloud.google.com/vertex-ai/locations/us-central1/"
        f"batch-predictions/{failed}?project=proj-a"
    )
    assert body["start_time"] and body["end_time"] and body["duration_seconds"] is not None

    attributes, body = got[expired]
    assert attributes["state"] == "JOB_STATE_EXPIRED"
    assert body["error"]["code"] == 4

    attributes, body = got[cancelled]
    assert attributes["state"] == "JOB_STATE_CANCELLED"
    assert attributes["severity"] == "WARNING"
    assert "ended CANCELLED" in body["text"]
    # The alert carries the job's error as Vertex reports it, never one of its own: on a
    # cancel, Vertex (and the simulator) set code 1, CANCELED.
    assert cancelled_error == {"code": 1, "message": "CANCELED"}
    assert body["error"] == cancelled_error
    assert "error 1: CANCELED" in body["text"]

    for job_id in (failed, expired, cancelled):
        assert records.get(job_id)["alerts"]["terminal"]

    # The same alerts, signed, on the webhook.
    assert sorted(b["job_id"] for b in receiver.bodies()) == sorted([failed, expired, cancelled])
    for headers, raw in receiver.requests:
        assert webhooks.verify(raw, SECRET, headers.get(webhooks.SIGNATURE_HEADER))
        assert json.loads(raw)["text"].startswith("Batch job ")


def test_a_job_stuck_in_queued_gives_one_stuck_alert(gcp, monkeypatch, tmp_path):
    # 0.0003 h is about a second.
    world = make_world(
        gcp, monkeypatch, tmp_path, speed=0.1, env={"VBG_STUCK_QUEUED_HOURS": "0.0003"}
    )
    try:
        job_id = world.create(labels={"sim-fault": "stuck-queued"})
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            world.tick()
            time.sleep(0.1)
        found = world.alerts()
    finally:
        world.sim.stop()
    assert [(a["kind"], a["job_id"]) for a, _ in found] == [("stuck", job_id)]
    attributes, body = found[0]
    assert attributes["state"] == "JOB_STATE_QUEUED"
    assert attributes["severity"] == "WARNING"
    assert "QUEUED for" in body["text"] and "0.0003 h limit" in body["text"]
    assert records.get(job_id)["alerts"]["stuck"]


def test_budget_alerts_at_80_and_100_percent_once_each(gcp, monkeypatch, tmp_path):
    world = make_world(gcp, monkeypatch, tmp_path, speed=0.1)
    try:
        # The simulator's usage is deterministic: one job tells what an identical one costs.
        calibration = world.drive(world.create(rows=2))
        one_job = calibration["cost"]["cost_nanos"]
        assert one_job > 0
        bob = create_key(
            world.gateway,
            alias="bob",
            team="Search",
            inputPrefixes=[f"gs://{gcp['bucket']}/in/"],
            outputPrefixes=[f"gs://{gcp['bucket']}/out/"],
        )
        first = world.create(rows=2, key=bob)
        key_id = records.get(first)["owner_key_id"]
        budget = nanos_to_usd(math.ceil(one_job * 10 / 9))

        def set_budget(value):
            response = world.gateway.patch(
                f"/v1/gateway/keys/{key_id}",
                json={"budgetUsd": value, "budgetPeriod": "day"},
                headers=auth(MASTER_KEY),
            )
            assert response.status_code == 200, response.get_data(as_text=True)

        # One job is 90% of the budget, two are 180%. The budget is set only after each
        # create, so that admission (which counts estimates) does not refuse the second.
        set_budget(budget)
        world.alerts(settle=0.2)  # the calibration job's terminal alert
        world.drive(first)
        after_first = [b for a, b in world.alerts() if a["kind"] == "budget"]
        set_budget(None)
        second = world.create(rows=2, key=bob)
        set_budget(budget)
        world.drive(second)
        world.tick()
        after_second = [b for a, b in world.alerts() if a["kind"] == "budget"]
        assert alerts.check_budget_alerts(key_id=key_id, team="Search") == []
        repeated = world.alerts(settle=0.3)
    finally:
        world.sim.stop()

    assert [b["threshold_percent"] for b in after_first] == [80]
    assert [b["threshold_percent"] for b in after_second] == [100]
    assert repeated == []
    alert = after_second[0]
    assert alert["scope"] == "key"
    assert alert["key_id"] == key_id and alert["alias"] == "bob" and alert["team"] == "Search"
    assert alert["budget_usd"] == budget
    # Spend grows as the second job's rows land (incremental files first): the alert fires
    # on the file that crossed 100%, with the spend at that moment.
    assert math.ceil(one_job * 10 / 9) <= alert["spent_nanos"] <= 2 * one_job
    assert "refused" in alert["text"]


def test_webhook_retries_with_backoff_and_signs(receiver):
    receiver.statuses = [503, 500]
    alert = {"kind": "terminal", "job_id": "42", "text": "Batch job 42 ended"}
    assert webhooks.deliver(alert, severity="ERROR", url=receiver.url, secret=SECRET, base_delay=0)
    assert len(receiver.requests) == 3
    headers, raw = receiver.requests[-1]
    assert headers["X-VBG-Signature"] == webhooks.sign(raw, SECRET)
    assert json.loads(raw) == {**alert, "severity": "ERROR"}


def test_webhook_gives_up_after_bounded_attempts_and_on_client_errors(receiver):
    receiver.statuses = [503] * 10
    assert not webhooks.deliver(
        {"text": "x"}, url=receiver.url, secret="", attempts=3, base_delay=0
    )
    assert len(receiver.requests) == 3
    assert "X-VBG-Signature" not in receiver.requests[0][0]
    receiver.requests.clear()
    receiver.statuses = [400]
    assert not webhooks.deliver({"text": "x"}, url=receiver.url, secret="", base_delay=0)
    assert len(receiver.requests) == 1


# Issue #22 item 12: what a key holder wrote reaches the webhook as text, not markup.
HOSTILE_NAME = (
    "<!channel> <https://evil.example/|open the console> [click](https://evil.example) "
    "@here @ana\nBatch job 1 ended SUCCEEDED; cost $0 \u202egnp.exe & more"
)


def test_user_text_reaches_webhooks_escaped_for_slack_and_markdown(receiver):
    job = {
        "job_id": "7",
        "name": "projects/p/locations/us-central1/batchPredictionJobs/7",
        "display_name": HOSTILE_NAME,
        "model": "gemini-2.5-flash",
        "owner_alias": "ana",
        "state": "JOB_STATE_SUCCEEDED",
        "terminal": True,
        "error": {"code": 3, "message": "line 1: <@U123> is not a field"},
    }
    body = alerts.job_alert_body(job, "terminal")
    assert webhooks.deliver({"kind": "terminal", **body}, url=receiver.url, secret="", base_delay=0)
    sent = receiver.bodies()[0]
    text = sent["text"]
    # Slack: its three control characters as entities, so no ping, no disguised link.
    assert "<" not in text and ">" not in text
    assert "&lt;!channel&gt; &lt;https://evil.example/|open the console&gt;" in text
    assert "&lt;@\u2060U123&gt;" in text and "$0 gnp.exe &amp; more" in text
    # Markdown receivers: no `[label](url)` link, no bare mention.
    assert "](" not in text and "[click]\u2060(https://evil.example)" in text
    assert "@\u2060here @\u2060ana" in text
    # One line, nothing reordered; the console link the gateway adds is intact.
    assert "\n" not in text and "\u202e" not in text
    assert text.endswith(
        " https://console.cloud.google.com/vertex-ai/locations/us-central1/"
        "batch-predictions/7?project=p"
    )
    # The fields stay as they are: JSON values, not markup.
    assert sent["display_name"] == HOSTILE_NAME and body["text"].count("\n") == 1
