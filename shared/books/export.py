"""Spend exports: the rows of a spend report, one per UTC day and group, as CSV or JSONL.

`GET /v1/gateway/spend/export` and `vbg spend --csv` take the spend report's filters (period,
`groupBy`, the caller's scope) and give one row per day and group (`groupBy=day`: one per
day), so that a spreadsheet sums to the report's totals. Money is given twice: `costNanos`
(the exact integer) and `costUsd` (its exact decimal string). The rollups are read in one
query (bounded: days x keys x models); the reply is encoded and sent a row at a time.

Text cells a key holder controls (aliases, teams, label values) may start with `=`, `+`,
`-`, `@`, a tab or a carriage return, which spreadsheets run as formulas: in CSV such a cell
is prefixed with `'` (OWASP's advice for CSV injection); JSONL carries the text as it is.
"""

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import date

from shared.cost import ledger
from shared.cost.pricing import nanos_to_usd
from shared.cost.spend import camel
from shared.cost.usage import COUNTER_FIELDS

FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/jsonl; charset=utf-8"}
# The fields that name a row's group, per `groupBy` (the day is always first).
GROUP_COLUMNS = {
    "day": (),
    "key": ("key_id", "alias", "team"),
    "team": ("team",),
    "model": ("model",),
    "label": ("label", "value"),
}
COUNTERS = tuple(f for f in COUNTER_FIELDS if f != "cost_nanos") + ledger.ESTIMATED_FIELDS
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def columns(group: str) -> tuple[str, ...]:
    """The export's columns, camelCase, in order."""
    names = ("day", *GROUP_COLUMNS[group], *COUNTERS, "cost_nanos")
    return (*(camel(n) for n in names), "costUsd")


def _add(target: dict, row: dict, sign: int = 1) -> None:
    for name in (*COUNTERS, "cost_nanos"):
        target[name] = target.get(name, 0) + sign * int(row.get(name) or 0)


def rows(
    *, start: date, end: date, group: str, label: str | None, key_id=None, team=None
) -> list[dict]:
    """One row per (day, group) of the spend the filters select, ordered by day then group;
    with `label`, the spend of jobs without that label is a row whose `value` is None."""
    daily = ledger.daily_rows(start=start, end=end, key_id=key_id, team=team)
    source = daily
    if label is not None:  # group "label"
        source = ledger.label_rows(label=label, start=start, end=end, key_id=key_id, team=team)
    described = GROUP_COLUMNS[group]
    merged: dict[tuple, dict] = {}
    for row in source:
        identity = (row["day"], *(row.get(f) for f in described))
        described_fields = {f: row.get(f) for f in described}
        entry = merged.setdefault(identity, {"day": row["day"], **described_fields})
        _add(entry, row)
    if group == "label":
        for day in sorted({row["day"] for row in daily}):
            rest: dict = {}
            for row in daily:
                if row["day"] == day:
                    _add(rest, row)
            for identity, entry in merged.items():
                if identity[0] == day:
                    _add(rest, entry, -1)
            if any(rest.values()):
                merged[(day, label, None)] = {"day": day, "label": label, "value": None, **rest}
    ordered = sorted(merged.items(), key=lambda item: tuple(str(v or "") for v in item[0]))
    return [_view(entry, described) for _, entry in ordered]


def _view(entry: dict, described: tuple[str, ...]) -> dict:
    view = {"day": entry["day"], **{camel(f): entry.get(f) for f in described}}
    for name in (*COUNTERS, "cost_nanos"):
        view[camel(name)] = int(entry.get(name) or 0)
    view["costUsd"] = nanos_to_usd(view["costNanos"])
    return view


def _cell(value) -> str:
    if value is None:
        return ""
    text = str(value)
    if isinstance(value, str) and text.startswith(FORMULA_START):
        return "'" + text
    return text


def encode(rows_: Iterable[dict], fmt: str, header: tuple[str, ...]) -> Iterator[bytes]:
    """The rows as CSV (a header line first) or JSONL, one encoded line at a time."""
    if fmt == "jsonl":
        for row in rows_:
            yield json.dumps(row, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(cells) -> bytes:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(cells)
        return buffer.getvalue().encode()

    yield line(header)
    for row in rows_:
        yield line([_cell(row.get(name)) for name in header])
