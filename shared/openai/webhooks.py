"""Signed webhooks per key (#26 item 5): a job's terminal event, to the endpoints its key
registered, signed as OpenAI signs, delivered durably.

Endpoints (`webhook_endpoints/{we_<24 hex>}`) belong to the key that registered them (another
key's id is a 404), at most `MAX_ENDPOINTS` per key. The secret (`whsec_` + base64 of 32
random bytes) is shown once, at create and at rotation; after a rotation the previous secret
also signs for `ROTATION_OVERLAP_SECONDS`, so receivers can switch without losing events.

Events, one per job end (the `job_end` hook, after the OpenAI door wrote the batch's files):
- a job of an OpenAI batch: OpenAI's `batch.completed`, `batch.failed`, `batch.expired`,
  `batch.cancelled`, shaped `{"id": "evt_...", "object": "event", "created_at", "type",
  "data": {"id": <batch id>}}` (openai-python's `BatchCompletedWebhookEvent` and its
  siblings, under src/openai/types/webhooks/); a batch refused at validation sends
  `batch.failed` at once;
- a job of the Vertex door: `batch_prediction_job.<state>` (`succeeded`,
  `partially_succeeded`, `failed`, `cancelled`, `expired`), the same shape, `data` holding
  the job's `id`, resource `name` and `state` (the gateway's own type: OpenAI has none).

Signing is Standard Webhooks as OpenAI's SDK verifies it (openai-python,
src/openai/lib/_webhooks.py): `webhook-id` (the event id, the same on every attempt and
replay, so receivers deduplicate), `webhook-timestamp` (Unix seconds of the attempt),
`webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}" keyed with the
secret's decoded bytes>`, one signature per valid secret, space-separated.

Delivery (`webhook_deliveries/{wd_<24 hex>}`): one per event and endpoint, its id derived
from both, so an event enqueued again (job ends are redelivered) is not sent twice; the
body is fixed at enqueue. A 2xx answer within `TIMEOUT` is delivered; anything else is
retried at `RETRY_OFFSETS` after the first attempt (a day in all), then `failed`. Every
attempt is logged on the delivery (the last `MAX_LOGGED_ATTEMPTS`). The sync tick sends the
due ones (`deliver_due`; a delivery is claimed by a write conditional on the version read,
so two ticks do not both send it); an enqueue tries its new deliveries at once. Attempts run
on a pool of `SENDERS` and their caller waits a bounded time (`ENQUEUE_WAIT_SECONDS`,
`TICK_WAIT_SECONDS`), so a slow receiver cannot hold up the jobs' sync. Replay sends
a delivery again now and, if that fails, schedules the retries afresh.
"""

import base64
import concurrent.futures
import functools
import hashlib
import hmac
import ipaddress
import json
import os
import secrets
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import requests
from google.api_core import exceptions as gexc
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.core import clients, logs
from shared.core.errors import ApiError, invalid_argument, not_found
from shared.core.keys import Caller
from shared.jobs import job_end, ticks
from shared.openai import batches

ENDPOINTS = "webhook_endpoints"
DELIVERIES = "webhook_deliveries"
MAX_ENDPOINTS = 10
MAX_URL = 2048
MAX_DESCRIPTION = 256
ROTATION_OVERLAP_SECONDS = 24 * 3600
TIMEOUT = (3, 5)
# Deliveries go out on a small pool, and a caller waits for them at most so long: a slow or
# hostile receiver never holds a job's end, a batch create or the sync tick longer (what is
# still in flight finishes in the background; its lease makes a later tick retry it).
SENDERS = 8
ENQUEUE_WAIT_SECONDS = 5
TICK_WAIT_SECONDS = 30
# Seconds after the first attempt: 1 min, 5 min, 30 min, 2 h, 5 h, 10 h, 24 h.
RETRY_OFFSETS = (60, 300, 1800, 7200, 18000, 36000, 86400)
MAX_LOGGED_ATTEMPTS = 20
DUE_PER_TICK = 50
LEASE_SECONDS = 120
MAX_PAGE = 100
# A delivery's `expire_at`: Firestore's TTL policy (infra/firestore.tf) deletes it then.
KEEP_DELIVERIES = timedelta(days=30)

