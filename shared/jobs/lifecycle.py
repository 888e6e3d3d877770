"""`on_job_event`: keep job records in step with Vertex, finalise cost, alert people.

Vertex announces no state changes, so this is a poll: a `sync` message (Cloud Scheduler,
every minute) reads the open jobs that are due (each job's `sync_due`: every tick soon
after it is created or moves, then less often, shared/jobs/sync_schedule.py), the longest
overdue first and at most `VBG_SYNC_MAX_JOBS` of them (the rest go at the next tick), and
GETs each from Vertex with `VBG_SYNC_CONCURRENCY` threads, then runs the doors' tick hooks
(`ticks.run`: due webhook deliveries). `job.created` / `job.cancel_requested` /
`job.output` (a final output file was written) sync one job now.

"Open" means `cost_final == false`: every job not yet terminal, plus terminal jobs whose
reconciliation has not finished, so a crash between the transition and the final cost is
picked up by the next tick. On a terminal state the job's output directory is listed and
every predictions file without a cost record is priced through `finalize.price_object` (the
same idempotent code as `on_output_finalized`), then the terminal alert is claimed (durably)
and sent, then the doors above `jobs` finish their part (`job_end.run`: the OpenAI door
writes a batch's files, once), then `cost_final` is set: in that order, so neither the
money, the alert nor the batch's files can be lost.

Each tick first takes up what a process killed mid-way left behind (shared/jobs/recovery.py).
The terminal alert's claim is durable before it is published (shared/jobs/alert_outbox.py),
so `cost_final` does not wait for an alert another process is publishing.

Errors: a message Pub/Sub should retry (Firestore, Pub/Sub or Vertex unavailable) raises;
anything a retry cannot fix (malformed message, unknown type, a bug on one record) is logged
at ERROR and acknowledged. Within a tick each job is isolated: one job failing, or gone from
Vertex (404), never stops the others.
"""

import base64
import binascii
import concurrent.futures
import json
import re
import time
from collections import Counter
from datetime import UTC, datetime

from shared.books import cost_records
from shared.core import clients, logs, times
from shared.core.config import settings
from shared.core.transient import TRANSIENT_HTTP, is_transient
from shared.core.vertex import TERMINAL_STATES, get_job, state_name
from shared.cost.pricing import nanos_to_usd
from shared.jobs import (
    alerts,
    budgets,
    job_end,
    records,
    recovery,
    sealed_outputs,
    sync_schedule,
    ticks,
)

JOB_EVENTS = ("job.created", "job.cancel_requested", "job.ended", "job.output")
JOB_ID = re.compile(r"[0-9]{1,40}")
MISSING_LIMIT = 3
RECONCILE_ATTEMPTS = 3
# The events subscription's dead-letter policy (infra; local/stack.py uses the same).
MAX_DELIVERY_ATTEMPTS = 10
TICK_DEADLINE_SECONDS = 240


class MalformedMessage(ValueError):
    """The message cannot be read: acknowledged, never retried."""


def decode(data) -> dict:
    if data in (None, "", b""):
        return {}
    try:
        raw = base64.b64decode(data, validate=True) if isinstance(data, str) else bytes(data)
    except (binascii.Error, ValueError) as exc:
        raise MalformedMessage(f"data is not base64: {exc}") from None
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise MalformedMessage(f"data is not JSON: {exc}") from None
    except RecursionError:
        raise MalformedMessage("data is JSON nested too deeply") from None
    if not isinstance(body, dict):
        raise MalformedMessage("data is JSON but not an object")
    return body


def ignore_event(*, event_type: str, event_id: str) -> None:
    logs.warning("event of an unexpected type ignored", event_type=event_type, event_id=event_id)


