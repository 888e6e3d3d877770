"""The OpenAI Batch API door: files and batches, kept by key, run as Vertex batch jobs.

Files (`openai_files/{file_id}`) are objects in the gateway-owned staging bucket under
`openai/{key_id}/files/`; a key sees only its own (another key's id is a 404). A batch
(`openai_batches/{batch_id}`) translates its input file line by line (`translation`),
writes the Vertex input under `openai/{key_id}/batches/{batch_id}/` and creates the job
through `submit.create_job`, like any door: routing and failover, sealing, budgets, the
ledger, lifecycle and alerts. The job carries the label `vbg-openai-batch: <batch_id>`.

When the job ends, `lifecycle.finish_job` calls `finish_for_job` (registered with
`job_end`; event-driven, before the job's cost is marked final, so a failure is retried by
the next tick): every row of the job's prediction files is translated (`results`) into an
output file and an error file, written once (deterministic ids and contents, then
`translated` on the batch doc; a redelivery finds it set and does nothing).

The batch's status is computed from the job record (kept in step with Vertex by the sync):
`validating` (Vertex pending/queued), `in_progress` (running), `finalizing` (Vertex ended,
files not yet written), then `completed` (succeeded or partially succeeded), `failed`,
`expired` or `cancelled`; `cancelling` from the cancel request until the files are
written. A batch whose lines do not translate is `failed` at once with `errors.data`
naming each line, and no job is created.
"""

import json
import re
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.core import clients, jsonl, logs, times
from shared.core.errors import ApiError, invalid_argument
from shared.core.keys import Caller
from shared.core.labels import RESERVED_PREFIX
from shared.core.vertex import TERMINAL_STATES
from shared.jobs import create_request, intents, job_end, records, submit, ticks
from shared.openai import files, results, translation

BATCHES = "openai_batches"
BATCH_LABEL = "vbg-openai-batch"
MAX_LINE_ERRORS = 100
MAX_METADATA = 16
COMPLETION_WINDOW = "24h"
WINDOW_SECONDS = 24 * 3600
SPOOL_BYTES = 8 * 1024 * 1024

FINAL_STATUS = {
    "JOB_STATE_SUCCEEDED": "completed",
    "JOB_STATE_PARTIALLY_SUCCEEDED": "completed",
    "JOB_STATE_FAILED": "failed",
    "JOB_STATE_EXPIRED": "expired",
    "JOB_STATE_CANCELLED": "cancelled",
}
FINAL_TIME_FIELD = {
    "completed": "completed_at",
    "failed": "failed_at",
    "expired": "expired_at",
    "cancelled": "cancelled_at",
}
WAITING_STATES = ("JOB_STATE_PENDING", "JOB_STATE_QUEUED", "JOB_STATE_UNSPECIFIED")
# Vertex runs a batch job for at most 24 hours; a job it cancels after that long running was
# cut off, not cancelled by anyone (the reading of Vertex's limit: an inference).
VERTEX_RUN_LIMIT_SECONDS = 24 * 3600
EXPIRE_PER_TICK = 50
# A cancel the expiry asked for that has not taken is asked again after this long.
EXPIRY_RETRY_SECONDS = 300


# --- batch create ----------------------------------------------------------------------------


def labels_from_metadata(metadata: dict) -> dict[str, str]:
    """OpenAI metadata (16 pairs, keys <= 64, values <= 512 chars) squeezed into Vertex
    label rules; the originals stay on the batch doc."""
    labels: dict[str, str] = {}
    for key, value in metadata.items():
        label_key = re.sub(r"[^a-z0-9_-]", "_", key.lower())[:63]
        if not label_key or not label_key[0].isalpha():
            label_key = ("m" + label_key)[:63]
        if label_key.startswith(RESERVED_PREFIX):
            label_key = ("x-" + label_key)[:63]
        label_value = re.sub(r"[^a-z0-9_-]", "_", value.lower())[:63]
        labels.setdefault(label_key, label_value)
    return labels


