"""Runs (shared/runs/) over HTTP, and resumable upload sessions for a key's own input prefix.

- `POST /v1/gateway/runs`: a batchPredictionJobs create body of any size (plus
  `maxConcurrentJobs`): split, sealed, checked, estimated and budgeted whole before anything
  starts; the run with its pieces, every one queued.
- `GET /v1/gateway/runs?pageSize=&before=`: the runs the key may see, newest first.
- `GET /v1/gateway/runs/{id}`: the run, its pieces and its cost (each piece and the sum).
- `GET /v1/gateway/runs/{id}/cost`: the cost view alone.
- `POST /v1/gateway/runs/{id}:cancel`: every piece: queued ones never start, running ones
  are cancelled.
- `POST /v1/gateway/runs/{id}:retryFailed`: a new run of the lines that did not succeed, in
  input order, across every piece.
- `POST /v1/gateway/uploads`: a GCS resumable upload session for an object inside the key's
  input prefixes (shared/runs/uploads.py): the client uploads through the session URI, with
  no Google credentials of its own.
"""

import time

from shared.api.audit import audit
from shared.api.http import Reply, Request
from shared.core import times
from shared.core.errors import invalid_argument, not_found
from shared.cost import estimate
from shared.cost.pricing import nanos_to_usd
from shared.runs import costs, create, drive, retry, store, uploads

RUN_ID = drive.RUN_ID
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
RUN_PARAMS = ("maxConcurrentJobs",)


def _piece_view(piece: dict) -> dict:
    return {
        "index": piece["index"],
        "firstLine": piece.get("first_line"),
        "rows": piece.get("rows"),
        "bytes": piece.get("bytes"),
        "state": piece.get("state"),
        "jobId": piece.get("job_id"),
        "jobState": piece.get("job_state"),
        "attempts": piece.get("attempts") or 0,
        "notBefore": times.iso(piece.get("not_before")),
        "error": piece.get("error"),
        "lastError": piece.get("last_error"),
        "merge": piece.get("merge"),
    }


def summary(run: dict) -> dict:
    """One run as the list shows it."""
    expected = ((run.get("estimate") or {}).get("cost_nanos") or {}).get("expected")
    return {
        "runId": run["run_id"],
        "displayName": run.get("display_name"),
        "model": run.get("model"),
        "state": run.get("state"),
        "terminal": bool(run.get("terminal")),
        "ownerKeyId": run.get("owner_key_id"),
        "ownerAlias": run.get("owner_alias"),
        "team": run.get("team") or "",
        "labels": run.get("labels") or {},
        "rows": run.get("rows"),
        "bytes": run.get("bytes"),
        "pieces": run.get("pieces_total"),
        "maxConcurrentJobs": run.get("max_concurrent"),
        "createTime": times.iso(run.get("created")),
        "endTime": times.iso(run.get("ended")),
        "outputDirectory": run.get("output_directory"),
        "estimateUsd": nanos_to_usd(int(expected)) if expected is not None else None,
        "counts": run.get("counts"),
        "retryOf": run.get("retry_of"),
        "retries": list(run.get("retries") or []),
    }


def run_view(run: dict, pieces: list[dict]) -> dict:
    return {
        **summary(run),
        "inputUris": run.get("input_uris") or [],
        "limits": run.get("limits"),
        "splitSeconds": run.get("split_seconds"),
        "estimate": estimate.public_view(run.get("estimate")),
        "cancelRequested": bool(run.get("cancel_requested")),
        "pieceList": [_piece_view(p) for p in pieces],
        "cost": costs.cost_view(run, pieces),
    }


def _visible(request: Request, run_id: str) -> dict:
    if not RUN_ID.fullmatch(run_id):
        raise invalid_argument(f"Run id {run_id!r} is malformed: run-<16 hex digits>.")
    run = store.get(run_id)
    if not run or not request.key_holder.may_see(run):
        raise not_found(f"Run {run_id} does not exist or is not yours.")
    return run


def _max_concurrent(body: dict) -> int | None:
    value = body.get("maxConcurrentJobs")
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid_argument("`maxConcurrentJobs` must be an integer.", field="maxConcurrentJobs")
    return value


def create_run(request: Request) -> Reply:
    started = time.monotonic()
    body = request.json_body()
    concurrent = _max_concurrent(body)
    job_body = {k: v for k, v in body.items() if k not in RUN_PARAMS}
    made = create.create_run(caller=request.key_holder, body=job_body, max_concurrent=concurrent)
    audit(request, outcome=200, started=started, run_id=made.run["run_id"], model=made.run["model"])
    return Reply(200, run_view(made.run, made.pieces))


def list_runs(request: Request) -> Reply:
    raw = request.args.get("pageSize", "")
    if raw and (not raw.isdigit() or int(raw) < 1):
        raise invalid_argument("`pageSize` must be a positive integer.", field="pageSize")
    size = min(int(raw), MAX_PAGE_SIZE) if raw else DEFAULT_PAGE_SIZE
    before = None
    if request.args.get("before"):
        before = times.parse(request.args["before"])
        if before is None:
            raise invalid_argument("`before` must be an RFC 3339 time.", field="before")
    caller = request.key_holder
    if caller.is_master:
        found = store.list_visible(limit=size, before=before)
    elif caller.team_admin and caller.team:
        found = store.list_visible(team=caller.team, limit=size, before=before)
    else:
        found = store.list_visible(key_id=caller.key_id, limit=size, before=before)
    reply: dict = {"runs": [summary(r) for r in found]}
    if len(found) == size:
        reply["nextBefore"] = times.iso(found[-1].get("created"))
    return Reply(200, reply)


def get_run(request: Request, run_id: str) -> Reply:
    run = _visible(request, run_id)
    return Reply(200, run_view(run, store.pieces(run_id)))


def run_cost(request: Request, run_id: str) -> Reply:
    run = _visible(request, run_id)
    return Reply(200, costs.cost_view(run, store.pieces(run_id)))


def cancel_run(request: Request, run_id: str) -> Reply:
    started = time.monotonic()
    run = _visible(request, run_id)
    request.json_body(allow_empty=True)
    after = drive.cancel(run)
    audit(request, outcome=200, started=started, run_id=run_id)
    return Reply(200, run_view(after, store.pieces(run_id)))


def retry_run(request: Request, run_id: str) -> Reply:
    started = time.monotonic()
    run = _visible(request, run_id)
    body = request.json_body(allow_empty=True)
    made = retry.retry_failed(run, max_concurrent=_max_concurrent(body))
    audit(request, outcome=200, started=started, run_id=made.run["run_id"], retry_of=run_id)
    return Reply(200, run_view(made.run, made.pieces))


def open_upload(request: Request) -> Reply:
    started = time.monotonic()
    body = request.json_body()
    session = uploads.open_session(
        request.key_holder,
        name=body.get("name"),
        size=body.get("size"),
        prefix=body.get("inputPrefix"),
    )
    audit(request, outcome=200, started=started, uri=session["uri"])
    return Reply(200, session)
