"""infra/bigquery.tf holds to the books' code: the topic's schema and the table's columns are
the files shared/books generates, the table is partitioned by the spend day and clustered by
team and model, the subscription writes through the topic's schema, every view has its SQL."""

import re

from shared.books import cost_records, views
from tests.infra.test_infra_contract import INFRA, block, expr, tf, unq  # noqa: F401

ROOT = INFRA.parent


def _file_arg(value: str) -> str:
    found = re.search(r'(?:file|templatefile)\("\$\{path\.module\}/\.\./([^"$]+)', value)
    assert found, value
    return found.group(1)


def test_topic_has_the_cost_record_schema_in_json(tf):  # noqa: F811
    schema = tf["resource"]["google_pubsub_schema"]["cost_record"]
    assert unq(schema["type"]) == "AVRO"
    assert ROOT / _file_arg(schema["definition"]) == cost_records.AVRO_FILE
    topic = tf["resource"]["google_pubsub_topic"]["cost_records"]
    settings = block(topic, "schema_settings")
    assert expr(settings["schema"]) == "google_pubsub_schema.cost_record.id"
    assert unq(settings["encoding"]) == "JSON"


def test_table_is_day_partitioned_on_the_spend_day_and_clustered(tf):  # noqa: F811
    table = tf["resource"]["google_bigquery_table"]["cost_records"]
    assert ROOT / _file_arg(table["schema"]) == cost_records.TABLE_FILE
    partitioning = block(table, "time_partitioning")
    assert (unq(partitioning["type"]), unq(partitioning["field"])) == ("DAY", "day")
    assert [unq(c) for c in table["clustering"]] == ["team", "model"]
    columns = {c["name"] for c in cost_records.table_schema()}
    assert {"day", "team", "model"} <= columns


def test_subscription_writes_the_table_through_the_topic_schema(tf):  # noqa: F811
    subscription = tf["resource"]["google_pubsub_subscription"]["cost_records_to_bigquery"]
    assert expr(subscription["topic"]) == "google_pubsub_topic.cost_records.id"
    config = block(subscription, "bigquery_config")
    assert config["use_topic_schema"] is True
    assert "google_bigquery_table.cost_records.table_id" in config["table"]
    assert block(subscription, "dead_letter_policy")


def test_every_view_is_created_from_its_sql_file(tf):  # noqa: F811
    names = set()
    for resource in ("books_base_views", "books_daily_views"):
        body = tf["resource"]["google_bigquery_table"][resource]
        view = block(body, "view")
        assert view["use_legacy_sql"] is False
        assert "shared/books/views/${each.key}.sql" in view["query"]
        names |= set(re.findall(r'"(\w+)"', tf["locals"][resource]))
    assert names == set(views.NAMES)
    for name in views.NAMES:
        assert (views.FOLDER / f"{name}.sql").is_file()
    daily = tf["resource"]["google_bigquery_table"]["books_daily_views"]
    assert "google_bigquery_table.books_base_views" in str(daily["depends_on"])
