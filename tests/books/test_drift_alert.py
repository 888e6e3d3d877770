"""The daily reconciliation (shared/jobs/drift.py) through `on_job_event`'s message handler:
one `drift` alert for a day whose drift is over the threshold, none for a day within it,
none again on a second run (Firestore, Pub/Sub and BigQuery emulators)."""

import base64
import json
from datetime import date

import pytest
from google.cloud import pubsub_v1

from shared.core import clients
from shared.jobs import drift, lifecycle
from tests.books.test_reconcile import MATCHING, _charge, tables  # noqa: F401 (fixture)
from tests.support import reset_process

pytestmark = pytest.mark.emulators


@pytest.fixture
def alerts_inbox(gcp, bq, tables, monkeypatch):  # noqa: F811
    _, billing, books = tables
    monkeypatch.setenv("VBG_BILLING_TABLE", billing)
    monkeypatch.setenv("VBG_BOOKS_DATASET", books)
    monkeypatch.setenv("VBG_DRIFT_THRESHOLD_PCT", "5")
    monkeypatch.setenv("VBG_RECONCILE_LAG_DAYS", "2")
    reset_process()
    clients.publisher().create_topic(name=clients.topic_path("batch-job-alerts"))
    subscriber = pubsub_v1.SubscriberClient()
    inbox = subscriber.subscription_path(gcp["project"], "drift-inbox")
    subscriber.create_subscription(name=inbox, topic=clients.topic_path("batch-job-alerts"))

    def received() -> list[dict]:
        reply = subscriber.pull(subscription=inbox, max_messages=10, timeout=10)
        if reply.received_messages:
            subscriber.acknowledge(
                subscription=inbox, ack_ids=[m.ack_id for m in reply.received_messages]
            )
        return [
            {"attributes": dict(m.message.attributes), "body": json.loads(m.message.data)}
            for m in reply.received_messages
        ]

    return received


def test_one_drift_alert_for_a_day_over_the_threshold(tables, alerts_inbox):  # noqa: F811
    client, billing, _ = tables
    extra = _charge(None, "Gemini 3.5 Flash-Lite Batch Output Text", 0.25, day="2026-12-03")
    assert client.insert_rows_json(billing, [*MATCHING, extra]) == []
    # 2026-12-05, two days back: 2026-12-03, where the extra charge is.
    assert drift.daily(today=date(2026, 12, 5)) == "sent"
    [alert] = alerts_inbox()
    assert alert["attributes"]["kind"] == "drift" and alert["attributes"]["state"] == "DRIFT"
    body = alert["body"]
    assert body["day"] == "2026-12-03" and body["drift_usd"] == "0.250000000"
    assert body["booked_usd"] == "0.000132050"  # jobs 101 and 102: 104,050 + 28,000 nanos
    assert [g["model"] for g in body["groups"]] == ["gemini-3.5-flash-lite"]
    assert drift.daily(today=date(2026, 12, 5)) == "already"
    # The day after holds job 103 only, billed as booked: within the threshold.
    assert drift.daily(today=date(2026, 12, 6)) == "within"
    assert alerts_inbox() == []


def test_the_scheduled_message_runs_it(tables, alerts_inbox, monkeypatch):  # noqa: F811
    client, billing, _ = tables
    assert client.insert_rows_json(billing, MATCHING) == []
    ran = []
    monkeypatch.setattr(drift, "daily", lambda: ran.append(1) or "within")
    data = base64.b64encode(json.dumps({"type": "reconcile"}).encode()).decode()
    assert (
        lifecycle.handle_message(message_id="m1", data=data, attributes={"type": "reconcile"})
        == "within"
    )
    assert ran == [1]


def test_without_a_billing_table_it_does_nothing(gcp, monkeypatch):
    monkeypatch.delenv("VBG_BILLING_TABLE", raising=False)
    reset_process()
    assert drift.daily(today=date(2026, 12, 5)) == "off"
