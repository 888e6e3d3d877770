"""A job created through the gateway on the simulator is costed as the independent reference
(tests/cost/reference.py) prices its predictions file, and as `vbg cost` does: the whole path
(create, sync, GCS finalize bridge, on_output_finalized, ledger, cost route) on the local stack.
"""

import json
import uuid

import pytest
import requests

from tests.cost.reference import expected_cost, usd
from tests.e2e.helpers import make_key, vbg, wait_for

pytestmark = pytest.mark.e2e

JOBS = "/v1/projects/my-project/locations/us-central1/batchPredictionJobs"


def test_job_cost_equals_vbg_cost_of_its_predictions(stack_env):
    from shared.core import clients

    stack = stack_env
    base = f"{stack['bucket']}/cost-{uuid.uuid4().hex[:8]}"
    bucket_name, _, folder = base.partition("/")
    key = {"Authorization": f"Bearer {make_key(stack, 'coster', folder=folder, team='e2e')}"}

    lines = [
        {"request": {"contents": [{"role": "user", "parts": [{"text": f"Count to {i}. " * i}]}]}}
        for i in range(1, 9)
    ]
    clients.storage().bucket(bucket_name).blob(f"{folder}/in/input.jsonl").upload_from_string(
        # The last row fails alone (no `contents`); a broken line would fail the whole job.
        "".join(json.dumps(line) + "\n" for line in lines)
        + json.dumps({"request": {"generationConfig": {"temperature": 0.5}}})
        + "\n"
    )
    body = {
        "displayName": "costed",
        "model": "gemini-3.1-pro-preview",
        "inputConfig": {
            "instancesFormat": "jsonl",
            "gcsSource": {"uris": [f"gs://{base}/in/input.jsonl"]},
        },
        "outputConfig": {
            "predictionsFormat": "jsonl",
            "gcsDestination": {"outputUriPrefix": f"gs://{base}/out/"},
        },
        "labels": {"project": "e2e-cost"},
    }
    created = requests.post(f"{stack['gateway_url']}{JOBS}", json=body, headers=key, timeout=30)
    assert created.status_code == 200, created.text
    job_id = created.json()["name"].rsplit("/", 1)[-1]

    def final_cost():
        reply = requests.get(
            f"{stack['gateway_url']}/v1/gateway/jobs/{job_id}/cost", headers=key, timeout=10
        )
        assert reply.status_code == 200, reply.text
        cost = reply.json()
        return cost if cost["costFinal"] and cost["files"] else None

    cost = wait_for(final_cost, 60, f"job {job_id} to have a final cost")
    # The simulator wrote the rows early (incremental files) and then predictions.jsonl: the
    # final file alone counts.
    [record] = [f for f in cost["files"] if f["counted"]]
    assert {f["kind"] for f in cost["files"]} == {"final", "incremental"}
    assert cost["costBasis"] == "final" and cost["provisional"] is False
    # Sealed outputs: priced where Vertex wrote them, the job's staging folder; the client's
    # folder holds the same bytes.
    assert record["uri"].startswith(f"gs://{stack['staging_bucket']}/outputs/")
    assert record["uri"].endswith("/predictions.jsonl")

    bucket, _, name = record["uri"].removeprefix("gs://").partition("/")
    data = clients.storage().bucket(bucket).blob(name).download_as_bytes()
    leaf = name.split("/")[-2]
    copy = clients.storage().bucket(bucket_name).blob(f"{folder}/out/{leaf}/predictions.jsonl")
    assert copy.download_as_bytes() == data
    want = expected_cost(data, body["model"])
    assert cost["costUsd"] == usd(want.cost_nanos) != "0.000000000"
    assert (cost["totals"]["rows"], cost["totals"]["failed"]) == (9, 1)
    assert cost["totals"]["promptTokens"] == want.prompt_tokens
    assert cost["totals"]["candidatesTokens"] == want.candidates_tokens
    assert cost["totals"]["thoughtsTokens"] == want.thoughts_tokens

    offline = json.loads(vbg("cost", record["uri"], "--json", stack=stack, check=True).stdout)
    assert offline["model"] == "gemini-3.1-pro-preview"
    assert cost["costUsd"] == offline["cost_usd"]
    assert cost["costUsd"] != "0.000000000"
    totals = cost["totals"]
    for field, name in (
        ("rows", "rows"),
        ("succeeded", "succeeded"),
        ("failed", "failed"),
        ("malformed", "malformed"),
        ("promptTokens", "prompt_tokens"),
        ("cachedTokens", "cached_tokens"),
        ("candidatesTokens", "candidates_tokens"),
        ("thoughtsTokens", "thoughts_tokens"),
        ("embeddingTokens", "embedding_tokens"),
    ):
        assert totals[field] == offline[name], field
    assert totals["failed"] == 1

    spend = requests.get(
        f"{stack['gateway_url']}/v1/gateway/spend",
        params={"groupBy": "label:project", "start": "2000-01-01"},
        headers=key,
        timeout=10,
    )
    assert spend.status_code == 400  # more than 366 days
    spend = requests.get(
        f"{stack['gateway_url']}/v1/gateway/spend",
        params={"groupBy": "label:project"},
        headers=key,
        timeout=10,
    )
    assert spend.status_code == 200, spend.text
    groups = {g["value"]: g["costUsd"] for g in spend.json()["groups"]}
    assert groups == {"e2e-cost": offline["cost_usd"]}

    # The books in BigQuery: the stack's bridge wrote the job's cost records into the
    # emulator's table (docs/bigquery.md); its row there is the reference's figure.
    from local import bq_emulator

    if bq_emulator.missing() is None:  # the stack runs BigQuery wherever it is installed
        from local.bq_emulator import client as bigquery_client

        assert stack["bigquery_url"] and stack["books_dataset"]
        books = bigquery_client(stack["bigquery_url"], stack["project"])
        dataset = stack["books_dataset"]

        def booked():
            rows = books.query(
                f"SELECT cost_nanos, final, `rows` FROM `{dataset}.job_costs` "
                f"WHERE job_id = '{job_id}'"
            ).result()
            return [dict(r) for r in rows] or None

        [row] = wait_for(booked, 30, f"job {job_id} in {dataset}.job_costs")
        assert row == {"cost_nanos": want.cost_nanos, "final": True, "rows": 9}
        files = books.query(
            f"SELECT SUM(cost_nanos) AS n FROM `{dataset}.file_costs` "
            f"WHERE job_id = '{job_id}' AND counted"
        ).result()
        assert [r["n"] for r in files] == [want.cost_nanos]


