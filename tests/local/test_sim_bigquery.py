"""The Vertex simulator reads and writes BigQuery tables as Vertex does (#27 item 4): a job
created with `JobServiceClient` from a table (a `request` column and an input column passed
through) into a table, and `vbg cost bq://...` of its output equals the reference's price of
the same rows (BigQuery emulator, no GCS)."""

import json
import time

import pytest

from local.vertex_sim import SimulatorThread
from tests.cost.reference import expected_cost, usd

pytestmark = pytest.mark.emulators

MODEL = "gemini-3.5-flash-lite"


@pytest.fixture
def sim(bq):
    with SimulatorThread(speed=0.05) as server:
        yield server


def _client(sim):
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.aiplatform_v1 import JobServiceClient

    return JobServiceClient(
        transport="rest",
        client_options=ClientOptions(api_endpoint=sim.url),
        credentials=AnonymousCredentials(),
    )


def _input_table(bq, texts: list[str]) -> str:
    from google.cloud import bigquery

    client = bq["client"]
    client.create_dataset(f"{bq['project']}.batch", exists_ok=True)
    name = f"{bq['project']}.batch.questions"
    schema = [bigquery.SchemaField("id", "INT64"), bigquery.SchemaField("request", "STRING")]
    client.create_table(bigquery.Table(name, schema=schema))
    rows = [
        {"id": n, "request": json.dumps({"contents": [{"role": "user", "parts": [{"text": t}]}]})}
        for n, text in enumerate(texts)
        for t in [text]
    ]
    assert client.insert_rows_json(name, rows) == []
    return name


def _wait(client, name: str, timeout: float = 30.0):
    from google.cloud.aiplatform_v1 import JobState

    deadline = time.monotonic() + timeout
    while True:
        job = client.get_batch_prediction_job(name=name)
        if job.state in (JobState.JOB_STATE_SUCCEEDED, JobState.JOB_STATE_FAILED):
            return job
        assert time.monotonic() < deadline, f"{name} still {job.state.name}"
        time.sleep(0.1)


def test_a_table_job_reads_requests_and_writes_vertexs_columns(sim, bq, capsys):
    from google.cloud.aiplatform_v1 import BatchPredictionJob, JobState

    from shared.cli.main import main

    source = _input_table(bq, ["Why is the sky blue?", "Name three rivers. " * 5, "Hi"])
    client = _client(sim)
    job = client.create_batch_prediction_job(
        parent="projects/vbg-local/locations/global",
        batch_prediction_job=BatchPredictionJob(
            display_name="from-a-table",
            model=f"publishers/google/models/{MODEL}",
            input_config={
                "instances_format": "bigquery",
                "bigquery_source": {"input_uri": f"bq://{source}"},
            },
            output_config={
                "predictions_format": "bigquery",
                "bigquery_destination": {"output_uri": f"bq://{bq['project']}.batch.answers"},
            },
        ),
    )
    done = _wait(client, job.name)
    assert done.state == JobState.JOB_STATE_SUCCEEDED, done.error
    assert done.completion_stats.successful_count == 3
    assert done.output_info.bigquery_output_dataset == f"bq://{bq['project']}.batch"
    assert done.output_info.bigquery_output_table == "answers"

    table = bq["client"].get_table(f"{bq['project']}.batch.answers")
    assert [f.name for f in table.schema] == [
        "id",
        "request",
        "response",
        "status",
        "processed_time",
    ]
    rows = sorted((dict(r.items()) for r in bq["client"].list_rows(table)), key=lambda r: r["id"])
    assert [r["id"] for r in rows] == [0, 1, 2]  # the input column passed through
    assert all(r["status"] == "" and r["response"] for r in rows)
    # The independent figure: the reference prices the rows as the JSONL lines they are.
    lines = "".join(
        json.dumps(
            {
                "request": json.loads(r["request"]),
                "response": json.loads(r["response"]),
                "status": r["status"],
                "processed_time": r["processed_time"].isoformat(),
            }
        )
        + "\n"
        for r in rows
    ).encode()
    want = expected_cost(lines, MODEL)
    assert main(["cost", f"bq://{bq['project']}.batch.answers", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])  # after the sim's logs
    assert report["cost_usd"] == usd(want.cost_nanos) != "0.000000000"
    assert report["prompt_tokens"] == want.prompt_tokens > 0


def test_a_missing_table_fails_the_job_at_import(sim, bq):
    from google.cloud.aiplatform_v1 import BatchPredictionJob, JobState

    client = _client(sim)
    job = client.create_batch_prediction_job(
        parent="projects/vbg-local/locations/global",
        batch_prediction_job=BatchPredictionJob(
            display_name="no-table",
            model=f"publishers/google/models/{MODEL}",
            input_config={
                "instances_format": "bigquery",
                "bigquery_source": {"input_uri": f"bq://{bq['project']}.nope.gone"},
            },
            output_config={
                "predictions_format": "bigquery",
                "bigquery_destination": {"output_uri": f"bq://{bq['project']}.batch"},
            },
        ),
    )
    done = _wait(client, job.name)
    assert done.state == JobState.JOB_STATE_FAILED
    assert "Failed to import data" in done.error.message
