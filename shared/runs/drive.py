"""What moves a run between requests: its events on `batch-job-events`, each idempotent.

- `run.advance` (published at create, after a piece is merged, on cancel) and `run.tick`
  (Cloud Scheduler, every minute: every open run, least recently updated first) call
  `advance`: a cancel is carried out (queued pieces cancelled, running pieces' jobs
  cancelled through `submit.cancel_job`); a running piece whose job has final books
  (`cost_final`: ended, priced, outputs delivered) becomes `ended` and `run.merge` is
  published for it; queued pieces are created while the concurrency limits allow (per run
  `maxConcurrentJobs`, per key `VBG_RUN_JOBS_PER_KEY`, per deployment
  `VBG_RUN_JOBS_PER_DEPLOYMENT`), each claimed in a transaction first (`queued` ->
  `submitting`) and created through `submit.create_job` with the idempotency key
  `<run id>-<index>`, so that a second delivery, or a retry after a crash, finds the first
  create's job instead of making another; when every piece is settled the run ends, once,
  with one terminal alert.
- `run.merge` merges one ended piece (shared/runs/merge.py) and publishes `run.advance`.

A create Vertex answers 429 or 5xx (every deployment exhausted: `submit.call_vertex` fails
over first), or a gateway 5xx, puts the piece back in the queue with a backoff
(`BACKOFF_SECONDS` doubling per attempt up to `MAX_BACKOFF_SECONDS`): runs queue rather than
fail. Any other refusal (a budget that no longer fits, a 4xx) fails that piece, with the
reason; the other pieces go on, and the run ends PARTIALLY_SUCCEEDED (or FAILED when nothing
succeeded).
"""

import re
from collections.abc import Callable
from datetime import timedelta

from shared.core import keys, logs, times
from shared.core.config import settings
from shared.core.errors import ApiError
from shared.core.labels import RUN_LABEL
from shared.core.transient import is_transient
from shared.core.vertex import TERMINAL_STATES
from shared.jobs import alerts, create_request, events, records, submit
from shared.runs import costs, split, store
from shared.runs import merge as merge_module

RUN_ID = re.compile(r"run-[0-9a-f]{16}")
BACKOFF_SECONDS = 30
MAX_BACKOFF_SECONDS = 15 * 60
SUBMITS_PER_ADVANCE = 4  # creates per delivery; more slots are filled by the next one
MERGE_LEASE = timedelta(minutes=10)
TICK_RUNS = 200
SUCCEEDED = "JOB_STATE_SUCCEEDED"


def owner_caller(run: dict) -> keys.Caller:
    owner = run.get("owner_key_id")
    if owner == keys.MASTER:
        return keys.master_caller()
    key = keys.get_record(owner) if owner else None
    if not key or key.get("revoked"):
        raise ApiError(
            400,
            f"The key that owns run {run['run_id']} no longer exists or is revoked: its "
            "pieces cannot be created in its name.",
            status="FAILED_PRECONDITION",
        )
    return keys.caller_from_record(key)


def piece_body(run: dict, piece: dict) -> dict:
    """The create body of one piece: the run's model and labels, the piece's sealed input,
    a per-piece output folder in the staging bucket (the run's merged files are what the
    client's folder receives)."""
    staging = settings().staging_bucket
    total = run["pieces_total"]
    name = f"{run['display_name']} [{piece['index'] + 1}/{total}]"
    return {
        "displayName": name[:128],
        "model": run["model"],
        "inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": [piece["input_uri"]]}},
        "outputConfig": {
            "predictionsFormat": "jsonl",
            "gcsDestination": {
                "outputUriPrefix": (
                    f"gs://{staging}/runs/{run['run_id']}/outputs/{store.piece_id(piece['index'])}/"
                )
            },
        },
        "labels": dict(run.get("labels") or {}),
    }


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_SECONDS * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS))


def _requeue(run_id: str, index: int, reason: str) -> None:
    def change(piece):
        attempts = int(piece.get("attempts") or 0)
        return {
            "state": store.QUEUED,
            "not_before": store.now() + _backoff(attempts),
            "last_error": reason[:500],
        }

    store.move_piece(run_id, index, (store.SUBMITTING,), change)
    logs.warning("run piece queued again", run_id=run_id, index=index, reason=reason[:200])


