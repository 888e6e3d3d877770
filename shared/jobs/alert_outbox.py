"""Alerts exactly once to subscribers: a durable claim that holds the message, then the publish.

Pub/Sub delivers at least once, and a process killed after a publish cannot know whether the
publish went. So an alert is exactly once in the only way a subscriber can check: every
alert carries an `alert_id`, as a message attribute and as a body field, the same on every
copy of it; a subscriber keeps the ids it has acted on and drops a message whose id it has
seen (docs/alerts.md says what subscribers must do). The gateway publishes an alert once,
unless a process dies between its publish and the mark below; then it publishes the same
message again, byte for byte, id included.

One alert, one document `alerts_sent/{alert_id}` (the id is the document id: printable,
at most 500 bytes or `~` + a sha256, shared/core/docids.py, so it fits an attribute value):

1. claim: the document is created, with a precondition (one claim per id), holding the
   whole message (`data`: the body's JSON text as published; `attributes`), `status:
   pending` and `claimed` (now). Nothing is published before this commit has returned;
2. publish the stored message;
3. mark: `status: sent`, the message id, and `alerts.{kind}` on the job.

A crash at any point:
- before 1 returns: nothing was claimed or sent; the caller's next run claims it (the
  event's redelivery, the next sync tick);
- between 1 and 3: the claim stays `pending`. A sender of the same alert, or the sweep that
  every sync tick runs (`resume`), takes it over once it is older than `LEASE` (by a
  precondition on the claim's update time, so one taker wins) and publishes the stored
  message. `LEASE` is 10 s: a publish takes milliseconds, and Pub/Sub's push retry waits at
  least 10 s by default before redelivering the event the dead process held, so that
  redelivery finds the lease over and resumes the alert at once; otherwise the next tick
  does. A live sender slower than the lease (Pub/Sub answering slowly) can be taken over:
  a duplicate on the wire then, with the same id;
- after 3: done; a later sender finds `sent` and stops.
A publish that fails (Pub/Sub unavailable) releases the claim at once (`claimed` set back,
the message kept) and raises, so the next run publishes without waiting out the lease.

Whoever holds a claim, the alert is durable from step 1 on: a caller that finds one in
flight (`IN_FLIGHT`) may go on as if it were sent (the lifecycle then sets the job's final
cost without waiting for it).

Claims written before this module (`status: sending`, no stored message) are taken over by
their own sender after `LEGACY_LEASE`, with the sender's message; the sweep leaves them be.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.core import clients, docids, logs
from shared.core.config import settings
from shared.jobs import events

MARKERS = "alerts_sent"
LEASE = timedelta(seconds=10)
LEGACY_LEASE = timedelta(minutes=5)
RESUME_LIMIT = 100
PENDING, SENT, LEGACY_PENDING = "pending", "sent", "sending"
RELEASED = datetime(1970, 1, 1, tzinfo=UTC)

SENT_NOW = "sent"
ALREADY = "already"
IN_FLIGHT = "in_flight"


@dataclass(frozen=True)
class Message:
    """One alert as published: the body's bytes and the attributes, `alert_id` in both."""

    alert_id: str
    kind: str
    job_id: str
    severity: str
    data: bytes
    attributes: dict[str, str]

    def stored(self) -> dict:
        return {
            "alert_id": self.alert_id,
            "kind": self.kind,
            "job_id": self.job_id,
            "severity": self.severity,
            "state": self.attributes.get("state"),
            "data": self.data.decode(),
            "attributes": dict(self.attributes),
        }

    @classmethod
    def of(cls, marker: dict) -> "Message":
        return cls(
            alert_id=marker["alert_id"],
            kind=marker["kind"],
            job_id=marker.get("job_id") or "",
            severity=marker.get("severity") or "INFO",
            data=marker["data"].encode(),
            attributes=dict(marker["attributes"]),
        )


def alert_id(name: str) -> str:
    """The id subscribers dedupe on, from the alert's name (`1234:terminal`, a tamper alert's
    `1234:tamper:gs://b/o#7`, a budget's `budget:key:...`): the marker's document id."""
    return docids.doc_id(name.replace("/", "_"))


def message(*, name: str, kind: str, state: str, severity: str, job_id: str, body: dict):
    """The alert as it will be published (a new body: `kind` and `alert_id` first)."""
    identifier = alert_id(name)
    data, attributes = events.alert_message(
        kind=kind, state=state, severity=severity, job_id=job_id, alert_id=identifier, body=body
    )
    return Message(identifier, kind, job_id, severity, data, attributes)


def marker(identifier: str):
    return clients.firestore().collection(MARKERS).document(identifier)


def send(alert: Message, *, now: datetime | None = None) -> str:
    """Claim, publish, mark (see the module docstring). Returns SENT_NOW, ALREADY or
    IN_FLIGHT; a failed publish raises (the claim released, the message kept)."""
    claimed = _claim(alert, now or datetime.now(UTC))
    if isinstance(claimed, str):
        logs.info("alert not sent again", alert_id=alert.alert_id, kind=alert.kind, why=claimed)
        return claimed
    _publish(claimed)
    return SENT_NOW


