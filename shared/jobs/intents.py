"""Intent records: what a create is about to ask Vertex, written before Vertex is asked.

A process can die after Vertex accepted a job and before the job record is written (issue
#22 item 8: 5 of 195 jobs in a kill test). So each create first writes
`intents/{intent_id}`, holding everything the job record needs (owner key id, alias and team,
the deployments in failover order, the public model, the API version, the client's and the
sealed inputs, both output folders, the estimate and its budget reservation, the stamped
labels, the idempotency key), and gives Vertex the label `vbg-intent: <intent_id>`. Once
Vertex answers, the intent is completed with the job's name (`created`) or the refusal
(`refused`). The sync adopts, from its intent, a Vertex job that carries the gateway's
labels but has no job record.

States: `pending` (written, Vertex not yet answered: the process may have died), `created`
(`job_id`, `job_name`, `deployment` are the ones Vertex used), `refused` (`upstream_status`),
`abandoned` (the sync found no Vertex job for it: shared/jobs/adoption.py).
"""

import secrets
import time
from datetime import UTC, datetime

from shared.core import clients, docids, logs
from shared.core.errors import ApiError

COLLECTION = "intents"
PENDING, CREATED, REFUSED, ABANDONED = "pending", "created", "refused", "abandoned"
WRITE_ATTEMPTS = 3
PENDING_LIMIT = 200


def new_id() -> str:
    """Random hex: also a Vertex label value and a folder name."""
    return secrets.token_hex(8)


def ref(intent_id: str):
    return clients.firestore().collection(COLLECTION).document(docids.doc_id(intent_id))


def get(intent_id: str) -> dict | None:
    snapshot = ref(intent_id).get()
    return snapshot.to_dict() if snapshot.exists else None


def write(intent: dict) -> None:
    """Create the intent, retried; Firestore down is a 503 (nothing was asked of Vertex, so
    the client's retry is safe)."""
    from google.api_core import exceptions

    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            ref(intent["intent_id"]).create(intent)
            return
        except exceptions.AlreadyExists:
            if attempt > 1:
                return  # an earlier attempt's commit landed
            raise
        except exceptions.GoogleAPICallError as exc:
            logs.warning("intent write failed", attempt=attempt, error=repr(exc))
            time.sleep(0.1 * attempt)
    raise ApiError(503, "The gateway could not record the create (Firestore); retry.")


def created(intent_id: str, record: dict) -> None:
    """Best effort: the job record, written first, is the truth once it exists (an intent
    left `pending` beside a record is only noise to the sync)."""
    try:
        ref(intent_id).update(
            {
                "state": CREATED,
                "job_name": record["name"],
                "job_id": record["job_id"],
                "deployment": record["deployment"],
                "completed": datetime.now(UTC),
            }
        )
    except Exception as exc:
        logs.warning("intent not completed", intent_id=intent_id, error=repr(exc))


def pending(*, older_than: datetime, limit: int = PENDING_LIMIT) -> list[dict]:
    """Intents written before `older_than` and not yet completed (their process died, or
    their create is still running), oldest first."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        clients.firestore()
        .collection(COLLECTION)
        .where(filter=FieldFilter("state", "==", PENDING))
        .where(filter=FieldFilter("created", "<", older_than))
        .order_by("created")
        .limit(limit)
    )
    return [s.to_dict() for s in query.stream()]


def abandoned(intent_id: str) -> None:
    ref(intent_id).update({"state": ABANDONED, "completed": datetime.now(UTC)})


def refused(intent_id: str, *, upstream_status: int) -> None:
    ref(intent_id).update(
        {"state": REFUSED, "upstream_status": upstream_status, "completed": datetime.now(UTC)}
    )
