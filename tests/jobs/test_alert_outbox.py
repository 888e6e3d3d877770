"""Alerts exactly once to subscribers (shared/jobs/alert_outbox.py), on the emulators: the
claim holds the message before anything is published, every copy carries one `alert_id`,
a claim whose sender died is published from what it stored by the next sender or the sweep
once its lease is over, and a failed publish can be retried at once."""

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from google.cloud import pubsub_v1

from shared.core import clients
from shared.jobs import alert_outbox, alerts, events, records


class Killed(BaseException):
    """A process dying mid-publish: no `except Exception` runs, as under SIGKILL."""


@pytest.fixture
def watch(gcp):
    """The alerts topic and a pull subscription on it; returns a drain of what arrived."""
    clients.publisher().create_topic(name=clients.topic_path("batch-job-alerts"))
    subscriber = pubsub_v1.SubscriberClient()
    subscription = subscriber.subscription_path(gcp["project"], "watch")
    subscriber.create_subscription(name=subscription, topic=clients.topic_path("batch-job-alerts"))

    def drain(expected: int, settle: float = 1.0) -> list[tuple[dict, dict]]:
        received, deadline, quiet = [], time.monotonic() + 15, None
        while time.monotonic() < deadline:
            pulled = subscriber.pull(
                subscription=subscription, max_messages=20, return_immediately=True, timeout=5
            ).received_messages
            if pulled:
                subscriber.acknowledge(
                    subscription=subscription, ack_ids=[m.ack_id for m in pulled]
                )
                received += [
                    (dict(m.message.attributes), json.loads(m.message.data)) for m in pulled
                ]
                quiet = None
            elif len(received) >= expected:
                quiet = quiet or time.monotonic()
                if time.monotonic() - quiet > settle:
                    break
            time.sleep(0.1)
        return received

    return drain


def _send(name: str, body: dict | None = None, job_id: str = "1") -> str:
    return alerts.send(
        alert_id=name, kind="terminal", state="S", severity="INFO", job_id=job_id, body=body or {}
    )


def _crash_after_claim(monkeypatch, name: str, body: dict, job_id: str = "1") -> None:
    """Claim, then die before the publish returns (the claim stays pending)."""
    with monkeypatch.context() as patch:
        patch.setattr(events, "publish_alert_message", lambda *a: (_ for _ in ()).throw(Killed()))
        with pytest.raises(Killed):
            _send(name, body, job_id=job_id)


def test_every_copy_carries_one_alert_id_and_a_second_send_changes_nothing(gcp, watch):
    assert _send("7:terminal", {"text": "hello"}) == alerts.SENT
    assert _send("7:terminal", {"text": "again"}) == alerts.ALREADY
    [(attributes, body)] = watch(1)
    assert attributes["alert_id"] == body["alert_id"] == "7:terminal"
    assert (attributes["kind"], body["kind"], body["text"]) == ("terminal", "terminal", "hello")
    marker = alert_outbox.marker("7:terminal").get().to_dict()
    assert marker["status"] == "sent" and marker["message_id"]
    # An id of any length or character fits a Firestore id and a Pub/Sub attribute (1024 B).
    long = "9:tamper:gs://b/" + "x/" * 400 + "o#3"
    assert _send(long) == alerts.SENT
    [(attributes, body)] = watch(1)
    assert attributes["alert_id"] == body["alert_id"] == alert_outbox.alert_id(long)
    assert attributes["alert_id"].startswith("~") and len(attributes["alert_id"]) == 65


