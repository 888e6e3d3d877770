"""Spend views: a job's cost (its records and totals) and spend over days, grouped.

A job's cost is shown while it runs (the cost so far, from the incremental files Vertex writes
as it goes) with `provisional: true` until the job is over and its cost final; `costBasis`
says which file set the totals are (`incremental` or `final`), each file says its `kind` and
whether it `counted`. Rows that could not be priced are counted (`unpricedRows`,
`noUsageRows`) and sampled (`unpricedSamples`), never a silent $0. Rows Vertex ran that no
file holds (the floor, shared/cost/floor.py) are booked at the estimate and shown apart:
`estimatedRows`, `estimatedUsd` (inside `costUsd`), `floor` (Vertex's counts, the books', the
gap); a file that vanished or was rewritten carries its `tamper` reason.

The queries behind `/v1/gateway/jobs/{id}/cost` and `/v1/gateway/spend` (the routes are in
`shared/api/spend_routes.py`). Money is a decimal string of USD (nine places); counters are
integers; fields are camelCase.
"""

from datetime import date, datetime

from shared.core import times
from shared.cost import estimate, ledger
from shared.cost.pricing import nanos_to_usd
from shared.cost.usage import COUNTER_FIELDS

GROUP_BY = ("key", "team", "model", "day", "label:<name>")
SPEND_PARAMS = ("start", "end", "groupBy")
MAX_DAYS = 366


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
    """Counters as the API shows them; `costUsd` includes `estimatedUsd`, the rows Vertex ran
    that no file holds, booked at the estimate (shared/cost/floor.py)."""
    view: dict[str, object] = {
        camel(f): int(counters.get(f) or 0) for f in COUNTER_FIELDS if f != "cost_nanos"
    }
    view["costUsd"] = nanos_to_usd(int(counters.get("cost_nanos") or 0))
    view["estimatedRows"] = int(counters.get("estimated_rows") or 0)
    view["estimatedUsd"] = nanos_to_usd(int(counters.get("estimated_nanos") or 0))
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
        "kind": record.get("group") or "final",
        "counted": bool(record.get("counted")),
        "error": record.get("error"),
        "tamper": _camelize(record.get("tamper")),
        **counters_view(record.get("counters") or {}),
        "byModel": {m: counters_view(c) for m, c in (record.get("by_model") or {}).items()},
    }


def floor_view(floor: dict | None) -> dict | None:
    """The job's floor record: Vertex's counts, the books', the gap booked at the estimate."""
    if not floor:
        return None
    return {
        "vertexSucceeded": int(floor.get("vertex_succeeded") or 0),
        "vertexFailed": int(floor.get("vertex_failed") or 0),
        "bookedSucceeded": int(floor.get("booked_succeeded") or 0),
        "gapRows": int(floor.get("rows") or 0),
        "perRowUsd": nanos_to_usd(int(floor.get("per_row_nanos") or 0)),
        "estimatedUsd": nanos_to_usd(int(floor.get("nanos") or 0)),
        "updateTime": times.iso(floor.get("updated")),
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
        "provisional": not job.get("cost_final"),
        "costBasis": job.get("cost_basis") or ("final" if cost["records"] else None),
        "costUsd": totals["costUsd"],
        "unpricedRows": totals["unpricedRows"],
        "noUsageRows": totals["noUsageRows"],
        "estimatedRows": totals["estimatedRows"],
        "estimatedUsd": totals["estimatedUsd"],
        "floor": floor_view(cost.get("floor")),
        "tamperedFiles": sum(1 for r in cost["records"] if r.get("tamper")),
        "totals": totals,
        "files": [_file_view(r) for r in cost["records"]],
        "failedSamples": _camelize(cost["failed_samples"]),
        "malformedSamples": _camelize(cost["malformed_samples"]),
        "unpricedSamples": _camelize(cost["unpriced_samples"]),
        **estimate.cost_view(job),
    }


# --- spend --------------------------------------------------------------------------------


def _add(target: dict, row: dict, sign: int = 1) -> None:
    for field in COUNTER_FIELDS + ledger.ESTIMATED_FIELDS:
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
    if label is not None:  # group "label"
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


# --- daily series (the console's stacked chart) --------------------------------------------

SERIES_FIELDS = {"key": "alias", "team": "team", "model": "model", "label": "value"}


def daily_series(
    *, start: date, end: date, group: str, label: str | None, key_id=None, team=None
) -> dict:
    """Spend per day of the period (every day, zeros included), one series per model, key,
    team or label value (`day`: one series, "total"), largest first; money as USD strings."""
    from datetime import timedelta

    days = [(start + timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]
    position = {day: n for n, day in enumerate(days)}
    if label is not None:  # group "label"
        rows = ledger.label_rows(label=label, start=start, end=end, key_id=key_id, team=team)
    else:
        rows = ledger.daily_rows(start=start, end=end, key_id=key_id, team=team)
    series: dict = {}
    for row in rows:
        name = "total" if group == "day" else row.get(SERIES_FIELDS[group]) or ""
        if group == "key":
            name = row.get("alias") or row.get("key_id") or ""
        values = series.setdefault(name, [0] * len(days))
        values[position[row["day"]]] += int(row.get("cost_nanos") or 0)
    ordered = sorted(series.items(), key=lambda item: (-sum(item[1]), item[0]))
    return {
        "days": days,
        "series": [
            {
                "name": name,
                "costUsd": [nanos_to_usd(v) for v in values],
                "totalUsd": nanos_to_usd(sum(values)),
            }
            for name, values in ordered
        ],
        "totalUsd": nanos_to_usd(sum(sum(values) for values in series.values())),
        "dailyTotalUsd": [
            nanos_to_usd(sum(values[n] for values in series.values())) for n in range(len(days))
        ],
    }
