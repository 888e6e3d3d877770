"""The official clients create, list and cost jobs on 3.x models through the stack, in
`global`, a region and the `us` multi-region; each job's cost is the reference's for its
location (10% more outside global for the models that carry Google's uplift)."""

import json
import uuid

import pytest
import requests
from google.api_core.client_options import ClientOptions
from google.oauth2.credentials import Credentials

from tests.cost.reference import expected_cost, usd
from tests.e2e.helpers import make_key, wait_for

pytestmark = pytest.mark.e2e

# public name (local/stack.py) -> (publisher model, location of its deployment)
CASES = [
    ("gemini-3.8-flash", "global"),
    ("gemini-3.8-flash-europe-west4", "europe-west4"),
    ("gemini-3.8-flash-us", "us"),
]


def _inputs(stack, folder: str) -> str:
    from shared.core import clients

    lines = [
        {"request": {"contents": [{"role": "user", "parts": [{"text": f"Name {i} rivers."}]}]}}
        for i in range(1, 5)
    ]
    bucket, _, prefix = f"{stack['bucket']}/{folder}".partition("/")
    clients.storage().bucket(bucket).blob(f"{prefix}/in/input.jsonl").upload_from_string(
        "".join(json.dumps(line) + "\n" for line in lines)
    )
    return f"gs://{stack['bucket']}/{folder}/in/input.jsonl"


def _final_cost(stack, key: str, job_id: str) -> dict:
    def ready():
        reply = requests.get(
            f"{stack['gateway_url']}/v1/gateway/jobs/{job_id}/cost",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
        cost = reply.json()
        return cost if cost["costFinal"] and cost["files"] else None

    return wait_for(ready, 120, f"job {job_id} to have a final cost")


def _check_cost(stack, cost: dict, location: str) -> None:
    from shared.core import clients

    [record] = [f for f in cost["files"] if f["counted"]]
    bucket, _, name = record["uri"].removeprefix("gs://").partition("/")
    data = clients.storage().bucket(bucket).blob(name).download_as_bytes()
    global_price = expected_cost(data, "gemini-3.8-flash")
    here = expected_cost(data, "gemini-3.8-flash", location=location)
    assert cost["costUsd"] == usd(here.cost_nanos) != "0.000000000"
    if location == "global":
        assert here.cost_nanos == global_price.cost_nanos
    else:
        assert here.cost_nanos > global_price.cost_nanos  # the 10% uplift
    assert cost["totals"]["thoughtsTokens"] > 0  # 3.8 Flash thinks by default


@pytest.mark.parametrize(("public", "location"), CASES)
def test_job_service_client_on_3x_in_each_location(stack_env, public, location):
    from google.cloud.aiplatform_v1 import BatchPredictionJob, JobServiceClient

    folder = f"aip-{uuid.uuid4().hex[:8]}"
    key = make_key(stack_env, folder, folder=folder, team="e2e")
    client = JobServiceClient(
        transport="rest",
        client_options=ClientOptions(api_endpoint=stack_env["gateway_url"]),
        credentials=Credentials(token=key),
    )
    parent = f"projects/my-project/locations/{location}"
    job = client.create_batch_prediction_job(
        parent=parent,
        batch_prediction_job=BatchPredictionJob(
            display_name=f"aip-{location}",
            model=f"publishers/google/models/{public}",
            input_config={
                "instances_format": "jsonl",
                "gcs_source": {"uris": [_inputs(stack_env, folder)]},
            },
            output_config={
                "predictions_format": "jsonl",
                "gcs_destination": {
                    "output_uri_prefix": f"gs://{stack_env['bucket']}/{folder}/out/"
                },
            },
        ),
    )
    # The real location comes from the deployment: the job lives where its model runs.
    assert f"/locations/{location}/" in job.name
    assert [j.name for j in client.list_batch_prediction_jobs(parent=parent)] == [job.name]
    _check_cost(stack_env, _final_cost(stack_env, key, job.name.rsplit("/", 1)[-1]), location)


@pytest.mark.parametrize(("public", "location"), CASES)
def test_google_genai_on_3x_in_each_location(stack_env, public, location):
    from google import genai
    from google.genai import types

    folder = f"genai-{uuid.uuid4().hex[:8]}"
    key = make_key(stack_env, folder, folder=folder, team="e2e")
    client = genai.Client(
        vertexai=True,
        project="my-project",
        location=location,
        credentials=Credentials(token="ya29.not-a-real-google-token"),
        http_options=types.HttpOptions(
            base_url=stack_env["gateway_url"], headers={"x-goog-api-key": key}
        ),
    )
    job = client.batches.create(
        model=public,
        src=_inputs(stack_env, folder),
        config=types.CreateBatchJobConfig(
            display_name=f"genai-{location}", dest=f"gs://{stack_env['bucket']}/{folder}/out/"
        ),
    )
    assert f"/locations/{location}/" in job.name
    assert [j.name for j in client.batches.list()] == [job.name]
    _check_cost(stack_env, _final_cost(stack_env, key, job.name.rsplit("/", 1)[-1]), location)


def test_a_retired_model_is_refused_naming_its_successor(stack_env):
    folder = f"old-{uuid.uuid4().hex[:8]}"
    key = make_key(stack_env, folder, folder=folder, team="e2e")
    body = {
        "displayName": "old",
        "model": "gemini-2.5-flash",
        "inputConfig": {
            "instancesFormat": "jsonl",
            "gcsSource": {"uris": [_inputs(stack_env, folder)]},
        },
        "outputConfig": {
            "predictionsFormat": "jsonl",
            "gcsDestination": {"outputUriPrefix": f"gs://{stack_env['bucket']}/{folder}/out/"},
        },
    }
    # The stack's config still routes gemini-2.5-flash (local/stack.py): Google retired it.
    reply = requests.post(
        f"{stack_env['gateway_url']}/v1/projects/p/locations/global/batchPredictionJobs",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert reply.status_code == 400, reply.text
    message = reply.json()["error"]["message"]
    assert message == (
        "Model 'gemini-2.5-flash' was retired on 2026-10-20; use 'gemini-3.8-flash' instead "
        "(or 'gemini-3.5-flash-lite')."
    )
