"""OpenAI's Uploads API (#25 item 3): a file past one request's size, sent in parts.

Cloud Functions caps a request body at 32 MiB, below OpenAI's 200 MB batch input; the SDK's
`client.uploads.upload_file_chunked(..., part_size=...)` sends a file as an Upload
(`POST /v1/uploads`: `bytes`, `filename`, `mime_type`, `purpose`, optional `expires_after`),
Parts (`POST /v1/uploads/{id}/parts`, multipart `data`, at most `MAX_PART_BYTES`, each under
the platform's cap when `part_size` is), then `complete` (`part_ids` in order, optional
`md5`), which makes a File (`files`) of the parts joined; `cancel` drops it. Shapes and rules
are OpenAI's (openai-python, src/openai/resources/uploads/ and src/openai/types/upload.py):
an Upload expires an hour after it is created; the bytes completed must equal `bytes`.

Storage: `uploads/{upload_<24 hex>}` holds the Upload, `upload_parts/{part_<24 hex>}` each
Part; a Part's bytes are an object under `openai/{key_id}/uploads/{upload_id}/`. Complete
joins them server side (GCS compose, 32 sources per call, chained), then reads the result
once, streamed, to check it as a batch input (UTF-8 JSONL, the request limit) and its md5;
the part objects are deleted. The sync tick drops the parts of Uploads past their hour.
"""

import codecs
import contextlib
import hashlib
import secrets
import time

from google.api_core import exceptions as gexc
from google.cloud.firestore_v1.base_query import FieldFilter

from shared.core import clients, logs
from shared.core.errors import ApiError, invalid_argument
from shared.core.keys import Caller
from shared.jobs import ticks
from shared.openai import files

UPLOADS = "uploads"
PARTS = "upload_parts"
UPLOAD_SECONDS = 3600
MAX_PART_BYTES = 64 * 1024 * 1024  # OpenAI's part limit
MAX_PARTS = 10_000
MAX_FILENAME = 255
COMPOSE_SOURCES = 32
READ_CHUNK = 8 * 1024 * 1024
STALE_PER_TICK = 20


def _db():
    return files.db()


def upload_object(doc: dict, file_doc: dict | None = None) -> dict:
    return {
        "id": doc["id"],
        "object": "upload",
        "bytes": doc["bytes"],
        "created_at": doc["created_at"],
        "expires_at": doc["expires_at"],
        "filename": doc["filename"],
        "purpose": doc["purpose"],
        "status": status_of(doc),
        "file": files.file_object(file_doc) if file_doc else None,
    }


def status_of(doc: dict) -> str:
    if doc["status"] == "pending" and doc["expires_at"] <= time.time():
        return "expired"
    return doc["status"]


def create(caller: Caller, body: dict) -> dict:
    purpose = body.get("purpose")
    if not isinstance(purpose, str):
        raise invalid_argument("`purpose` is required (batch).", field="purpose")
    files.check_purpose(purpose)
    size = body.get("bytes")
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= files.MAX_FILE_BYTES:
        raise invalid_argument(
            f"`bytes` must be an integer from 1 to {files.MAX_FILE_BYTES} (a batch input's "
            "largest size).",
            field="bytes",
        )
    filename = body.get("filename")
    if not isinstance(filename, str) or not filename or len(filename) > MAX_FILENAME:
        raise invalid_argument(
            f"`filename` is required, at most {MAX_FILENAME} characters.", field="filename"
        )
    mime_type = body.get("mime_type")
    if not isinstance(mime_type, str) or not mime_type or len(mime_type) > 255:
        raise invalid_argument("`mime_type` is required.", field="mime_type")
    seconds = files.expiry_seconds(body.get("expires_after"), "expires_after")
    created = int(time.time())
    doc = {
        "id": "upload_" + secrets.token_hex(12),
        "owner_key_id": caller.key_id,
        "bytes": size,
        "filename": filename,
        "mime_type": mime_type,
        "purpose": purpose,
        "file_expires_seconds": seconds,
        "created_at": created,
        "expires_at": created + UPLOAD_SECONDS,
        "status": "pending",
        "file_id": None,
    }
    _db().collection(UPLOADS).document(doc["id"]).set(doc)
    return upload_object(doc)


