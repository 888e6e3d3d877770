"""OpenAI files, kept by key: uploads, reads, deletes, expiry.

A file is an object in the gateway-owned staging bucket under `openai/{key_id}/files/` and a
record `openai_files/{file_id}`; a key sees only its own (another key's id is a 404). The
batch door writes its output and error files here too (`purpose: batch_output`).

Purposes: `batch` only. OpenAI's other purposes (`OPENAI_PURPOSES`) are refused with 400
naming the one served, as is anything else.

Expiry, as OpenAI's files (openai-python, src/openai/types/file_create_params.py and the
`OutputExpiresAfter` of its batch create parameters): `expires_after: {anchor: created_at,
seconds: 3600..2592000}` on upload, `output_expires_after` (the same shape) on batch create
for its output and error files; a `batch` file without one expires after 30 days
(`BATCH_DEFAULT_SECONDS`), the gateway's output files only when asked. A file past its
`expires_at` is gone at once for its key (get, content, list and batch create answer as for
a deleted file); the sync tick deletes its object and record (`delete_expired`).
"""

import contextlib
import hashlib
import re
import secrets
import time

from shared.core import clients, jsonl, logs
from shared.core.errors import ApiError, invalid_argument, not_found
from shared.jobs import ticks

FILES = "openai_files"
FOLDER = "openai"
MAX_FILE_BYTES = 200 * 1024 * 1024  # OpenAI's batch input limit
MAX_REQUESTS = 50_000  # OpenAI's requests per batch
PURPOSES = ("batch",)
# OpenAI's purposes (openai-python, src/openai/types/file_create_params.py): refused by name.
OPENAI_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
EXPIRY_MIN_SECONDS = 3600
EXPIRY_MAX_SECONDS = 2_592_000
BATCH_DEFAULT_SECONDS = 30 * 24 * 3600
EXPIRED_PER_TICK = 200


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def derived_id(prefix: str, *parts: str) -> str:
    return prefix + hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def now() -> tuple[int, int]:
    ns = time.time_ns()
    return ns // 1_000_000_000, ns


def db():
    return clients.firestore()


def staging_bucket() -> str:
    from shared.core.config import settings

    bucket = settings().staging_bucket
    if not bucket:
        raise ApiError(
            503,
            "The OpenAI Batch API needs the gateway's staging bucket (VBG_STAGING_BUCKET); "
            "it is not configured.",
        )
    return bucket


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    return bucket, name


def owned(caller, doc: dict | None) -> bool:
    """The owner's, or anything for the master key (which lists only its own, though)."""
    return bool(doc) and (caller.is_master or doc.get("owner_key_id") == caller.key_id)


# --- files -----------------------------------------------------------------------------------


def file_object(doc: dict) -> dict:
    return {
        "id": doc["id"],
        "object": "file",
        "bytes": doc["bytes"],
        "created_at": doc["created_at"],
        "filename": doc["filename"],
        "purpose": doc["purpose"],
        "status": "processed",
        "status_details": None,
        "expires_at": doc.get("expires_at"),
    }


