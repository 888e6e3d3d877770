"""Job records in Firestore: who owns a job, where its outputs go, what state it is in.

The record is what makes a job the caller's: every route but create finds the job here by
id first, and only then asks Vertex.
"""

import hashlib
import time
from datetime import UTC, datetime

from shared.core import clients, docids, logs, times
from shared.core.config import Deployment
from shared.core.keys import Caller
from shared.core.labels import RETRY_LABEL
from shared.core.vertex import TERMINAL_STATES, state_name

COLLECTION = "jobs"
INDEX_COLLECTION = "output_index"
OPERATIONS_COLLECTION = "operations"
WRITE_ATTEMPTS = 5
TRANSITION_ATTEMPTS = 20


def id_of(name: str) -> str:
    """The id that ends a resource name: a job's, an Operation's."""
    return name.rstrip("/").rsplit("/", 1)[-1]


def _normalise_folder(uri: str) -> str:
    return uri if uri.endswith("/") else uri + "/"


def index_doc_id(folder_uri: str) -> str:
    return hashlib.sha256(_normalise_folder(folder_uri).encode()).hexdigest()


def job_ref(job_id: str):
    return clients.firestore().collection(COLLECTION).document(docids.doc_id(job_id))


def get(job_id: str) -> dict | None:
    snapshot = job_ref(job_id).get()
    return snapshot.to_dict() if snapshot.exists else None


def get_many(job_ids: list[str], *, fields: tuple[str, ...] | None = None) -> dict[str, dict]:
    """The records of `job_ids` that exist, by id; `fields` (a field mask) reads those
    alone, for a caller that needs a few fields of many records."""
    refs = [job_ref(job_id) for job_id in job_ids]
    found = clients.firestore().get_all(refs, field_paths=list(fields) if fields else None)
    return {s.id: s.to_dict() for s in found if s.exists}


def deployment_of(record: dict):
    """The config Deployment a job ran on (price overrides, credentials), or None when the
    model list no longer names it."""
    from shared.core.config import ConfigError, model_list

    try:
        return model_list().find(record.get("deployment") or {})
    except ConfigError as exc:
        logs.warning("model list unreadable", job_id=record.get("job_id"), error=str(exc))
        return None


def index_folder(folder_uri: str, job_id: str, *, batch=None) -> None:
    """Let a finalize event find its job: one doc per folder, holding the job ids under it.

    With `batch`, the write joins it instead of being committed on its own."""
    from google.cloud import firestore

    ref = clients.firestore().collection(INDEX_COLLECTION).document(index_doc_id(folder_uri))
    fields = {"path": _normalise_folder(folder_uri), "job_ids": firestore.ArrayUnion([job_id])}
    if batch is None:
        ref.set(fields, merge=True)
    else:
        batch.set(ref, fields, merge=True)


def jobs_for_folder(folder_uri: str) -> list[str]:
    snapshot = (
        clients.firestore().collection(INDEX_COLLECTION).document(index_doc_id(folder_uri)).get()
    )
    return list((snapshot.to_dict() or {}).get("job_ids") or []) if snapshot.exists else []


def new_record(
    *,
    upstream_job: dict,
    request_body: dict,
    caller: Caller,
    deployment: Deployment,
    public_model: str,
    api_version: str,
    estimate: dict | None = None,
    inputs: dict | None = None,
    outputs: dict | None = None,
) -> dict:
    """`inputs`: the client's URIs and the sealed copies (sealing.Sealed.record_fields); by
    default the body's URIs, unsealed. `outputs`: `intent_id`, `output_prefix` (where Vertex
    writes), `client_output_prefix`, `outputs_sealed` (sealing.Outputs.record_fields); by
    default the body's prefix, unsealed, no intent."""
    name = upstream_job["name"]
    state = state_name(upstream_job.get("state"))
    now = datetime.now(UTC)
    labels = upstream_job.get("labels") or request_body.get("labels") or {}
    output_prefix = (
        request_body.get("outputConfig", {}).get("gcsDestination", {}).get("outputUriPrefix")
    )
    return {
        "name": name,
        "job_id": id_of(name),
        "api_version": api_version,
        "display_name": upstream_job.get("displayName") or request_body.get("displayName"),
        "model": public_model,
        "deployment": deployment.describe(),
        "owner_key_id": caller.key_id,
        "owner_alias": caller.alias,
        "team": caller.team,
        "labels": labels,
        "state": state,
        "terminal": state in TERMINAL_STATES,
        "state_history": [
            {
                "time": now,
                "from": None,
                "to": state,
                "update_time": upstream_job.get("updateTime"),
            }
        ],
        # Vertex's own stamp of the create: a GET that finds the job unchanged has nothing
        # to record (no transaction on a read path).
        "upstream_update_time": upstream_job.get("updateTime"),
        **(
            inputs
            or {
                "input_uris": request_body.get("inputConfig", {})
                .get("gcsSource", {})
                .get("uris", []),
                "sealed_inputs": None,
            }
        ),
        "intent_id": None,
        "output_prefix": output_prefix,
        "client_output_prefix": output_prefix,
        "outputs_sealed": False,
        **(outputs or {}),
        "output_directory": None,
        "completion_stats": None,
        "error": None,
        "create_time": times.parse(upstream_job.get("createTime")) or now,
        "updated": now,
        "estimate": estimate,
        "cost": {},
        "cost_final": False,
        "alerts": {},
        "deleted": False,
        "synced": None,
        # Due at once: a tick reads new jobs first (shared/jobs/sync_schedule.py).
        SYNC_DUE: now,
        # Only the gateway can set `vbg-` labels, so the link cannot be forged.
        "retry_of": labels.get(RETRY_LABEL),
        "retries": [],
    }


