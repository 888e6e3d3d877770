"""Sealed outputs on the whole stack, judged by the official clients (issue #22 item 1).

Vertex (the simulator) writes into the job's per-job folder of the staging bucket; the
finalize bridge delivers the staging bucket's events; the gateway prices the files there and
copies them into the folder the client asked for. `JobServiceClient` and `google-genai`,
unchanged, see the job end only once the copies are in place, at the client's folder, and
read the answers there. The cost is the reference's price of the bytes Vertex wrote."""

import json

import pytest

from shared.core import clients
from shared.jobs import records
from tests.cost.reference import expected_cost
from tests.e2e.helpers import make_key, vbg, wait_for
from tests.e2e.test_clients_e2e import _input, _job_service

pytestmark = pytest.mark.e2e
PARENT = "projects/my-project/locations/us-central1"


def _staging_and_client(record: dict, directory: str) -> tuple[bytes, bytes]:
    """(the staging predictions file, the client's copy) of a finished sealed job."""
    staging_bucket, _, staging = record["output_prefix"].removeprefix("gs://").partition("/")
    leaf = directory.rstrip("/").rsplit("/", 1)[1]
    bucket, _, path = directory.removeprefix("gs://").partition("/")
    copied = clients.storage().bucket(bucket).blob(f"{path}/predictions.jsonl")
    original = clients.storage().bucket(staging_bucket).blob(f"{staging}{leaf}/predictions.jsonl")
    return original.download_as_bytes(), copied.download_as_bytes()


def _final(job_id: str) -> dict:
    return wait_for(
        lambda: (r := records.get(job_id)) and r.get("cost_final") and r, 60, "the cost to be final"
    )


def test_job_service_client_reads_sealed_outputs_in_its_own_folder(stack_env):
    from google.cloud.aiplatform_v1 import JobState

    bucket = stack_env["bucket"]
    key = make_key(stack_env, "sealed-aip", folder="sealed-aip", team="e2e")
    client = _job_service(stack_env, key)
    asked = f"gs://{bucket}/sealed-aip/out/"
    job = client.create_batch_prediction_job(
        parent=PARENT,
        batch_prediction_job={
            "display_name": "sealed",
            "model": "gemini-3.5-flash-lite",
            "input_config": {
                "instances_format": "jsonl",
                "gcs_source": {"uris": [_input(stack_env, "sealed-aip", rows=3)]},
            },
            "output_config": {
                "predictions_format": "jsonl",
                "gcs_destination": {"output_uri_prefix": asked},
            },
        },
    )
    job_id = job.name.rsplit("/", 1)[-1]
    record = records.get(job_id)
    assert record["outputs_sealed"] is True and record["client_output_prefix"] == asked
    assert record["output_prefix"].startswith(f"gs://{stack_env['staging_bucket']}/outputs/")
    name = f"{PARENT}/batchPredictionJobs/{job_id}"

    def succeeded():
        current = client.get_batch_prediction_job(name=name)
        return current if current.state == JobState.JOB_STATE_SUCCEEDED else None

    done = wait_for(succeeded, 60, "the job to succeed")
    directory = done.output_info.gcs_output_directory
    assert directory.startswith(f"{asked}prediction-model-")
    assert done.output_config.gcs_destination.output_uri_prefix == asked
    # When the client sees SUCCEEDED, its copy is already there and is Vertex's bytes.
    original, copied = _staging_and_client(records.get(job_id), directory)
    assert copied == original and len(copied.splitlines()) == 3
    want = expected_cost(original, "gemini-3.5-flash-lite")
    assert _final(job_id)["cost"]["cost_nanos"] == want.cost_nanos
    listed = {j.name: j for j in client.list_batch_prediction_jobs(parent=PARENT)}
    assert listed[done.name].output_info.gcs_output_directory == directory


def test_google_genai_reads_sealed_outputs_in_its_own_folder(stack_env):
    from google import genai
    from google.genai import types
    from google.oauth2.credentials import Credentials

    bucket = stack_env["bucket"]
    key = make_key(stack_env, "sealed-genai", folder="sealed-genai", team="e2e")
    client = genai.Client(
        vertexai=True,
        project="my-project",
        location="us-central1",
        credentials=Credentials(token="ya29.not-a-real-google-token"),
        http_options=types.HttpOptions(
            base_url=stack_env["gateway_url"], headers={"x-goog-api-key": key}
        ),
    )
    asked = f"gs://{bucket}/sealed-genai/out/"
    job = client.batches.create(
        model="gemini-3.5-flash-lite",
        src=_input(stack_env, "sealed-genai", rows=2),
        config=types.CreateBatchJobConfig(display_name="sealed-genai", dest=asked),
    )
    done = wait_for(
        lambda: (
            (j := client.batches.get(name=job.name)).state == types.JobState.JOB_STATE_SUCCEEDED
            and j
        ),
        60,
        "the job to succeed",
    )
    # google-genai shows the prefix it asked for (outputConfig); the files are below it.
    assert done.dest.gcs_uri == asked
    bucket_name, _, path = asked.removeprefix("gs://").partition("/")
    [found] = [
        b.name
        for b in clients.storage().list_blobs(bucket_name, prefix=path)
        if b.name.endswith("/predictions.jsonl")
    ]
    directory = f"gs://{bucket_name}/{found.rsplit('/', 1)[0]}"
    assert directory.startswith(f"{asked}prediction-model-")
    job_id = job.name.rsplit("/", 1)[-1]
    original, copied = _staging_and_client(records.get(job_id), directory)
    assert copied == original
    assert [json.loads(line)["status"] for line in copied.splitlines()] == ["", ""]
    want = expected_cost(original, "gemini-3.5-flash-lite")
    assert _final(job_id)["cost"]["cost_nanos"] == want.cost_nanos


def test_vbg_run_reads_sealed_outputs(stack_env, tmp_path):
    key = make_key(stack_env, "sealed-run", folder="sealed-run", team="e2e")
    questions = tmp_path / "q.jsonl"
    line = {"request": {"contents": [{"role": "user", "parts": [{"text": "Name a river"}]}]}}
    questions.write_text(json.dumps(line) + "\n")
    ran = vbg(
        "run",
        str(questions),
        "--model",
        "gemini-3.5-flash-lite",
        "--yes",
        "--json",
        "--key",
        key,
        "--gateway",
        stack_env["gateway_url"],
        stack=stack_env,
    )
    assert ran.returncode == 0, ran.stderr
    summary = json.loads(ran.stdout)
    results = (tmp_path / "q.results.jsonl").read_text().splitlines()
    assert len(results) == 1 and json.loads(results[0])["status"] == ""
    # vbg run runs on runs: its one piece's job writes into the gateway's staging bucket (the
    # run's own folder there), and the client's folder receives only the merged results.
    [job_id] = summary["jobIds"]
    assert records.get(job_id)["output_prefix"].startswith(f"gs://{stack_env['staging_bucket']}/")