@dataclass(frozen=True)
class _Claim:
    """A claim this process holds: the message to publish and the claim's write time."""

    message: Message
    update_time: object


def _claim(alert: Message, now: datetime) -> _Claim | str:
    from google.api_core import exceptions

    ref = marker(alert.alert_id)
    try:
        written = ref.create({**alert.stored(), "status": PENDING, "claimed": now})
        return _Claim(alert, written.update_time)
    except exceptions.AlreadyExists:
        pass
    snapshot = ref.get()
    return _take_over(snapshot, now, fallback=alert)


def _take_over(snapshot, now: datetime, *, fallback: Message | None) -> _Claim | str:
    """Take a claim whose lease ran out; its stored message is what goes out (a legacy claim
    has none: the sender's own, stored with the takeover)."""
    from google.api_core import exceptions

    stored = snapshot.to_dict() or {}
    if stored.get("status") == SENT:
        return ALREADY
    legacy = not stored.get("data")
    lease = LEGACY_LEASE if legacy else LEASE
    claimed = stored.get("claimed")
    if isinstance(claimed, datetime) and now - claimed < lease:
        return IN_FLIGHT
    alert = fallback if legacy else Message.of(stored)
    if alert is None:  # a claim from before claims held their message, and none to send
        return IN_FLIGHT
    change = {"claimed": now, "takeovers": int(stored.get("takeovers") or 0) + 1}
    if legacy:
        change.update({**alert.stored(), "status": PENDING})
    try:
        written = snapshot.reference.update(
            change,
            option=clients.firestore().write_option(last_update_time=snapshot.update_time),
        )
    except (exceptions.FailedPrecondition, exceptions.Aborted, exceptions.NotFound):
        return IN_FLIGHT
    logs.warning(
        "alert claim taken over; publishing its stored message",
        alert_id=alert.alert_id,
        kind=alert.kind,
        job_id=alert.job_id,
        takeovers=change["takeovers"],
    )
    return _Claim(alert, written.update_time)


def _publish(claim: _Claim) -> str:
    alert = claim.message
    try:
        message_id = events.publish_alert_message(alert.data, alert.attributes)
    except Exception:
        _release(claim)
        raise
    now = datetime.now(UTC)
    marker(alert.alert_id).update({"status": SENT, "sent": now, "message_id": message_id})
    _note_on_job(alert, now)
    body = json.loads(alert.data)
    logs.log(
        alert.severity if alert.severity in ("INFO", "WARNING", "ERROR", "CRITICAL") else "INFO",
        "alert sent",
        alert_id=alert.alert_id,
        kind=alert.kind,
        state=alert.attributes.get("state"),
        job_id=alert.job_id,
        message_id=message_id,
        cost_usd=(body.get("cost") or {}).get("usd"),
    )
    if settings().alert_webhook_url:
        from shared.jobs import webhooks

        webhooks.deliver(body, severity=alert.severity)
    return message_id


def _release(claim: _Claim) -> None:
    """Not published: the next run may take the claim at once (unless someone already has)."""
    from google.api_core import exceptions

    try:
        marker(claim.message.alert_id).update(
            {"claimed": RELEASED},
            option=clients.firestore().write_option(last_update_time=claim.update_time),
        )
    except (exceptions.FailedPrecondition, exceptions.Aborted, exceptions.NotFound):
        pass
    except Exception as exc:
        logs.warning("alert claim not released", alert_id=claim.message.alert_id, error=repr(exc))


def _note_on_job(alert: Message, now: datetime) -> None:
    """`alerts.{kind}` on the job (what `check_stuck` and the unpriced alert look at first)."""
    if not alert.job_id:
        return
    from google.api_core import exceptions

    from shared.jobs import records

    try:
        records.job_ref(alert.job_id).update({f"alerts.{alert.kind}": now})
    except exceptions.NotFound:
        logs.warning("alert of a job without a record", alert_id=alert.alert_id)


def resume(*, now: datetime | None = None, limit: int = RESUME_LIMIT) -> int:
    """Publish every claim left pending past its lease (its sender died); part of every sync
    tick. Returns how many were published here. Each claim is isolated: one failing to
    publish is released and left for the next tick."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    now = now or datetime.now(UTC)
    query = (
        clients.firestore()
        .collection(MARKERS)
        .where(filter=FieldFilter("status", "==", PENDING))
        .limit(limit)
    )
    published = 0
    for snapshot in query.stream():
        claimed = _take_over(snapshot, now, fallback=None)
        if isinstance(claimed, str):
            continue
        try:
            _publish(claimed)
            published += 1
        except Exception as exc:
            logs.error("resumed alert not published", alert_id=snapshot.id, error=repr(exc))
    if published:
        logs.warning("alerts resumed after their sender died", published=published)
    return published
