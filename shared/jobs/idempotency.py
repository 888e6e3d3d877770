"""Idempotent creates: a client retrying a create after a connection reset gets the first
job back, not a second job Vertex bills.

Vertex's own create takes no request id (`CreateBatchPredictionJobRequest` has only
`parent` and `batch_prediction_job`: https://cloud.google.com/java/docs/reference/
google-cloud-aiplatform/latest/com.google.cloud.aiplatform.v1.CreateBatchPredictionJobRequest),
so the gateway takes the key from the `Idempotency-Key` header, or from a `requestId` query
parameter (the name Google's APIs give a request id where they take one; inferred as the
natural spelling here). A key is 1-255 printable ASCII characters and belongs to the calling
key: `idempotency/{sha256 of "key id|idempotency key"}` holds the create's intent id and a
fingerprint of its body, created with a precondition, so of two concurrent creates with one
key exactly one claims it. A later create with the same key and body gets the first one's
job (its intent `created`), a 409 while the first is still in flight (`pending`), or goes on
afresh if Vertex refused the first (`refused`), if the sync found no Vertex job for it
(`abandoned`, shared/jobs/adoption.py), or if the first has no intent an adoption delay
after its claim (its process died before writing it). The same key with another body is a
400.
A claim lasts `TTL` (24 hours); after that the key starts a new create.
"""

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from shared.core import clients
from shared.core.errors import ApiError, invalid_argument

COLLECTION = "idempotency"
TTL = timedelta(hours=24)
KEY = re.compile(r"[\x21-\x7e]{1,255}")


def check_key(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    if not KEY.fullmatch(value):
        raise invalid_argument(
            f"`{field}` must be 1-255 printable ASCII characters without spaces.", field=field
        )
    return value


def fingerprint(body: Mapping) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def _ref(key_id: str, idempotency_key: str):
    digest = hashlib.sha256(f"{key_id}|{idempotency_key}".encode()).hexdigest()
    return clients.firestore().collection(COLLECTION).document(digest)


def claim(key_id: str, idempotency_key: str, body: Mapping, intent_id: str) -> str | None:
    """Claim the key for `intent_id`: None when claimed, else the first create's intent id."""
    from google.api_core import exceptions

    ref = _ref(key_id, idempotency_key)
    now = datetime.now(UTC)
    doc = {"intent_id": intent_id, "fingerprint": fingerprint(body), "created": now}
    try:
        ref.create(doc)
        return None
    except exceptions.AlreadyExists:
        pass
    first = ref.get().to_dict() or {}
    if first.get("fingerprint") != doc["fingerprint"]:
        raise ApiError(
            400,
            f"Idempotency key {idempotency_key!r} was used for a different create; use a new "
            "key for a new job.",
        )
    created = first.get("created")
    if isinstance(created, datetime) and now - created > TTL:
        reclaim(key_id, idempotency_key, first["intent_id"], intent_id)
        return None
    return first["intent_id"]


def claimed_at(key_id: str, idempotency_key: str) -> datetime | None:
    """When the key was claimed for its current create (None: not claimed)."""
    created = (_ref(key_id, idempotency_key).get().to_dict() or {}).get("created")
    return created if isinstance(created, datetime) else None


def reclaim(key_id: str, idempotency_key: str, old_intent: str, intent_id: str) -> None:
    """Point the key at a new create (the first was refused or expired): a transaction, so
    that of two retries only one goes on."""
    from google.cloud import firestore

    ref = _ref(key_id, idempotency_key)
    transaction = clients.firestore().transaction()

    @firestore.transactional
    def swap(transaction) -> bool:
        current = ref.get(transaction=transaction).to_dict() or {}
        if current.get("intent_id") != old_intent:
            return False
        transaction.update(ref, {"intent_id": intent_id, "created": datetime.now(UTC)})
        return True

    if not swap(transaction):
        raise ApiError(
            409,
            "A create with this idempotency key is in progress; retry shortly.",
            status="ABORTED",
        )
