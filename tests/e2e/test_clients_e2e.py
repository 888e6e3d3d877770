"""The official clients, unchanged, against the gateway of the running local stack."""

import json

import pytest
from google.api_core.client_options import ClientOptions
from google.oauth2.credentials import Credentials

from tests.e2e.helpers import make_key, wait_for

pytestmark = pytest.mark.e2e


def _key(stack, alias, labels=None) -> str:
    return make_key(stack, alias, folder=alias, team="e2e", labels=labels or {})


def _job_service(stack, key):
    """The official client, REST transport, the gateway as endpoint, the key as the token."""
    from google.cloud.aiplatform_v1 import JobServiceClient

    return JobServiceClient(
        transport="rest",
        client_options=ClientOptions(api_endpoint=stack["gateway_url"]),
        credentials=Credentials(token=key),
    )


def _input(stack_env, alias, rows=3) -> str:
    from shared.core import clients

    line = {"request": {"contents": [{"role": "user", "parts": [{"text": "Say hello"}]}]}}
    name = f"{alias}/in/input.jsonl"
    clients.storage().bucket(stack_env["bucket"]).blob(name).upload_from_string(
        "\n".join(json.dumps(line) for _ in range(rows)) + "\n"
    )
    return f"gs://{stack_env['bucket']}/{name}"


def test_job_service_client_create_get_list_cancel(stack_env):
    from google.cloud.aiplatform_v1 import BatchPredictionJob, JobState

    key = _key(stack_env, "aiplatform")
    uri = _input(stack_env, "aiplatform")
    client = _job_service(stack_env, key)
    parent = "projects/my-project/locations/us-central1"
    job = client.create_batch_prediction_job(
        parent=parent,
        batch_prediction_job=BatchPredictionJob(
            display_name="from-aiplatform",
            model="publishers/google/models/gemini-3.5-flash-lite",
            input_config={"instances_format": "jsonl", "gcs_source": {"uris": [uri]}},
            output_config={
                "predictions_format": "jsonl",
                "gcs_destination": {
                    "output_uri_prefix": f"gs://{stack_env['bucket']}/aiplatform/out/"
                },
            },
            labels={"sim-fault": "stuck-queued", "purpose": "e2e"},
        ),
    )
    job_id = job.name.rsplit("/", 1)[-1]
    assert job.display_name == "from-aiplatform"
    assert job.labels["purpose"] == "e2e"

    fetched = client.get_batch_prediction_job(name=f"{parent}/batchPredictionJobs/{job_id}")
    assert fetched.name == job.name

    listed = list(client.list_batch_prediction_jobs(parent=parent))
    assert [j.name for j in listed] == [job.name]

    client.cancel_batch_prediction_job(name=f"{parent}/batchPredictionJobs/{job_id}")
    name = f"{parent}/batchPredictionJobs/{job_id}"
    wait_for(
        lambda: client.get_batch_prediction_job(name=name).state == JobState.JOB_STATE_CANCELLED,
        30,
        "the job to be cancelled",
    )


def test_google_genai_create_get_list_cancel(stack_env):
    from google import genai
    from google.genai import types

    # google-genai cannot set labels: the key stamps the one that keeps the job queued.
    key = _key(stack_env, "genai", labels={"sim-fault": "stuck-queued"})
    uri = _input(stack_env, "genai")
    client = genai.Client(
        vertexai=True,
        project="my-project",
        location="us-central1",
        # google-genai sends this Google token too; the gateway must use the API key.
        credentials=Credentials(token="ya29.not-a-real-google-token"),
        http_options=types.HttpOptions(
            base_url=stack_env["gateway_url"], headers={"x-goog-api-key": key}
        ),
    )
    job = client.batches.create(
        model="gemini-3.5-flash-lite",
        src=uri,
        config=types.CreateBatchJobConfig(
            display_name="from-genai",
            dest=f"gs://{stack_env['bucket']}/genai/out/",
        ),
    )
    assert job.display_name == "from-genai"
    fetched = client.batches.get(name=job.name)
    assert fetched.name == job.name
    assert [j.name for j in client.batches.list()] == [job.name]
    client.batches.cancel(name=job.name)
    wait_for(
        lambda: client.batches.get(name=job.name).state == types.JobState.JOB_STATE_CANCELLED,
        30,
        "the job to be cancelled",
    )