def run_inputs(record: dict) -> list[str]:
    """The input URIs Vertex read: the sealed copies (the client's objects may have changed
    or gone since), else (sealing off) the client's own."""
    sealed = [o["uri"] for o in record.get("sealed_inputs") or [] if o.get("uri")]
    return sealed or list(record.get("input_uris") or [])


def client_output_prefix(record: dict) -> str | None:
    """The folder the client asked for (records before sealed outputs: `output_prefix`)."""
    return record.get("client_output_prefix") or record.get("output_prefix")


def create_new(record: dict) -> bool:
    """Create a job's record and index its folders in one commit (half the latency of two);
    False when the record exists (it is never overwritten)."""
    from google.api_core import exceptions

    batch = clients.firestore().batch()
    batch.create(job_ref(record["job_id"]), record)
    for folder in {f for f in (record.get("output_prefix"), record.get("output_directory")) if f}:
        index_folder(folder, record["job_id"], batch=batch)
    try:
        batch.commit()
    except exceptions.AlreadyExists:
        return False
    return True


def record_created(record: dict) -> bool:
    """Write a new job's record and index; retried, because Vertex has already accepted the
    job and a job without a record is invisible to its owner and never costed. A record
    that exists (an earlier attempt's commit landed, or the sync adopted the job from its
    intent meanwhile, shared/jobs/adoption.py) is the job's: kept."""
    job_id = record["job_id"]
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            if not create_new(record):
                logs.info("job record exists already; kept", job_id=job_id, attempt=attempt)
            return True
        except Exception as exc:
            logs.warning(
                "job record write failed; retrying",
                job_id=job_id,
                attempt=attempt,
                error=repr(exc),
            )
            time.sleep(min(0.2 * 2**attempt, 3))
    logs.critical(
        "JOB RECORD NOT WRITTEN: Vertex accepted the job but the gateway could not record "
        "it; the sync adopts it from its intent (shared/jobs/adoption.py)",
        job_id=job_id,
        job_name=record["name"],
        owner_key_id=record["owner_key_id"],
        owner_alias=record["owner_alias"],
        team=record["team"],
        model=record["model"],
        deployment=record["deployment"],
        output_prefix=record.get("output_prefix"),
    )
    return False


def mark(job_id: str, **fields) -> None:
    job_ref(job_id).update({**fields, "updated": datetime.now(UTC)})


def mark_deleted(job_id: str, operation_name: str | None) -> None:
    """The job is deleted on Vertex; remember the delete's Operation on the job and in
    `operations/{id}` -> job id, so that a poll of it finds its owner with one point read.

    Retried (as `record_created`): Vertex has already deleted the job, and the sync tick may
    hold the record in a transaction at that very moment (a contended commit aborts)."""
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        now = datetime.now(UTC)
        db = clients.firestore()
        batch = db.batch()
        batch.update(
            job_ref(job_id), {"deleted": True, "delete_operation": operation_name, "updated": now}
        )
        if operation_name:
            ref = db.collection(OPERATIONS_COLLECTION).document(id_of(operation_name))
            batch.set(ref, {"job_id": job_id, "name": operation_name, "created": now})
        try:
            batch.commit()
            return
        except Exception as exc:
            logs.warning(
                "deleted-job write failed; retrying",
                job_id=job_id,
                attempt=attempt,
                error=repr(exc),
            )
            time.sleep(min(0.2 * 2**attempt, 3))
    logs.critical(
        "DELETE NOT RECORDED: Vertex deleted the job but the gateway could not mark it",
        job_id=job_id,
        operation=operation_name,
    )