def expiry_seconds(value, field: str) -> int | None:
    """`{anchor: created_at, seconds: N}` -> N, checked as OpenAI checks it (the seconds may
    come as multipart text)."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"anchor", "seconds"}:
        raise invalid_argument(
            f"`{field}` must be an object with `anchor` and `seconds`.", field=field
        )
    if value["anchor"] != "created_at":
        raise invalid_argument(f"`{field}.anchor` must be created_at.", field=field)
    seconds = value["seconds"]
    if isinstance(seconds, str) and seconds.isdigit() and len(seconds) <= 10:
        seconds = int(seconds)
    if (
        not isinstance(seconds, int)
        or isinstance(seconds, bool)
        or not EXPIRY_MIN_SECONDS <= seconds <= EXPIRY_MAX_SECONDS
    ):
        raise invalid_argument(
            f"`{field}.seconds` must be an integer from {EXPIRY_MIN_SECONDS} (1 hour) to "
            f"{EXPIRY_MAX_SECONDS} (30 days).",
            field=field,
        )
    return seconds


def expired(doc: dict, at: int | None = None) -> bool:
    expires_at = doc.get("expires_at")
    return expires_at is not None and expires_at <= (at if at is not None else time.time())


def count_requests(data: bytes) -> int:
    """Non-blank lines of a JSONL file, refusing what cannot be a batch input."""
    if len(data) > MAX_FILE_BYTES:
        raise ApiError(
            413,
            f"The file is {len(data)} bytes; a batch input file may be at most "
            f"{MAX_FILE_BYTES} bytes.",
            param="file",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid_argument(
            "The file is not UTF-8 text (JSONL expected).", field="file"
        ) from None
    count = len(jsonl.records(text))
    if count == 0:
        raise invalid_argument("The file has no lines; a batch input file is JSONL.", field="file")
    if count > MAX_REQUESTS:
        raise invalid_argument(
            f"The file has {count} requests; a batch may have at most {MAX_REQUESTS}.",
            field="file",
        )
    return count


def check_purpose(purpose: str) -> str:
    if purpose in PURPOSES:
        return purpose
    known = "OpenAI's purpose" if purpose in OPENAI_PURPOSES else "purpose"
    raise invalid_argument(
        f"{known} {purpose!r} is not served by this gateway, which runs batches only: "
        "upload with purpose batch.",
        field="purpose",
    )


def create_file(
    caller, *, filename: str, purpose: str, data: bytes, expires_after: dict | None = None
) -> dict:
    check_purpose(purpose)
    seconds = expiry_seconds(expires_after, "expires_after")
    lines = count_requests(data)
    bucket = staging_bucket()
    file_id = new_id("file-")
    name = f"{FOLDER}/{caller.key_id}/files/{file_id}.jsonl"
    clients.storage().bucket(bucket).blob(name).upload_from_string(
        data, content_type="application/jsonl"
    )
    created, created_ns = now()
    doc = {
        "id": file_id,
        "owner_key_id": caller.key_id,
        "filename": filename[:255] or "file.jsonl",
        "purpose": purpose,
        "bytes": len(data),
        "lines": lines,
        "created_at": created,
        "created_ns": created_ns,
        "uri": f"gs://{bucket}/{name}",
        "expires_at": created + (seconds or BATCH_DEFAULT_SECONDS),
    }
    db().collection(FILES).document(file_id).set(doc)
    logs.info("openai file uploaded", file_id=file_id, key_id=caller.key_id, bytes=len(data))
    return doc


def get_file(caller, file_id: str) -> dict:
    snapshot = db().collection(FILES).document(file_id).get() if valid_id(file_id) else None
    doc = snapshot.to_dict() if snapshot is not None and snapshot.exists else None
    if not owned(caller, doc) or expired(doc):
        raise ApiError(404, f"No such File object: {file_id}", param="file_id")
    return doc


def _delete(doc: dict) -> None:
    from google.api_core import exceptions

    bucket, name = split_uri(doc["uri"])
    with contextlib.suppress(exceptions.NotFound):
        clients.storage().bucket(bucket).blob(name).delete()
    db().collection(FILES).document(doc["id"]).delete()


@ticks.register
def delete_expired(limit: int = EXPIRED_PER_TICK) -> int:
    """The object and the record of every file past its `expires_at` (a sync tick hook)."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        db()
        .collection(FILES)
        .where(filter=FieldFilter("expires_at", "<=", int(time.time())))
        .limit(limit)
    )
    gone = [s.to_dict() for s in query.stream()]
    for doc in gone:
        _delete(doc)
        logs.info("openai file expired and deleted", file_id=doc["id"])
    return len(gone)


def valid_id(value: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z0-9_-]{1,100}", value or ""))


def file_bytes(doc: dict) -> bytes:
    bucket, name = split_uri(doc["uri"])
    from google.api_core import exceptions

    try:
        return clients.storage().bucket(bucket).blob(name).download_as_bytes()
    except exceptions.NotFound:
        raise not_found(f"The content of file {doc['id']} is gone.") from None


def delete_file(caller, file_id: str) -> dict:
    _delete(get_file(caller, file_id))
    return {"id": file_id, "object": "file", "deleted": True}


def page(collection: str, caller, *, limit: int, after: str | None, descending: bool, where=()):
    """A page of the caller's docs by creation time, and whether more follow."""
    from google.cloud import firestore
    from google.cloud.firestore_v1.base_query import FieldFilter

    # Every key lists its own, the master key too (infra/firestore.tf has the indexes).
    query = (
        db().collection(collection).where(filter=FieldFilter("owner_key_id", "==", caller.key_id))
    )
    for field_name, value in where:
        query = query.where(filter=FieldFilter(field_name, "==", value))
    direction = firestore.Query.DESCENDING if descending else firestore.Query.ASCENDING
    query = query.order_by("created_ns", direction=direction)
    if after:
        cursor = db().collection(collection).document(after).get() if valid_id(after) else None
        owner = (cursor.to_dict() or {}).get("owner_key_id") if cursor and cursor.exists else None
        if owner != caller.key_id:
            raise ApiError(400, f"`after` {after!r} is not one of your objects.", param="after")
        query = query.start_after(cursor)
    docs = [s.to_dict() for s in query.limit(limit + 1).stream()]
    return docs[:limit], len(docs) > limit


def list_page(objects: list[dict], has_more: bool) -> dict:
    return {
        "object": "list",
        "data": objects,
        "first_id": objects[0]["id"] if objects else None,
        "last_id": objects[-1]["id"] if objects else None,
        "has_more": has_more,
    }


def list_files(caller, *, limit: int, after: str | None, descending: bool, purpose: str | None):
    """A page of the key's files; one expired but not yet deleted is left out of it."""
    where = (("purpose", purpose),) if purpose else ()
    docs, more = page(FILES, caller, limit=limit, after=after, descending=descending, where=where)
    at = int(time.time())
    return list_page([file_object(d) for d in docs if not expired(d, at)], more)