def handle_message(*, message_id, data, attributes, delivery_attempt=None) -> str | None:
    """One `batch-job-events` message. Returns what was done (for logs and tests); raises
    only for transient failures, so that Pub/Sub redelivers (and dead-letters in the end)."""
    attributes = attributes or {}
    try:
        body = decode(data)
    except MalformedMessage as exc:
        logs.error(
            "malformed event acknowledged", message_id=message_id, reason=str(exc), retry=False
        )
        return "malformed"
    kind = attributes.get("type") or body.get("type")
    job_id = attributes.get("job_id") or body.get("job_id")
    fields = {"message_id": message_id, "type": kind, "job_id": job_id}
    if delivery_attempt:
        fields["delivery_attempt"] = delivery_attempt
    try:
        if kind == "sync":
            return sync_tick()
        if kind == "reconcile":
            from shared.jobs import drift

            return drift.daily()
        if kind in JOB_EVENTS:
            if not isinstance(job_id, str) or not JOB_ID.fullmatch(job_id):
                logs.error("job event without a valid job_id acknowledged", **fields)
                return "malformed"
            if kind == "job.created":
                from shared.jobs import budgets

                budgets.backfill_estimate(job_id)
            return sync_job(job_id)
        logs.warning("event of an unknown type acknowledged", **fields)
        return "unknown"
    except Exception as exc:
        if is_transient(exc):
            last = bool(delivery_attempt) and int(delivery_attempt) >= MAX_DELIVERY_ATTEMPTS
            (logs.error if last else logs.warning)(
                "event failed on its last delivery; Pub/Sub dead-letters it"
                if last
                else "event failed transiently; Pub/Sub will retry",
                error=repr(exc),
                **fields,
            )
            raise
        logs.error(
            "event failed for a reason a retry cannot fix; acknowledged",
            error=repr(exc),
            retry=False,
            **fields,
        )
        return "failed"


# --- the tick --------------------------------------------------------------------------------


def sync_tick() -> str:
    """Sync a bounded page of open jobs; the rest (least recently synced first) next time."""
    config = settings()
    started = time.monotonic()
    recovery.run()
    open_jobs = records.open_jobs(config.sync_max_jobs)
    outcomes: Counter = Counter()
    if open_jobs:
        deadline = started + TICK_DEADLINE_SECONDS
        workers = max(1, min(config.sync_concurrency, len(open_jobs)))
        with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="sync") as pool:
            futures = [pool.submit(_sync_isolated, r, deadline) for r in open_jobs]
            for future in concurrent.futures.as_completed(futures):
                outcomes[future.result()] += 1
    hooks = ticks.run()
    logs.info(
        "sync tick done",
        jobs=len(open_jobs),
        outcomes=dict(outcomes),
        hooks=hooks,
        more_waiting=len(open_jobs) >= config.sync_max_jobs,
        seconds=round(time.monotonic() - started, 3),
    )
    return "synced"


def _sync_isolated(record: dict, deadline: float) -> str:
    job_id = record["job_id"]
    if time.monotonic() > deadline:
        return "deferred"
    try:
        return sync_job(job_id, record=record)
    except Exception as exc:
        logs.error(
            "job sync failed; the tick goes on",
            job_id=job_id,
            error=repr(exc),
            transient=is_transient(exc),
        )
        try:
            records.touch_synced(job_id, sync_error={"time": datetime.now(UTC), "error": repr(exc)})
        except Exception as touch_exc:
            logs.warning("could not stamp the failed sync", job_id=job_id, error=repr(touch_exc))
        return "error"