def _get(caller: Caller, upload_id: str) -> dict:
    doc = None
    if files.valid_id(upload_id):
        snapshot = _db().collection(UPLOADS).document(upload_id).get()
        doc = snapshot.to_dict() if snapshot.exists else None
    if not doc or not files.owned(caller, doc):
        raise ApiError(404, f"No such Upload: {upload_id}", param="upload_id")
    return doc


def _pending(doc: dict) -> None:
    status = status_of(doc)
    if status != "pending":
        raise invalid_argument(f"Upload {doc['id']} is {status}; it takes no more changes.")


def _folder(doc: dict) -> str:
    return f"{files.FOLDER}/{doc['owner_key_id']}/uploads/{doc['id']}"


def add_part(caller: Caller, upload_id: str, data: bytes) -> dict:
    doc = _get(caller, upload_id)
    _pending(doc)
    if not data:
        raise invalid_argument("`data` is empty; a Part holds at least one byte.", field="data")
    if len(data) > MAX_PART_BYTES:
        raise ApiError(413, f"A Part holds at most {MAX_PART_BYTES} bytes.", param="data")
    part_id = "part_" + secrets.token_hex(12)
    bucket = files.staging_bucket()
    name = f"{_folder(doc)}/{part_id}"
    clients.storage().bucket(bucket).blob(name).upload_from_string(data)
    created = int(time.time())
    _db().collection(PARTS).document(part_id).set(
        {
            "id": part_id,
            "upload_id": upload_id,
            "bytes": len(data),
            "uri": f"gs://{bucket}/{name}",
            "created_at": created,
        }
    )
    return {"id": part_id, "object": "upload.part", "created_at": created, "upload_id": upload_id}


def _parts(upload_id: str, part_ids) -> list[dict]:
    if (
        not isinstance(part_ids, list)
        or not part_ids
        or len(part_ids) > MAX_PARTS
        or not all(isinstance(p, str) for p in part_ids)
        or len(set(part_ids)) != len(part_ids)
    ):
        raise invalid_argument(
            "`part_ids` must be a non-empty list of distinct Part ids, in order.",
            field="part_ids",
        )
    refs = [_db().collection(PARTS).document(p) for p in part_ids if files.valid_id(p)]
    found = {s.id: s.to_dict() for s in _db().get_all(refs) if s.exists}
    parts = [found.get(p) for p in part_ids]
    if any(p is None or p["upload_id"] != upload_id for p in parts):
        raise invalid_argument(
            "`part_ids` names a Part that is not one of this Upload's.", field="part_ids"
        )
    return parts  # type: ignore[return-value]


def _compose(bucket, name: str, sources: list) -> None:
    """`name` = the sources joined in order; chained for more than 32 (GCS's limit a call)."""
    steps: list = []
    while len(sources) > COMPOSE_SOURCES:
        head = bucket.blob(f"{name}.step{len(steps)}")
        head.compose(sources[:COMPOSE_SOURCES])
        steps.append(head)
        sources = [head, *sources[COMPOSE_SOURCES:]]
    bucket.blob(name).compose(sources)
    for step in steps:
        step.delete()