def _fail(run_id: str, index: int, reason: str) -> None:
    store.move_piece(
        run_id, index, (store.SUBMITTING,), lambda _: {"state": store.FAILED, "error": reason}
    )
    logs.warning("run piece refused", run_id=run_id, index=index, reason=reason[:200])


def submit_piece(run: dict, piece: dict, caller: keys.Caller) -> str:
    """Create one claimed piece's job; what became of it."""
    run_id, index = run["run_id"], piece["index"]
    request = create_request.parse(
        piece_body(run, piece),
        door=create_request.Door.GATEWAY,
        gateway_labels={RUN_LABEL: run_id},
        idempotency_key=f"{run_id}-{index}",
    )
    try:
        submitted = submit.create_job(caller=caller, request=request)
    except ApiError as exc:
        if exc.code >= 500 or exc.code == 409:
            _requeue(run_id, index, f"{exc.code}: {exc.message}")
            return "requeued"
        _fail(run_id, index, f"{exc.code} {exc.status}: {exc.message}")
        return "failed"
    except Exception as exc:
        if not is_transient(exc):
            raise
        _requeue(run_id, index, repr(exc))
        return "requeued"
    if submitted.record is None:
        status = submitted.upstream.status
        reason = f"Vertex answered {status}: {submitted.upstream.content[:300]!r}"
        if status == 429 or status >= 500:
            _requeue(run_id, index, reason)
            return "requeued"
        _fail(run_id, index, reason)
        return "failed"
    job_id = submitted.record["job_id"]
    store.move_piece(
        run_id,
        index,
        (store.SUBMITTING,),
        lambda _: {"state": store.RUNNING, "job_id": job_id, "submitted": store.now()},
    )
    logs.info("run piece created", run_id=run_id, index=index, job_id=job_id)
    return "running"


def _slots(run: dict, pieces: list[dict]) -> int:
    """How many more pieces may start now: the tightest of the three limits."""
    active_here = sum(1 for p in pieces if p["state"] in store.ACTIVE)
    limits = [
        settings().run_jobs_per_key - store.active_count(key_id=run["owner_key_id"]),
        settings().run_jobs_per_deployment - store.active_count(deployment=run["deployment_label"]),
    ]
    if run.get("max_concurrent"):
        limits.append(int(run["max_concurrent"]) - active_here)
    return max(min(limits), 0)


def _start(run: dict, pieces: list[dict]) -> int:
    now = store.now()
    ready = [
        p
        for p in pieces
        if p["state"] == store.QUEUED and (times.parse(p.get("not_before")) or now) <= now
    ]
    if not ready:
        return 0
    room = min(_slots(run, pieces), SUBMITS_PER_ADVANCE)
    if room <= 0:
        return 0
    try:
        caller: keys.Caller | None = owner_caller(run)
        refusal = ""
    except ApiError as exc:
        caller, refusal = None, exc.message
    started = 0
    for piece in ready[:room]:
        claimed = store.move_piece(
            run["run_id"],
            piece["index"],
            (store.QUEUED,),
            lambda p: {"state": store.SUBMITTING, "attempts": int(p.get("attempts") or 0) + 1},
        )
        if claimed is None:
            continue
        if caller is None:
            _fail(run["run_id"], piece["index"], refusal)
            continue
        if submit_piece(run, claimed, caller) == "running":
            started += 1
    if len(ready) > room and room == SUBMITS_PER_ADVANCE:
        events.publish_event("run.advance", run_id=run["run_id"])  # more slots may be free
    return started


def _retake_stale_submits(run: dict, pieces: list[dict]) -> None:
    """A piece left `submitting` by a process that died: queued again after the lease (its
    idempotency key finds the job if Vertex had accepted it)."""
    now = store.now()
    for piece in pieces:
        updated = times.parse(piece.get("updated"))
        if piece["state"] == store.SUBMITTING and updated and now - updated > MERGE_LEASE:
            _requeue(run["run_id"], piece["index"], "the create did not finish; tried again")


def _ended_as(job: dict) -> Callable[[dict], dict]:
    """The change that ends a piece whose job has final books."""
    return lambda _piece: {"state": store.ENDED, "job_state": job.get("state")}


