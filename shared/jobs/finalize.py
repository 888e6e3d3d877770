"""`on_output_finalized`: price a new prediction file and record its cost exactly once.

Which objects count (`output_file`), inside a job's output directory
(`{outputUriPrefix}/prediction-model-<timestamp>/`):
- final files: `predictions*.jsonl` directly in it (Vertex writes `predictions.jsonl`, or
  shards such as `predictions_00001.jsonl`) when the job succeeds;
- incremental files: any `*.jsonl` below it whose path holds an `incremental_predictions`
  segment. Vertex writes rows progressively while a job runs, under paths seen in the wild
  to contain `incremental_predictions` (the exact layout is not documented: inferred); they
  stay when a job is cancelled or expires, and Vertex bills those rows.
The ledger counts a job's incremental files while no final set outbills them, and the final
set once it does, never both (shared/cost/ledger.py). Everything else is logged and ignored.

A file that cannot be priced for a reason a retry cannot fix (a bug, a value Firestore cannot
hold) still gets its record, with the error and zero counters: it is named in the job's cost
view and the terminal reconciliation does not retry it forever. Monotonic books
(shared/cost/ledger.py): a generation that would lower what counts for its object, or any
generation after the job's cost is final, changes nothing and raises one `tamper` alert
naming the object, both generations and the difference.

Finding the job: the output index (`output_index`, see shared/jobs/records.py) is read for
every parent folder of the object at once, and the deepest folder that names any job wins.
Among its jobs (several jobs may share an output prefix):
1. a job whose recorded `output_directory` is the object's output directory owns it;
2. otherwise jobs whose directory is still unknown are candidates, if the object's output
   directory is a `prediction-*` folder right under their output prefix; a job created after
   the folder's timestamp (plus `CLOCK_SLACK`) cannot own it and is dropped;
3. one candidate left: it owns the object. None: the object is no job's, ignored. Several:
   `DirectoryPending` is raised, a transient error, so the event is retried after the sync
   has recorded each job's output directory (and the terminal reconciliation in
   shared/jobs/lifecycle.py prices any file whose retries ran out).

Errors: transient ones (Firestore, GCS, DirectoryPending) raise, so the event is retried;
permanent ones (object gone, not a prediction file, no job) log and return.
"""

import fnmatch
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.books import cost_records
from shared.core import clients, logs, times
from shared.core.config import settings
from shared.core.transient import is_transient
from shared.cost import ledger, ranged_reads, usage
from shared.jobs import records, sealed_outputs

PREDICTION_PATTERN = "predictions*.jsonl"
INCREMENTAL_MARK = "incremental_predictions"
FINAL, INCREMENTAL = ledger.FINAL, ledger.INCREMENTAL
DIRECTORY_PREFIX = "prediction-"
MAX_FOLDER_DEPTH = 32
VANISHED = "vanished before it was priced"
CLOCK_SLACK = timedelta(minutes=10)
_DIRECTORY_TIME = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)\Z")


class DirectoryPending(RuntimeError):
    """Several jobs may own this object and none has its output directory recorded yet."""


def is_prediction_file(name: str) -> bool:
    """A final predictions file's name (its folder is the output directory)."""
    return fnmatch.fnmatchcase(name.rsplit("/", 1)[-1], PREDICTION_PATTERN)


def output_file(name: str) -> tuple[str, str] | None:
    """(kind, the object's output directory path with a trailing slash) of a file that counts,
    or None. kind is FINAL or INCREMENTAL (see the module docstring)."""
    parts = name.split("/")
    if not parts[-1].endswith(".jsonl"):
        return None
    for depth, part in enumerate(parts[:-1]):
        if INCREMENTAL_MARK in part:
            return INCREMENTAL, "".join(p + "/" for p in parts[:depth])
    if INCREMENTAL_MARK in parts[-1]:
        return INCREMENTAL, "".join(p + "/" for p in parts[:-1])
    if is_prediction_file(name):
        return FINAL, "".join(p + "/" for p in parts[:-1])
    return None


def parent_folders(bucket: str, name: str) -> list[str]:
    """`gs://bucket/a/b/` folders holding the object, deepest first, the bucket root last."""
    parts = name.split("/")[:-1]
    folders = [
        f"gs://{bucket}/" + "".join(p + "/" for p in parts[:depth])
        for depth in range(len(parts), -1, -1)
    ]
    return folders[:MAX_FOLDER_DEPTH]


def _folder(uri: str | None) -> str:
    return "" if not uri else uri if uri.endswith("/") else uri + "/"


def _directory_time(folder: str) -> datetime | None:
    match = _DIRECTORY_TIME.search(folder.rstrip("/"))
    return times.parse(match[1]) if match else None


def _created(job: dict) -> datetime | None:
    return times.parse(job.get("create_time"))