def check_metadata(metadata) -> dict:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or len(metadata) > MAX_METADATA:
        raise invalid_argument(
            f"`metadata` must be an object of at most {MAX_METADATA} pairs.", field="metadata"
        )
    for key, value in metadata.items():
        if not isinstance(value, str) or len(key) > 64 or len(value) > 512:
            raise invalid_argument(
                "`metadata` keys are at most 64 characters and values strings of at most "
                "512 characters.",
                field="metadata",
            )
    return metadata


@dataclass
class Translated:
    """What `translate_input` made of an input file."""

    model: str | None = None
    requests: int = 0  # the file's requests that translated (custom ids)
    vertex_lines: int = 0  # what they became (an embeddings request: one line per input)
    widest_request: int = 1  # the most Vertex lines one request became
    errors: list[dict] = field(default_factory=list)


def translate_input(chunks: Iterable[bytes], endpoint: str, model_of, emit) -> Translated:
    """Translate an input file line by line as it is read, giving each Vertex line to `emit`
    while no line has failed. `model_of(name)` resolves the batch's model (raising ApiError)
    and returns the deployment's publisher model. Lines that do not translate are `errors`
    (at most MAX_LINE_ERRORS, then the reading stops); only the custom ids are kept."""
    done = Translated()
    seen: set[str] = set()
    deployed = ""  # the deployment's publisher model, from the first line
    for number, raw in jsonl.numbered_byte_records(chunks):
        try:
            line = translation.parse_line(_text(raw), endpoint)
            if line.custom_id in seen:
                raise translation.LineError(
                    f"`custom_id` {line.custom_id!r} is used by an earlier line.",
                    param="custom_id",
                    code="duplicate_custom_id",
                )
            seen.add(line.custom_id)
            if done.model is None:
                done.model, deployed = line.model, model_of(line.model)
            elif line.model != done.model:
                raise translation.LineError(
                    f"`body.model` {line.model!r} differs from the batch's model "
                    f"{done.model!r}: one batch, one model.",
                    param="body.model",
                    code="mismatched_model",
                )
            translated = translation.vertex_lines(line, endpoint, deployed)
            if done.vertex_lines + len(translated) > files.MAX_REQUESTS:
                raise translation.LineError(
                    f"The batch holds more than {files.MAX_REQUESTS} requests (embedding inputs "
                    "count one each).",
                    param="body.input",
                    code="too_many_requests",
                )
        except translation.LineError as exc:
            done.errors.append(
                {"code": exc.code, "line": number, "message": exc.message, "param": exc.param}
            )
            if len(done.errors) >= MAX_LINE_ERRORS:
                break
            continue
        if not done.errors:
            for vertex_line in translated:
                emit(vertex_line)
        done.requests += 1
        done.vertex_lines += len(translated)
        done.widest_request = max(done.widest_request, len(translated))
    return done


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise translation.LineError("The line is not UTF-8 text.") from None


def seen_ids(lines) -> set[str]:
    """The requests (custom ids) of `requests.jsonl` entries."""
    return {line[0] for line in lines}