def _ended_pieces(run: dict, pieces: list[dict]) -> None:
    """Running pieces whose job has final books become `ended`; every piece that needs its
    merge (ended, or never run) gets `run.merge`, again after `MERGE_LEASE` if none came."""
    running = [p for p in pieces if p["state"] == store.RUNNING and p.get("job_id")]
    jobs = records.get_many([p["job_id"] for p in running]) if running else {}
    now = store.now()
    for piece in running:
        job = jobs.get(piece["job_id"]) or {}
        if not job.get("cost_final"):
            continue
        store.move_piece(
            run["run_id"],
            piece["index"],
            (store.RUNNING,),
            _ended_as(job),
        )
    for piece in store.pieces(run["run_id"]) if running else pieces:
        wanted = piece["state"] == store.ENDED or (
            piece["state"] in store.UNRUN and not piece.get("merge")
        )
        asked = times.parse(piece.get("merge_requested"))
        if not wanted or (asked and now - asked < MERGE_LEASE):
            continue
        moved = store.move_piece(
            run["run_id"],
            piece["index"],
            (piece["state"],),
            lambda p: {} if p.get("merge") else {"merge_requested": now},
        )
        if moved and moved.get("merge_requested") == now:
            events.publish_event("run.merge", run_id=run["run_id"], index=str(piece["index"]))


def merge(run_id: str, index: int) -> str:
    """`run.merge`: write the piece's results in input order (shared/runs/merge.py), once."""
    run = store.get(run_id)
    snapshot = store.piece_ref(run_id, index).get()
    piece = snapshot.to_dict() if snapshot.exists else None
    if run is None or piece is None:
        logs.warning("merge of an unknown piece acknowledged", run_id=run_id, index=index)
        return "unknown"
    if piece.get("merge") or piece["state"] not in (store.ENDED, *store.UNRUN):
        return "already"
    job = records.get(piece["job_id"]) if piece.get("job_id") else None
    why = piece.get("error") or "the run was cancelled before this piece started"
    if piece["state"] == store.FAILED:
        why = f"this piece's job was refused: {why}"
    merged = merge_module.merge_piece(run, piece, job, why)
    store.move_piece(
        run_id,
        index,
        (store.ENDED, *store.UNRUN),
        lambda p: {
            "state": store.MERGED if p["state"] == store.ENDED else p["state"],
            "merge": merged.view(),
            "merged": store.now(),
        },
    )
    logs.info("run piece merged", run_id=run_id, index=index, **merged.view())
    events.publish_event("run.advance", run_id=run_id)
    return "merged"


def _cancel(run: dict, pieces: list[dict]) -> None:
    for piece in pieces:
        if piece["state"] == store.QUEUED:
            store.move_piece(
                run["run_id"], piece["index"], (store.QUEUED,), lambda _: {"state": store.CANCELLED}
            )
    running = [p for p in pieces if p["state"] == store.RUNNING and not p.get("cancel_sent")]
    jobs = records.get_many([p["job_id"] for p in running]) if running else {}
    for piece in running:
        job = jobs.get(piece["job_id"])
        if job and job.get("state") not in TERMINAL_STATES:
            upstream = submit.cancel_job({**job, "job_id": piece["job_id"]})
            if not upstream.ok:
                logs.warning(
                    "run piece not cancelled", job_id=piece["job_id"], status=upstream.status
                )
                continue
        store.move_piece(
            run["run_id"], piece["index"], (store.RUNNING,), lambda _: {"cancel_sent": store.now()}
        )


def outcome(run: dict, pieces: list[dict]) -> str:
    """The run's terminal state from its settled pieces."""
    if run.get("cancel_requested"):
        return store.RUN_CANCELLED
    whole = [
        p
        for p in pieces
        if p["state"] == store.MERGED
        and p.get("job_state") == SUCCEEDED
        and not (p.get("merge") or {}).get("notSucceeded")
    ]
    if len(whole) == len(pieces):
        return store.RUN_SUCCEEDED
    if any((p.get("merge") or {}).get("succeeded") for p in pieces):
        return store.RUN_PARTIALLY_SUCCEEDED
    return store.RUN_FAILED