def sync_job(job_id: str, *, record: dict | None = None) -> str:
    """Bring one job record in step with Vertex; finish it when Vertex says it ended."""
    if record is None:
        record = records.get(job_id)
        if record is None:
            logs.warning("event for a job without a record acknowledged", job_id=job_id)
            return "unknown_job"
    if record.get("cost_final"):
        return "final"
    if record.get("terminal"):
        finish_job(job_id)
        return "finished"
    deployment = records.deployment_of(record)
    upstream = get_job(record["name"], credentials_file=deployment and deployment.credentials)
    if upstream.status == 404:
        return _missing_upstream(job_id, record)
    if not upstream.ok:
        level = logs.warning if upstream.status in TRANSIENT_HTTP else logs.error
        level(
            "vertex refused the job GET; trying again next tick",
            job_id=job_id,
            status=upstream.status,
            body=upstream.content[:300].decode("utf-8", "replace"),
        )
        records.touch_synced(
            job_id, sync_error={"time": datetime.now(UTC), "status": upstream.status}
        )
        return "upstream_error"
    job = upstream.json()
    new_state = state_name(job.get("state"))
    now = datetime.now(UTC)
    # A job whose state moves now is read again at the first step of the backoff; the
    # schedule is written with the transition (one write, not two).
    moved = not record.get("terminal") and new_state != record.get("state")
    since = now if moved else last_moved(record)
    due = sync_schedule.next_due(now=now, since=since, tick=settings().sync_tick_seconds)
    transition = records.observe(job_id, record, job, extra={records.SYNC_DUE: due})
    if transition:
        logs.info(
            "job state changed",
            job_id=job_id,
            **{"from": transition["from"], "to": transition["to"]},
            update_time=transition["update_time"],
        )
    if new_state in TERMINAL_STATES:
        finish_job(job_id)
        return "terminal"
    merged = {**record, **records.upstream_fields(job), "state": new_state}
    if alerts.check_stuck(merged) == alerts.SENT:
        return "stuck"
    return "changed" if transition else "unchanged"


def last_moved(record: dict) -> datetime | None:
    """When the job's recorded state last changed (its creation if it never did)."""
    times_seen = [times.parse(h.get("time")) for h in record.get("state_history") or []]
    known = [t for t in times_seen if t is not None]
    return max(known) if known else times.parse(record.get("create_time"))


def _missing_upstream(job_id: str, record: dict) -> str:
    """Vertex says 404 (deleted upstream, or a record of a job that never was). After a few
    ticks in a row, the job is closed: its outputs, if any, are still priced."""
    misses = int(record.get("upstream_misses") or 0) + 1
    if misses < MISSING_LIMIT:
        logs.warning("job not found in Vertex", job_id=job_id, name=record["name"], misses=misses)
        records.touch_synced(job_id, upstream_misses=misses)
        return "missing"
    logs.error(
        "job gone from Vertex; closing its record",
        job_id=job_id,
        name=record["name"],
        state=record.get("state"),
        misses=misses,
    )
    records.touch_synced(
        job_id,
        upstream_misses=misses,
        upstream_missing=True,
        terminal=True,
        error=record.get("error")
        or {"code": 5, "message": "The job no longer exists in Vertex AI (deleted upstream)."},
        updated=datetime.now(UTC),
    )
    finish_job(job_id)
    return "closed_missing"


# --- finishing -------------------------------------------------------------------------------


def _split_gcs(uri: str) -> tuple[str, str]:
    bucket, _, path = uri.removeprefix("gs://").partition("/")
    return bucket, path


def reconcile_outputs(record: dict) -> int:
    """Price every output file of the job (final and incremental, see shared/jobs/finalize.py)
    that has no cost record yet (a finalize event missed, late or failed), and for a sealed
    job deliver every object of its per-job folder that has no copy yet. Returns how many
    files were priced here."""
    from shared.cost import ledger
    from shared.jobs import finalize

    job_id = record["job_id"]
    sealed = sealed_outputs.sealed(record)
    folder = record.get("output_prefix") if sealed else record.get("output_directory")
    if not folder:
        return 0
    bucket, path = _split_gcs(folder)
    prefix = path.rstrip("/") + "/"
    priced = 0
    for blob in clients.storage().list_blobs(bucket, prefix=prefix):
        found = finalize.output_file(blob.name)
        if found is None or (found[1] != prefix and not sealed):
            continue
        generation = int(blob.generation or 0)
        if ledger.has_record(job_id, bucket, blob.name, generation):
            continue
        logs.warning(
            "predictions file without a cost record; pricing it now",
            job_id=job_id,
            uri=f"gs://{bucket}/{blob.name}",
            generation=generation,
        )
        finalize.price_object(
            job=record, bucket=bucket, name=blob.name, generation=generation, size=blob.size
        )
        priced += 1
    if sealed:
        sealed_outputs.deliver_all(job_id, record)
        if not record.get("outputs_delivered"):
            records.mark(job_id, outputs_delivered=True, outputs_delivered_time=datetime.now(UTC))
    return priced


