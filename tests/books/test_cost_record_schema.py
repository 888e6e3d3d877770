"""The cost-records schemas: the files Terraform reads are the ones the code makes, the
topic's Avro schema and the table's columns agree, and the rows the gateway publishes fit."""

import json
from datetime import UTC, datetime

import fastavro
from fastavro.validation import validate

from shared.books import cost_records, views
from shared.cost.usage import COUNTER_FIELDS

# What a BigQuery column may be for the topic's Avro type (string: any of its formats;
# https://cloud.google.com/pubsub/docs/bigquery, schema compatibility).
COMPATIBLE = {
    "string": {"STRING", "TIMESTAMP", "DATE"},
    "long": {"INTEGER"},
    "boolean": {"BOOLEAN"},
}

JOB = {
    "name": "projects/p/locations/us-central1/batchPredictionJobs/42",
    "model": "gemini-3.5-flash-lite",
    "deployment": {"project": "p", "location": "us-central1", "model": "gemini-3.5-flash-lite"},
    "owner_key_id": "k" * 16,
    "owner_alias": "ana",
    "team": "search",
    "labels": {"env": "prod", "cost-center": "=1+1"},
    "create_time": datetime(2026, 12, 7, 23, 59, tzinfo=UTC),
    "cost": {"cost_nanos": 2**62, "rows": 3, "succeeded": 2, "failed": 1, "estimated_rows": 1},
    "cost_basis": "final",
}
RECORD = {
    "id": "ab" * 32,
    "uri": "gs://b/out/predictions.jsonl",
    "generation": 1765000000000001,
    "group": "final",
    "counters": {"cost_nanos": 123, "rows": 3},
    "catalog_version": "bundled-2026-12-01",
    "superseded": True,
}


def test_the_schema_files_are_the_generated_ones():
    assert json.loads(cost_records.AVRO_FILE.read_text()) == cost_records.avro_schema()
    assert json.loads(cost_records.TABLE_FILE.read_text()) == cost_records.table_schema()


def test_topic_and_table_agree_column_by_column():
    avro = {f["name"]: f["type"] for f in cost_records.avro_schema()["fields"]}
    table = {c["name"]: c for c in cost_records.table_schema()}
    assert list(avro) == list(table)
    for name, kind in avro.items():
        if isinstance(kind, dict):
            assert table[name]["mode"] == "REPEATED" and table[name]["type"] == "RECORD"
            continue
        assert table[name]["type"] in COMPATIBLE[kind], name
    for counter in (*COUNTER_FIELDS, "estimated_rows", "estimated_nanos"):
        assert table[counter]["type"] == "INTEGER"
    assert table["day"]["type"] == "DATE" and table["time"]["type"] == "TIMESTAMP"


def test_published_rows_fit_the_topic_schema():
    schema = fastavro.parse_schema(cost_records.avro_schema())
    now = datetime(2026, 12, 8, 1, 2, 3, 456789, tzinfo=UTC)
    file_row = cost_records.file_row(job_id="42", job=JOB, record=RECORD, now=now)
    job_row = cost_records.job_row(
        job_id="42", job=JOB, final=True, catalog_versions=["b", "a", "b", None], now=now
    )
    for row in (file_row, job_row):
        assert validate(json.loads(json.dumps(row)), schema)
        assert row["day"] == "2026-12-07"  # the create day, not the publish day
        assert row["time"] == "2026-12-08T01:02:03.456789Z"
        assert row["labels"] == [
            {"key": "cost-center", "value": "=1+1"},
            {"key": "env", "value": "prod"},
        ]
    assert file_row["record_id"] == RECORD["id"] and file_row["kind"] == "file"
    assert file_row["counted"] is False  # superseded
    assert (file_row["cost_nanos"], file_row["rows"], file_row["failed"]) == (123, 3, 0)
    assert job_row["kind"] == "job" and job_row["cost_nanos"] == 2**62
    assert job_row["estimated"] is True and job_row["final"] is True
    assert job_row["catalog_version"] == "a,b"
    later = cost_records.job_row(job_id="42", job=JOB, final=True, now=datetime.now(UTC))
    assert later["record_id"] == job_row["record_id"]  # the same totals: one row
    other = cost_records.job_row(job_id="42", job=JOB, final=False, now=now)
    assert other["record_id"] != job_row["record_id"]


def test_views_are_filled_in_and_in_dependency_order():
    sql = views.queries(project="p", dataset="d", table="t")
    assert next(iter(sql)) == "job_costs"
    assert "`p.d.t`" in sql["job_costs"] and "`p.d.job_costs`" in sql["daily_spend_by_team"]
    assert all("${" not in text for text in sql.values())
