"""The Vertex simulator's BigQuery input and output, as Vertex reads and writes tables.

Input (`inputConfig.bigquerySource.inputUri`, `bq://project.dataset.table`): "a request
column is required, and must be valid JSON"; the table's other columns "are ignored for
content generation but included in the output table"
(https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/batch-prediction-from-bigquery).
Each row becomes the JSONL line `{"request": ...}` the GCS path reads, so the import rules and
the rows are the simulator's own.

Output (`outputConfig.bigqueryDestination.outputUri`): a table URI is written as given; a
project or dataset URI gets a new table `predictions_<time>` (inferred from the older Vertex
models' behaviour; the Gemini page names a table). Columns: the input's other columns, then
`request`, `response`, `status` ("error details are stored in the status column", same
page) and `processed_time` (the issue's column list). `request` and `response` are STRING
columns of JSON text here: the local emulator's JSON type mishandles inserted objects, and we
read no page that gives Vertex's own column types.
"""

import contextlib
import json
import os
from datetime import datetime

OUTPUT_COLUMNS = ("request", "response", "status", "processed_time")


def _client():
    from local.bq_emulator import client

    url = os.environ.get("BIGQUERY_EMULATOR_HOST", "")
    if not url:
        from google.cloud import bigquery

        return bigquery.Client()
    return client(url if "://" in url else f"http://{url}", "vertex-sim")


def table_name(uri: str) -> str:
    return uri.removeprefix("bq://")


def read_input(uri: str) -> tuple[bytes, list[dict], list]:
    """(the rows as JSONL request lines, each row's other columns, their schema fields)."""
    from google.api_core import exceptions

    client = _client()
    try:
        table = client.get_table(table_name(uri))
    except exceptions.NotFound as exc:
        raise FileNotFoundError(f"{uri}: {exc.message}") from exc
    others = [f for f in table.schema if f.name != "request"]
    if len(others) == len(table.schema):
        raise FileNotFoundError(f"{uri}: the input table has no `request` column")
    lines, passthrough = [], []
    for row in client.list_rows(table):
        values = dict(row.items())
        request = values.pop("request")
        if isinstance(request, str):
            with contextlib.suppress(ValueError):  # the import rules fail the job on it
                request = json.loads(request)
        lines.append(json.dumps({"request": request}, ensure_ascii=False))
        passthrough.append({f.name: _plain(values.get(f.name)) for f in others})
    return "".join(line + "\n" for line in lines).encode(), passthrough, others


def _plain(value):
    return value.isoformat() if isinstance(value, datetime) else value


def output_table(uri: str, created: datetime) -> str:
    """The table a job writes: the URI's table, or a new one in the URI's dataset."""
    name = table_name(uri)
    if name.count(".") == 2:
        return name
    stamp = created.strftime("%Y_%m_%dT%H_%M_%S_%fZ")
    if name.count(".") == 1:
        return f"{name}.predictions_{stamp}"
    return f"{name}.vertex_batch_predictions.predictions_{stamp}"


def write_output(table: str, rows: list[dict], passthrough: list[dict], fields: list) -> None:
    """Create the output table (input columns first) and insert one row per output row."""
    from google.cloud import bigquery

    client = _client()
    project, dataset, _ = table.split(".")
    client.create_dataset(f"{project}.{dataset}", exists_ok=True)
    schema = [
        *fields,
        bigquery.SchemaField("request", "STRING"),
        bigquery.SchemaField("response", "STRING"),
        bigquery.SchemaField("status", "STRING"),
        bigquery.SchemaField("processed_time", "TIMESTAMP"),
    ]
    client.create_table(bigquery.Table(table, schema=schema), exists_ok=True)
    out = []
    for row, extra in zip(rows, passthrough, strict=True):
        out.append(
            {
                **extra,
                "request": json.dumps(row.get("request")),
                "response": json.dumps(row["response"]) if "response" in row else None,
                "status": row.get("status") or "",
                "processed_time": row.get("processed_time"),
            }
        )
    for start in range(0, len(out), 500):
        errors = client.insert_rows_json(table, out[start : start + 500])
        if errors:
            raise RuntimeError(f"insert into {table} failed: {errors[:3]}")