def operation(operation_id: str) -> dict | None:
    """`{job_id, name}` of an Operation the gateway handed out, or None."""
    snapshot = clients.firestore().collection(OPERATIONS_COLLECTION).document(operation_id).get()
    return snapshot.to_dict() if snapshot.exists else None


# --- state transitions (on_job_event) -------------------------------------------------------

OPEN_ORDER_FIELD = "synced"
SYNC_DUE = "sync_due"
ADVANCED_BY_OUTPUT = ("JOB_STATE_PENDING", "JOB_STATE_QUEUED")


def open_jobs(limit: int, *, now: datetime | None = None) -> list[dict]:
    """Open jobs (cost not final: every non-terminal job, and terminal ones whose
    reconciliation has not finished) that are due (`sync_due`, shared/jobs/sync_schedule.py),
    the longest overdue first, so that a bounded tick carries on where the last one stopped.
    Needs the composite index (cost_final, sync_due). Records from before `sync_due` are
    read too (`unscheduled_jobs`), until their first sync schedules them."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    at = now or datetime.now(UTC)
    query = (
        clients.firestore()
        .collection(COLLECTION)
        .where(filter=FieldFilter("cost_final", "==", False))
        .where(filter=FieldFilter("sync_due", "<=", at))
        .order_by("sync_due")
        .limit(limit)
    )
    due = [{**s.to_dict(), "job_id": s.id} for s in query.stream()]
    return due + unscheduled_jobs(max(limit - len(due), 0))


def unscheduled_jobs(limit: int) -> list[dict]:
    """Open records without `sync_due` (written before it existed), least recently synced
    first. Needs the composite index (cost_final, synced)."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    if limit <= 0:
        return []
    query = (
        clients.firestore()
        .collection(COLLECTION)
        .where(filter=FieldFilter("cost_final", "==", False))
        .order_by(OPEN_ORDER_FIELD)
        .limit(limit)
    )
    found = [{**s.to_dict(), "job_id": s.id} for s in query.stream()]
    return [r for r in found if SYNC_DUE not in r]


def touch_synced(job_id: str, **fields) -> None:
    job_ref(job_id).update({OPEN_ORDER_FIELD: datetime.now(UTC), **fields})


def output_seen(job_id: str) -> dict | None:
    """An output file of the job was written: it runs. A PENDING or QUEUED record becomes
    RUNNING at once (one history entry, `source: output`; the next sync that reads RUNNING
    from Vertex finds it recorded), and the job is due for a sync now. The transition, or
    None."""
    from google.cloud import firestore

    ref = job_ref(job_id)

    @firestore.transactional
    def apply(transaction):
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists:
            return None
        record = snapshot.to_dict()
        now = datetime.now(UTC)
        if record.get("terminal") or record.get("state") not in ADVANCED_BY_OUTPUT:
            transaction.update(ref, {SYNC_DUE: now})
            return None
        entry = {"time": now, "from": record.get("state"), "to": "JOB_STATE_RUNNING"}
        transaction.update(
            ref,
            {
                "state": "JOB_STATE_RUNNING",
                "state_history": firestore.ArrayUnion([{**entry, "source": "output"}]),
                "updated": now,
                SYNC_DUE: now,
            },
        )
        return entry

    return apply(clients.firestore().transaction(max_attempts=TRANSITION_ATTEMPTS))


# The record fields `observe` compares with Vertex's job (what `upstream_fields` copies, and
# the state): a reader that passes `observe` a partial record reads at least these.
OBSERVED_FIELDS = (
    "state",
    "terminal",
    "output_directory",
    "completion_stats",
    "error",
    "start_time",
    "end_time",
    "upstream_update_time",
)


def upstream_fields(upstream_job: dict) -> dict:
    """What a sync copies from Vertex's job onto the record, whether or not the state moved."""
    fields = {}
    directory = (upstream_job.get("outputInfo") or {}).get("gcsOutputDirectory")
    if directory:
        fields["output_directory"] = directory
    if upstream_job.get("completionStats") is not None:
        fields["completion_stats"] = upstream_job["completionStats"]
    if upstream_job.get("error"):
        fields["error"] = upstream_job["error"]
    for source, target in (
        ("startTime", "start_time"),
        ("endTime", "end_time"),
        ("updateTime", "upstream_update_time"),
    ):
        if upstream_job.get(source):
            fields[target] = upstream_job[source]
    return fields


