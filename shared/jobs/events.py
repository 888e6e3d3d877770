"""Messages on `batch-job-events` (what happened) and `batch-job-alerts` (what a person
should know). Bodies are JSON; attributes carry what subscribers filter on."""

import json

from shared.core import clients, logs
from shared.core.config import settings

PUBLISH_TIMEOUT = 30


def publish_job_event(event_type: str, job_id: str, **fields) -> str | None:
    """Best effort: the sync tick finds every job anyway, so a lost event only delays."""
    return settle(start_job_event(event_type, job_id, **fields))


def publish_event(event_type: str, **ids: str) -> str | None:
    """Best effort, like a job event: `{"type": ..., **ids}` on `batch-job-events`, the ids
    also as attributes (a run's events carry `run_id`: shared/runs/)."""
    message = {"type": event_type, **ids}
    data = json.dumps(message, separators=(",", ":")).encode()
    try:
        topic = clients.topic_path(settings().events_topic)
        return clients.publisher().publish(topic, data, **message).result(timeout=PUBLISH_TIMEOUT)
    except Exception as exc:
        logs.error("event not published", type=event_type, error=repr(exc), **ids)
        return None


def start_job_event(event_type: str, job_id: str, **fields):
    """Begin publishing and return at once, so the caller can overlap its own writes."""
    body = {"type": event_type, "job_id": job_id, **fields}
    data = json.dumps(body, default=str, separators=(",", ":")).encode()
    try:
        future = clients.publisher().publish(
            clients.topic_path(settings().events_topic), data, type=event_type, job_id=job_id
        )
    except Exception as exc:
        logs.error("job event not published", type=event_type, job_id=job_id, error=repr(exc))
        return None
    return (future, event_type, job_id)


def settle(pending) -> str | None:
    if pending is None:
        return None
    future, event_type, job_id = pending
    try:
        return future.result(timeout=PUBLISH_TIMEOUT)
    except Exception as exc:
        logs.error("job event not published", type=event_type, job_id=job_id, error=repr(exc))
        return None


def alert_message(
    *, kind: str, state: str, severity: str, job_id: str, alert_id: str, body: dict
) -> tuple[bytes, dict[str, str]]:
    """An alert's bytes and attributes as published; `alert_id` (what subscribers dedupe on,
    shared/jobs/alert_outbox.py) in both."""
    data = json.dumps(
        {"kind": kind, "alert_id": alert_id, **body}, default=str, separators=(",", ":")
    ).encode()
    attributes = {
        "kind": kind,
        "state": state,
        "severity": severity,
        "job_id": job_id,
        "alert_id": alert_id,
    }
    return data, attributes


def publish_alert_message(data: bytes, attributes: dict[str, str]) -> str:
    """Raises on failure, so that the caller does not mark the alert as sent."""
    future = clients.publisher().publish(
        clients.topic_path(settings().alerts_topic), data, **attributes
    )
    return future.result(timeout=PUBLISH_TIMEOUT)
