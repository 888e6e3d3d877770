"""Issue #22 item 4, the live budget stop: a running job that would cross its key's or team's
budget is cancelled on the incremental file that shows it, with one `budget_stop` alert.

The finding: a key with a $0.52 budget ran a job that ended at $27.93; nothing looked at the
budget once the job was admitted. Here a 40-row job is admitted under a $1 budget, the admin
lowers it to $0.006 while the job runs, and the simulator writes its rows in four incremental
files of 10. The test measures the overshoot (final cost - limit) and holds it to at most one
incremental file's worth. Money from tests/cost/reference.py, over the bytes Vertex wrote.
"""

import threading
import time

import pytest

from shared.core import clients
from shared.core.config import settings
from shared.jobs import budget_stop, records
from tests.cost.reference import expected_cost, usd
from tests.jobs.lifecycle_support import make_world
from tests.jobs.test_finalize import deliver
from tests.support import MASTER_KEY, auth, cloudevent_client, create_key

# --- the pure rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limit", "spent", "committed", "stop"),
    [
        (6_000_000, 5_000_000, 0, False),
        (6_000_000, 6_000_000, 0, False),  # reaching the limit exactly is allowed
        (6_000_000, 6_000_001, 0, True),
        (6_000_000, 4_000_000, 2_000_000, False),
        (6_000_000, 4_000_000, 2_000_001, True),
        (0, 1, 0, True),
    ],
)
def test_a_job_is_stopped_when_spent_plus_committed_passes_the_limit(limit, spent, committed, stop):
    assert budget_stop.stop_needed(limit, spent, committed) is stop


def test_committed_is_what_other_open_jobs_may_still_cost():
    entries = {
        "r1": {"nanos": 1_000, "job_id": "me"},  # the checked job: its cost is in `spent`
        "r2": {"nanos": 700, "job_id": "other"},  # 300 booked so far: 400 may still come
        "r3": {"nanos": 500, "job_id": "over"},  # booked past its estimate: nothing more
        "r4": {"nanos": 250, "job_id": None},  # reserved, not bound yet: whole
    }
    booked = {"me": 10_000, "other": 300, "over": 900}
    assert budget_stop.committed_remaining(entries, booked, "me") == 400 + 0 + 250
    assert budget_stop.committed_remaining(entries, {}, "me") == 700 + 500 + 250
    assert budget_stop.committed_remaining({}, booked, "me") == 0
    # An entry without a figure counts nothing (not a nano-dollar).
    assert budget_stop.committed_remaining({"r": {"job_id": "other"}}, {}, "me") == 0


# --- on the simulator ------------------------------------------------------------------------


@pytest.fixture
def world(gcp, monkeypatch, tmp_path):
    # Two seconds between incremental files: the events of a file are priced well before the
    # next one lands, even on a busy machine (Vertex's files are minutes apart).
    made = make_world(gcp, monkeypatch, tmp_path, speed=2.0)
    yield made
    made.sim.stop()


class Eventarc:
    """Delivers a finalize event for each new object under `prefix`, as soon as it appears,
    in a thread (the test's own thread waits on the simulator)."""

    def __init__(self, bucket: str, prefix: str):
        self.bucket, self.prefix = bucket, prefix
        self.client = cloudevent_client("on_output_finalized")
        self.seen: dict[str, int] = {}
        self.statuses: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Eventarc":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            for blob in clients.storage().list_blobs(self.bucket, prefix=self.prefix):
                if blob.name not in self.seen:
                    self.seen[blob.name] = int(blob.generation)
                    status = deliver(self.client, self.bucket, blob.name, blob.generation)
                    self.statuses.append(status.status_code)
            time.sleep(0.02)

    def redeliver(self) -> None:
        for name, generation in sorted(self.seen.items()):
            self.statuses.append(deliver(self.client, self.bucket, name, generation).status_code)


def _key_id(world, key: str) -> str:
    return world.gateway.get("/v1/gateway/me", headers=auth(key)).get_json()["id"]