def create_batch(
    caller: Caller,
    *,
    input_file_id,
    endpoint,
    completion_window,
    metadata,
    output_expires_after=None,
) -> dict:
    from shared.core import routing
    from shared.core.config import model_list_or_error

    if endpoint not in translation.ENDPOINTS:
        raise invalid_argument(
            f"`endpoint` {endpoint!r} is not supported; use {' or '.join(translation.ENDPOINTS)}.",
            field="endpoint",
        )
    if completion_window != COMPLETION_WINDOW:
        raise invalid_argument("`completion_window` must be 24h.", field="completion_window")
    if not isinstance(input_file_id, str):
        raise invalid_argument("`input_file_id` is required.", field="input_file_id")
    metadata = check_metadata(metadata)
    output_seconds = files.expiry_seconds(output_expires_after, "output_expires_after")
    source = files.get_file(caller, input_file_id)
    if source["purpose"] != "batch":
        raise invalid_argument(
            f"File {input_file_id} has purpose {source['purpose']!r}; a batch input needs "
            "purpose batch.",
            field="input_file_id",
        )
    models = model_list_or_error()

    def model_of(name: str) -> str:
        return routing.resolve(name, models, caller)[0].model

    bucket = files.staging_bucket()
    batch_id = files.new_id("batch_")
    folder = f"{files.FOLDER}/{caller.key_id}/batches/{batch_id}"
    inputs = files.LineWriter(bucket, f"{folder}/input.jsonl")
    requests = files.LineWriter(bucket, f"{folder}/requests.jsonl")

    def emit(vertex_line: dict) -> None:
        inputs.write(vertex_line)
        fingerprint = results.request_fingerprint(vertex_line)
        requests.write([vertex_line[translation.CUSTOM_ID], fingerprint])

    try:
        translated = translate_input(files.file_chunks(source), endpoint, model_of, emit)
    except BaseException:
        inputs.discard()
        requests.discard()
        raise
    model, errors = translated.model, translated.errors
    created, created_ns = files.now()
    doc = {
        "id": batch_id,
        "owner_key_id": caller.key_id,
        "endpoint": endpoint,
        "input_file_id": input_file_id,
        "completion_window": completion_window,
        "metadata": metadata,
        "model": model,
        "created_at": created,
        "created_ns": created_ns,
        "expires_at": created + WINDOW_SECONDS,
        "total": translated.requests + len(errors),
        "texts": translated.vertex_lines,
        "widest_request": translated.widest_request,
        "output_expires_seconds": output_seconds,
        "job_id": None,
        "translated": False,
        # True while the batch has a job whose files are not written (expire_overdue).
        "open": False,
    }
    ref = files.db().collection(BATCHES).document(batch_id)
    if errors:
        inputs.discard()
        requests.discard()
        doc.update(errors=errors, failed_at=created, total=0)
        ref.set(doc)
        logs.info("openai batch refused at validation", batch_id=batch_id, errors=len(errors))
        return batch_object(doc, None)

    inputs.close()
    requests.close()
    input_uri, requests_uri = inputs.uri, requests.uri
    labels = labels_from_metadata(metadata)
    doc.update(
        bucket=bucket,
        input_uri=input_uri,
        requests_uri=requests_uri,
        output_prefix=f"gs://{bucket}/{folder}/output/",
        labels=labels,
        creating=True,  # until job_id is set: a crash here is resolved by `resolve_stale`
    )
    # Written before the job exists, so that the job's end always finds its batch.
    ref.set(doc)
    body = {
        "displayName": f"openai-{batch_id}",
        "model": model,
        "inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": [input_uri]}},
        "outputConfig": {
            "predictionsFormat": "jsonl",
            "gcsDestination": {"outputUriPrefix": doc["output_prefix"]},
        },
        "labels": labels,
    }
    try:
        submitted = submit.create_job(
            caller=caller,
            request=create_request.parse(
                body, door=create_request.Door.GATEWAY, gateway_labels={BATCH_LABEL: batch_id}
            ),
        )
    except Exception:
        ref.delete()
        raise
    if submitted.record is None:
        ref.delete()
        raise _upstream_error(submitted.upstream)
    record = submitted.record
    ref.update(
        {"job_id": record["job_id"], "job_name": record["name"], "open": True, "creating": False}
    )
    doc.update(job_id=record["job_id"], job_name=record["name"], open=True)
    logs.info(
        "openai batch created",
        batch_id=batch_id,
        job_id=record["job_id"],
        requests=translated.requests,
        model=model,
    )
    return batch_object(doc, record)