def test_a_claim_left_by_a_dead_sender_goes_out_once_its_lease_ends_with_the_stored_body(
    gcp, watch, monkeypatch
):
    _crash_after_claim(monkeypatch, "2:terminal", {"text": "first"})
    marker = alert_outbox.marker("2:terminal").get().to_dict()
    assert marker["status"] == "pending"
    assert json.loads(marker["data"])["alert_id"] == "2:terminal"
    assert _send("2:terminal", {"text": "second"}) == alerts.IN_FLIGHT  # inside the lease
    assert alert_outbox.resume() == 0
    assert watch(0, settle=0.5) == []

    later = datetime.now(UTC) + alert_outbox.LEASE + timedelta(seconds=1)
    assert alert_outbox.resume(now=later) == 1
    assert alert_outbox.resume(now=later) == 0  # sent: nothing left
    [(attributes, body)] = watch(1)
    assert body["text"] == "first" and attributes["alert_id"] == "2:terminal"
    marker = alert_outbox.marker("2:terminal").get().to_dict()
    assert (marker["status"], marker["takeovers"]) == ("sent", 1)
    assert _send("2:terminal") == alerts.ALREADY


def test_a_later_sender_takes_the_claim_over_after_the_lease_and_sends_what_was_stored(
    gcp, watch, monkeypatch
):
    _crash_after_claim(monkeypatch, "3:terminal", {"text": "stored"})
    ref = alert_outbox.marker("3:terminal")
    ref.update({"claimed": datetime.now(UTC) - alert_outbox.LEASE - timedelta(seconds=1)})
    assert _send("3:terminal", {"text": "new"}) == alerts.SENT
    [(_, body)] = watch(1)
    assert body["text"] == "stored"


def test_the_lease_is_seconds_not_minutes():
    assert timedelta(seconds=1) < alert_outbox.LEASE <= timedelta(seconds=15)


def test_a_failed_publish_releases_the_claim_so_the_next_try_goes_at_once(gcp, watch, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(
            events, "publish_alert_message", lambda *a: (_ for _ in ()).throw(RuntimeError("down"))
        )
        with pytest.raises(RuntimeError):
            _send("4:terminal", {"text": "kept"})
    marker = alert_outbox.marker("4:terminal").get().to_dict()
    assert marker["status"] == "pending" and marker["claimed"] == alert_outbox.RELEASED
    assert alert_outbox.resume() == 1  # no lease to wait out
    [(_, body)] = watch(1)
    assert body["text"] == "kept"


def test_of_two_takers_of_one_stale_claim_one_publishes(gcp, watch, monkeypatch):
    _crash_after_claim(monkeypatch, "5:terminal", {"text": "once"})
    later = datetime.now(UTC) + alert_outbox.LEASE + timedelta(seconds=1)
    stale = alert_outbox.marker("5:terminal").get()
    first = alert_outbox._take_over(stale, later, fallback=None)
    second = alert_outbox._take_over(stale, later, fallback=None)
    assert isinstance(first, alert_outbox._Claim) and second == alerts.IN_FLIGHT


def test_a_claim_from_before_the_outbox_is_taken_over_by_its_sender_after_five_minutes(gcp, watch):
    now = datetime.now(UTC)
    alert_outbox.marker("6:terminal").create({"status": "sending", "claimed": now})
    assert _send("6:terminal", {"text": "x"}) == alerts.IN_FLIGHT
    assert alert_outbox.resume(now=now + timedelta(hours=1)) == 0  # nothing stored to send
    alert_outbox.marker("6:terminal").update({"claimed": now - timedelta(minutes=6)})
    assert _send("6:terminal", {"text": "x"}) == alerts.SENT
    [(attributes, body)] = watch(1)
    assert body["text"] == "x" and attributes["alert_id"] == "6:terminal"


def test_the_job_records_the_alert_once_it_went_whoever_sent_it(gcp, watch, monkeypatch):
    records.job_ref("8").set({"job_id": "8", "alerts": {}})
    _crash_after_claim(monkeypatch, "8:terminal", {"text": "t"}, job_id="8")
    assert "terminal" not in records.get("8")["alerts"]
    alert_outbox.resume(now=datetime.now(UTC) + alert_outbox.LEASE + timedelta(seconds=1))
    assert isinstance(records.get("8")["alerts"]["terminal"], datetime)
    assert _send("9:budget", job_id="") == alerts.SENT  # an alert of no job: nothing to note
    assert len(watch(2)) == 2
