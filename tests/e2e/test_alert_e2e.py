"""The whole stack, as `make dev` runs it: a job created through the gateway ends with one
terminal alert on Pub/Sub, with no further call, and its cost is the job's cost record and
what `vbg cost` says of the predictions file."""

import json
import time
import uuid
from decimal import Decimal

import pytest
import requests
from google.api_core import exceptions
from google.cloud import pubsub_v1

from shared.core import clients
from shared.jobs import records
from tests.cost.reference import expected_cost, usd
from tests.e2e.helpers import make_key, vbg, wait_for

pytestmark = pytest.mark.e2e

JOBS_PATH = "/v1/projects/any/locations/us-central1/batchPredictionJobs"


def pull_alerts(
    subscriber, subscription: str, job_id: str, timeout: float = 90.0, linger: float = 4.0
):
    """Every alert of the job: waits for the first, then `linger` seconds (several sync ticks
    and redeliveries) for any duplicate."""
    deadline = time.monotonic() + timeout
    seen, first_seen = [], None
    while time.monotonic() < deadline:
        try:
            response = subscriber.pull(
                subscription=subscription, max_messages=20, return_immediately=True, timeout=5
            )
        except exceptions.DeadlineExceeded:
            continue
        if response.received_messages:
            subscriber.acknowledge(
                subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages]
            )
        for m in response.received_messages:
            attributes, body = dict(m.message.attributes), json.loads(m.message.data)
            if attributes.get("job_id") == job_id:
                seen.append((attributes, body))
        if seen and first_seen is None:
            first_seen = time.monotonic()
            deadline = first_seen + linger
        time.sleep(0.2)
    if seen:
        return seen
    raise AssertionError(f"no alert for job {job_id} within {timeout}s")


def test_terminal_alert_cost_equals_cost_record_and_vbg_cost(stack_env):
    stack = stack_env
    gateway = stack["gateway_url"]
    bucket = stack["bucket"]
    run = uuid.uuid4().hex[:10]
    subscriber = pubsub_v1.SubscriberClient()
    subscription = subscriber.subscription_path(stack["project"], f"alert-e2e-{run}")
    subscriber.create_subscription(
        name=subscription, topic=clients.topic_path(stack["alerts_topic"])
    )

    key = make_key(stack, f"alert-e2e-{run}", folder=f"alert-e2e/{run}", team="alerting")
    rows = [
        {"request": {"contents": [{"role": "user", "parts": [{"text": f"question {i}"}]}]}}
        for i in range(5)
    ]
    clients.storage().bucket(bucket).blob(f"alert-e2e/{run}/in.jsonl").upload_from_string(
        "".join(json.dumps(r) + "\n" for r in rows)
    )
    created = requests.post(
        gateway + JOBS_PATH,
        json={
            "displayName": f"alert-e2e-{run}",
            "model": "gemini-3.5-flash-lite",
            "inputConfig": {
                "instancesFormat": "jsonl",
                "gcsSource": {"uris": [f"gs://{bucket}/alert-e2e/{run}/in.jsonl"]},
            },
            "outputConfig": {
                "predictionsFormat": "jsonl",
                "gcsDestination": {"outputUriPrefix": f"gs://{bucket}/alert-e2e/{run}/out/"},
            },
        },
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert created.status_code == 200, created.text
    job_id = created.json()["name"].rsplit("/", 1)[-1]

    alerts = pull_alerts(subscriber, subscription, job_id)
    assert [a["kind"] for a, _ in alerts] == ["terminal"]
    attributes, body = alerts[0]
    assert attributes["state"] == "JOB_STATE_SUCCEEDED"
    assert body["display_name"] == f"alert-e2e-{run}"
    assert body["owner_alias"] == f"alert-e2e-{run}"

    # The alert is sent before `cost_final` is set (lifecycle.finish_job), so wait for it.
    record = wait_for(
        lambda: (r := records.get(job_id)) and r.get("cost_final") and r,
        what=f"job {job_id} cost_final",
    )
    outputs = [s.to_dict() for s in records.job_ref(job_id).collection("outputs").stream()]
    # Rows written early (incremental files), then predictions.jsonl, which alone counts.
    assert [o["name"].rsplit("/", 1)[-1] for o in outputs if o["group"] == "final"] == [
        "predictions.jsonl"
    ]
    assert record["cost_basis"] == "final"

    predictions = record["output_directory"].rstrip("/") + "/predictions.jsonl"
    predictions_bucket, _, predictions_name = predictions.removeprefix("gs://").partition("/")
    data = clients.storage().bucket(predictions_bucket).blob(predictions_name).download_as_bytes()
    want = expected_cost(data, "gemini-3.5-flash-lite")
    assert body["cost"]["cost_nanos"] == record["cost"]["cost_nanos"] == want.cost_nanos > 0
    assert body["cost"]["usd"] == usd(want.cost_nanos)
    result = vbg("cost", "--json", predictions, stack=stack)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert Decimal(report["cost_usd"]) == Decimal(body["cost"]["usd"])
    assert report["rows"] == body["cost"]["rows"] == 5
    assert report["prompt_tokens"] == body["tokens"]["prompt_tokens"]
    subscriber.delete_subscription(subscription=subscription)