def _older(upstream_job: dict, record: dict) -> bool:
    seen = times.parse(record.get("upstream_update_time"))
    got = times.parse(upstream_job.get("updateTime"))
    return bool(seen and got and got < seen)


def needs_transition(record: dict, upstream_job: dict) -> bool:
    """Whether a sync must write anything but its `synced` stamp (read from the record the
    tick already holds, so an unchanged job costs one small write, not a transaction)."""
    if record.get("terminal") or _older(upstream_job, record):
        return False
    if state_name(upstream_job.get("state")) != record.get("state"):
        return True
    return any(record.get(k) != v for k, v in upstream_fields(upstream_job).items())


class Contended(Exception):
    """A transition's transaction lost its race every time (another writer held the job)."""


def record_transition(job_id: str, upstream_job: dict, *, extra: dict | None = None) -> dict | None:
    """Record Vertex's state on the job, once: in a transaction that reads the stored state
    first, so of two racing syncs only the first appends to `state_history`; the second sees
    the new state and records nothing. Returns the transition ({from, to, ...}) or None.
    """
    from google.cloud import firestore

    new_state = state_name(upstream_job.get("state"))
    ref = job_ref(job_id)
    client = clients.firestore()

    @firestore.transactional
    def apply(transaction):
        snapshot = ref.get(transaction=transaction)
        if not snapshot.exists:
            return None
        record = snapshot.to_dict()
        old_state = record.get("state")
        now = datetime.now(UTC)
        if record.get("terminal") or _older(upstream_job, record):
            # A stale read (a slower sync's GET): a terminal record never goes back.
            transaction.update(ref, {"synced": now, **(extra or {})})
            return None
        fields = {**upstream_fields(upstream_job), "synced": now, **(extra or {})}
        # An output file made the record RUNNING (output_seen); a slower read never undoes it.
        behind = old_state == "JOB_STATE_RUNNING" and new_state in ADVANCED_BY_OUTPUT
        if old_state == new_state or behind:
            transaction.update(ref, fields)
            return None
        entry = {
            "time": now,
            "from": old_state,
            "to": new_state,
            "update_time": upstream_job.get("updateTime"),
        }
        transaction.update(
            ref,
            {
                **fields,
                "state": new_state,
                "terminal": new_state in TERMINAL_STATES,
                "state_history": firestore.ArrayUnion([entry]),
                "updated": now,
            },
        )
        return entry

    from google.api_core import exceptions

    try:
        return apply(client.transaction(max_attempts=TRANSITION_ATTEMPTS))
    except exceptions.Aborted as exc:  # the transaction's read timed out on the lock
        raise Contended(str(exc)) from exc
    except ValueError as exc:  # the client's "Failed to commit transaction in N attempts"
        if isinstance(exc.__cause__, exceptions.Aborted):
            raise Contended(str(exc)) from exc
        raise


def observe(
    job_id: str, record: dict, upstream_job: dict, *, extra: dict | None = None
) -> dict | None:
    """Record what Vertex says of a job (state, `outputInfo`, `completionStats`) when it is
    new, and index the output directory: the one step behind the sync, every passthrough GET
    and the delete. Returns the transition,
    if the state moved. Idempotent (see `record_transition`). `extra` fields (the sync's
    schedule) are written with the transition, or alone when there is none."""
    transition = None
    if needs_transition(record, upstream_job):
        transition = record_transition(job_id, upstream_job, extra=extra)
    elif extra:
        touch_synced(job_id, **extra)
    directory = (upstream_job.get("outputInfo") or {}).get("gcsOutputDirectory")
    if directory and directory != record.get("output_directory"):
        index_folder(directory, job_id)
    return transition


# --- listing (the gateway's own jobs view) --------------------------------------------------


def list_visible(*, key_id=None, team=None, state=None, before=None, limit=50) -> list[dict]:
    """Newest first: one key's jobs, one team's, or (both None) all; optionally in one state
    and created before a time. Needs the composite indexes (owner_key_id|team [, state],
    create_time DESC), declared in Terraform."""
    from google.cloud import firestore
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = clients.firestore().collection(COLLECTION)
    if key_id is not None:
        query = query.where(filter=FieldFilter("owner_key_id", "==", key_id))
    elif team is not None:
        query = query.where(filter=FieldFilter("team", "==", team))
    if state:
        query = query.where(filter=FieldFilter("state", "==", state))
    if before is not None:
        query = query.where(filter=FieldFilter("create_time", "<", before))
    query = query.order_by("create_time", direction=firestore.Query.DESCENDING).limit(limit)
    return [{**s.to_dict(), "job_id": s.id} for s in query.stream()]
