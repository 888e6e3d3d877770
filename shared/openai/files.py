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

import codecs
import contextlib
import hashlib
import re
import secrets
import time
from collections.abc import Iterator
from typing import IO

from shared.core import clients, jsonl, logs
from shared.core.errors import ApiError, invalid_argument, not_found
from shared.core.keys import Caller
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
UPLOAD_CHUNK = 2 * 1024 * 1024  # a resumable upload's piece (a multiple of 256 KiB)
READ_CHUNK = 1024 * 1024


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


def owned(caller: Caller, doc: dict) -> bool:
    """The owner's, or anything for the master key (which lists only its own, though)."""
    return caller.is_master or doc.get("owner_key_id") == caller.key_id


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


def check_purpose(purpose: str) -> str:
    if purpose in PURPOSES:
        return purpose
    known = "OpenAI's purpose" if purpose in OPENAI_PURPOSES else "purpose"
    raise invalid_argument(
        f"{known} {purpose!r} is not served by this gateway, which runs batches only: "
        "upload with purpose batch.",
        field="purpose",
    )


class FileUpload:
    """A batch input file written to the staging bucket as it arrives, its size, UTF-8 and
    lines checked on the way: memory is one upload piece whatever the file's size. `finish`
    records it; `abort` removes what was written."""

    def __init__(self, caller: Caller):
        self.caller = caller
        self.file_id = new_id("file-")
        self.bucket = staging_bucket()
        self.name = f"{FOLDER}/{caller.key_id}/files/{self.file_id}.jsonl"
        self.size = 0
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._lines = jsonl.LineCounter()
        self._writer = LineWriter(self.bucket, self.name)

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > MAX_FILE_BYTES:
            raise ApiError(
                413,
                f"The file passes {MAX_FILE_BYTES} bytes, the most a batch input file may be.",
                param="file",
            )
        self._check_utf8(data)
        if self._lines.feed(data) > MAX_REQUESTS:
            raise _too_many_requests()
        self._writer.write_bytes(data)

    def _check_utf8(self, data: bytes, final: bool = False) -> None:
        try:
            self._utf8.decode(data, final)
        except UnicodeDecodeError:
            raise invalid_argument(
                "The file is not UTF-8 text (JSONL expected).", field="file"
            ) from None

    def finish(self, *, filename: str, purpose: str, expires_after: dict | None = None) -> dict:
        check_purpose(purpose)
        seconds = expiry_seconds(expires_after, "expires_after")
        self._check_utf8(b"", final=True)
        lines = self._lines.finish()
        if lines == 0:
            raise invalid_argument(
                "The file has no lines; a batch input file is JSONL.", field="file"
            )
        if lines > MAX_REQUESTS:
            raise _too_many_requests()
        self._writer.close()
        created, created_ns = now()
        doc = {
            "id": self.file_id,
            "owner_key_id": self.caller.key_id,
            "filename": filename[:255] or "file.jsonl",
            "purpose": purpose,
            "bytes": self.size,
            "lines": lines,
            "created_at": created,
            "created_ns": created_ns,
            "uri": f"gs://{self.bucket}/{self.name}",
            "expires_at": created + (seconds or BATCH_DEFAULT_SECONDS),
        }
        db().collection(FILES).document(self.file_id).set(doc)
        logs.info(
            "openai file uploaded", file_id=self.file_id, key_id=self.caller.key_id, bytes=self.size
        )
        return doc

    def abort(self) -> None:
        self._writer.discard()


def _too_many_requests() -> ApiError:
    return invalid_argument(
        f"The file has more than {MAX_REQUESTS} requests; a batch may have at most {MAX_REQUESTS}.",
        field="file",
    )


class LineWriter:
    """JSONL written straight into a GCS object (a resumable upload of UPLOAD_CHUNK pieces,
    begun at the first write): memory is one piece, however many lines."""

    def __init__(self, bucket: str, name: str):
        self.blob = clients.storage().bucket(bucket).blob(name)
        self.uri = f"gs://{bucket}/{name}"
        self.lines = 0
        self._file: IO[bytes] | None = None

    def write(self, row) -> None:
        self.write_bytes(jsonl.dumps(row))
        self.lines += 1

    def write_bytes(self, data: bytes) -> None:
        if self._file is None:
            self._file = self.blob.open(
                "wb", chunk_size=UPLOAD_CHUNK, content_type="application/jsonl"
            )
        self._file.write(data)

    def close(self) -> None:
        """Finish the object (none is made when nothing was written)."""
        if self._file is not None:
            self._file.close()

    def discard(self) -> None:
        """Remove what was written (an upload begun can only be finished, then deleted)."""
        from google.api_core import exceptions

        if self._file is None:
            return
        with contextlib.suppress(exceptions.GoogleAPICallError, ValueError):
            self._file.close()
        with contextlib.suppress(exceptions.NotFound):
            self.blob.delete()


def get_file(caller: Caller, file_id: str) -> dict:
    snapshot = db().collection(FILES).document(file_id).get() if valid_id(file_id) else None
    doc = snapshot.to_dict() if snapshot is not None and snapshot.exists else None
    if not doc or not owned(caller, doc) or expired(doc):
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


def file_chunks(doc: dict) -> Iterator[bytes]:
    """A file's content in READ_CHUNK pieces (memory one piece, whatever the file's size). The
    first piece is read here, so that a file whose object is gone is a 404 before any reply."""
    from google.api_core import exceptions

    bucket, name = split_uri(doc["uri"])
    try:
        reader = clients.storage().bucket(bucket).blob(name).open("rb", chunk_size=READ_CHUNK)
        first = reader.read(READ_CHUNK)
    except exceptions.NotFound:
        raise not_found(f"The content of file {doc['id']} is gone.") from None

    def rest() -> Iterator[bytes]:
        with reader:
            yield first
            while chunk := reader.read(READ_CHUNK):
                yield chunk

    return rest()


def delete_file(caller: Caller, file_id: str) -> dict:
    _delete(get_file(caller, file_id))
    return {"id": file_id, "object": "file", "deleted": True}


def page(
    collection: str, caller: Caller, *, limit: int, after: str | None, descending: bool, where=()
):
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


def list_files(
    caller: Caller, *, limit: int, after: str | None, descending: bool, purpose: str | None
):
    """A page of the key's files; one expired but not yet deleted is left out of it."""
    where = (("purpose", purpose),) if purpose else ()
    docs, more = page(FILES, caller, limit=limit, after=after, descending=descending, where=where)
    at = int(time.time())
    return list_page([file_object(d) for d in docs if not expired(d, at)], more)
