"""Retry what a finished job did not answer: its failed rows and the rows it never processed.

A job's input lines are joined to its output rows on the request (`shared/jobs/rows.py`;
Vertex does not keep the order); every line without a succeeded row goes, as written, into a
new input file in the gateway's staging bucket (`gs://{VBG_STAGING_BUCKET}/retries/{parent
id}/{random}.jsonl`: keys cannot write there, so the file is what the gateway chose). The new
job goes through `submit.create_job` like any create (routing, estimate, budgets, record,
event) for the parent's owner, with the parent's model, the client's output folder and labels plus
`vbg-retry-of: <parent id>`. The child record's `retry_of` names the parent (only the gateway
can set `vbg-` labels); the parent's `retries` lists its children.

Everything streams (issue #25 item 2): the input is read twice in ranged reads (once for each
line's key, once to copy the lines wanted), the output rows once, and the retry file is
uploaded as it is written; memory holds the lines' keys (`rows.LineKeys`), whatever the size.
"""

import fnmatch
import re
import uuid
from array import array
from collections.abc import Iterator
from dataclasses import dataclass

from shared.core import clients, json_text, jsonl, keys, logs
from shared.core.config import settings
from shared.core.errors import ApiError
from shared.core.labels import RESERVED_PREFIX, RETRY_LABEL
from shared.core.vertex import TERMINAL_STATES
from shared.cost import usage
from shared.jobs import create_request, records, rows, submit

UPLOAD_CHUNK = 8 * 1024 * 1024  # the retry file is uploaded as it is written (resumable)


def failed_precondition(message: str) -> ApiError:
    return ApiError(400, message, status="FAILED_PRECONDITION")


@dataclass(frozen=True)
class Retried:
    submitted: submit.Submitted
    input_uri: str
    failed_rows: int
    unprocessed_rows: int


def _split(uri: str) -> tuple[str, str]:
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    return bucket, name


def _object_names(uri: str) -> tuple[str, list[str]]:
    """The objects an input URI names (Vertex accepts `*` wildcards), sorted."""
    bucket, path = _split(uri)
    if not re.search(r"[*?\[]", path):
        return bucket, [path]
    prefix = re.split(r"[*?\[]", path, maxsplit=1)[0]
    names = clients.storage().list_blobs(bucket, prefix=prefix)
    return bucket, sorted(b.name for b in names if fnmatch.fnmatchcase(b.name, path))


def input_lines(uris: list[str], *, chunk_size: int = usage.CHUNK_SIZE) -> Iterator[bytes]:
    """The non-blank lines of a job's input files, in order, as Vertex reads them: streamed
    in ranged reads of `chunk_size`, each object pinned to one generation."""
    for uri in uris:
        bucket, names = _object_names(uri)
        for name in names:
            yield from jsonl.byte_records(
                usage.read_gcs_chunks(bucket, name, chunk_size=chunk_size)
            )


def output_rows(directory: str | None, *, chunk_size: int = usage.CHUNK_SIZE) -> Iterator[dict]:
    """Every output row of the files that answer the job (`rows.answer_files`), streamed; a
    line that is not JSON is skipped: it answers nothing."""
    if not directory:
        return
    bucket, folder = _split(directory.rstrip("/") + "/")
    names = [b.name for b in clients.storage().list_blobs(bucket, prefix=folder)]
    for name in rows.answer_files(names, folder):
        for raw in jsonl.byte_records(usage.read_gcs_chunks(bucket, name, chunk_size=chunk_size)):
            try:
                row = json_text.loads(raw.decode("utf-8", "replace"), surrogates=True)
            except ValueError:
                continue
            if isinstance(row, dict):
                yield row


def input_keys(uris: list[str], **reads) -> rows.LineKeys:
    """Each input line's key (`rows.LineKeys`), the input read once: about 21 bytes a line
    are held, never a file."""
    return rows.LineKeys(array("Q", (rows.raw_line_key(raw) for raw in input_lines(uris, **reads))))


def answer(keys: rows.LineKeys, directory: str | None, **reads) -> rows.LineKeys:
    """The output rows streamed past the keys: `keys.status` then says what each line got
    (none, a failed row, a succeeded row)."""
    for row in output_rows(directory, **reads):
        keys.assign(rows.row_key(row), not rows.failed(row))
    return keys