@ticks.register
def resolve_stale(*, now: float | None = None) -> int:
    """Batches whose create died between the batch document and the Vertex job (they stayed
    `validating`), resolved by the sync once no create can still be running (the adoption
    delay; shared/jobs/adoption.py runs earlier in the same tick): the job, if
    the create reached Vertex (its record carries the batch's label, adopted if need be),
    is linked; a create whose intent is still pending waits for adoption; otherwise the
    batch fails, saying why. Returns how many were resolved."""
    from google.cloud.firestore_v1.base_query import FieldFilter
    from google.cloud.firestore_v1.field_path import FieldPath

    from shared.core.config import settings

    now = now or time.time()
    cutoff = now - float(settings().adopt_after_seconds)
    creating = files.db().collection(BATCHES).where(filter=FieldFilter("creating", "==", True))
    resolved = 0
    for snapshot in creating.limit(STALE_LIMIT).stream():
        doc = snapshot.to_dict() or {}
        if doc.get("job_id") or int(doc.get("created_at") or 0) > cutoff:
            continue
        labelled = FieldFilter(FieldPath("labels", BATCH_LABEL).to_api_repr(), "==", doc["id"])
        jobs = files.db().collection(records.COLLECTION).where(filter=labelled).limit(1).stream()
        job = next((s.to_dict() for s in jobs), None)
        tries = files.db().collection(intents.COLLECTION).where(filter=labelled).stream()
        if job is not None:
            change = {
                "job_id": job["job_id"],
                "job_name": job["name"],
                "open": True,
                "creating": False,
            }
            logs.warning("openai batch linked to the job its dead create made", **change)
        elif intents.PENDING in {t.to_dict().get("state") for t in tries}:
            continue  # adoption decides first
        else:
            error = {"code": "batch_failed", "line": None, "param": None, "message": STALE_ERROR}
            change = {"errors": [error], "failed_at": int(now), "creating": False}
            logs.warning("openai batch failed: its create died", batch_id=doc["id"])
        snapshot.reference.update(change)
        resolved += 1
    return resolved


STALE_LIMIT = 200
STALE_ERROR = (
    "The gateway stopped while creating this batch and Vertex AI has no job for it: nothing "
    "ran and nothing is billed. Create the batch again."
)


def _upstream_error(upstream) -> ApiError:
    try:
        message = upstream.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = upstream.content[:500].decode("utf-8", "replace")
    return ApiError(upstream.status, f"Vertex AI refused the batch job: {message}")


# --- batch read, list, cancel ----------------------------------------------------------------


def get_batch_doc(caller: Caller, batch_id: str) -> dict:
    snapshot = (
        files.db().collection(BATCHES).document(batch_id).get()
        if files.valid_id(batch_id)
        else None
    )
    doc = snapshot.to_dict() if snapshot is not None and snapshot.exists else None
    if not doc or not files.owned(caller, doc):
        raise ApiError(404, f"No such Batch object: {batch_id}", param="batch_id")
    return doc


def get_batch(caller: Caller, batch_id: str) -> dict:
    doc = get_batch_doc(caller, batch_id)
    return batch_object(doc, records.get(doc["job_id"]) if doc.get("job_id") else None)


def list_batches(caller: Caller, *, limit: int, after: str | None) -> dict:
    docs, more = files.page(BATCHES, caller, limit=limit, after=after, descending=True)
    jobs = records.get_many([d["job_id"] for d in docs if d.get("job_id")])
    return files.list_page([batch_object(d, jobs.get(d.get("job_id") or "")) for d in docs], more)


def cancel_batch(caller: Caller, batch_id: str) -> dict:
    doc = get_batch_doc(caller, batch_id)
    record = records.get(doc["job_id"]) if doc.get("job_id") else None
    status = status_of(doc, record)
    if status in ("cancelling", "cancelled"):
        return batch_object(doc, record)
    if record is None or status not in ("validating", "in_progress"):
        raise ApiError(
            409, f"Batch {batch_id} is {status}; only a batch in progress can be cancelled."
        )
    upstream = submit.cancel_job(record)
    if not upstream.ok:
        raise _upstream_error(upstream)
    cancelling_at, _ = files.now()
    files.db().collection(BATCHES).document(batch_id).update({"cancelling_at": cancelling_at})
    doc["cancelling_at"] = cancelling_at
    return batch_object(doc, record)