BATCH_EVENTS = ("batch.completed", "batch.failed", "batch.expired", "batch.cancelled")
JOB_EVENT_PREFIX = "batch_prediction_job."
JOB_EVENT_STATES = {
    "JOB_STATE_SUCCEEDED": "succeeded",
    "JOB_STATE_PARTIALLY_SUCCEEDED": "partially_succeeded",
    "JOB_STATE_FAILED": "failed",
    "JOB_STATE_CANCELLED": "cancelled",
    "JOB_STATE_EXPIRED": "expired",
}
EVENT_TYPES = (*BATCH_EVENTS, *(JOB_EVENT_PREFIX + s for s in JOB_EVENT_STATES.values()))
_ID = {"we_": ENDPOINTS, "wd_": DELIVERIES}


def _db():
    return clients.firestore()


def _now() -> datetime:
    return datetime.now(UTC)


def _derived(prefix: str, *parts: str) -> str:
    return prefix + hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def _valid_id(prefix: str, value: str) -> bool:
    return (
        isinstance(value, str)
        and value.startswith(prefix)
        and len(value) == len(prefix) + 24
        and all(c in "0123456789abcdef" for c in value[len(prefix) :])
    )


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


# --- signing ---------------------------------------------------------------------------------


def signature(secret: str, webhook_id: str, timestamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{webhook_id}.{timestamp}.{body}".encode()
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(endpoint: dict, webhook_id: str, timestamp: int, body: str) -> dict:
    keys = [endpoint["secret"]]
    previous = endpoint.get("previous_secret")
    if previous and int(endpoint.get("previous_secret_until") or 0) > timestamp:
        keys.append(previous)
    return {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(k, webhook_id, timestamp, body) for k in keys),
    }


# --- endpoints -------------------------------------------------------------------------------


def _local_stack() -> bool:
    """Plain http to a loopback address only against the local emulators (`make dev`)."""
    return bool(os.environ.get("FIRESTORE_EMULATOR_HOST"))


def check_url(url) -> str:
    """An endpoint a key may register: https to a public host name or address."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise invalid_argument(f"`url` must be a URL of at most {MAX_URL} characters.", "url")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018  (a malformed port raises here)
    except ValueError:
        raise invalid_argument("`url` is not a valid URL.", field="url") from None
    if any(c.isspace() for c in url) or parts.username or parts.password or not host:
        raise invalid_argument("`url` must be https://host/path, without credentials.", "url")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    loopback = host == "localhost" or (address is not None and address.is_loopback)
    if parts.scheme == "http" and loopback and _local_stack():
        return url
    if parts.scheme != "https":
        raise invalid_argument("`url` must be an https:// URL.", field="url")
    if loopback or (address is not None and not address.is_global):
        raise invalid_argument("`url` must name a public host, not a private address.", "url")
    return url


def _check_events(events) -> list[str] | None:
    if events is None:
        return None
    if not isinstance(events, list) or not events or any(e not in EVENT_TYPES for e in events):
        raise invalid_argument(
            f"`events` must be a non-empty list of: {', '.join(EVENT_TYPES)}.", field="events"
        )
    return sorted(set(events))


def public_view(doc: dict) -> dict:
    return {
        "id": doc["id"],
        "url": doc["url"],
        "events": doc.get("events"),
        "description": doc.get("description") or "",
        "created_at": doc["created_at"],
        "secret_rotated_at": doc.get("secret_rotated_at"),
    }


def create_endpoint(caller: Caller, body: dict) -> tuple[dict, str]:
    """A new endpoint for the caller's key; returns its view and its secret (shown once)."""
    unknown = sorted(set(body) - {"url", "events", "description"})
    if unknown:
        raise invalid_argument(f"Unknown field(s) {', '.join(unknown)}: url, events, description.")
    url = check_url(body.get("url"))
    events = _check_events(body.get("events"))
    description = body.get("description") or ""
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise invalid_argument(
            f"`description` is a string of at most {MAX_DESCRIPTION} characters.", "description"
        )
    if len(_owned_endpoints(caller.key_id)) >= MAX_ENDPOINTS:
        raise invalid_argument(f"A key has at most {MAX_ENDPOINTS} webhook endpoints.")
    secret = new_secret()
    doc = {
        "id": "we_" + secrets.token_hex(12),
        "owner_key_id": caller.key_id,
        "url": url,
        "events": events,
        "description": description,
        "secret": secret,
        "created_at": int(time.time()),
    }
    _db().collection(ENDPOINTS).document(doc["id"]).set(doc)
    logs.info("webhook endpoint registered", endpoint_id=doc["id"], key_id=caller.key_id)
    return public_view(doc), secret