def choose_job(candidates: dict[str, dict], folder: str) -> str | None:
    """The id of the job whose output directory is `folder` (see the module docstring)."""
    owners = [
        jid
        for jid, job in candidates.items()
        if folder.startswith(_folder(job.get("output_prefix"))) and sealed_outputs.sealed(job)
    ] or [
        jid
        for jid, job in candidates.items()
        if job.get("client_output_directory")
        and folder.startswith(_folder(job["client_output_directory"]))
    ]
    if len(owners) > 1:
        # A per-job folder names one job: two are a bug or forged records; never guess.
        logs.error("several jobs claim one sealed folder; ignored", folder=folder, jobs=owners)
        return None
    if owners:
        return owners[0]
    exact = [
        jid for jid, job in candidates.items() if _folder(job.get("output_directory")) == folder
    ]
    if exact:
        return max(
            exact, key=lambda jid: _created(candidates[jid]) or datetime.min.replace(tzinfo=UTC)
        )
    parent, _, leaf = folder.rstrip("/").rpartition("/")
    if not leaf.startswith(DIRECTORY_PREFIX):
        return None
    stamp = _directory_time(folder)
    pending = []
    for jid, job in candidates.items():
        if job.get("output_directory") or _folder(job.get("output_prefix")) != parent + "/":
            continue
        created = _created(job)
        if stamp and created and created > stamp + CLOCK_SLACK:
            continue
        pending.append(jid)
    if len(pending) > 1:
        raise DirectoryPending(
            f"{folder} may belong to jobs {', '.join(sorted(pending))}; retry once the sync "
            "has recorded their output directories"
        )
    return pending[0] if pending else None


def find_job(bucket: str, name: str) -> tuple[str, dict] | None:
    """The job owning this object, from a single batched read of the index docs."""
    folders = parent_folders(bucket, name)
    kind_and_directory = output_file(name)
    directory = f"gs://{bucket}/{kind_and_directory[1]}" if kind_and_directory else folders[0]
    index = clients.firestore().collection(records.INDEX_COLLECTION)
    refs = [index.document(records.index_doc_id(f)) for f in folders]
    found = {s.id: s.to_dict() or {} for s in clients.firestore().get_all(refs) if s.exists}
    for folder, ref in zip(folders, refs, strict=True):
        job_ids = list(found.get(ref.id, {}).get("job_ids") or [])
        if not job_ids:
            continue
        candidates = records.get_many(job_ids)
        chosen = choose_job(candidates, directory)
        if chosen:
            return chosen, candidates[chosen]
        logs.info(
            "object under an indexed folder belongs to none of its jobs",
            folder=folder,
            job_ids=job_ids,
            uri=f"gs://{bucket}/{name}",
        )
        return None
    return None


def price_object(
    *, job: dict, bucket: str, name: str, generation: int, size: int | None = None
) -> bool:
    """Read, parse and record one object generation for `job`; True when anything changed.

    A generation that no longer exists is recorded as vanished (`tamper`, see `_vanished`).
    """
    job_id = job.get("job_id") or records.id_of(job["name"])
    existing = ledger.get_record(job_id, bucket, name, generation)
    if existing is not None:
        if existing.get("tamper"):
            # A redelivery after the alert failed to go out: the marker makes this idempotent.
            from shared.jobs import alerts

            if (existing["tamper"] or {}).get("reason") == VANISHED:
                alerts.send_vanished_alert({**job, "job_id": job_id}, existing["uri"], generation)
            else:
                alerts.send_tamper_alert({**job, "job_id": job_id}, ledger.recorded_of(existing))
        return False
    kind = (output_file(name) or (FINAL, ""))[0]
    deployment = records.deployment_of(job)
    overrides = dict(deployment.price_overrides) if deployment else None
    model = (job.get("deployment") or {}).get("model") or job.get("model")
    where: dict[str, Any] = {
        "job_id": job_id,
        "job": job,
        "bucket": bucket,
        "name": name,
        "size": size,
    }
    try:
        parsed = usage.parse_predictions(
            ranged_reads.chunks_for(bucket, name, int(generation), size),
            model=model,
            overrides=overrides or None,
            batch=True,
            location=(job.get("deployment") or {}).get("location"),
            at=job.get("create_time"),
        )
        recorded = ledger.record_generation(
            **where, generation=int(generation), usage=parsed, group=kind
        )
    except usage.ObjectGone as exc:
        _vanished(**where, generation=generation, error=str(exc))
        return False
    except Exception as exc:
        if is_transient(exc):
            raise
        ledger.record_failure(**where, generation=int(generation), error=repr(exc))
        return False
    if recorded.outcome == "tamper":
        from shared.jobs import alerts

        alerts.send_tamper_alert({**job, "job_id": job_id}, recorded)
    if recorded:
        cost_records.publish_file(
            job_id=job_id, job=job, bucket=bucket, name=name, generation=int(generation)
        )
        _check_budgets(job)
        _check_unpriced(job, parsed, f"gs://{bucket}/{name}")
    return bool(recorded)


