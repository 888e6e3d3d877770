"""Runs on the whole stack: split under the per-job limit, queued, merged in input order, one
cost; cancel, budget refusal, a failed piece and retry. The stack's
`gemini-3.5-flash-lite-small-jobs` deployment caps a job at 100 requests
(model_info.max_job_rows), so a few hundred lines are over the per-job limit."""

import json
import uuid
from decimal import Decimal

import pytest
import requests

from shared.core import clients
from tests.cost import cost_helpers
from tests.e2e.helpers import make_key, wait_for

pytestmark = pytest.mark.e2e

CAPPED = "gemini-3.5-flash-lite-small-jobs"


def lines_of(count: int, tag: str = "q") -> list[dict]:
    # Every seventh line repeats an earlier one: identical requests map one to one.
    texts = [f"{tag} {n // 7 if n % 7 == 0 else n}" for n in range(count)]
    return [{"request": {"contents": [{"role": "user", "parts": [{"text": t}]}]}} for t in texts]


def upload(stack, name: str, lines: list) -> str:
    data = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    clients.storage().bucket(stack["bucket"]).blob(name).upload_from_string(data)
    return f"gs://{stack['bucket']}/{name}"


def body(input_uri: str, output_prefix: str, model: str = CAPPED, **extra) -> dict:
    return {
        "displayName": "big file",
        "model": model,
        "inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": [input_uri]}},
        "outputConfig": {
            "predictionsFormat": "jsonl",
            "gcsDestination": {"outputUriPrefix": output_prefix},
        },
        **extra,
    }


def call(stack, key, method, path, payload=None):
    response = requests.request(
        method,
        f"{stack['gateway_url']}{path}",
        json=payload,
        headers={"x-goog-api-key": key},
        timeout=120,
    )
    return response


def wait_run(stack, key, run_id, timeout=90.0) -> dict:
    def ended():
        run = call(stack, key, "GET", f"/v1/gateway/runs/{run_id}").json()
        return run if run["terminal"] else None

    return wait_for(ended, timeout=timeout, what=f"run {run_id} to end")


def results_files(run: dict) -> list[bytes]:
    """The run's results files, in name order (= input order)."""
    bucket, _, folder = run["outputDirectory"].removeprefix("gs://").partition("/")
    names = sorted(
        b.name
        for b in clients.storage().list_blobs(bucket, prefix=folder)
        if b.name.rsplit("/", 1)[-1].startswith("results-")
    )
    return [clients.storage().bucket(bucket).blob(n).download_as_bytes() for n in names]


def read_results(run: dict) -> list[dict]:
    return [json.loads(line) for data in results_files(run) for line in data.decode().splitlines()]


def staged_pieces(stack) -> set[str]:
    found = clients.storage().list_blobs(stack["staging_bucket"], prefix="runs/")
    return {b.name for b in found if "/pieces/" in b.name}


@pytest.fixture
def folder():
    return f"runs-{uuid.uuid4().hex[:8]}"


def test_a_run_over_the_job_limit_answers_every_line_in_order_with_one_cost(
    stack, stack_env, folder
):
    key = make_key(stack, "runner", folder=folder)
    lines = lines_of(250)
    uri = upload(stack, f"{folder}/big.jsonl", lines)
    prefix = f"gs://{stack['bucket']}/{folder}/out/"
    # One create on the capped deployment is refused, naming the limit and pointing at runs.
    one = call(
        stack, key, "POST", "/v1/projects/p/locations/global/batchPredictionJobs", body(uri, prefix)
    )
    assert one.status_code == 400
    assert "at most 100 requests" in one.json()["error"]["message"]
    assert "/v1/gateway/runs" in one.json()["error"]["message"]

    created = call(stack, key, "POST", "/v1/gateway/runs", body(uri, prefix, maxConcurrentJobs=2))
    assert created.status_code == 200, created.text
    run = created.json()
    assert run["pieces"] == 3 and run["rows"] == 250
    assert [(p["firstLine"], p["rows"]) for p in run["pieceList"]] == [
        (0, 100),
        (100, 100),
        (200, 50),
    ]
    assert {p["state"] for p in run["pieceList"]} == {"queued"}

    done = wait_run(stack, key, run["runId"])
    assert done["state"] == "SUCCEEDED", done
    results = read_results(done)
    assert [r["request"] for r in results] == [line["request"] for line in lines]
    assert all(r["status"] == "" and r["response"]["candidates"] for r in results)
    assert done["counts"] == {
        "succeeded": 250,
        "failed": 0,
        "notProcessed": 0,
        "unmatched": 0,
        "rows": 250,
    }

    # One cost: each piece as its job's books have it, the total their sum, and that total
    # is what an independent pricing of the merged rows gives.
    cost = call(stack, key, "GET", f"/v1/gateway/runs/{run['runId']}/cost").json()
    assert cost["final"] is True and len(cost["pieces"]) == 3
    job_costs = []
    for piece in cost["pieces"]:
        job = call(stack, key, "GET", f"/v1/gateway/jobs/{piece['jobId']}/cost").json()
        assert job["costFinal"] and job["costUsd"] == piece["costUsd"]
        job_costs.append(Decimal(job["costUsd"]))
    assert Decimal(cost["totalUsd"]) == sum(job_costs) > 0
    # Priced independently (tests/cost/reference.py), file by file as the ledger rounds.
    nanos = sum(cost_helpers.expected(data).cost_nanos for data in results_files(done))
    assert Decimal(cost["totalUsd"]) * 10**9 == nanos


