"""Budgets and estimates through the real gateway: emulators, GCS emulator, Vertex simulator.

Every budget here is set relative to the deterministic estimate of one standard input, so
the tests say "room for 1.5 jobs" rather than dollar figures.
"""

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest

from local.vertex_sim import SimulatorThread
from shared.core import clients
from shared.cost import estimate, pricing
from shared.jobs import budgets, lifecycle, records
from tests.cost.test_estimate import simulator_cost
from tests.support import (
    MASTER_KEY,
    auth,
    create_key,
    gateway_env,
    job_body,
    passthrough_client,
    upload_jsonl,
)

JOBS = "/v1/projects/my-project/locations/us-central1/batchPredictionJobs"
# Where the test model list puts MODEL: 3.5 Flash-Lite carries the 10% regional uplift there.
LOCATION = "us-central1"
MODEL = "gemini-3.5-flash-lite"


def standard_rows(n: int) -> list[dict]:
    """Rows without thinking: the estimate (64 answer tokens) is a little above the
    simulator's 10-99, so a costed job's actual is below its committed estimate."""
    return [
        {
            "request": {
                "contents": [
                    {
                        "role": "user",
                        "parts": [{"text": f"Question {i}: " + "summarise this. " * 30}],
                    }
                ],
                "generationConfig": {"thinkingConfig": {"thinkingBudget": 0}},
            }
        }
        for i in range(n)
    ]


@pytest.fixture
def world(gcp, monkeypatch, tmp_path):
    with SimulatorThread(speed=0.05) as sim:
        gateway_env(monkeypatch, tmp_path, vertex_url=sim.url)
        for topic in ("batch-job-events", "batch-job-alerts"):
            clients.publisher().create_topic(name=clients.topic_path(topic))
        bucket = gcp["bucket"]
        upload_jsonl(bucket, "in/one.jsonl", standard_rows(20))
        upload_jsonl(bucket, "in/two.jsonl", standard_rows(20) * 2)
        upload_jsonl(bucket, "in/nine.jsonl", standard_rows(20) * 9)
        yield {"bucket": bucket, "client": passthrough_client(), "sim": sim}


def key(world, alias, **fields) -> str:
    bucket = world["bucket"]
    return create_key(
        world["client"],
        alias=alias,
        inputPrefixes=[f"gs://{bucket}/in/"],
        outputPrefixes=[f"gs://{bucket}/out/"],
        **fields,
    )


def body(world, name: str = "one") -> dict:
    return job_body(
        world["bucket"], model=MODEL, input_uri=f"gs://{world['bucket']}/in/{name}.jsonl"
    )


def create(world, api_key: str, name: str = "one", client=None):
    client = client or world["client"]
    return client.post(JOBS, json=body(world, name), headers=auth(api_key))


