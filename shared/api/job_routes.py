"""The gateway's own job routes: who am I, my jobs with their cost, one job's story, retries.

- `GET /v1/gateway/me`: the calling key as the admin API shows it, plus `isMaster`.
- `GET /v1/gateway/jobs?state=&label=k=v&pageSize=&before=`: the jobs the key may see (its
  own; a team admin's team; all for the master key), newest first, from the gateway's
  records (no Vertex call): state, row counts, estimate and cost so far.
- `GET /v1/gateway/jobs/{id}`: one job: that summary plus its state timeline, error,
  alerts sent, input and output locations, and its retry links.
- `POST /v1/gateway/jobs/{id}:retryFailed`: a new job of the rows that did not succeed
  (`shared/jobs/retry.py`).
"""

import re
import time

from shared.api.audit import audit
from shared.api.http import Reply, Request
from shared.core import keys, times
from shared.core.errors import invalid_argument, not_found
from shared.core.vertex import JOB_STATES, TERMINAL_STATES
from shared.cost import estimate
from shared.cost.pricing import nanos_to_usd
from shared.jobs import records, retry

JOB_ID = re.compile(r"[0-9]{1,20}")
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
LABEL_SCAN = 1000  # newest jobs searched when filtering by label (labels are not indexed)
LIST_PARAMS = ("state", "label", "pageSize", "before")


def me(request: Request) -> Reply:
    caller = request.key_holder
    if caller.is_master:
        return Reply(200, {"id": keys.MASTER, "alias": keys.MASTER, "isMaster": True})
    return Reply(200, {**keys.public_view(keys.get_key(caller.key_id)), "isMaster": False})


def _seconds(start, end) -> int | None:
    start, end = times.parse(start), times.parse(end)
    return int((end - start).total_seconds()) if start and end else None


def summary(record: dict) -> dict:
    """One job as the console's list shows it."""
    stats = record.get("completion_stats") or {}
    cost = record.get("cost") or {}
    expected = ((record.get("estimate") or {}).get("cost_nanos") or {}).get("expected")
    started = record.get("start_time") or record.get("create_time")
    ended = record.get("end_time") if record.get("terminal") else None
    return {
        "jobId": record["job_id"],
        "name": record.get("name"),
        "displayName": record.get("display_name"),
        "model": record.get("model"),
        "state": record.get("state"),
        "terminal": bool(record.get("terminal")),
        "ownerKeyId": record.get("owner_key_id"),
        "ownerAlias": record.get("owner_alias"),
        "team": record.get("team") or "",
        "labels": record.get("labels") or {},
        "createTime": times.iso(record.get("create_time")),
        "startTime": times.iso(record.get("start_time")),
        "endTime": times.iso(record.get("end_time")),
        "durationSeconds": _seconds(started, ended) if ended else None,
        "rows": {
            "succeeded": int(stats.get("successfulCount") or 0),
            "failed": int(stats.get("failedCount") or 0),
            "incomplete": int(stats.get("incompleteCount") or 0),
        },
        "estimateUsd": nanos_to_usd(int(expected)) if expected is not None else None,
        "costUsd": nanos_to_usd(int(cost.get("cost_nanos") or 0)),
        "costFinal": bool(record.get("cost_final")),
        "retryOf": record.get("retry_of"),
        "retries": list(record.get("retries") or []),
    }


def _visible(request: Request, job_id: str) -> dict:
    if not JOB_ID.fullmatch(job_id):
        raise invalid_argument(f"Job id {job_id!r} is malformed: job ids are numeric.")
    record = records.get(job_id)
    if not record or record.get("deleted") or not request.key_holder.may_see(record):
        raise not_found(f"Job {job_id} does not exist or is not yours.")
    return {**record, "job_id": job_id}


def _page_size(request: Request) -> int:
    raw = request.args.get("pageSize", "")
    if not raw:
        return DEFAULT_PAGE_SIZE
    if not raw.isdigit() or int(raw) < 1:
        raise invalid_argument("`pageSize` must be a positive integer.", field="pageSize")
    return min(int(raw), MAX_PAGE_SIZE)