def test_a_budget_that_cannot_hold_the_whole_run_refuses_it_before_anything_starts(
    stack, stack_env, folder
):
    # 250 lines of gemini-3.5-flash-lite cost well over a millionth of a dollar.
    key = make_key(stack, "frugal", folder=folder, budgetUsd="0.000001")
    uri = upload(stack, f"{folder}/big.jsonl", lines_of(250))
    prefix = f"gs://{stack['bucket']}/{folder}/out/"
    before = staged_pieces(stack)
    refused = call(stack, key, "POST", "/v1/gateway/runs", body(uri, prefix))
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert "Budget exceeded" in error["message"]
    assert any(d.get("reason") == "BUDGET_EXCEEDED" for d in error["details"])
    assert call(stack, key, "GET", "/v1/gateway/runs").json()["runs"] == []
    assert call(stack, key, "GET", "/v1/gateway/jobs").json()["jobs"] == []
    assert staged_pieces(stack) == before  # the pieces it wrote were dropped


def test_cancel_cancels_every_piece(stack, stack_env, folder):
    key = make_key(stack, "canceller", folder=folder)
    uri = upload(stack, f"{folder}/big.jsonl", lines_of(250, "c"))
    prefix = f"gs://{stack['bucket']}/{folder}/out/"
    payload = body(uri, prefix, maxConcurrentJobs=1, labels={"sim-fault": "stuck-queued"})
    run = call(stack, key, "POST", "/v1/gateway/runs", payload).json()

    def first_running():
        got = call(stack, key, "GET", f"/v1/gateway/runs/{run['runId']}").json()
        states = [p["state"] for p in got["pieceList"]]
        return got if states == ["running", "queued", "queued"] else None

    wait_for(first_running, timeout=30, what="the first piece to run, the others queued")
    cancelled = call(stack, key, "POST", f"/v1/gateway/runs/{run['runId']}:cancel", {})
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "CANCELLING"
    done = wait_run(stack, key, run["runId"])
    assert done["state"] == "CANCELLED"
    pieces = done["pieceList"]
    assert [p["state"] for p in pieces] == ["merged", "cancelled", "cancelled"]
    assert pieces[0]["jobState"] == "JOB_STATE_CANCELLED"
    assert [p["jobId"] for p in pieces[1:]] == [None, None]  # never created
    results = read_results(done)
    assert len(results) == 250
    assert all(r["status"].startswith("not processed") for r in results)
    jobs = call(stack, key, "GET", "/v1/gateway/jobs").json()["jobs"]
    assert [j["state"] for j in jobs] == ["JOB_STATE_CANCELLED"]


def set_faults(stack, **faults):
    response = requests.post(f"{stack['vertex_url']}/_sim/faults", json=faults, timeout=10)
    assert response.status_code == 200, response.text


def test_a_failed_piece_then_retry_of_the_run(stack, stack_env, folder):
    key = make_key(stack, "retrier", folder=folder)
    lines = lines_of(250, "r")
    uri = upload(stack, f"{folder}/big.jsonl", lines)
    prefix = f"gs://{stack['bucket']}/{folder}/out/"
    set_faults(stack, fail_inputs=["pieces/00001.jsonl"])
    try:
        run = call(stack, key, "POST", "/v1/gateway/runs", body(uri, prefix)).json()
        done = wait_run(stack, key, run["runId"])
    finally:
        set_faults(stack)
    assert done["state"] == "PARTIALLY_SUCCEEDED"
    assert [p["jobState"] for p in done["pieceList"]] == [
        "JOB_STATE_SUCCEEDED",
        "JOB_STATE_FAILED",
        "JOB_STATE_SUCCEEDED",
    ]
    results = read_results(done)
    assert [r["request"] for r in results] == [line["request"] for line in lines]
    assert [bool(r["status"]) for r in results] == [False] * 100 + [True] * 100 + [False] * 50
    assert done["counts"]["notProcessed"] == 100 and done["counts"]["succeeded"] == 150

    retried = call(stack, key, "POST", f"/v1/gateway/runs/{run['runId']}:retryFailed", {})
    assert retried.status_code == 200, retried.text
    child = retried.json()
    assert child["retryOf"] == run["runId"] and child["rows"] == 100 and child["pieces"] == 1
    child_done = wait_run(stack, key, child["runId"])
    assert child_done["state"] == "SUCCEEDED"
    assert [r["request"] for r in read_results(child_done)] == [
        line["request"] for line in lines[100:200]
    ]
    parent = call(stack, key, "GET", f"/v1/gateway/runs/{run['runId']}").json()
    assert parent["retries"] == [child["runId"]]
    again = call(stack, key, "POST", f"/v1/gateway/runs/{child['runId']}:retryFailed", {})
    assert again.status_code == 400 and "no failed" in again.json()["error"]["message"]