def _check_joined(blob, md5: str | None) -> int:
    """One streamed read of the joined file: UTF-8 JSONL, the request limit, the md5."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    digest = hashlib.md5(usedforsecurity=False)
    lines, tail = 0, b""
    with blob.open("rb", chunk_size=READ_CHUNK) as stream:
        while chunk := stream.read(READ_CHUNK):
            digest.update(chunk)
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                raise invalid_argument(
                    "The file is not UTF-8 text (JSONL expected).", field="file"
                ) from None
            pieces = (tail + chunk).split(b"\n")
            tail = pieces.pop()
            lines += sum(1 for piece in pieces if piece.strip())
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise invalid_argument(
            "The file is not UTF-8 text (JSONL expected).", field="file"
        ) from None
    lines += 1 if tail.strip() else 0
    if md5 is not None and digest.hexdigest() != md5.lower():
        raise invalid_argument("`md5` does not match the bytes uploaded.", field="md5")
    if lines == 0:
        raise invalid_argument("The file has no lines; a batch input file is JSONL.", field="file")
    if lines > files.MAX_REQUESTS:
        raise invalid_argument(
            f"The file has {lines} requests; a batch may have at most {files.MAX_REQUESTS}.",
            field="file",
        )
    return lines


def complete(caller: Caller, upload_id: str, body: dict) -> dict:
    doc = _get(caller, upload_id)
    _pending(doc)
    md5 = body.get("md5")
    if md5 is not None and (not isinstance(md5, str) or len(md5) != 32):
        raise invalid_argument("`md5` is the file's MD5 as 32 hex digits.", field="md5")
    parts = _parts(upload_id, body.get("part_ids"))
    total = sum(p["bytes"] for p in parts)
    if total != doc["bytes"]:
        raise invalid_argument(
            f"The Parts hold {total} bytes; the Upload was created for {doc['bytes']}.",
            field="part_ids",
        )
    storage = clients.storage()
    bucket_name = files.staging_bucket()
    bucket = storage.bucket(bucket_name)
    file_id = files.new_id("file-")
    name = f"{files.FOLDER}/{doc['owner_key_id']}/files/{file_id}.jsonl"
    _compose(bucket, name, [bucket.blob(files.split_uri(p["uri"])[1]) for p in parts])
    joined = bucket.blob(name)
    try:
        lines = _check_joined(joined, md5)
    except ApiError:
        joined.delete()
        raise
    created, created_ns = files.now()
    file_doc = {
        "id": file_id,
        "owner_key_id": doc["owner_key_id"],
        "filename": doc["filename"],
        "purpose": doc["purpose"],
        "bytes": total,
        "lines": lines,
        "created_at": created,
        "created_ns": created_ns,
        "uri": f"gs://{bucket_name}/{name}",
        "expires_at": created + (doc.get("file_expires_seconds") or files.BATCH_DEFAULT_SECONDS),
    }
    _db().collection(files.FILES).document(file_id).set(file_doc)
    ref = _db().collection(UPLOADS).document(upload_id)
    ref.update({"status": "completed", "file_id": file_id})
    _drop_parts(upload_id)
    logs.info("openai upload completed", upload_id=upload_id, file_id=file_id, bytes=total)
    return upload_object({**doc, "status": "completed"}, file_doc)


def cancel(caller: Caller, upload_id: str) -> dict:
    doc = _get(caller, upload_id)
    _pending(doc)
    _db().collection(UPLOADS).document(upload_id).update({"status": "cancelled"})
    _drop_parts(upload_id)
    return upload_object({**doc, "status": "cancelled"})


def _drop_parts(upload_id: str) -> None:
    query = _db().collection(PARTS).where(filter=FieldFilter("upload_id", "==", upload_id))
    for snapshot in query.stream():
        part = snapshot.to_dict()
        bucket, name = files.split_uri(part["uri"])
        with contextlib.suppress(gexc.NotFound):
            clients.storage().bucket(bucket).blob(name).delete()
        snapshot.reference.delete()


@ticks.register
def drop_stale(limit: int = STALE_PER_TICK) -> int:
    """The parts of Uploads past their hour (a sync tick hook); the Upload reads `expired`."""
    query = (
        _db()
        .collection(UPLOADS)
        .where(filter=FieldFilter("status", "==", "pending"))
        .where(filter=FieldFilter("expires_at", "<=", int(time.time())))
        .limit(limit)
    )
    stale = [s.id for s in query.stream()]
    for upload_id in stale:
        _db().collection(UPLOADS).document(upload_id).update({"status": "expired"})
        _drop_parts(upload_id)
    return len(stale)