def _owned_endpoints(key_id: str) -> list[dict]:
    query = _db().collection(ENDPOINTS).where(filter=FieldFilter("owner_key_id", "==", key_id))
    return sorted((s.to_dict() for s in query.stream()), key=lambda d: d["created_at"])


def list_endpoints(caller: Caller) -> list[dict]:
    return [public_view(d) for d in _owned_endpoints(caller.key_id)]


def get_endpoint(caller: Caller, endpoint_id: str) -> dict:
    doc = None
    if _valid_id("we_", endpoint_id):
        snapshot = _db().collection(ENDPOINTS).document(endpoint_id).get()
        doc = snapshot.to_dict() if snapshot.exists else None
    if doc is None or doc.get("owner_key_id") != caller.key_id:
        raise not_found(f"Webhook endpoint {endpoint_id} not found.")
    return doc


def delete_endpoint(caller: Caller, endpoint_id: str) -> dict:
    doc = get_endpoint(caller, endpoint_id)
    _db().collection(ENDPOINTS).document(endpoint_id).delete()
    return {"id": doc["id"], "deleted": True}


def rotate_secret(caller: Caller, endpoint_id: str) -> tuple[dict, str]:
    doc = get_endpoint(caller, endpoint_id)
    now = int(time.time())
    secret = new_secret()
    update = {
        "secret": secret,
        "previous_secret": doc["secret"],
        "previous_secret_until": now + ROTATION_OVERLAP_SECONDS,
        "secret_rotated_at": now,
    }
    _db().collection(ENDPOINTS).document(endpoint_id).update(update)
    return public_view({**doc, **update}), secret


# --- events ----------------------------------------------------------------------------------


def event_type(record: dict) -> str | None:
    """The event a terminal job sends: OpenAI's for a batch's job, the gateway's otherwise."""
    state = record.get("state") or ""
    batch_id = batches.batch_id_of(record)
    if batch_id:
        doc = batches.stored(batch_id) or {}
        status = doc.get("final_status") or batches.FINAL_STATUS.get(state)
        return f"batch.{status}" if status else None
    suffix = JOB_EVENT_STATES.get(state)
    return JOB_EVENT_PREFIX + suffix if suffix else None


def event_of(kind: str, subject: str, data: dict) -> dict:
    return {
        "id": _derived("evt_", kind, subject),
        "object": "event",
        "created_at": int(time.time()),
        "type": kind,
        "data": data,
    }


@job_end.register
def on_job_end(record: dict) -> int:
    """Enqueue the job's terminal event for its key's endpoints (idempotent)."""
    kind = event_type(record)
    owner = record.get("owner_key_id")
    if kind is None or not owner:
        return 0
    batch_id = batches.batch_id_of(record)
    if batch_id:
        event = event_of(kind, batch_id, {"id": batch_id})
    else:
        job_id = str(record.get("job_id") or "")
        data = {"id": job_id, "name": record.get("name"), "state": record.get("state")}
        event = event_of(kind, job_id, data)
    return enqueue(owner, event)


def batch_refused(batch: dict, owner_key_id: str) -> int:
    """A batch refused at validation has no job: its `batch.failed` goes out now."""
    return enqueue(owner_key_id, event_of("batch.failed", batch["id"], {"id": batch["id"]}))


