"""The local BigQuery emulator answers the official client for what the books rely on.

Each case is a thing the gateway's books in BigQuery (docs/bigquery.md) do: a
day-partitioned table clustered by two columns, streaming inserts of nano-dollar integers
past 2**53, a STRING column of JSON read with JSON_VALUE, a repeated key/value record
unnested, a view, query parameters, a table snapshot.
"""

import pytest

from local import bq_emulator

pytestmark = pytest.mark.emulators

BIG = 2**60 + 7  # nano-dollars past a double's exact range: must come back exact


def _table(bq, name: str, schema, **options):
    from google.cloud import bigquery

    client = bq["client"]
    client.create_dataset(f"{bq['project']}.books", exists_ok=True)
    table = bigquery.Table(f"{bq['project']}.books.{name}", schema=schema)
    for option, value in options.items():
        setattr(table, option, value)
    return client.create_table(table)


def _schema():
    from google.cloud.bigquery import SchemaField

    return [
        SchemaField("team", "STRING"),
        SchemaField("model", "STRING"),
        SchemaField("cost_nanos", "INT64"),
        SchemaField("labels_json", "STRING"),
        SchemaField(
            "labels",
            "RECORD",
            mode="REPEATED",
            fields=[SchemaField("key", "STRING"), SchemaField("value", "STRING")],
        ),
        SchemaField("time", "TIMESTAMP"),
    ]


def test_partitioned_clustered_table_keeps_its_layout(bq):
    from google.cloud import bigquery

    _table(
        bq,
        "records",
        _schema(),
        time_partitioning=bigquery.TimePartitioning(field="time"),
        clustering_fields=["team", "model"],
    )
    table = bq["client"].get_table(f"{bq['project']}.books.records")
    assert table.time_partitioning.type_ == "DAY"
    assert table.time_partitioning.field == "time"
    assert table.clustering_fields == ["team", "model"]


def test_inserts_and_queries_keep_integers_exact(bq):
    from google.cloud import bigquery

    _table(bq, "records", _schema())
    name = f"{bq['project']}.books.records"
    rows = [
        {
            "team": "search",
            "model": "m",
            "cost_nanos": BIG,
            "labels_json": '{"env": "prod"}',
            "labels": [{"key": "env", "value": "prod"}],
            "time": "2026-12-07T10:00:00Z",
        },
        {
            "team": "search",
            "model": "m",
            "cost_nanos": 3,
            "labels_json": '{"env": "dev"}',
            "labels": [{"key": "env", "value": "dev"}],
            "time": "2026-12-08T10:00:00Z",
        },
    ]
    assert bq["client"].insert_rows_json(name, rows) == []
    by_json = bq["client"].query(
        f"SELECT JSON_VALUE(labels_json, '$.env') AS env, SUM(cost_nanos) AS n FROM `{name}` "
        "GROUP BY env ORDER BY env"
    )
    assert [(r["env"], r["n"]) for r in by_json.result()] == [("dev", 3), ("prod", BIG)]
    unnested = bq["client"].query(
        f"SELECT l.value AS env, SUM(cost_nanos) AS n FROM `{name}`, UNNEST(labels) AS l "
        "WHERE l.key = 'env' GROUP BY env ORDER BY env"
    )
    assert [(r["env"], r["n"]) for r in unnested.result()] == [("dev", 3), ("prod", BIG)]
    config = bigquery.QueryJobConfig(
        query_parameters=[bigquery.ScalarQueryParameter("day", "DATE", "2026-12-08")]
    )
    one_day = bq["client"].query(
        f"SELECT SUM(cost_nanos) AS n FROM `{name}` WHERE DATE(time) = @day", job_config=config
    )
    assert [r["n"] for r in one_day.result()] == [3]


def test_views_and_snapshots(bq):
    from google.cloud import bigquery

    _table(bq, "records", _schema())
    name = f"{bq['project']}.books.records"
    bq["client"].insert_rows_json(
        name, [{"team": "t", "model": "m", "cost_nanos": 5, "time": "2026-12-07T00:00:00Z"}]
    )
    view = bigquery.Table(f"{bq['project']}.books.by_team")
    view.view_query = f"SELECT team, SUM(cost_nanos) AS n FROM `{name}` GROUP BY team"
    bq["client"].create_table(view)
    assert [dict(r) for r in bq["client"].query(f"SELECT * FROM `{view}`").result()] == [
        {"team": "t", "n": 5}
    ]
    snapshot = f"{bq['project']}.books.records_snapshot"
    config = bigquery.CopyJobConfig(operation_type="SNAPSHOT")
    bq["client"].copy_table(name, snapshot, job_config=config).result()
    assert bq["client"].get_table(snapshot).table_type == "SNAPSHOT"
    assert [r["cost_nanos"] for r in bq["client"].list_rows(snapshot)] == [5]


def test_missing_names_what_to_install(monkeypatch):
    assert bq_emulator.missing() is None
    monkeypatch.setattr(bq_emulator, "REQUIRED", ("no_such_module_here",))
    assert "no_such_module_here is not installed" in bq_emulator.missing()
