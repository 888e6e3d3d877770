"""Spend routes: what one job cost, and what was spent over a period, grouped.

- `GET /v1/gateway/jobs/{id}/cost`: the job's owner, an admin of its team, or the master key;
  anyone else gets 404 NOT_FOUND, as for a job that does not exist.
- `GET /v1/gateway/spend?start=YYYY-MM-DD&end=YYYY-MM-DD&groupBy=...`: days are UTC days of
  the jobs' create time, both ends included (default: the current month to date).
  `groupBy` is one of key, team, model, day, label:<name>. The master key sees all spend, a
  team admin their team's, any other key its own. With `label:<name>`, spend of jobs without
  that label is one group whose `value` is null.

Money is a decimal string of USD (nine places); counters are integers; fields are camelCase.
"""

import re
from datetime import UTC, date, datetime, timedelta

from shared import estimate, ledger, times
from shared.errors import invalid_argument, not_found
from shared.http import Reply, Request, route
from shared.pricing import nanos_to_usd
from shared.usage import COUNTER_FIELDS

GROUP_BY = ("key", "team", "model", "day", "label:<name>")
SPEND_PARAMS = ("start", "end", "groupBy")
MAX_DAYS = 366
_LABEL_NAME = re.compile(r"^[a-z][\w-]{0,62}$")


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _camelize(value):
    """snake_case keys to camelCase, `*_nanos` integers to `*Usd` decimal strings."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, str) and key.endswith("_nanos") and isinstance(item, int):
                out[camel(key.removesuffix("_nanos") + "_usd")] = nanos_to_usd(item)
            else:
                out[camel(key) if isinstance(key, str) else key] = _camelize(item)
        return out
    if isinstance(value, list):
        return [_camelize(item) for item in value]
    if isinstance(value, datetime):
        return times.iso(value)
    return value


def counters_view(counters: dict) -> dict:
    view = {camel(f): int(counters.get(f) or 0) for f in COUNTER_FIELDS if f != "cost_nanos"}
    view["costUsd"] = nanos_to_usd(int(counters.get("cost_nanos") or 0))
    return view


# --- job cost -----------------------------------------------------------------------------


def _file_view(record: dict) -> dict:
    return {
        "uri": record.get("uri"),
        "generation": str(record.get("generation")),
        "size": record.get("size"),
        "model": record.get("model"),
        "createTime": times.iso(record.get("created")),
        "superseded": bool(record.get("superseded")),
        "supersededBy": record.get("superseded_by"),
        **counters_view(record.get("counters") or {}),
        "byModel": {m: counters_view(c) for m, c in (record.get("by_model") or {}).items()},
    }


def job_cost_view(cost: dict) -> dict:
    job = cost["job"]
    totals = counters_view(cost["totals"])
    return {
        "jobId": cost["job_id"],
        "name": job.get("name"),
        "displayName": job.get("display_name"),
        "model": job.get("model"),
        "state": job.get("state"),
        "ownerKeyId": job.get("owner_key_id"),
        "ownerAlias": job.get("owner_alias"),
        "team": job.get("team") or "",
        "labels": job.get("labels") or {},
        "createTime": times.iso(job.get("create_time")),
        "costFinal": bool(job.get("cost_final")),
        "costUsd": totals["costUsd"],
        "totals": totals,
        "files": [_file_view(r) for r in cost["records"]],
        "failedSamples": _camelize(cost["failed_samples"]),
        "malformedSamples": _camelize(cost["malformed_samples"]),
        "unpricedSamples": _camelize(cost["unpriced_samples"]),
        **estimate.cost_view(job),
    }


@route("GET", r"v1/gateway/jobs/(?P<job_id>[^/:]+)/cost", name="jobs.cost")
def job_cost(request: Request, job_id: str) -> Reply:
    cost = ledger.job_cost(job_id) if re.fullmatch(r"[\w-]{1,64}", job_id) else None
    if cost is None or not request.caller.may_see(cost["job"]):
        raise not_found(f"No batch prediction job {job_id!r} visible to this key.")
    return Reply(200, job_cost_view(cost))


# --- spend --------------------------------------------------------------------------------


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


def spend_params(request: Request) -> tuple[date, date, str, str | None]:
    """(start, end, group, label name) from the query string, or a 400 naming what is valid."""
    unknown = sorted(set(request.args) - set(SPEND_PARAMS))
    if unknown:
        raise invalid_argument(
            f"Unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(SPEND_PARAMS)}."
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
        if not _LABEL_NAME.match(label):
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


def _scope(caller) -> tuple[dict, str | None, str | None]:
    """(description, key_id filter, team filter) of the spend a caller may see."""
    if caller.is_master:
        return {"all": True}, None, None
    if caller.team_admin and caller.team:
        return {"team": caller.team}, None, caller.team
    return {"keyId": caller.key_id}, caller.key_id, None


def _add(target: dict, row: dict, sign: int = 1) -> None:
    for field in COUNTER_FIELDS:
        target[field] = target.get(field, 0) + sign * int(row.get(field) or 0)


GROUP_FIELDS = {
    "key": ("key_id", ("key_id", "alias", "team")),
    "team": ("team", ("team",)),
    "model": ("model", ("model",)),
    "day": ("day", ("day",)),
    "label": ("value", ("label", "value")),
}


def spend_report(
    *, start: date, end: date, group: str, label: str | None, key_id=None, team=None
) -> dict:
    daily = ledger.daily_rows(start=start, end=end, key_id=key_id, team=team)
    totals: dict = {}
    for row in daily:
        _add(totals, row)
    groups: dict = {}
    field, described = GROUP_FIELDS[group]
    rows = daily
    if group == "label":
        rows = ledger.label_rows(label=label, start=start, end=end, key_id=key_id, team=team)
    for row in rows:
        entry = groups.setdefault(row.get(field), {f: row.get(f) for f in described})
        _add(entry, row)
    if group == "label":
        rest = dict(totals)
        for entry in groups.values():
            _add(rest, entry, -1)
        if any(rest.get(f) for f in COUNTER_FIELDS):
            groups[None] = {"label": label, "value": None, **rest}
    ordered = sorted(
        groups.items(),
        key=(
            (lambda item: item[0] or "")
            if group == "day"
            else (lambda item: (-int(item[1].get("cost_nanos") or 0), str(item[0])))
        ),
    )
    return {
        "totals": totals,
        "groups": [
            {**{camel(f): entry.get(f) for f in described}, **counters_view(entry)}
            for _, entry in ordered
        ],
    }


@route("GET", r"v1/gateway/spend", name="spend")
def spend(request: Request) -> Reply:
    start, end, group, label = spend_params(request)
    scope, key_id, team = _scope(request.caller)
    report = spend_report(start=start, end=end, group=group, label=label, key_id=key_id, team=team)
    return Reply(
        200,
        {
            "start": start.isoformat(),
            "end": end.isoformat(),
            "groupBy": f"label:{label}" if label else group,
            "scope": scope,
            "currency": "USD",
            "totals": counters_view(report["totals"]),
            "groups": report["groups"],
        },
    )
