"""Vertex output tables in BigQuery priced as files are (#27 item 4, the pricing part):
`vbg cost bq://project.dataset.table` on a table in the emulator with Vertex's output columns
(request, response, status, processed_time and a passed-through input column) costs what the
independent reference prices the same rows at as JSONL."""

import json

import pytest

from shared.books import bq_tables
from tests.cost.cost_helpers import expected, prediction_bytes

pytestmark = pytest.mark.emulators


def _output_table(bq, data: bytes) -> str:
    from google.cloud import bigquery

    client = bq["client"]
    client.create_dataset(f"{bq['project']}.predictions", exists_ok=True)
    name = f"{bq['project']}.predictions.out"
    schema = [
        bigquery.SchemaField("id", "INT64"),  # an input column Vertex passes through
        bigquery.SchemaField("request", "STRING"),
        bigquery.SchemaField("response", "STRING"),
        bigquery.SchemaField("status", "STRING"),
        bigquery.SchemaField("processed_time", "TIMESTAMP"),
    ]
    client.create_table(bigquery.Table(name, schema=schema))
    rows = []
    for n, text in enumerate(data.decode().splitlines()):
        line = json.loads(text)
        rows.append(
            {
                "id": n,
                "request": json.dumps(line["request"]),
                "response": json.dumps(line["response"]) if "response" in line else None,
                "status": line.get("status") or "",
                "processed_time": line["processed_time"],
            }
        )
    assert client.insert_rows_json(name, rows) == []
    return f"bq://{name}"


def test_vbg_cost_of_an_output_table_is_the_references_figure(bq, capsys):
    from shared.cli.main import main

    data = prediction_bytes(["alpha " * 40, "beta", "gamma " * 7], fail={1})
    uri = _output_table(bq, data)
    want = expected(data)
    assert main(["cost", uri, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["cost_usd"] != "0.000000000"
    assert (report["rows"], report["succeeded"], report["failed"]) == (3, 2, 1)
    assert report["prompt_tokens"] == want.prompt_tokens
    assert report["candidates_tokens"] == want.candidates_tokens
    from tests.cost.reference import usd

    assert report["cost_usd"] == usd(want.cost_nanos)


def test_a_row_becomes_the_line_vertex_writes_to_gcs():
    from datetime import UTC, datetime

    row = {
        "request": '{"contents": []}',
        "response": {"usageMetadata": {"promptTokenCount": 3}},
        "status": None,
        "processed_time": datetime(2026, 12, 7, 1, 2, 3, tzinfo=UTC),
        "id": 9,
    }
    assert json.loads(bq_tables.line(row)) == {
        "request": {"contents": []},
        "response": {"usageMetadata": {"promptTokenCount": 3}},
        "status": "",
        "processed_time": "2026-12-07T01:02:03+00:00",
    }
    failed = json.loads(bq_tables.line({"request": "{}", "response": None, "status": "boom"}))
    assert failed == {"request": {}, "status": "boom", "processed_time": None}


@pytest.mark.parametrize("uri", ["bq://p.d", "gs://b/o", "bq://p.d.t;x", "bq://", "p.d.t"])
def test_table_uris_are_checked(uri, capsys):
    from shared.cli.main import main

    with pytest.raises(bq_tables.BadTableUri):
        bq_tables.table_of(uri)
    if uri.startswith("bq://"):
        assert main(["cost", uri]) == 2
        assert "bq://PROJECT.DATASET.TABLE" in capsys.readouterr().err