def enqueue(owner_key_id: str, event: dict) -> int:
    """One delivery per endpoint of the key that wants this event; tried at once. Returns the
    number of deliveries this call created (0 when they existed already)."""
    body = json.dumps(event, separators=(",", ":"), sort_keys=True)
    created = []
    for endpoint in _owned_endpoints(owner_key_id):
        if endpoint.get("events") and event["type"] not in endpoint["events"]:
            continue
        delivery_id = _derived("wd_", event["id"], endpoint["id"])
        now = _now()
        doc = {
            "id": delivery_id,
            "endpoint_id": endpoint["id"],
            "owner_key_id": owner_key_id,
            "event_id": event["id"],
            "event_type": event["type"],
            "body": body,
            "status": "pending",
            "attempts": 0,
            "attempt_log": [],
            "created_at": now,
            "created_ns": time.time_ns(),
            "first_attempt_at": None,
            "next_attempt_at": now,
            "expire_at": now + KEEP_DELIVERIES,
        }
        try:
            _db().collection(DELIVERIES).document(delivery_id).create(doc)
        except gexc.AlreadyExists:
            continue
        created.append(delivery_id)
        logs.info("webhook event enqueued", delivery_id=delivery_id, type=event["type"])
    _send_all(created, ENQUEUE_WAIT_SECONDS)
    return len(created)


# --- delivery --------------------------------------------------------------------------------


def _post(url: str, body: str, headers: dict) -> tuple[int | None, str | None]:
    try:
        response = requests.post(
            url, data=body.encode(), headers=headers, timeout=TIMEOUT, allow_redirects=False
        )
    except requests.RequestException as exc:
        return None, type(exc).__name__
    return response.status_code, None


def _claim(delivery_id: str, *, replay: bool = False) -> dict | None:
    """The delivery, leased to this process; None when it is not due or another has it."""
    ref = _db().collection(DELIVERIES).document(delivery_id)
    snapshot = ref.get()
    if not snapshot.exists:
        return None
    doc = snapshot.to_dict()
    now = _now()
    if not replay and (doc["status"] != "pending" or doc["next_attempt_at"] > now):
        return None
    lease = now + timedelta(seconds=LEASE_SECONDS)
    try:
        ref.update(
            {"next_attempt_at": lease},
            option=_db().write_option(last_update_time=snapshot.update_time),
        )
    except (gexc.FailedPrecondition, gexc.Aborted, gexc.NotFound):
        return None
    return doc


def deliver(delivery_id: str, *, replay: bool = False) -> dict | None:
    """One attempt of one delivery; returns the delivery as stored after it."""
    doc = _claim(delivery_id, replay=replay)
    if doc is None:
        return None
    endpoint_snapshot = _db().collection(ENDPOINTS).document(doc["endpoint_id"]).get()
    ref = _db().collection(DELIVERIES).document(delivery_id)
    if not endpoint_snapshot.exists:
        gone = {"status": "failed", "next_attempt_at": None, "last_error": "endpoint deleted"}
        ref.update(gone)
        return {**doc, **gone}
    endpoint = endpoint_snapshot.to_dict()
    timestamp = int(time.time())
    started = time.monotonic()
    status, error = _post(
        endpoint["url"],
        doc["body"],
        signed_headers(endpoint, doc["event_id"], timestamp, doc["body"]),
    )
    now = _now()
    first = now if replay or doc.get("first_attempt_at") is None else doc["first_attempt_at"]
    attempts = 1 if replay else int(doc.get("attempts") or 0) + 1
    entry = {
        "at": timestamp,
        "status_code": status,
        "error": error,
        "ms": round((time.monotonic() - started) * 1000),
        "replay": replay,
    }
    update: dict = {
        "attempts": attempts,
        "first_attempt_at": first,
        "last_attempt_at": now,
        "last_status_code": status,
        "last_error": error,
        "attempt_log": [*(doc.get("attempt_log") or []), entry][-MAX_LOGGED_ATTEMPTS:],
    }
    if status is not None and 200 <= status < 300:
        update.update(status="delivered", next_attempt_at=None, delivered_at=now)
    elif attempts > len(RETRY_OFFSETS):
        update.update(status="failed", next_attempt_at=None)
    else:
        update.update(
            status="pending",
            next_attempt_at=first + timedelta(seconds=RETRY_OFFSETS[attempts - 1]),
        )
    ref.update(update)
    (logs.info if update["status"] == "delivered" else logs.warning)(
        "webhook attempt",
        delivery_id=delivery_id,
        endpoint_id=doc["endpoint_id"],
        type=doc["event_type"],
        status_code=status,
        error=error,
        outcome=update["status"],
        attempts=attempts,
    )
    return {**doc, **update}