def test_the_job_reaches_succeeded_with_its_predictions_file(stack_env):
    """The foundation's end-to-end: the simulator through the gateway, output in GCS."""
    from google.cloud.aiplatform_v1 import JobState

    from local.sim_rows import expected_usage
    from shared.core import clients

    key = _key(stack_env, "output")
    uri = _input(stack_env, "output", rows=2)
    client = _job_service(stack_env, key)
    parent = "projects/my-project/locations/us-central1"
    job = client.create_batch_prediction_job(
        parent=parent,
        batch_prediction_job={
            "display_name": "output",
            "model": "gemini-3.5-flash-lite",
            "input_config": {"instances_format": "jsonl", "gcs_source": {"uris": [uri]}},
            "output_config": {
                "predictions_format": "jsonl",
                "gcs_destination": {"output_uri_prefix": f"gs://{stack_env['bucket']}/output/out/"},
            },
        },
    )
    name = f"{parent}/batchPredictionJobs/{job.name.rsplit('/', 1)[-1]}"

    def succeeded():
        current = client.get_batch_prediction_job(name=name)
        return current if current.state == JobState.JOB_STATE_SUCCEEDED else None

    job = wait_for(succeeded, 60, "the job to succeed")
    directory = job.output_info.gcs_output_directory
    assert "/prediction-model-" in directory
    bucket, _, prefix = directory.removeprefix("gs://").partition("/")
    blob = clients.storage().bucket(bucket).blob(f"{prefix}/predictions.jsonl")
    rows = [json.loads(line) for line in blob.download_as_text().splitlines()]
    assert len(rows) == 2
    wanted = expected_usage("gemini-3.5-flash-lite", rows[0]["request"])
    assert rows[0]["response"]["usageMetadata"] == wanted


def test_job_service_client_deletes_a_job_and_waits_on_the_operation(stack_env):
    """delete_batch_prediction_job(...).result() polls GET .../operations/{id} (under /ui/)
    through the gateway until the simulator's Operation is done; other keys get a 404."""
    import requests
    from google.api_core import exceptions
    from google.cloud.aiplatform_v1 import JobState

    key = _key(stack_env, "deleter")
    client = _job_service(stack_env, key)
    parent = "projects/my-project/locations/us-central1"
    job = client.create_batch_prediction_job(
        parent=parent,
        batch_prediction_job={
            "display_name": "to-delete",
            "model": "gemini-3.5-flash-lite",
            "input_config": {
                "instances_format": "jsonl",
                "gcs_source": {"uris": [_input(stack_env, "deleter", rows=1)]},
            },
            "output_config": {
                "predictions_format": "jsonl",
                "gcs_destination": {
                    "output_uri_prefix": f"gs://{stack_env['bucket']}/deleter/out/"
                },
            },
            "labels": {"sim-fault": "stuck-queued"},
        },
    )
    name = f"{parent}/batchPredictionJobs/{job.name.rsplit('/', 1)[-1]}"
    client.cancel_batch_prediction_job(name=name)
    wait_for(
        lambda: client.get_batch_prediction_job(name=name).state == JobState.JOB_STATE_CANCELLED,
        30,
        "the job to be cancelled",
    )
    operation = client.delete_batch_prediction_job(name=name)
    assert not operation.operation.done  # the delete's answer: not done, so the client polls
    operation.result(timeout=30)
    assert operation.done()
    with pytest.raises(exceptions.NotFound):
        client.get_batch_prediction_job(name=name)

    operation_name = operation.operation.name
    other = _key(stack_env, "not-the-deleter")
    for prefix in ("v1", "ui"):
        polled = requests.get(
            f"{stack_env['gateway_url']}/{prefix}/{operation_name}",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert polled.status_code == 200 and polled.json()["done"] is True
        stranger = requests.get(
            f"{stack_env['gateway_url']}/{prefix}/{operation_name}",
            headers={"Authorization": f"Bearer {other}"},
            timeout=10,
        )
        assert stranger.status_code == 404
        assert stranger.json()["error"]["status"] == "NOT_FOUND"
