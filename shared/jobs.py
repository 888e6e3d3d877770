"""Job records in Firestore: who owns a job, where its outputs go, what state it is in.

The record is what makes a job the caller's: every route but create finds the job here by
id first, and only then asks Vertex.
"""

import hashlib
import time
from datetime import UTC, datetime

from shared import clients, logs
from shared.vertex import TERMINAL_STATES, state_name

COLLECTION = "jobs"
INDEX_COLLECTION = "output_index"
WRITE_ATTEMPTS = 5


def job_id_of(name: str) -> str:
    return name.rstrip("/").rsplit("/", 1)[-1]


def _normalise_folder(uri: str) -> str:
    return uri if uri.endswith("/") else uri + "/"


def index_doc_id(folder_uri: str) -> str:
    return hashlib.sha256(_normalise_folder(folder_uri).encode()).hexdigest()


def job_ref(job_id: str):
    return clients.firestore().collection(COLLECTION).document(job_id)


def get(job_id: str) -> dict | None:
    snapshot = job_ref(job_id).get()
    return snapshot.to_dict() if snapshot.exists else None


def get_many(job_ids: list[str]) -> dict[str, dict]:
    refs = [job_ref(job_id) for job_id in job_ids]
    return {s.id: s.to_dict() for s in clients.firestore().get_all(refs) if s.exists}


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def index_folder(folder_uri: str, job_id: str) -> None:
    """Let a finalize event find its job: one doc per folder, holding the job ids under it."""
    from google.cloud import firestore

    clients.firestore().collection(INDEX_COLLECTION).document(index_doc_id(folder_uri)).set(
        {"path": _normalise_folder(folder_uri), "job_ids": firestore.ArrayUnion([job_id])},
        merge=True,
    )


def jobs_for_folder(folder_uri: str) -> list[str]:
    snapshot = (
        clients.firestore().collection(INDEX_COLLECTION).document(index_doc_id(folder_uri)).get()
    )
    return list((snapshot.to_dict() or {}).get("job_ids") or []) if snapshot.exists else []


def new_record(
    *,
    upstream_job: dict,
    request_body: dict,
    caller,
    deployment,
    public_model: str,
    api_version: str,
    estimate: dict | None = None,
) -> dict:
    name = upstream_job["name"]
    state = state_name(upstream_job.get("state"))
    now = datetime.now(UTC)
    output_prefix = (
        request_body.get("outputConfig", {}).get("gcsDestination", {}).get("outputUriPrefix")
    )
    return {
        "name": name,
        "job_id": job_id_of(name),
        "api_version": api_version,
        "display_name": upstream_job.get("displayName") or request_body.get("displayName"),
        "model": public_model,
        "deployment": deployment.describe(),
        "owner_key_id": caller.key_id,
        "owner_alias": caller.alias,
        "team": caller.team,
        "labels": upstream_job.get("labels") or request_body.get("labels") or {},
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
        "input_uris": request_body.get("inputConfig", {}).get("gcsSource", {}).get("uris", []),
        "output_prefix": output_prefix,
        "output_directory": None,
        "completion_stats": None,
        "error": None,
        "create_time": parse_time(upstream_job.get("createTime")) or now,
        "updated": now,
        "estimate": estimate,
        "cost": {},
        "cost_final": False,
        "alerts": {},
        "deleted": False,
    }


def record_created(record: dict) -> bool:
    """Write a new job's record and index; retried, because Vertex has already accepted the
    job and a job without a record is invisible to its owner and never costed."""
    job_id = record["job_id"]
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            job_ref(job_id).set(record)
            if record.get("output_prefix"):
                index_folder(record["output_prefix"], job_id)
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
        "JOB RECORD LOST: Vertex accepted the job but the gateway could not record it; "
        "recreate the record from this entry",
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
