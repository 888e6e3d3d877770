"""Vertex batch output tables in BigQuery, read as the prediction lines Vertex writes to GCS.

A Gemini batch job with `bigqueryDestination` writes one row per request into a table: the
`request` column, the `response` (for a succeeded row), the `status` ("error details are
stored in the status column"), `processed_time`, and the input table's other columns passed
through ("ignored for content generation but included in the output table":
https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/batch-prediction-from-bigquery).
The column names are the fields of a JSONL output line, so each row becomes that line and
the usage parser (shared/cost/usage.py) prices a table exactly as it prices a file: `vbg cost
bq://project.dataset.table`. `response` and `request` may be JSON or STRING columns: a string
is parsed, an object taken as it is.
"""

import json
import re
from collections.abc import Iterator
from datetime import datetime

from shared.core import clients

URI = re.compile(
    r"bq://([A-Za-z0-9][A-Za-z0-9_:.-]{0,127})\.([A-Za-z0-9_]{1,1024})\.([\w$-]{1,1024})"
)
COLUMNS = ("request", "response", "status", "processed_time")
PAGE_ROWS = 1000


class BadTableUri(ValueError):
    """Not a `bq://project.dataset.table` URI."""


def table_of(uri: str) -> str:
    """`bq://p.d.t` -> `p.d.t`, or BadTableUri."""
    found = URI.fullmatch(uri or "")
    if not found:
        raise BadTableUri(f"{uri!r} is not a BigQuery table URI: use bq://PROJECT.DATASET.TABLE")
    return ".".join(found.groups())


def _json(value):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value  # kept as text: the parser counts the row as malformed
    return value


def line(row) -> bytes:
    """One output row as a JSONL prediction line."""
    processed = row.get("processed_time")
    out = {
        "request": _json(row.get("request")),
        "status": row.get("status") or "",
        "processed_time": processed.isoformat() if isinstance(processed, datetime) else processed,
    }
    response = _json(row.get("response"))
    if response not in (None, ""):
        out["response"] = response
    return json.dumps(out, separators=(",", ":"), default=str).encode() + b"\n"


def prediction_chunks(uri: str) -> Iterator[bytes]:
    """The table's rows as prediction lines, a page at a time (memory flat in the rows)."""
    client = clients.bigquery()
    table = client.get_table(table_of(uri))
    present = {field.name for field in table.schema}
    fields = [field for field in table.schema if field.name in COLUMNS]
    if "request" not in present:
        raise BadTableUri(f"{uri}: no `request` column; not a batch prediction output table")
    for page in client.list_rows(table, selected_fields=fields, page_size=PAGE_ROWS).pages:
        yield b"".join(line(dict(row.items())) for row in page)
