"""`:retryFailed` on the stack: a new job of exactly the rows that did not succeed, linked to
its parent, costed into one chain."""

import json
import uuid
from decimal import Decimal

import pytest
import requests

from tests.e2e.helpers import make_key, wait_for

pytestmark = pytest.mark.e2e

JOBS = "/v1/projects/p/locations/us-central1/batchPredictionJobs"


def request_line(text: str) -> dict:
    return {"request": {"contents": [{"role": "user", "parts": [{"text": text}]}]}}


class Caller:
    def __init__(self, stack, key):
        self.url = stack["gateway_url"]
        self.headers = {"x-goog-api-key": key}

    def get(self, path, **params):
        return requests.get(self.url + path, headers=self.headers, params=params, timeout=30)

    def post(self, path, body=None):
        return requests.post(self.url + path, headers=self.headers, json=body or {}, timeout=30)


def create(caller, base, lines, labels):
    from shared.core import clients

    bucket, _, folder = base.partition("/")
    name = f"{folder}/in/{uuid.uuid4().hex[:6]}.jsonl"
    clients.storage().bucket(bucket).blob(name).upload_from_string(
        "".join(json.dumps(line) + "\n" for line in lines)
    )
    body = {
        "displayName": "retry-me",
        "model": "gemini-3.5-flash-lite",
        "inputConfig": {
            "instancesFormat": "jsonl",
            "gcsSource": {"uris": [f"gs://{bucket}/{name}"]},
        },
        "outputConfig": {
            "predictionsFormat": "jsonl",
            "gcsDestination": {"outputUriPrefix": f"gs://{base}/out/"},
        },
        "labels": labels,
    }
    reply = caller.post(JOBS, body)
    assert reply.status_code == 200, reply.text
    return reply.json()["name"].rsplit("/", 1)[-1]


def final(caller, job_id):
    def done():
        cost = caller.get(f"/v1/gateway/jobs/{job_id}/cost").json()
        return cost if cost.get("costFinal") else None

    return wait_for(done, 60, f"job {job_id} to end with a final cost")


def read_input(uri: str) -> list[dict]:
    from shared.core import clients

    bucket, _, name = uri.removeprefix("gs://").partition("/")
    data = clients.storage().bucket(bucket).blob(name).download_as_bytes().decode()
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def test_retry_of_a_partial_job_is_exactly_its_failed_rows(stack_env):
    stack = stack_env
    folder = f"retry-{uuid.uuid4().hex[:8]}"
    caller = Caller(stack, make_key(stack, "retrier", folder=folder, team="retry"))
    base = f"{stack['bucket']}/{folder}"
    # Duplicates on purpose: the simulator fails the rows at odd positions, so "dup" fails
    # once and succeeds once, and must be retried once.
    texts = ["a", "dup", "b", "dup", "c", "d", "e", "f", "g", "h"]
    lines = [request_line(t) for t in texts]
    parent = create(caller, base, lines, {"sim-fault": "partial", "project": "x"})

    too_soon = caller.post(f"/v1/gateway/jobs/{parent}:retryFailed")
    if too_soon.status_code != 200:  # the job may already have ended on a fast machine
        assert too_soon.status_code == 400
        assert too_soon.json()["error"]["status"] == "FAILED_PRECONDITION"

    parent_cost = final(caller, parent)
    retried = caller.post(f"/v1/gateway/jobs/{parent}:retryFailed")
    assert retried.status_code == 200, retried.text
    child = retried.json()
    assert child["retryOf"] == parent
    assert child["rows"] == {"failed": 5, "unprocessed": 0, "total": 5}
    assert child["inputUri"].startswith(f"gs://{stack['staging_bucket']}/retries/{parent}/")
    expected = [lines[i] for i in range(len(lines)) if i % 2 == 1]
    assert read_input(child["inputUri"]) == expected

    record = caller.get(f"/v1/gateway/jobs/{child['jobId']}").json()
    assert record["model"] == "gemini-3.5-flash-lite" and record["retryOf"] == parent
    assert record["labels"]["vbg-retry-of"] == parent
    assert record["labels"]["project"] == "x"
    # The estimate applies as for any create (for a key without a budget, just after it).
    wait_for(
        lambda: caller.get(f"/v1/gateway/jobs/{child['jobId']}").json()["estimateUsd"],
        30,
        "the retry job's estimate",
    )
    assert caller.get(f"/v1/gateway/jobs/{parent}").json()["retries"] == [child["jobId"]]

    child_cost = final(caller, child["jobId"])
    chain = child_cost["chain"]
    assert [j["jobId"] for j in chain["jobs"]] == [parent, child["jobId"]]
    total = Decimal(parent_cost["costUsd"]) + Decimal(child_cost["costUsd"])
    assert Decimal(chain["totalCostUsd"]) == total > 0
    assert caller.get(f"/v1/gateway/jobs/{parent}/cost").json()["chain"] == chain


def test_retry_of_a_cancelled_job_takes_the_rows_it_never_ran(stack_env):
    stack = stack_env
    folder = f"retry-{uuid.uuid4().hex[:8]}"
    caller = Caller(stack, make_key(stack, "canceller", folder=folder))
    lines = [request_line(f"row {n}") for n in range(4)]
    parent = create(caller, f"{stack['bucket']}/{folder}", lines, {"sim-fault": "stuck-queued"})
    name = caller.get(f"/v1/gateway/jobs/{parent}").json()["name"]
    assert caller.post(f"/v1/{name}:cancel").status_code == 200
    final(caller, parent)
    retried = caller.post(f"/v1/gateway/jobs/{parent}:retryFailed")
    assert retried.status_code == 200, retried.text
    assert retried.json()["rows"] == {"failed": 0, "unprocessed": 4, "total": 4}
    assert read_input(retried.json()["inputUri"]) == lines


def test_nothing_to_retry_and_other_keys(stack_env):
    stack = stack_env
    folder = f"retry-{uuid.uuid4().hex[:8]}"
    caller = Caller(stack, make_key(stack, "clean", folder=folder))
    job = create(caller, f"{stack['bucket']}/{folder}", [request_line("fine")], {})
    final(caller, job)
    clean = caller.post(f"/v1/gateway/jobs/{job}:retryFailed")
    assert clean.status_code == 400
    assert clean.json()["error"]["status"] == "FAILED_PRECONDITION"
    assert "no failed or unprocessed rows" in clean.json()["error"]["message"]

    stranger = Caller(stack, make_key(stack, "stranger", folder=f"other-{folder}"))
    assert stranger.post(f"/v1/gateway/jobs/{job}:retryFailed").status_code == 404
    assert stranger.get(f"/v1/gateway/jobs/{job}").status_code == 404
    assert caller.post("/v1/gateway/jobs/not-a-number:retryFailed").status_code == 400

    # Only the gateway may set the link label.
    forged = caller.post(
        JOBS,
        {
            "model": "gemini-3.5-flash-lite",
            "inputConfig": {
                "instancesFormat": "jsonl",
                "gcsSource": {"uris": [f"gs://{stack['bucket']}/{folder}/x"]},
            },
            "outputConfig": {
                "predictionsFormat": "jsonl",
                "gcsDestination": {"outputUriPrefix": f"gs://{stack['bucket']}/{folder}/o/"},
            },
            "labels": {"vbg-retry-of": job},
        },
    )
    assert forged.status_code == 400
    assert "'vbg-retry-of' is reserved" in forged.json()["error"]["message"]