def outputs_unknown(record: dict) -> bool:
    """A job whose output folder the gateway never learnt: Vertex lost it (deleted upstream)
    before any GET recorded its `outputInfo`. Its books cannot be known, so it is never final
    (a sealed job's folder is known from its create; a job Vertex reported ended without
    `outputInfo` wrote nothing)."""
    return (
        bool(record.get("upstream_missing"))
        and not record.get("output_directory")
        and not sealed_outputs.sealed(record)
    )


def finish_job(job_id: str) -> str:
    """Terminal job: reconcile outputs, the floor, the alerts, then set `cost_final`.

    A reconciliation that keeps failing (an output bucket the gateway cannot read, a bug)
    must not hold the job hostage: after `RECONCILE_ATTEMPTS` failed ticks in a row the
    `reconcile` alert goes out, then the terminal alert (its cost marked not final) and the
    budget commitment is released; `cost_final` stays false, so later ticks keep trying and
    the first success finishes the job.

    The floor (shared/cost/floor.py): successful rows Vertex ran that the books lack are
    booked at the estimate's rate, one `tamper` alert names the gap, and the cost stays not
    final (each tick checks again: a late file replaces estimated rows with priced ones). A
    job whose output folder was never learnt (`outputs_unknown`) is never final either.
    """
    record = records.get(job_id)
    if record is None:
        return "unknown_job"
    record.setdefault("job_id", job_id)
    if record.get("cost_final"):
        return "final"
    try:
        priced = reconcile_outputs(record)
    except Exception as exc:
        return _reconcile_failed(record, exc)
    record = {**(records.get(job_id) or record), "job_id": job_id}
    floored = _apply_floor(record)
    if floored is not None and floored.rows:
        record = {**(records.get(job_id) or record), "job_id": job_id}
        alerts.send_floor_alert(record, floored)
    unknown = outputs_unknown(record)
    if unknown:
        alerts.send_job_alert(record, "reconcile", severity="ERROR", note=UNKNOWN_NOTE)
    _unpriced_backstop(record)
    # SENT, ALREADY or IN_FLIGHT: the alert's claim is durable either way (alert_outbox).
    outcome = alerts.send_job_alert(record, "terminal", note=_terminal_note(floored, unknown))
    job_end.run(record)
    cost = record.get("cost") or {}
    if unknown or (floored is not None and floored.rows):
        _publish_books(record, final=False)
        records.mark(job_id, reconcile_failures=0)
        if not unknown:
            _release_commitment(job_id)
        logs.warning(
            "job ended; its cost is not final",
            job_id=job_id,
            outputs_unknown=unknown,
            estimated_rows=floored.rows if floored else 0,
            cost_nanos=int(cost.get("cost_nanos") or 0),
        )
        return "not_final"
    _publish_books(record, final=True)
    records.mark(job_id, cost_final=True, cost_final_time=datetime.now(UTC), reconcile_failures=0)
    _release_commitment(job_id)
    logs.info(
        "job cost final",
        job_id=job_id,
        state=record.get("state"),
        cost_nanos=int(cost.get("cost_nanos") or 0),
        cost_usd=nanos_to_usd(int(cost.get("cost_nanos") or 0)),
        files_priced_by_reconcile=priced,
        alert=outcome,
    )
    return "finished"


def _publish_books(record: dict, *, final: bool) -> None:
    """The job's cost records and totals to `cost-records` (shared/books/cost_records.py),
    before `cost_final`: a failure raises and the next tick tries again. A job that stays
    not final is published again only when its totals change (`books_published`)."""
    if not cost_records.enabled():
        return
    totals = {**(record.get("cost") or {}), "final": final}
    if record.get("books_published") == totals:
        return
    cost_records.publish_job(record["job_id"], final=final)
    records.mark(record["job_id"], books_published=totals)


