"""Spend routes: what one job cost, and what was spent over a period, grouped.

- `GET /v1/gateway/jobs/{id}/cost`: the job's owner, an admin of its team, or the master key;
  anyone else gets 404 NOT_FOUND, as for a job that does not exist.
- `GET /v1/gateway/spend?start=YYYY-MM-DD&end=YYYY-MM-DD&groupBy=...`: days are UTC days of
  the jobs' create time, both ends included (default: the current month to date).
  `groupBy` is one of key, team, model, day, label:<name>. The master key sees all spend, a
  team admin their team's, any other key its own. With `label:<name>`, spend of jobs without
  that label is one group whose `value` is null.
- `GET /v1/gateway/spend/daily?start=&end=&groupBy=model`: the same spend as one series per
  group with a value for every day (the console's stacked chart); `groupBy=day` gives one
  series, "total". Label spend without the label is not a series there.
- `GET /v1/gateway/spend/export?format=csv|jsonl&start=&end=&groupBy=`: the same spend, one
  row per day and group, streamed as CSV (a header line first) or JSONL (shared/books/export.py).
- The job cost view carries the job's retry chain (`chain`: every job from the first parent
  down, with the chain's total cost).
"""

import re
from datetime import UTC, date, datetime, timedelta

from shared.api.http import Reply, Request
from shared.books import export
from shared.core.errors import invalid_argument, not_found
from shared.core.keys import Caller
from shared.cost import ledger
from shared.cost.pricing import nanos_to_usd
from shared.cost.spend import (
    GROUP_BY,
    MAX_DAYS,
    SPEND_PARAMS,
    counters_view,
    daily_series,
    job_cost_view,
    spend_report,
)
from shared.jobs import retry

_LABEL_NAME = re.compile(r"[a-z][\w-]{0,62}")


def job_cost(request: Request, job_id: str) -> Reply:
    # Batch prediction job ids are numeric; anything else names no job (and no document).
    cost = ledger.job_cost(job_id) if re.fullmatch(r"[0-9]{1,20}", job_id) else None
    if cost is None or not request.key_holder.may_see(cost["job"]):
        raise not_found(f"No batch prediction job {job_id!r} visible to this key.")
    return Reply(200, {**job_cost_view(cost), **_chain_view(job_id, cost["job"])})


def _chain_view(job_id: str, job: dict) -> dict:
    """The job's retry links, and its whole chain with the chain's total cost."""
    jobs = retry.chain(job_id, job)
    nanos = [int((j.get("cost") or {}).get("cost_nanos") or 0) for j in jobs]
    return {
        "retryOf": job.get("retry_of"),
        "retries": list(job.get("retries") or []),
        "chain": {
            "jobs": [
                {
                    "jobId": j["job_id"],
                    "state": j.get("state"),
                    "retryOf": j.get("retry_of"),
                    "costUsd": nanos_to_usd(n),
                    "costFinal": bool(j.get("cost_final")),
                }
                for j, n in zip(jobs, nanos, strict=True)
            ],
            "totalCostUsd": nanos_to_usd(sum(nanos)),
        },
    }


def _day(request: Request, name: str, default: date) -> date:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise invalid_argument(
            f"`{name}` {raw!r} is not a date; use YYYY-MM-DD (UTC days, both ends included).",
            field=name,
        ) from None


def spend_params(
    request: Request, allowed: tuple[str, ...] = SPEND_PARAMS
) -> tuple[date, date, str, str | None]:
    """(start, end, group, label name) from the query string, or a 400 naming what is valid."""
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:
        raise invalid_argument(
            f"Unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(allowed)}."
        )
    today = datetime.now(UTC).date()
    end = _day(request, "end", today)
    start = _day(request, "start", end.replace(day=1))
    if start > end:
        raise invalid_argument(f"`start` {start} is after `end` {end}.", field="start")
    if end - start > timedelta(days=MAX_DAYS - 1):
        raise invalid_argument(
            f"The period is {(end - start).days + 1} days; at most {MAX_DAYS} are allowed.",
            field="start",
        )
    group = request.args.get("groupBy") or "day"
    label = None
    if group.startswith("label:"):
        label = group.removeprefix("label:")
        if not _LABEL_NAME.fullmatch(label):
            raise invalid_argument(
                f"`groupBy` {group!r}: {label!r} is not a label name (lowercase letters, "
                "digits, '_' or '-', starting with a letter).",
                field="groupBy",
            )
        group = "label"
    elif group not in GROUP_BY:
        raise invalid_argument(
            f"`groupBy` {group!r} is not valid; use one of {', '.join(GROUP_BY)}.",
            field="groupBy",
        )
    return start, end, group, label


def _scope(caller: Caller) -> tuple[dict, str | None, str | None]:
    """(description, key_id filter, team filter) of the spend a caller may see."""
    if caller.is_master:
        return {"all": True}, None, None
    if caller.team_admin and caller.team:
        return {"team": caller.team}, None, caller.team
    return {"keyId": caller.key_id}, caller.key_id, None


def _period_reply(start: date, end: date, group: str, label, scope: dict, body: dict) -> Reply:
    """The envelope both spend views share: the period, the grouping and who it covers."""
    return Reply(
        200,
        {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "groupBy": f"label:{label}" if label else group,
            "scope": scope,
            "currency": "USD",
            **body,
        },
    )


def spend(request: Request) -> Reply:
    start, end, group, label = spend_params(request)
    scope, key_id, team = _scope(request.key_holder)
    report = spend_report(start=start, end=end, group=group, label=label, key_id=key_id, team=team)
    body = {"totals": counters_view(report["totals"]), "groups": report["groups"]}
    return _period_reply(start, end, group, label, scope, body)


def spend_daily(request: Request) -> Reply:
    start, end, group, label = spend_params(request)
    scope, key_id, team = _scope(request.key_holder)
    series = daily_series(start=start, end=end, group=group, label=label, key_id=key_id, team=team)
    return _period_reply(start, end, group, label, scope, series)


def spend_export(request: Request) -> Reply:
    """The spend rows as CSV or JSONL, sent a row at a time (`Reply.body` an iterator)."""
    start, end, group, label = spend_params(request, (*SPEND_PARAMS, "format"))
    fmt = request.args.get("format") or "csv"
    if fmt not in export.FORMATS:
        raise invalid_argument(
            f"`format` {fmt!r} is not valid; use one of {', '.join(export.FORMATS)}.",
            field="format",
        )
    _, key_id, team = _scope(request.key_holder)
    rows = export.rows(start=start, end=end, group=group, label=label, key_id=key_id, team=team)
    filename = f"spend-{start}-{end}.{fmt}"
    return Reply(
        200,
        export.encode(rows, fmt, export.columns(group)),
        {
            "Content-Type": export.FORMATS[fmt],
            "Content-Disposition": f'attachment; filename="{filename}"',
        },
    )