def status_of(doc: dict, record: dict | None) -> str:
    if doc.get("errors"):
        return "failed"
    if record is None:
        return "validating"
    state = record.get("state") or ""
    if doc.get("translated"):
        return doc.get("final_status") or FINAL_STATUS.get(
            doc.get("final_state") or state, "failed"
        )
    if doc.get("expiring_at") and not doc.get("cancelling_at"):
        return "finalizing"
    if state == "JOB_STATE_CANCELLING" or (
        doc.get("cancelling_at") and state not in TERMINAL_STATES
    ):
        return "cancelling"
    if state in TERMINAL_STATES or record.get("terminal"):
        return "cancelling" if state == "JOB_STATE_CANCELLED" else "finalizing"
    if state in WAITING_STATES:
        return "validating"
    return "in_progress"


def _history_time(record: dict | None, states) -> int | None:
    for entry in (record or {}).get("state_history") or []:
        if entry.get("to") in states:
            parsed = times.parse(entry.get("time"))
            if parsed:
                return int(parsed.timestamp())
    return None


def _request_counts(doc: dict, record: dict | None) -> dict:
    """Requests, never Vertex rows. Exact once the batch's files are written; while it runs,
    from Vertex's row counts (`completionStats`), which count texts for an embeddings batch:
    `completed` is the fewest requests that must have every text succeeded (rows succeeded
    minus the texts beyond one per request), `failed` the fewest that must hold a failed
    row (rows failed over the widest request); both exact when every request is one row."""
    total = int(doc.get("total") or 0)
    if doc.get("request_counts"):
        return doc["request_counts"]
    texts = doc.get("texts", total if doc.get("endpoint") == translation.CHAT else None)
    stats = (record or {}).get("completion_stats") or {}
    if texts is None:
        return {"total": total, "completed": 0, "failed": 0}
    succeeded = int(stats.get("successfulCount") or 0)
    failed_rows = int(stats.get("failedCount") or 0)
    completed = max(0, min(total, succeeded - (int(texts) - total)))
    widest = max(1, int(doc.get("widest_request") or 1))
    failed = min(total - completed, -(-failed_rows // widest))
    return {"total": total, "completed": completed, "failed": failed}


def batch_object(doc: dict, record: dict | None) -> dict:
    """The OpenAI `batch` object of a batch doc and its job record."""
    status = status_of(doc, record)
    obj = {
        "id": doc["id"],
        "object": "batch",
        "endpoint": doc["endpoint"],
        "model": doc.get("model"),
        "errors": None,
        "input_file_id": doc["input_file_id"],
        "completion_window": doc["completion_window"],
        "status": status,
        "output_file_id": doc.get("output_file_id"),
        "error_file_id": doc.get("error_file_id"),
        "created_at": doc["created_at"],
        "in_progress_at": _history_time(record, ("JOB_STATE_RUNNING",)),
        "expires_at": doc.get("expires_at"),
        "finalizing_at": _history_time(record, TERMINAL_STATES),
        "completed_at": None,
        "failed_at": doc.get("failed_at"),
        "expired_at": None,
        "cancelling_at": doc.get("cancelling_at"),
        "cancelled_at": None,
        "request_counts": _request_counts(doc, record),
        "usage": doc.get("usage"),
        "metadata": doc.get("metadata"),
        # Beside OpenAI's fields, not in `metadata`: a client that copies `metadata` into a
        # new batch must not carry a job id along nor pass 16 pairs.
        "vertex_job_id": doc.get("job_id"),
        "vertex_job_name": doc.get("job_name"),
    }
    if doc.get("errors"):
        obj["errors"] = {"object": "list", "data": doc["errors"]}
    elif doc.get("translated"):
        field_name = FINAL_TIME_FIELD.get(status)
        if field_name:
            obj[field_name] = doc.get("final_at")
        error = (record or {}).get("error")
        if status == "failed" and error:
            obj["errors"] = {
                "object": "list",
                "data": [
                    {
                        "code": "batch_failed",
                        "line": None,
                        "message": str(error.get("message") or error),
                        "param": None,
                    }
                ],
            }
    return obj


# --- the job's end: outputs -> OpenAI files --------------------------------------------------


def stored(batch_id: str) -> dict | None:
    """A batch doc by id, whoever owns it (the job's end and the webhooks)."""
    snapshot = files.db().collection(BATCHES).document(batch_id).get()
    return snapshot.to_dict() if snapshot.exists else None


def batch_id_of(record: dict) -> str | None:
    return (record.get("labels") or {}).get(BATCH_LABEL)


def final_status(doc: dict, record: dict) -> str:
    """The batch's end: the job's, except that a cancel nobody asked for after the batch's
    window (the gateway's expiry, `expiring_at`) or after Vertex's 24 hours of running is
    `expired`; a user's cancel stays `cancelled`."""
    state = record.get("state") or ""
    status = FINAL_STATUS.get(state, "failed")
    if status != "cancelled" or doc.get("cancelling_at") or record.get("budget_stop"):
        return status
    if doc.get("expiring_at"):
        return "expired"
    ran_from = _history_time(record, ("JOB_STATE_RUNNING",))
    ended = _history_time(record, ("JOB_STATE_CANCELLED",))
    if ran_from is not None and ended is not None and ended - ran_from >= VERTEX_RUN_LIMIT_SECONDS:
        return "expired"
    return status


@job_end.register
def finish_for_job(record: dict) -> str:
    """Translate a terminal job's outputs into the batch's files, once. Raises on I/O errors
    (the caller retries at the next tick); a bad row never stops the others."""
    batch_id = batch_id_of(record)
    if not batch_id:
        return "not_openai"
    ref = files.db().collection(BATCHES).document(batch_id)
    snapshot = ref.get()
    if not snapshot.exists:
        logs.warning("job names an OpenAI batch that does not exist", batch_id=batch_id)
        return "no_batch"
    doc = snapshot.to_dict()
    if doc.get("translated"):
        return "done"
    state = record.get("state")
    requests = _read_requests(doc["requests_uri"])
    bucket = doc["bucket"]
    folder = f"{files.FOLDER}/{doc['owner_key_id']}/files"
    spools = {"output": _Spool(), "error": _Spool()}
    translator = results.Translator(
        batch_id=batch_id,
        model=doc.get("model") or "",
        endpoint=doc["endpoint"],
        requests=requests,
        created=doc["created_at"],
        emit=lambda kind, line: spools[kind].write(line),
    )
    for chunk_lines in _prediction_rows(record):
        for raw in chunk_lines:
            translator.row(raw)
    status = final_status(doc, record)
    totals = translator.finish("JOB_STATE_EXPIRED" if status == "expired" else state)
    if translator.problems or totals.unmatched_rows or totals.duplicate_rows:
        logs.error(
            "openai batch rows the translation could not match",
            batch_id=batch_id,
            job_id=record.get("job_id"),
            unmatched=totals.unmatched_rows,
            duplicates=totals.duplicate_rows,
            samples=translator.problems[:5],
        )
    update = {
        "translated": True,
        "open": False,
        "final_state": state,
        "final_status": status,
        "final_at": files.now()[0],
        "request_counts": {
            "total": len(seen_ids(requests)),
            "completed": totals.completed,
            "failed": totals.failed,
        },
        "usage": totals.usage(),
        "output_file_id": None,
        "error_file_id": None,
    }
    for kind, field_name in (("output", "output_file_id"), ("error", "error_file_id")):
        spool = spools[kind]
        if not spool.lines:
            spool.close()
            continue
        file_id = files.derived_id("file-", batch_id, kind)
        name = f"{folder}/{file_id}.jsonl"
        size = spool.upload(bucket, name)
        files.db().collection(files.FILES).document(file_id).set(
            {
                "id": file_id,
                "owner_key_id": doc["owner_key_id"],
                "filename": f"{batch_id}_{kind}.jsonl",
                "purpose": "batch_output",
                "bytes": size,
                "lines": spool.lines,
                "created_at": update["final_at"],
                "created_ns": time.time_ns(),
                "uri": f"gs://{bucket}/{name}",
                # OpenAI anchors `output_expires_after` at the file's creation.
                "expires_at": (
                    update["final_at"] + doc["output_expires_seconds"]
                    if doc.get("output_expires_seconds")
                    else None
                ),
            }
        )
        update[field_name] = file_id
    ref.update(update)
    logs.info(
        "openai batch files written",
        batch_id=batch_id,
        job_id=record.get("job_id"),
        completed=totals.completed,
        failed=totals.failed,
    )
    return "translated"


class _Spool:
    """Lines in a temporary file (memory up to SPOOL_BYTES, then disk), uploaded at the end."""

    def __init__(self):
        self.file = tempfile.SpooledTemporaryFile(SPOOL_BYTES)  # noqa: SIM115 (closed in upload/close)
        self.lines = 0

    def write(self, line: dict) -> None:
        self.file.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode())
        self.file.write(b"\n")
        self.lines += 1

    def upload(self, bucket: str, name: str) -> int:
        size = self.file.tell()
        self.file.seek(0)
        clients.storage().bucket(bucket).blob(name).upload_from_file(
            self.file, content_type="application/jsonl", rewind=True
        )
        self.close()
        return size

    def close(self) -> None:
        self.file.close()


def _read_requests(uri: str) -> list[tuple[str, str]]:
    bucket, name = files.split_uri(uri)
    data = clients.storage().bucket(bucket).blob(name).download_as_bytes()
    return [tuple(json.loads(line)) for line in jsonl.byte_records([data])]


def output_files(record: dict) -> list[tuple[str, str, int, int]]:
    """(bucket, name, generation, size) of the files whose rows the batch's files are made of: the
    final `predictions*.jsonl` files, or, when there are none (a job cancelled or expired
    while running), the incremental files Vertex wrote meanwhile (see finalize.py)."""
    from shared.jobs import finalize

    directory = record.get("output_directory")
    if not directory:
        return []
    bucket, path = files.split_uri(directory)
    prefix = path.rstrip("/") + "/"
    found: dict[str, list] = {finalize.FINAL: [], finalize.INCREMENTAL: []}
    for blob in clients.storage().list_blobs(bucket, prefix=prefix):
        kind = finalize.output_file(blob.name)
        if kind is not None and kind[1] == prefix:
            found[kind[0]].append((bucket, blob.name, int(blob.generation or 0), blob.size or 0))
    return sorted(found[finalize.FINAL] or found[finalize.INCREMENTAL])


def _prediction_rows(record: dict):
    """The lines of the job's output files (`output_files`), file by file, read as the
    ledger reads them (parallel ranged reads for large files)."""
    from shared.cost import ranged_reads

    for bucket, name, generation, size in output_files(record):
        yield jsonl.byte_records(ranged_reads.chunks_for(bucket, name, generation or None, size))


# --- the completion window -------------------------------------------------------------------


@ticks.register
def expire_overdue(limit: int = EXPIRE_PER_TICK) -> int:
    """Batches past `expires_at` whose job still runs: the job is cancelled, marked as the
    gateway's expiry (`expiring_at`, written first), so its end reads `expired`: the lines it
    finished are delivered and billed, the rest are `batch_expired` (a sync tick hook)."""
    from google.cloud.firestore_v1.base_query import FieldFilter

    now = int(time.time())
    query = (
        files.db()
        .collection(BATCHES)
        .where(filter=FieldFilter("open", "==", True))
        .where(filter=FieldFilter("expires_at", "<=", now))
        .limit(limit)
    )
    asked = 0
    for snapshot in query.stream():
        doc = snapshot.to_dict()
        if (
            doc.get("cancelling_at")
            or now - int(doc.get("expiring_at") or 0) < EXPIRY_RETRY_SECONDS
        ):
            continue
        record = records.get(doc.get("job_id") or "")
        if record is None or record.get("terminal") or record.get("state") in TERMINAL_STATES:
            continue
        snapshot.reference.update({"expiring_at": now})
        upstream = submit.cancel_job(record)
        logs.info(
            "openai batch past its completion window; its job is cancelled",
            batch_id=doc["id"],
            job_id=doc.get("job_id"),
            status=upstream.status,
        )
        asked += 1
    return asked