def _state(request: Request) -> str | None:
    raw = request.args.get("state", "").strip().upper()
    if not raw:
        return None
    state = raw if raw.startswith("JOB_STATE_") else f"JOB_STATE_{raw}"
    if state not in JOB_STATES.values():
        names = ", ".join(s.removeprefix("JOB_STATE_") for s in JOB_STATES.values())
        raise invalid_argument(f"`state` {raw!r} is not a job state; use one of {names}.")
    return state


def _label(request: Request) -> tuple[str, str] | None:
    raw = request.args.get("label", "").strip()
    if not raw:
        return None
    name, sep, value = raw.partition("=")
    if not sep or not name:
        raise invalid_argument("`label` must be NAME=VALUE.", field="label")
    return name, value


def list_jobs(request: Request) -> Reply:
    unknown = sorted(set(request.args) - set(LIST_PARAMS))
    if unknown:
        raise invalid_argument(
            f"Unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(LIST_PARAMS)}."
        )
    caller = request.key_holder
    page_size, state, label = _page_size(request), _state(request), _label(request)
    before = None
    if request.args.get("before"):
        before = times.parse(request.args["before"])
        if before is None:
            raise invalid_argument("`before` must be an RFC 3339 time.", field="before")
    key_id = team = None
    if not caller.is_master:
        if caller.team_admin and caller.team:
            team = caller.team
        else:
            key_id = caller.key_id
    found = records.list_visible(
        key_id=key_id,
        team=team,
        state=state,
        before=before,
        limit=LABEL_SCAN if label else page_size + 1,
    )
    found = [r for r in found if not r.get("deleted")]
    if label:
        found = [r for r in found if (r.get("labels") or {}).get(label[0]) == label[1]]
    page = found[:page_size]
    reply: dict = {"jobs": [summary(r) for r in page]}
    if len(found) > page_size:
        reply["nextBefore"] = times.iso(page[-1].get("create_time"))
    return Reply(200, reply)


def get_job(request: Request, job_id: str) -> Reply:
    record = _visible(request, job_id)
    history = [
        {"time": times.iso(h.get("time")), "from": h.get("from"), "to": h.get("to")}
        for h in record.get("state_history") or []
    ]
    view = {
        **summary(record),
        "timeline": sorted(history, key=lambda h: h["time"] or ""),
        "error": record.get("error"),
        "alerts": {kind: times.iso(at) for kind, at in (record.get("alerts") or {}).items()},
        "inputUris": record.get("input_uris") or [],
        "outputPrefix": record.get("output_prefix"),
        "outputDirectory": record.get("output_directory"),
        "estimate": estimate.public_view(record.get("estimate")),
        "retryable": record.get("state") in TERMINAL_STATES,
    }
    return Reply(200, view)


def retry_failed(request: Request, job_id: str) -> Reply:
    started = time.monotonic()
    record = _visible(request, job_id)
    request.json_body(allow_empty=True)
    retried = retry.retry_failed(record)
    submitted = retried.submitted
    child = submitted.record
    audit(
        request,
        outcome=submitted.upstream.status,
        started=started,
        job_id=child["job_id"] if child else None,
        retry_of=job_id,
        model=record.get("model"),
    )
    if not child:
        return Reply(
            submitted.upstream.status,
            submitted.upstream.content,
            {"Content-Type": submitted.upstream.content_type},
        )
    return Reply(
        200,
        {
            "jobId": child["job_id"],
            "name": child["name"],
            "retryOf": job_id,
            "inputUri": retried.input_uri,
            "rows": {
                "failed": retried.failed_rows,
                "unprocessed": retried.unprocessed_rows,
                "total": retried.failed_rows + retried.unprocessed_rows,
            },
            "estimate": estimate.public_view(child.get("estimate")),
        },
    )