def _owner(record: dict):
    owner = record.get("owner_key_id")
    if owner == keys.MASTER:
        return keys.master_caller()
    key = keys.get_record(owner) if owner else None
    if not key or key.get("revoked"):
        raise failed_precondition(
            f"The key that owns job {record['job_id']} no longer exists or is revoked: "
            "its failed rows cannot be retried in its name."
        )
    return keys.caller_from_record(key)


def _retry_body(record: dict, input_uri: str) -> dict:
    labels = {
        k: v for k, v in (record.get("labels") or {}).items() if not k.startswith(RESERVED_PREFIX)
    }
    name = (record.get("display_name") or record["job_id"])[:100]
    return {
        "displayName": f"{name} (retry)"[:128],
        "model": record["model"],
        "inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": [input_uri]}},
        "outputConfig": {
            "predictionsFormat": "jsonl",
            "gcsDestination": {"outputUriPrefix": records.client_output_prefix(record)},
        },
        "labels": labels,
    }


def retry_failed(record: dict) -> Retried:
    """Create the retry job of a terminal job, or say why there is nothing to retry."""
    job_id = record["job_id"]
    if record.get("state") not in TERMINAL_STATES:
        raise failed_precondition(
            f"Job {job_id} is {record.get('state')}: retry its failed rows once it has ended "
            "(or cancel it first)."
        )
    staging = settings().staging_bucket
    if not staging:
        raise ApiError(
            503, "Retries need the gateway's staging bucket: set VBG_STAGING_BUCKET.", "UNAVAILABLE"
        )
    uris = records.run_inputs(record)
    try:
        keys = input_keys(uris)
    except Exception as exc:  # NotFound, Forbidden: the input is gone
        raise failed_precondition(f"The input of job {job_id} cannot be read: {exc}") from None
    answer(keys, record.get("output_directory"))
    failed, missing = keys.status.count(1), keys.status.count(0)
    if not failed + missing:
        raise failed_precondition(
            f"Job {job_id} has no failed or unprocessed rows: all {keys.n} succeeded."
        )
    name = f"retries/{job_id}/{uuid.uuid4().hex}.jsonl"
    # The input read a second time, as a stream: the lines no succeeded row answered.
    blob = clients.storage().bucket(staging).blob(name, chunk_size=UPLOAD_CHUNK)
    with blob.open("wb", content_type="application/jsonl", ignore_flush=True) as out:
        for position, raw in enumerate(input_lines(uris)):
            if keys.status[position] != 2:
                out.write(raw + b"\n")
    input_uri = f"gs://{staging}/{name}"
    submitted = submit.create_job(
        caller=_owner(record),
        request=create_request.parse(
            _retry_body(record, input_uri),
            door=create_request.Door.RETRY,
            gateway_labels={RETRY_LABEL: job_id},
        ),
    )
    if submitted.record:
        from google.cloud import firestore

        records.mark(job_id, retries=firestore.ArrayUnion([submitted.record["job_id"]]))
    logs.info(
        "retry job created" if submitted.record else "retry job refused upstream",
        job_id=job_id,
        retry_job_id=submitted.record and submitted.record["job_id"],
        failed_rows=failed,
        unprocessed_rows=missing,
        input_uri=input_uri,
    )
    return Retried(submitted, input_uri, failed, missing)


def chain(job_id: str, record: dict) -> list[dict]:
    """Every job of a retry chain (the first parent, then children breadth first)."""
    root_id, root = job_id, record
    seen = {job_id}
    while root.get("retry_of") and root["retry_of"] not in seen:
        parent = records.get(root["retry_of"])
        if not parent:
            break
        seen.add(root["retry_of"])
        root_id, root = root["retry_of"], parent
    ordered, queue, visited = [], [(root_id, root)], {root_id}
    while queue:
        current_id, current = queue.pop(0)
        ordered.append({**current, "job_id": current_id})
        children = [c for c in current.get("retries") or [] if c not in visited]
        visited.update(children)
        found = records.get_many(children) if children else {}
        queue.extend((c, found[c]) for c in children if c in found)
    return ordered