def _deliver_isolated(delivery_id: str) -> None:
    """A receiver, or a failed write, never breaks the caller: the tick tries again."""
    try:
        deliver(delivery_id)
    except Exception as exc:
        logs.warning(
            "webhook attempt failed; the tick retries", delivery_id=delivery_id, error=repr(exc)
        )


@ticks.register
def deliver_due(limit: int = DUE_PER_TICK) -> int:
    """Send the deliveries whose next attempt is due, oldest first."""
    query = (
        _db()
        .collection(DELIVERIES)
        .where(filter=FieldFilter("status", "==", "pending"))
        .where(filter=FieldFilter("next_attempt_at", "<=", _now()))
        .order_by("next_attempt_at")
        .limit(limit)
    )
    due = [s.id for s in query.stream()]
    _send_all(due, TICK_WAIT_SECONDS)
    return len(due)


@functools.cache
def _senders() -> concurrent.futures.ThreadPoolExecutor:
    return concurrent.futures.ThreadPoolExecutor(SENDERS, thread_name_prefix="webhook")


def _send_all(delivery_ids: list[str], wait_seconds: float) -> None:
    """Each delivery's attempt on the pool; back after they are done or `wait_seconds`."""
    if delivery_ids:
        futures = [_senders().submit(_deliver_isolated, d) for d in delivery_ids]
        concurrent.futures.wait(futures, timeout=wait_seconds)


# --- the delivery log ------------------------------------------------------------------------


def delivery_view(doc: dict) -> dict:
    def iso(value):
        return value.isoformat() if isinstance(value, datetime) else value

    return {
        "id": doc["id"],
        "endpoint_id": doc["endpoint_id"],
        "event": json.loads(doc["body"]),
        "status": doc["status"],
        "attempts": doc.get("attempts", 0),
        "created_at": iso(doc.get("created_at")),
        "last_attempt_at": iso(doc.get("last_attempt_at")),
        "next_attempt_at": iso(doc.get("next_attempt_at")) if doc["status"] == "pending" else None,
        "last_status_code": doc.get("last_status_code"),
        "last_error": doc.get("last_error"),
        "attempt_log": doc.get("attempt_log") or [],
    }


def list_deliveries(caller: Caller, endpoint_id: str, *, limit: int, after: str | None) -> dict:
    get_endpoint(caller, endpoint_id)
    query = (
        _db()
        .collection(DELIVERIES)
        .where(filter=FieldFilter("endpoint_id", "==", endpoint_id))
        .order_by("created_ns", direction="DESCENDING")
    )
    if after:
        cursor = _delivery(endpoint_id, after)
        query = query.start_after({"created_ns": cursor["created_ns"]})
    found = [s.to_dict() for s in query.limit(limit + 1).stream()]
    page = found[:limit]
    reply: dict = {"deliveries": [delivery_view(d) for d in page]}
    if len(found) > limit:
        reply["next_after"] = page[-1]["id"]
    return reply


def _delivery(endpoint_id: str, delivery_id: str) -> dict:
    doc = None
    if _valid_id("wd_", delivery_id):
        snapshot = _db().collection(DELIVERIES).document(delivery_id).get()
        doc = snapshot.to_dict() if snapshot.exists else None
    if doc is None or doc.get("endpoint_id") != endpoint_id:
        raise not_found(f"Delivery {delivery_id} not found.")
    return doc


def replay(caller: Caller, endpoint_id: str, delivery_id: str) -> dict:
    """Send a delivery again now, whatever its state; retries start afresh if it fails."""
    get_endpoint(caller, endpoint_id)
    _delivery(endpoint_id, delivery_id)
    done = deliver(delivery_id, replay=True)
    if done is None:
        raise ApiError(
            409, "The delivery is being sent right now; try again shortly.", status="ABORTED"
        )
    return delivery_view(done)
