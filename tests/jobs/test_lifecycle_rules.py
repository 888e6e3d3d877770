"""The pure rules of on_job_event and alerts: decoding, error classes, alert text, limits."""

import base64
import hmac
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import requests
from google.api_core import exceptions

from shared.core.errors import ApiError
from shared.cost.pricing import nanos_to_usd
from shared.jobs import alerts, budgets, lifecycle, webhooks

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def b64(value) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def test_decode_reads_base64_json_objects_and_rejects_the_rest():
    assert lifecycle.decode(b64({"type": "sync"})) == {"type": "sync"}
    assert lifecycle.decode(None) == {}
    assert lifecycle.decode("") == {}
    for bad in ("%%%", b64([1, 2]), base64.b64encode(b"{nope").decode()):
        with pytest.raises(lifecycle.MalformedMessage):
            lifecycle.decode(bad)


@pytest.mark.parametrize(
    "exc",
    [
        exceptions.ServiceUnavailable("down"),
        exceptions.DeadlineExceeded("slow"),
        exceptions.Aborted("contention"),
        ApiError(503, "vertex unreachable"),
        ApiError(429, "quota"),
        requests.ConnectionError("refused"),
        TimeoutError(),
    ],
)
def test_outages_are_transient(exc):
    assert lifecycle.is_transient(exc)


@pytest.mark.parametrize(
    "exc",
    [KeyError("name"), ValueError("x"), exceptions.InvalidArgument("bad"), ApiError(400, "bad")],
)
def test_bad_data_and_bugs_are_not_transient(exc):
    assert not lifecycle.is_transient(exc)


def test_handle_message_raises_transient_and_acks_permanent_failures(monkeypatch):
    def outage(job_id, **_):
        raise exceptions.ServiceUnavailable("firestore down")

    monkeypatch.setattr(lifecycle, "sync_job", outage)
    # job.cancel_requested: a plain sync of one job (job.created also backfills an estimate).
    attributes = {"type": "job.cancel_requested", "job_id": "123"}
    with pytest.raises(exceptions.ServiceUnavailable):
        lifecycle.handle_message(message_id="1", data=None, attributes=attributes)

    def bug(job_id, **_):
        raise KeyError("name")

    monkeypatch.setattr(lifecycle, "sync_job", bug)
    assert lifecycle.handle_message(message_id="2", data=None, attributes=attributes) == "failed"


def test_handle_message_acks_malformed_and_unknown_without_touching_anything():
    assert lifecycle.handle_message(message_id="1", data="%%", attributes={}) == "malformed"
    assert lifecycle.handle_message(message_id="2", data=b64({"type": "x"}), attributes={}) == (
        "unknown"
    )
    job_event = {"type": "job.created", "job_id": "../../etc"}
    assert lifecycle.handle_message(message_id="3", data=b64(job_event), attributes={}) == (
        "malformed"
    )


def test_usd_is_an_exact_decimal_string():
    assert nanos_to_usd(0) == "0.000000000"
    assert nanos_to_usd(1_234_500) == "0.001234500"
    assert nanos_to_usd(12 * 10**9 + 1) == "12.000000001"


def job(**fields) -> dict:
    return {
        "job_id": "42",
        "name": "projects/proj-a/locations/europe-west4/batchPredictionJobs/42",
        "display_name": "nightly",
        "model": "gemini-3.5-flash-lite",
        "owner_alias": "alice",
        "team": "search",
        "labels": {"env": "prod"},
        "create_time": NOW - timedelta(hours=2),
        "state_history": [],
        **fields,
    }


def test_terminal_body_has_what_a_person_needs():
    body = alerts.job_alert_body(
        job(
            state="JOB_STATE_FAILED",
            terminal=True,
            start_time="2025-03-10T10:30:00Z",
            end_time="2025-03-10T11:00:00Z",
            completion_stats={"successfulCount": "2", "failedCount": "1"},
            error={"code": 13, "message": "boom"},
            cost={"cost_nanos": 1_500_000, "prompt_tokens": 100, "candidates_tokens": 20},
        ),
        "terminal",
        now=NOW,
    )
    assert body["console_url"] == (
        "https://console.cloud.google.com/vertex-ai/locations/europe-west4/"
        "batch-predictions/42?project=proj-a"
    )
    assert body["duration_seconds"] == 1800
    assert body["cost"]["usd"] == "0.001500000"
    assert body["tokens"]["prompt_tokens"] == 100
    assert body["error"] == {"code": 13, "message": "boom"}
    text = body["text"]
    assert "42 (nightly, gemini-3.5-flash-lite) of alice (search) ended FAILED after 30m 0s" in text
    assert "$0.001500000" in text and "error 13: boom" in text


def test_stuck_rules_queued_from_create_running_from_start():
    hours = {"queued_hours": Decimal(6), "running_hours": Decimal(24)}
    assert alerts.stuck_reason(job(state="JOB_STATE_QUEUED"), now=NOW, **hours) is None
    late = job(state="JOB_STATE_PENDING", create_time=NOW - timedelta(hours=7))
    assert "longer than the 6 h limit" in alerts.stuck_reason(late, now=NOW, **hours)
    running = job(
        state="JOB_STATE_RUNNING",
        create_time=NOW - timedelta(hours=30),
        start_time=(NOW - timedelta(hours=5)).isoformat(),
    )
    assert alerts.stuck_reason(running, now=NOW, **hours) is None
    running["start_time"] = (NOW - timedelta(hours=25)).isoformat()
    assert alerts.stuck_reason(running, now=NOW, **hours)
    assert alerts.stuck_reason(job(state="JOB_STATE_SUCCEEDED"), now=NOW, **hours) is None


def test_budget_periods_and_thresholds():
    def named(period: str, today: date) -> tuple:
        budget = budgets.Budget("key", "k", "alice", "1", period)
        at = datetime.combine(today, datetime.min.time(), UTC)
        return (*budget.bounds(at), budget.period_name(at))

    assert named("day", date(2025, 2, 28)) == (
        date(2025, 2, 28),
        date(2025, 2, 28),
        "2025-02-28",
    )
    assert named("month", date(2024, 2, 10)) == (
        date(2024, 2, 1),
        date(2024, 2, 29),
        "2024-02",
    )
    assert named("none", date(2025, 1, 1))[2] == "all-time"
    assert alerts.crossed_thresholds(0, 0) == []
    assert alerts.crossed_thresholds(79, 100) == []
    assert alerts.crossed_thresholds(80, 100) == [80]
    assert alerts.crossed_thresholds(100, 100) == [80, 100]


def test_webhook_signature_is_hmac_sha256_of_the_body():
    body = b'{"text":"hi"}'
    signature = webhooks.sign(body, "s3cret")
    assert signature == "sha256=" + hmac.new(b"s3cret", body, "sha256").hexdigest()
    assert webhooks.verify(body, "s3cret", signature)
    assert not webhooks.verify(body + b" ", "s3cret", signature)
    assert not webhooks.verify(body, "s3cret", None)