def _vanished(*, job_id: str, job: dict, bucket: str, name: str, generation, size, error) -> None:
    """A generation gone before it was priced (deleted, or replaced by a newer one): its rows
    may be lost to the books, so it is a `tamper` event, recorded once (zero counters, the
    reason) with one alert; the floor at the terminal state books any rows it took along."""
    from shared.jobs import alerts

    recorded = ledger.record_failure(
        job_id=job_id,
        job=job,
        bucket=bucket,
        name=name,
        generation=int(generation),
        size=size,
        error=f"generation vanished before it was priced: {error}",
        tamper={"reason": VANISHED},
    )
    logs.warning(
        "prediction generation vanished before it was priced (tamper)",
        job_id=job_id,
        uri=f"gs://{bucket}/{name}#{generation}",
        recorded=recorded,
    )
    alerts.send_vanished_alert({**job, "job_id": job_id}, f"gs://{bucket}/{name}", int(generation))


def _check_unpriced(job: dict, parsed, uri: str) -> None:
    """One `unpriced` alert per job when a file holds rows it could not price (a side effect:
    its failure is logged, the recorded cost stands, and the terminal sync tries again)."""
    unreadable = parsed.rows > 0 and parsed.malformed == parsed.rows
    if not (parsed.unpriced_rows or parsed.no_usage_rows or unreadable):
        return
    from shared.jobs import alerts

    samples = parsed.unpriced_samples or parsed.malformed_samples
    sample = {"uri": uri, **samples[0]} if samples else None
    note = alerts.unpriced_note(
        unpriced_rows=parsed.unpriced_rows,
        no_usage_rows=parsed.no_usage_rows,
        malformed_file=unreadable,
        sample=sample,
    )
    try:
        alerts.send_unpriced_alert(job, note=note)
    except Exception as exc:
        logs.error("unpriced alert failed", job_id=job.get("job_id"), error=repr(exc))


def _check_budgets(job: dict) -> None:
    """Budget alerts are a side effect: their failure must not un-record a recorded cost."""
    from shared.jobs import alerts

    try:
        alerts.check_budget_alerts(key_id=job.get("owner_key_id"), team=job.get("team") or None)
    except Exception as exc:
        logs.error(
            "budget alert check failed",
            job_id=job.get("job_id"),
            key_id=job.get("owner_key_id"),
            error=repr(exc),
        )


def handle_object(*, bucket: str | None, name: str | None, generation, size) -> bool:
    """The finalize event of one object generation; True when a cost was recorded.

    A sealed job's object (in its per-job staging folder) is priced, checked against the
    job's budgets while it runs (incremental files), then copied to the client's folder; the
    copy's own event (when the client's bucket is watched) finds the job and changes
    nothing."""
    uri = f"gs://{bucket}/{name}"
    if not bucket or not name or not generation:
        logs.warning(
            "finalize event without bucket, name or generation; ignored",
            bucket=bucket,
            name=name,
            generation=generation,
        )
        return False
    staging = sealed_outputs.staging_output(bucket, name)
    if output_file(name) is None and not staging:
        logs.info("not a prediction file; ignored", uri=uri, generation=generation)
        return False
    if bucket == settings().staging_bucket and not staging:
        logs.info("a staging object that is no job output; ignored", uri=uri)
        return False
    found = find_job(bucket, name)
    if not found:
        logs.info("prediction file under no known job; ignored", uri=uri, generation=generation)
        return False
    job_id, job = found
    job.setdefault("job_id", job_id)
    if sealed_outputs.sealed(job) and sealed_outputs.relative(job, uri) is None:
        logs.info("a sealed job's copy: its books are kept in staging", job_id=job_id, uri=uri)
        return False
    changed = False
    counted = output_file(name)
    if counted is not None:
        changed = price_object(
            job=job, bucket=bucket, name=name, generation=int(generation), size=size
        )
    if counted is not None and counted[0] == INCREMENTAL:
        _check_budget_stop(job_id)
    if sealed_outputs.sealed(job):
        sealed_outputs.deliver(
            job_id=job_id, record=job, bucket=bucket, name=name, generation=int(generation)
        )
    kind = output_file(name)
    if kind is not None:
        _advance_state(job_id, job, final=kind[0] != INCREMENTAL)
    return changed


def _advance_state(job_id: str, record: dict, *, final: bool) -> None:
    """An output file proves the job runs (records.output_seen: PENDING or QUEUED becomes
    RUNNING now); a final file means its end is near, so it is synced at once. Last, after
    the file is priced and delivered, and with no transaction on a record already RUNNING:
    the job document is the one every writer of the job contends for."""
    from shared.jobs import events

    if record.get("state") in records.ADVANCED_BY_OUTPUT and records.output_seen(job_id):
        logs.info("job state advanced by an output file", job_id=job_id)
    if final:
        events.publish_job_event("job.output", job_id)


def _check_budget_stop(job_id: str) -> None:
    """The live budget stop (shared/jobs/budget_stop.py) after each incremental file; run on
    redeliveries too, so a crash between the cost and the check loses no stop."""
    from shared.jobs import budget_stop

    budget_stop.check(job_id)


def ignore_event(*, event_type: str, event_id: str) -> None:
    logs.info("event type not handled; ignored", event_type=event_type, event_id=event_id)
