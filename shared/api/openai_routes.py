"""The OpenAI Batch API routes (`/v1/files`, `/v1/batches`): request parsing and replies.

The gateway key is the OpenAI `api_key` (Bearer). Objects, pagination and errors are
OpenAI's (the route table gives these routes the OpenAI error shape); the work is in
`shared/openai/batches.py`.
"""

import time

from shared.api.audit import audit
from shared.api.http import Reply, Request
from shared.core.errors import invalid_argument
from shared.openai import batches, files, uploads, webhooks

FILES_MAX_LIMIT = 10_000
BATCHES_MAX_LIMIT = 100
BATCHES_DEFAULT_LIMIT = 20


def upload_limit() -> int:
    """The body limit of a file upload: OpenAI's file limit plus room for the multipart."""
    return files.MAX_FILE_BYTES + 64 * 1024


def _limit(request: Request, default: int, maximum: int) -> int:
    raw = request.args.get("limit", "")
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= maximum:
        raise invalid_argument(f"`limit` must be an integer from 1 to {maximum}.", field="limit")
    return int(raw)


# --- files -----------------------------------------------------------------------------------


def create_file(request: Request) -> Reply:
    """The file part goes to the staging bucket as it arrives (`FileUpload`), never whole."""
    upload = files.FileUpload(request.key_holder)
    try:
        fields, filenames = request.multipart({"file": upload.write})
        if "file" not in filenames:
            raise invalid_argument(
                "`file` is required: the JSONL file, as a multipart part.", "file"
            )
        purpose = fields.get("purpose")
        if not purpose:
            raise invalid_argument("`purpose` is required (batch).", field="purpose")
        # The SDK sends an object field as `expires_after[anchor]`, `expires_after[seconds]`.
        expires_after = {
            key[len("expires_after[") : -1]: value
            for key, value in fields.items()
            if key.startswith("expires_after[") and key.endswith("]")
        }
        doc = upload.finish(
            filename=filenames["file"] or "", purpose=purpose, expires_after=expires_after or None
        )
    except BaseException:
        upload.abort()
        raise
    return Reply(200, files.file_object(doc))


def list_files(request: Request) -> Reply:
    order = request.args.get("order", "desc")
    if order not in ("asc", "desc"):
        raise invalid_argument("`order` must be asc or desc.", field="order")
    page = files.list_files(
        request.key_holder,
        limit=_limit(request, FILES_MAX_LIMIT, FILES_MAX_LIMIT),
        after=request.args.get("after") or None,
        descending=order == "desc",
        purpose=request.args.get("purpose") or None,
    )
    return Reply(200, page)


def get_file(request: Request, file_id: str) -> Reply:
    return Reply(200, files.file_object(files.get_file(request.key_holder, file_id)))


def file_content(request: Request, file_id: str) -> Reply:
    doc = files.get_file(request.key_holder, file_id)
    return Reply(200, files.file_chunks(doc), {"Content-Type": "application/octet-stream"})


def delete_file(request: Request, file_id: str) -> Reply:
    return Reply(200, files.delete_file(request.key_holder, file_id))


# --- batches ---------------------------------------------------------------------------------


def create_batch(request: Request) -> Reply:
    started = time.monotonic()
    body = request.json_body()
    batch = batches.create_batch(
        request.key_holder,
        input_file_id=body.get("input_file_id"),
        endpoint=body.get("endpoint"),
        completion_window=body.get("completion_window"),
        metadata=body.get("metadata"),
        output_expires_after=body.get("output_expires_after"),
    )
    if batch["status"] == "failed":
        webhooks.batch_refused(batch, request.key_holder.key_id)
    audit(
        request,
        outcome=200,
        started=started,
        job_id=batch.get("vertex_job_id"),
        model=batch.get("model"),
    )
    return Reply(200, batch)


def get_batch(request: Request, batch_id: str) -> Reply:
    return Reply(200, batches.get_batch(request.key_holder, batch_id))


def cancel_batch(request: Request, batch_id: str) -> Reply:
    started = time.monotonic()
    request.json_body(allow_empty=True)
    batch = batches.cancel_batch(request.key_holder, batch_id)
    audit(
        request,
        outcome=200,
        started=started,
        job_id=batch.get("vertex_job_id"),
        model=batch.get("model"),
    )
    return Reply(200, batch)


def list_batches(request: Request) -> Reply:
    page = batches.list_batches(
        request.key_holder,
        limit=_limit(request, BATCHES_DEFAULT_LIMIT, BATCHES_MAX_LIMIT),
        after=request.args.get("after") or None,
    )
    return Reply(200, page)


# --- uploads (a file in parts) ---------------------------------------------------------------


def part_limit() -> int:
    """A Part's body limit: OpenAI's part size plus room for the multipart framing."""
    return uploads.MAX_PART_BYTES + 64 * 1024


def create_upload(request: Request) -> Reply:
    return Reply(200, uploads.create(request.key_holder, request.json_body()))


def add_upload_part(request: Request, upload_id: str) -> Reply:
    data = bytearray()
    _, filenames = request.multipart({"data": data.extend})
    if "data" not in filenames:
        raise invalid_argument("`data` is required: the Part's bytes, as a multipart part.", "data")
    return Reply(200, uploads.add_part(request.key_holder, upload_id, bytes(data)))


def complete_upload(request: Request, upload_id: str) -> Reply:
    started = time.monotonic()
    upload = uploads.complete(request.key_holder, upload_id, request.json_body())
    audit(request, outcome=200, started=started, file_id=(upload.get("file") or {}).get("id"))
    return Reply(200, upload)


def cancel_upload(request: Request, upload_id: str) -> Reply:
    request.json_body(allow_empty=True)
    return Reply(200, uploads.cancel(request.key_holder, upload_id))