def estimate_of(world, api_key: str, name: str = "one") -> dict:
    response = world["client"].post(
        "/v1/gateway/estimate", json=body(world, name), headers=auth(api_key)
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def expected_nanos(view: dict) -> int:
    return int(Decimal(view["costUsd"]["expected"]) * pricing.NANOS_PER_USD)


def usd(nanos: int) -> str:
    return pricing.nanos_to_usd(nanos)


def refused(response) -> str:
    assert response.status_code == 429, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    return error["message"]


def test_estimate_route_estimates_without_creating_anything(world):
    bucket = world["bucket"]
    alice = key(world, "alice", budgetUsd="5", budgetPeriod="month")
    view = estimate_of(world, alice)
    assert view["method"] == "read"
    assert (view["inputFiles"], view["rows"]) == (1, 20)
    assert view["inputBytes"] > 0
    costs = [Decimal(view["costUsd"][level]) for level in ("low", "expected", "high")]
    assert 0 < costs[0] < costs[1] < costs[2]
    assert view["budget"]["scope"] == "key"
    assert view["budget"]["limitUsd"] == "5.000000000"
    assert view["budget"]["fits"] is True
    assert not list(clients.firestore().collection(records.COLLECTION).stream())

    wildcard = job_body(bucket, model=MODEL, input_uri=f"gs://{bucket}/in/*.jsonl")
    response = world["client"].post("/v1/gateway/estimate", json=wildcard, headers=auth(alice))
    assert response.get_json()["inputFiles"] == 3
    assert response.get_json()["rows"] == 20 * (1 + 2 + 9)

    outside = job_body(bucket, model=MODEL, input_uri="gs://elsewhere/in/x.jsonl")
    response = world["client"].post("/v1/gateway/estimate", json=outside, headers=auth(alice))
    assert response.status_code == 403
    missing = job_body(bucket, model=MODEL, input_uri=f"gs://{bucket}/in/nope.jsonl")
    response = world["client"].post("/v1/gateway/estimate", json=missing, headers=auth(alice))
    assert response.status_code == 400
    assert "does not exist" in response.get_json()["error"]["message"]


def test_a_key_at_90_percent_is_refused_a_job_that_would_cross_and_allowed_one_that_fits(world):
    one = expected_nanos(estimate_of(world, MASTER_KEY))
    alice = key(world, "alice", budgetUsd=usd(10 * one), budgetPeriod="month")

    first = create(world, alice, "nine")
    assert first.status_code == 200, first.get_data(as_text=True)
    record = records.get(records.id_of(first.get_json()["name"]))
    assert record["estimate"]["cost_nanos"]["expected"] == 9 * one
    assert record["estimate"]["reservation"]["nanos"] == 9 * one

    message = refused(create(world, alice, "two"))
    assert f"${usd(10 * one)} per month" in message
    assert "Spent $0.000000000" in message
    assert f"committed ${usd(9 * one)}" in message
    assert f"expected cost ${usd(2 * one)}" in message

    fits = create(world, alice, "one")
    assert fits.status_code == 200, fits.get_data(as_text=True)
    assert refused(create(world, alice, "one"))

    status = world["client"].get("/v1/gateway/budget", headers=auth(alice)).get_json()
    assert status["budgets"][0]["committedUsd"] == usd(10 * one)
    assert status["budgets"][0]["openJobs"] == 2


def test_a_team_budget_is_shared_by_its_keys(world):
    one = expected_nanos(estimate_of(world, MASTER_KEY))
    client = world["client"]
    put = client.put(
        "/v1/gateway/teams/search",
        json={"budgetUsd": usd(one * 5 // 2), "budgetPeriod": "day"},
        headers=auth(MASTER_KEY),
    )
    assert put.status_code == 200, put.get_data(as_text=True)
    alice = key(world, "alice", team="search")
    bob = key(world, "bob", team="search")
    carol = key(world, "carol", team="other")

    assert create(world, alice).status_code == 200
    assert create(world, bob).status_code == 200
    message = refused(create(world, alice))
    assert "team 'search'" in message
    assert f"committed ${usd(2 * one)}" in message
    assert create(world, carol).status_code == 200

    team = client.get("/v1/gateway/teams/search", headers=auth(MASTER_KEY)).get_json()
    assert team["budgetPeriod"] == "day"
    assert team["status"]["committedUsd"] == usd(2 * one)
    assert team["status"]["openJobs"] == 2
    assert client.get("/v1/gateway/teams/search", headers=auth(alice)).status_code == 403


def test_a_new_period_starts_from_zero(world, monkeypatch):
    one = expected_nanos(estimate_of(world, MASTER_KEY))
    alice = key(world, "alice", budgetUsd=usd(one * 3 // 2), budgetPeriod="day")
    today = budgets.now()
    assert create(world, alice).status_code == 200
    message = refused(create(world, alice))
    assert f"the period runs {today.date().isoformat()} to {today.date().isoformat()}" in message

    monkeypatch.setattr(budgets, "now", lambda: today + timedelta(days=1))
    assert create(world, alice).status_code == 200
    refused(create(world, alice))
    docs = {s.id for s in clients.firestore().collection(budgets.COMMITMENTS).stream()}
    assert len(docs) == 2


def wait_terminal(world, job_id: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    name = records.get(job_id)["name"]
    while time.monotonic() < deadline:
        if world["sim"].sim.get(name).pb.state in (4, 5):  # SUCCEEDED, FAILED
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def test_the_committed_estimate_is_replaced_by_the_actual_cost_when_the_job_is_costed(world):
    one = expected_nanos(estimate_of(world, MASTER_KEY))
    actual = simulator_cost(MODEL, standard_rows(20), location=LOCATION)
    assert actual < one, "the standard rows must be estimated above their simulated cost"
    limit = actual + one + (one - actual) // 2
    alice = key(world, "alice", budgetUsd=usd(limit), budgetPeriod="month")

    first = create(world, alice)
    assert first.status_code == 200, first.get_data(as_text=True)
    job_id = records.id_of(first.get_json()["name"])
    refused(create(world, alice))

    wait_terminal(world, job_id)
    lifecycle.sync_job(job_id)
    record = records.get(job_id)
    assert record["cost_final"] is True
    assert record["cost"]["cost_nanos"] == actual
    view = estimate.cost_view(record)
    assert view["estimate"]["costUsd"]["expected"] == usd(one)
    assert view["estimateErrorPct"] == estimate.error_pct(one, actual)
    assert Decimal(view["estimateErrorPct"]) > 0

    status = world["client"].get("/v1/gateway/budget", headers=auth(alice)).get_json()
    assert status["budgets"][0]["committedUsd"] == usd(0)
    assert status["budgets"][0]["spentUsd"] == usd(actual)
    assert create(world, alice).status_code == 200

    budgets.job_costed(job_id)  # a second delivery changes nothing
    status = world["client"].get("/v1/gateway/budget", headers=auth(alice)).get_json()
    assert status["budgets"][0]["committedUsd"] == usd(one)


def test_concurrent_creates_cannot_both_slip_under_the_limit(world):
    one = expected_nanos(estimate_of(world, MASTER_KEY))
    alice = key(world, "alice", budgetUsd=usd(one * 5 // 2), budgetPeriod="month")
    results: list[int] = []
    start = threading.Barrier(6, timeout=60)
    # Made here, not in the threads: functions-framework loads the source module by name,
    # and six loads at once race each other.
    test_clients = [passthrough_client() for _ in range(6)]

    def worker(client):
        start.wait()
        results.append(create(world, alice, client=client).status_code)

    threads = [threading.Thread(target=worker, args=(c,)) for c in test_clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(results) == [200, 200, 429, 429, 429, 429]
    doc = next(iter(clients.firestore().collection(budgets.COMMITMENTS).stream())).to_dict()
    assert len(doc["entries"]) == 2
    assert sum(entry["nanos"] for entry in doc["entries"].values()) == 2 * one
    assert all(entry["job_id"] for entry in doc["entries"].values())


def test_a_refused_vertex_create_releases_its_reservation(world):
    one = expected_nanos(estimate_of(world, MASTER_KEY))
    alice = key(world, "alice", budgetUsd=usd(one * 3 // 2), budgetPeriod="month")
    world["sim"].sim.create_429_locations.add("us-central1")
    world["sim"].sim.create_429_locations.add("europe-west4")
    assert create(world, alice).status_code == 429
    world["sim"].sim.create_429_locations.clear()
    assert create(world, alice).status_code == 200


def test_a_key_without_budget_gets_its_estimate_at_create_without_a_reservation(world):
    """The one pass over the sealed input (issue #22 item 4) estimates every job at create;
    a key without a budget reserves nothing. A record without an estimate (a job created
    before) is still estimated by on_job_event on job.created, once."""
    bob = key(world, "bob")
    response = create(world, bob)
    assert response.status_code == 200
    job_id = response.get_json()["name"].rsplit("/", 1)[-1]
    made = records.get(job_id)["estimate"]
    assert made["cost_nanos"]["expected"] == expected_nanos(estimate_of(world, bob))
    assert made["rows"] > 0 and "reservation" not in made
    assert list(clients.firestore().collection(budgets.COMMITMENTS).stream()) == []

    records.mark(job_id, estimate=None)
    attributes = {"type": "job.created", "job_id": job_id}
    lifecycle.handle_message(message_id="m1", data=None, attributes=attributes)
    backfilled = records.get(job_id)["estimate"]
    assert backfilled["cost_nanos"] == made["cost_nanos"]
    lifecycle.handle_message(message_id="m2", data=None, attributes=attributes)
    assert records.get(job_id)["estimate"] == backfilled