def test_a_slow_job_cancelled_mid_run_is_billed_for_the_rows_it_finished(stack_env):
    from decimal import Decimal

    from shared.core import clients

    stack = stack_env
    base = f"{stack['bucket']}/cancel-{uuid.uuid4().hex[:8]}"
    bucket_name, _, folder = base.partition("/")
    key = {"Authorization": f"Bearer {make_key(stack, 'canceller', folder=folder)}"}
    lines = [
        {"request": {"contents": [{"role": "user", "parts": [{"text": f"Row {i}. " * 40}]}]}}
        for i in range(8)
    ]
    bucket = clients.storage().bucket(bucket_name)
    bucket.blob(f"{folder}/in/input.jsonl").upload_from_string(
        "".join(json.dumps(line) + "\n" for line in lines)
    )
    body = {
        "displayName": "cancelled",
        "model": "gemini-3.5-flash-lite",
        "inputConfig": {
            "instancesFormat": "jsonl",
            "gcsSource": {"uris": [f"gs://{base}/in/input.jsonl"]},
        },
        "outputConfig": {
            "predictionsFormat": "jsonl",
            "gcsDestination": {"outputUriPrefix": f"gs://{base}/out/"},
        },
        "labels": {"sim-fault": "slow"},
    }
    created = requests.post(f"{stack['gateway_url']}{JOBS}", json=body, headers=key, timeout=30)
    assert created.status_code == 200, created.text
    name = created.json()["name"]
    job_id = name.rsplit("/", 1)[-1]

    def incremental_written():
        return [
            b.name for b in bucket.list_blobs(prefix=f"{folder}/out/") if "incremental" in b.name
        ]

    wait_for(incremental_written, 60, "the first incremental output file")
    cancelled = requests.post(f"{stack['gateway_url']}/v1/{name}:cancel", headers=key, timeout=30)
    assert cancelled.status_code == 200, cancelled.text

    def final_cost():
        reply = requests.get(
            f"{stack['gateway_url']}/v1/gateway/jobs/{job_id}/cost", headers=key, timeout=10
        )
        assert reply.status_code == 200, reply.text
        cost = reply.json()
        return cost if cost["costFinal"] else None

    cost = wait_for(final_cost, 90, f"job {job_id} to be cancelled with a final cost")
    assert cost["state"] == "JOB_STATE_CANCELLED"
    assert cost["costBasis"] == "incremental"
    counted = [f for f in cost["files"] if f["counted"]]
    assert counted and all(f["kind"] == "incremental" for f in counted)
    assert not any(f["uri"].endswith("/predictions.jsonl") for f in cost["files"])
    offline = Decimal(0)
    rows = reference_nanos = 0
    for record in counted:
        report = json.loads(vbg("cost", record["uri"], "--json", stack=stack, check=True).stdout)
        offline += Decimal(report["cost_usd"])
        rows += report["rows"]
        where, _, name = record["uri"].removeprefix("gs://").partition("/")
        reference_nanos += expected_cost(
            clients.storage().bucket(where).blob(name).download_as_bytes(), body["model"]
        ).cost_nanos
    assert cost["costUsd"] == usd(reference_nanos) != "0.000000000"
    assert Decimal(cost["costUsd"]) == offline > 0
    assert cost["totals"]["rows"] == rows < len(lines)