def _finish(run: dict, pieces: list[dict]) -> None:
    state = outcome(run, pieces)
    counts = costs.row_counts(pieces)
    if not store.finish(run["run_id"], state, counts):
        return
    view = costs.cost_view({**run, "terminal": True}, pieces)
    severity = "INFO" if state == store.RUN_SUCCEEDED else "WARNING"
    body = {
        "run_id": run["run_id"],
        "state": state,
        "display_name": run.get("display_name"),
        "model": run.get("model"),
        "owner_alias": run.get("owner_alias"),
        "team": run.get("team"),
        "pieces": len(pieces),
        "rows": counts,
        "cost": {"usd": view["totalUsd"], "final": view["final"]},
        "output_directory": run.get("output_directory"),
    }
    alerts.send(
        alert_id=f"{run['run_id']}:run_terminal",
        kind="run_terminal",
        state=state,
        severity=severity,
        job_id=run["run_id"],
        body=body,
    )
    logs.info("run ended", run_id=run["run_id"], state=state, cost_usd=view["totalUsd"])


def advance(run_id: str) -> str:
    """One step of a run; safe to repeat, in any order, any number of times."""
    run = store.get(run_id)
    if run is None:
        logs.warning("run event for an unknown run acknowledged", run_id=run_id)
        return "unknown"
    if run.get("terminal"):
        return "terminal"
    pieces = store.pieces(run_id)
    _retake_stale_submits(run, pieces)
    if run.get("cancel_requested"):
        _cancel(run, pieces)
    _ended_pieces(run, pieces)
    if not run.get("cancel_requested"):
        _start(run, pieces)
    pieces = store.pieces(run_id)
    if all(store.settled(p) for p in pieces):
        _finish(run, pieces)
        return "finished"
    store.update(run_id)  # least recently updated runs go first at the next tick
    return "advanced"


def cancel(run: dict) -> dict:
    """Ask for the run's end: queued pieces never start, running ones are cancelled."""
    if not run.get("terminal") and not run.get("cancel_requested"):
        store.update(run["run_id"], cancel_requested=store.now(), state=store.RUN_CANCELLING)
    advance(run["run_id"])
    return store.get(run["run_id"]) or run


def tick() -> str:
    found = store.open_runs(TICK_RUNS)
    for run_id in found:
        try:
            advance(run_id)
        except Exception as exc:
            if is_transient(exc):
                raise
            logs.error("run not advanced", run_id=run_id, error=repr(exc))
    return f"ticked {len(found)}"


def handle_message(*, message_id, data, attributes, delivery_attempt=None) -> str:
    """One run event from `batch-job-events` (functions/main.py hands over every `run.*`
    type). Transient failures raise (Pub/Sub redelivers); anything else is logged and
    acknowledged, like the job events (shared/jobs/lifecycle.py)."""
    from shared.jobs import lifecycle

    attributes = attributes or {}
    try:
        body = lifecycle.decode(data)
    except lifecycle.MalformedMessage as exc:
        logs.error("malformed run event acknowledged", message_id=message_id, reason=str(exc))
        return "malformed"
    kind = attributes.get("type") or body.get("type")
    run_id = attributes.get("run_id") or body.get("run_id")
    index = attributes.get("index") or body.get("index")
    fields = {"message_id": message_id, "type": kind, "run_id": run_id}
    try:
        if kind == "run.tick":
            return tick()
        if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
            logs.error("run event without a valid run_id acknowledged", **fields)
            return "malformed"
        if kind == "run.advance":
            return advance(run_id)
        if kind == "run.merge":
            digits = str(index or "")
            if not digits.isdigit() or int(digits) >= split.MAX_PIECES:
                logs.error("run.merge without a valid index acknowledged", **fields)
                return "malformed"
            return merge(run_id, int(digits))
        logs.warning("run event of an unknown type acknowledged", **fields)
        return "unknown"
    except Exception as exc:
        if is_transient(exc):
            logs.warning(
                "run event failed transiently; Pub/Sub will retry",
                error=repr(exc),
                delivery_attempt=delivery_attempt,
                **fields,
            )
            raise
        logs.error(
            "run event failed for a reason a retry cannot fix; acknowledged",
            error=repr(exc),
            **fields,
        )
        return "failed"


def is_run_event(attributes: dict | None) -> bool:
    """Whether a `batch-job-events` message is a run's (its `type` starts with `run.`)."""
    return str((attributes or {}).get("type") or "").startswith("run.")