UNKNOWN_NOTE = (
    "Vertex no longer knows the job and the gateway never learnt its output folder: its cost "
    "cannot be read from its files and is not final"
)


def _terminal_note(floored, unknown: bool) -> str:
    notes = []
    if floored is not None and floored.rows:
        notes.append(
            f"{floored.rows} row(s) Vertex ran are missing from its output files and are "
            f"booked at the estimate (${nanos_to_usd(floored.nanos)}); its cost is not final"
        )
    if unknown:
        notes.append(UNKNOWN_NOTE)
    return "; ".join(notes)


def _apply_floor(record: dict):
    """Book the gap between Vertex's `completionStats` and the books (ledger.record_floor);
    None when Vertex gave no counts."""
    from shared.cost import floor, ledger

    ran = floor.ran(record.get("completion_stats"))
    if ran is None:
        return None
    rate = floor.per_row_nanos(record.get("estimate"))
    if rate is None:
        rate = _one_row_nanos(record)
    return ledger.record_floor(
        job_id=record["job_id"],
        job=record,
        vertex_succeeded=ran.succeeded,
        vertex_failed=ran.failed,
        per_row_nanos=rate,
    )


def _one_row_nanos(record: dict) -> int:
    """The expected cost of one typical row of the job's model (a job without a usable
    estimate); 0 when its model has no price (then the `unpriced` alert says so)."""
    from shared.cost import estimate, pricing

    deployment = records.deployment_of(record)
    model = (record.get("deployment") or {}).get("model") or record.get("model") or ""
    try:
        estimator = estimate.RowEstimator(
            model, pricing.overrides_for(deployment) if deployment else None
        )
    except pricing.UnknownModelError:
        logs.error("no price for a floor row", job_id=record.get("job_id"), model=model)
        return 0
    return int(estimate.typical_row(estimator).cost_nanos["expected"])


def _unpriced_backstop(record: dict) -> None:
    """The job's `unpriced` alert, if its totals hold unpriced rows and the one sent when the
    file was priced did not go (it is a side effect there)."""
    cost = record.get("cost") or {}
    unpriced, no_usage = int(cost.get("unpriced_rows") or 0), int(cost.get("no_usage_rows") or 0)
    if not (unpriced or no_usage):
        return
    note = alerts.unpriced_note(
        unpriced_rows=unpriced, no_usage_rows=no_usage, malformed_file=False, sample=None
    )
    try:
        alerts.send_unpriced_alert(record, note=note)
    except Exception as exc:
        logs.error("unpriced alert failed", job_id=record.get("job_id"), error=repr(exc))


def _reconcile_failed(record: dict, exc: Exception) -> str:
    job_id = record["job_id"]
    failures = int(record.get("reconcile_failures") or 0) + 1
    error = repr(exc)[:1000]
    records.mark(job_id, reconcile_failures=failures, reconcile_error=error)
    record = {**record, "reconcile_failures": failures, "reconcile_error": error}
    logs.error(
        "reconciling the job's outputs failed",
        job_id=job_id,
        failures=failures,
        error=error,
        transient=is_transient(exc),
    )
    if failures < RECONCILE_ATTEMPTS:
        return "reconcile_failed"
    note = (
        f"Its outputs could not be priced {failures} times in a row ({error}); its cost is "
        "not final and the gateway keeps trying"
    )
    alerts.send_job_alert(record, "reconcile", severity="ERROR", note=note)
    alerts.send_job_alert(record, "terminal", note=note)
    _release_commitment(job_id)
    return "reconcile_failing"


def _release_commitment(job_id: str) -> None:
    """Tell budgets the job's estimate is no longer committed (the real cost is known)."""
    try:
        budgets.job_costed(job_id)
    except Exception as exc:
        logs.error("budget release failed", job_id=job_id, error=repr(exc))
