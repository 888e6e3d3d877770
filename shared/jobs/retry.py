"""Retry what a finished job did not answer: its failed rows and the rows it never processed.

A job's input lines are joined to its output rows on the request (`shared/jobs/rows.py`;
Vertex does not keep the order); every line without a succeeded row goes, as written, into a
new input file in the gateway's staging bucket (`gs://{VBG_STAGING_BUCKET}/retries/{parent
id}/{random}.jsonl`: keys cannot write there, so the file is what the gateway chose). The new
job goes through `submit.create_job` like any create (routing, estimate, budgets, record,
event) for the parent's owner, with the parent's model, the client's output folder and labels plus
`vbg-retry-of: <parent id>`. The child record's `retry_of` names the parent (only the gateway
can set `vbg-` labels); the parent's `retries` lists its children.
"""

import fnmatch
import re
import uuid
from dataclasses import dataclass

from shared.core import clients, json_text, jsonl, keys, logs
from shared.core.config import settings
from shared.core.errors import ApiError
from shared.core.labels import RESERVED_PREFIX, RETRY_LABEL
from shared.core.vertex import TERMINAL_STATES
from shared.jobs import create_request, records, rows, submit


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


def input_lines(uris: list[str]) -> list[str]:
    """The non-blank lines of a job's input files, in order, as Vertex reads them."""
    lines: list[str] = []
    for uri in uris:
        bucket, names = _object_names(uri)
        for name in names:
            data = clients.storage().bucket(bucket).blob(name).download_as_bytes()
            lines.extend(jsonl.records(data.decode("utf-8")))
    return lines


def output_rows(directory: str | None):
    """Every output row of the files that answer the job (`rows.answer_files`); a line that
    is not JSON is skipped: it answers nothing."""
    if not directory:
        return
    bucket, folder = _split(directory.rstrip("/") + "/")
    names = [b.name for b in clients.storage().list_blobs(bucket, prefix=folder)]
    for name in rows.answer_files(names, folder):
        data = clients.storage().bucket(bucket).blob(name).download_as_bytes()
        for line in jsonl.records(data.decode("utf-8", "replace")):
            try:
                row = json_text.loads(line, surrogates=True)
            except ValueError:
                continue
            if isinstance(row, dict):
                yield row


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
        lines = input_lines(uris)
    except Exception as exc:  # NotFound, Forbidden: the input is gone
        raise failed_precondition(f"The input of job {job_id} cannot be read: {exc}") from None
    joined = rows.join(lines, output_rows(record.get("output_directory")))
    failed, missing = joined.failed, joined.missing
    wanted = sorted(failed + missing)
    if not wanted:
        raise failed_precondition(
            f"Job {job_id} has no failed or unprocessed rows: all {len(lines)} succeeded."
        )
    name = f"retries/{job_id}/{uuid.uuid4().hex}.jsonl"
    data = "".join(lines[i] + "\n" for i in wanted).encode()
    clients.storage().bucket(staging).blob(name).upload_from_string(
        data, content_type="application/jsonl"
    )
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
        failed_rows=len(failed),
        unprocessed_rows=len(missing),
        input_uri=input_uri,
    )
    return Retried(submitted, input_uri, len(failed), len(missing))


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