def test_a_job_crossing_its_budget_is_cancelled_within_one_incremental_file(world, capsys):
    bucket = world.gcp["bucket"]
    key = create_key(
        world.gateway,
        alias="carol",
        team="Data Science",
        inputPrefixes=[f"gs://{bucket}/in/"],
        outputPrefixes=[f"gs://{bucket}/out/"],
        budgetUsd="1",
        budgetPeriod="day",
    )
    # $0.0016: about 60% of the 40 rows on gemini-3.5-flash-lite (no thinking, ~$0.0028 in
    # all at us-central1's rates), so the stop lands before the last quarter.
    limit = 1_600_000
    staging = settings().staging_bucket  # sealed outputs: Vertex writes there
    with Eventarc(staging, "outputs/") as eventarc:
        job_id = world.create(key=key, rows=40)
        world.wait_sim(job_id, "JOB_STATE_RUNNING", timeout=30)
        lowered = world.gateway.patch(
            f"/v1/gateway/keys/{_key_id(world, key)}",
            json={"budgetUsd": usd(limit)},
            headers=auth(MASTER_KEY),
        )
        assert lowered.status_code == 200, lowered.get_data(as_text=True)
        world.wait_sim(job_id, "JOB_STATE_CANCELLED", timeout=60)
        time.sleep(0.5)  # the last files' events
    assert set(eventarc.statuses) == {200}

    files = {
        b.name: b.download_as_bytes()
        for b in clients.storage().list_blobs(staging, prefix="outputs/")
        if "incremental_predictions" in b.name
    }
    assert 1 <= len(files) < 4, sorted(files)  # stopped before the last quarter
    assert not [
        b
        for b in clients.storage().list_blobs(staging, prefix="outputs/")
        if b.name.endswith("/predictions.jsonl")
    ]
    per_file = {
        name: expected_cost(data, "gemini-3.5-flash-lite", location="us-central1")
        for name, data in files.items()
    }
    final_nanos = sum(e.cost_nanos for e in per_file.values())
    record = records.get(job_id)
    assert record["cost"]["cost_nanos"] == final_nanos

    stop = record["budget_stop"]
    assert stop["scope"] == "key" and stop["limit_nanos"] == limit
    assert stop["committed_nanos"] == 0
    # The stop saw every file written so far: the job's cost is the period's spend.
    assert stop["spent_nanos"] == stop["job_cost_nanos"] == final_nanos > limit
    overshoot = final_nanos - limit
    largest = max(e.cost_nanos for e in per_file.values())
    assert 0 < overshoot <= largest

    alerts = [(a, b) for a, b in world.alerts() if a["kind"] == "budget_stop"]
    [(attributes, body)] = alerts
    assert attributes["job_id"] == job_id and attributes["severity"] == "ERROR"
    assert body["budget_stop"]["limit_usd"] == "0.001600000"
    assert body["budget_stop"]["spent_usd"] == usd(final_nanos)
    assert body["budget_stop"]["job_cost_usd"] == usd(final_nanos)
    assert "cancelled" in body["text"]

    eventarc.redeliver()  # at least once: nothing is stopped or alerted twice
    assert set(eventarc.statuses) == {200}
    assert [a for a, _ in world.alerts(settle=0.5) if a["kind"] == "budget_stop"] == []
    assert records.get(job_id)["budget_stop"]["time"] == stop["time"]
    with capsys.disabled():
        print(
            f"\nlive budget stop: limit ${usd(limit)}, {len(files)} incremental files of "
            f"{[e.succeeded for e in per_file.values()]} rows, final ${usd(final_nanos)}, "
            f"overshoot ${usd(overshoot)} ({overshoot * 100 // limit}% of the limit; one file "
            f"at most ${usd(largest)})"
        )


def test_a_team_budget_stops_a_job_too(world):
    put = world.gateway.put(
        "/v1/gateway/teams/Data%20Science",
        json={"budgetUsd": "1", "budgetPeriod": "month"},
        headers=auth(MASTER_KEY),
    )
    assert put.status_code == 200, put.get_data(as_text=True)
    with Eventarc(settings().staging_bucket, "outputs/"):
        job_id = world.create(rows=40)
        world.wait_sim(job_id, "JOB_STATE_RUNNING", timeout=30)
        world.gateway.put(
            "/v1/gateway/teams/Data%20Science",
            json={"budgetUsd": "0.0008", "budgetPeriod": "month"},
            headers=auth(MASTER_KEY),
        )
        world.wait_sim(job_id, "JOB_STATE_CANCELLED", timeout=60)
        time.sleep(0.5)
    stop = records.get(job_id)["budget_stop"]
    assert (stop["scope"], stop["subject"], stop["limit_nanos"]) == (
        "team",
        "Data Science",
        800_000,
    )
    assert stop["spent_nanos"] > 800_000


def test_a_job_within_its_budget_runs_to_the_end(world):
    bucket = world.gcp["bucket"]
    key = create_key(
        world.gateway,
        alias="dan",
        inputPrefixes=[f"gs://{bucket}/in/"],
        outputPrefixes=[f"gs://{bucket}/out/"],
        budgetUsd="1",
        budgetPeriod="day",
    )
    with Eventarc(settings().staging_bucket, "outputs/"):
        job_id = world.create(key=key, rows=8)
        world.wait_sim(job_id, "JOB_STATE_SUCCEEDED", timeout=60)
        time.sleep(0.5)
    record = records.get(job_id)
    assert "budget_stop" not in record and record["cost"]["cost_nanos"] > 0
