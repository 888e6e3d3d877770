"""Done when (#27 item 1): a job's cost records reach the BigQuery emulator's table through
the local bridge, and the views sum to the spend API's totals.

Real parts: the Firestore, Pub/Sub, GCS and BigQuery emulators, the Vertex simulator, jobs
created through the passthrough and driven to their end by sync ticks."""

import pytest

from local.bq_bridge import CostRecordsBridge, create_books
from shared.books import cost_records
from shared.cost import ledger
from tests.cost.reference import usd
from tests.jobs.lifecycle_support import make_world
from tests.support import MASTER_KEY, auth

pytestmark = pytest.mark.emulators


@pytest.fixture
def books(gcp, bq, monkeypatch, tmp_path):
    world = make_world(gcp, monkeypatch, tmp_path, env={"VBG_COST_RECORDS_TOPIC": "cost-records"})
    table = create_books(bq["client"], project=bq["project"], dataset="books")
    bridge = CostRecordsBridge(
        pubsub_host=gcp["pubsub_host"],
        project=gcp["project"],
        topic="cost-records",
        subscription="cost-records-to-bigquery",
        bigquery_client=bq["client"],
        table=table,
    ).setup()
    yield world, bridge, bq
    world.sim.stop()


def query(bq, sql: str) -> list[dict]:
    return [dict(r) for r in bq["client"].query(sql).result()]


def spend(world, group: str) -> dict:
    response = world.gateway.get(f"/v1/gateway/spend?groupBy={group}", headers=auth(MASTER_KEY))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def test_cost_records_reach_the_table_and_the_views_sum_to_the_spend_api(books):
    world, bridge, bq = books
    jobs = [
        world.create(labels={"env": "prod"}, rows=3),
        world.create(labels={"env": "dev"}, rows=4),
    ]
    for job_id in jobs:
        world.drive(job_id)
    assert bridge.drain() > 0 and bridge.rejected == 0
    dataset = f"{bq['project']}.books"

    # Every cost record of each job is in the table, once per record id.
    for job_id in jobs:
        wanted = {r["id"] for r in ledger.job_cost(job_id)["records"]}
        found = query(bq, f"SELECT record_id FROM `{dataset}.file_costs` WHERE job_id = '{job_id}'")
        assert {r["record_id"] for r in found} == wanted and len(wanted) >= 2
        [job] = query(bq, f"SELECT * FROM `{dataset}.job_costs` WHERE job_id = '{job_id}'")
        books_cost = ledger.job_cost(job_id)["job"]["cost"]
        assert job["final"] is True and job["cost_nanos"] == books_cost["cost_nanos"] > 0
        assert job["rows"] == books_cost["rows"] and job["vertex_job_name"].endswith(job_id)
        counted = query(
            bq,
            f"SELECT SUM(cost_nanos) AS n FROM `{dataset}.file_costs` "
            f"WHERE job_id = '{job_id}' AND counted",
        )
        assert counted == [{"n": books_cost["cost_nanos"]}]  # the counted files make the total

    # At least once: the job's end publishing again changes no view.
    cost_records.publish_job(jobs[0], final=True)
    assert bridge.drain() > 0
    total = spend(world, "team")["totals"]
    by_team = query(bq, f"SELECT team, cost_nanos, `rows` FROM `{dataset}.daily_spend_by_team`")
    assert [(r["team"], usd(r["cost_nanos"]), r["rows"]) for r in by_team] == [
        ("Data Science", total["costUsd"], total["rows"])
    ]
    by_model = query(bq, f"SELECT model, cost_nanos FROM `{dataset}.daily_spend_by_model`")
    assert {r["model"]: usd(r["cost_nanos"]) for r in by_model} == {
        g["model"]: g["costUsd"] for g in spend(world, "model")["groups"]
    }
    by_key = query(bq, f"SELECT key_id, cost_nanos FROM `{dataset}.daily_spend_by_key`")
    assert {r["key_id"]: usd(r["cost_nanos"]) for r in by_key} == {
        g["keyId"]: g["costUsd"] for g in spend(world, "key")["groups"]
    }
    by_label = query(
        bq, f"SELECT value, cost_nanos FROM `{dataset}.daily_spend_by_label` WHERE label = 'env'"
    )
    assert {r["value"]: usd(r["cost_nanos"]) for r in by_label} == {
        g["value"]: g["costUsd"] for g in spend(world, "label:env")["groups"]
    }
    assert len(by_label) == 2


def test_a_message_that_does_not_fit_the_schema_is_dropped(books):
    _, bridge, bq = books
    from local.bridges import pubsub_publish

    pubsub_publish(bridge.pubsub_host, bridge.topic_path, {"record_id": "x", "kind": 7}, {})
    assert bridge.drain() == 0 and bridge.rejected == 1
    rows = query(bq, f"SELECT COUNT(*) AS n FROM `{bridge.table}`")
    assert rows == [{"n": 0}]
