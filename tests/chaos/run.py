"""`make chaos`: SIGKILL the functions at random moments on a local stack and count what held.

The kill tests in `make test` (tests/e2e/test_crash_*.py) put one kill at the worst moment,
every time. This run puts many at random moments, as issue #22 item 8 did, and prints the
figures docs/benchmarks.md#crash-consistency quotes:

1. creates: `--rounds` rounds of `--creates` concurrent creates, `passthrough` killed at a
   random moment of each (the simulator answers each create `--create-reply` seconds after
   its job exists, 0.5 s, an assumed figure for Vertex's own latency); a client that loses
   its answer retries with the same `Idempotency-Key` (as a client that saw a connection
   reset does) until it gets its job.
   Counted: the Vertex jobs, the jobs recorded by their create, those the sync adopted, the
   orphans (a Vertex job with no record), the clients that got a second job, and the jobs
   whose final cost differs from their own predictions file priced by tests/cost/reference.
2. alerts: `--jobs` jobs created a few at a time, `on_job_event` killed every
   `--kill-every` seconds (on average; the supervisor's crash-loop back-off, up to 30 s,
   starts below its 10 s `stable_after`, so kills closer than that measure the back-off)
   while they end; first a third as many without kills, the baseline of the same run.
   Counted: terminal alerts per job (copies with one `alert_id`, which subscribers drop,
   and jobs with none), and how late each alert went out after the job ended on Vertex.

    python -m tests.chaos.run [--rounds 10] [--creates 20] [--jobs 60] [--kill-every 12.0]

Not part of `make test` (minutes, and its figures vary run to run); nothing in CI runs it.
"""

import argparse
import json
import os
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter

import requests

MODEL = "gemini-3.5-flash-lite"
SPEED = 0.1
SYNC_INTERVAL = 1.0
ENV = {"VBG_ADOPT_AFTER_SECONDS": "2"}


def point_at(info: dict) -> None:
    """This process's clients on the stack (as tests/e2e/conftest.py does for a test)."""
    from tests.support import reset_process

    os.environ.update(
        {
            "FIRESTORE_EMULATOR_HOST": info["firestore_host"],
            "PUBSUB_EMULATOR_HOST": info["pubsub_host"],
            "STORAGE_EMULATOR_HOST": info["storage_url"],
            "VBG_PROJECT": info["project"],
            "GOOGLE_CLOUD_PROJECT": info["project"],
            "VBG_CONFIG": info["config"],
            "VBG_MASTER_KEY": info["master_key"],
            "VBG_VERTEX_ENDPOINT": info["vertex_url"],
        }
    )
    reset_process()


def create_body(info: dict, folder: str, name: str, rows: int = 2) -> dict:
    from shared.core import clients

    lines = [
        {"request": {"contents": [{"role": "user", "parts": [{"text": f"{name} {i}"}]}]}}
        for i in range(rows)
    ]
    clients.storage().bucket(info["bucket"]).blob(f"{folder}/in.jsonl").upload_from_string(
        "".join(json.dumps(line) + "\n" for line in lines)
    )
    return {
        "displayName": name,
        "model": MODEL,
        "inputConfig": {
            "instancesFormat": "jsonl",
            "gcsSource": {"uris": [f"gs://{info['bucket']}/{folder}/in.jsonl"]},
        },
        "outputConfig": {
            "predictionsFormat": "jsonl",
            "gcsDestination": {"outputUriPrefix": f"gs://{info['bucket']}/{folder}/out/"},
        },
    }


def create_until_answered(info: dict, key: str, body: dict, *, deadline: float) -> dict:
    """POST the create, again with the same idempotency key after a reset or a 409 (the
    first create still pending) or a 5xx, until a job comes back."""
    url = info["gateway_url"] + "/v1/projects/p/locations/global/batchPredictionJobs"
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": body["displayName"]}
    attempts = 0
    while time.monotonic() < deadline:
        attempts += 1
        try:
            answer = requests.post(url, json=body, headers=headers, timeout=60)
        except requests.RequestException:
            time.sleep(0.5)
            continue
        if answer.status_code == 200:
            return {"name": answer.json()["name"], "attempts": attempts}
        if answer.status_code in (409, 429) or answer.status_code >= 500:
            time.sleep(0.5)
            continue
        raise AssertionError(f"create refused: {answer.status_code} {answer.text[:300]}")
    return {"name": None, "attempts": attempts}


def sim_jobs(info: dict, filter_text: str) -> list[dict]:
    jobs, token = [], ""
    while True:
        response = requests.get(
            f"{info['vertex_url']}/v1/projects/{info['project']}/locations/global"
            "/batchPredictionJobs",
            params={"filter": filter_text, "pageSize": 100, "pageToken": token},
            timeout=30,
        )
        response.raise_for_status()
        page = response.json()
        jobs += page.get("batchPredictionJobs", [])
        token = page.get("nextPageToken", "")
        if not token:
            return jobs


def settle(job_ids: list[str], *, timeout: float) -> dict[str, dict]:
    """Each job's record once its cost is final (or as it stands at the timeout)."""
    from shared.jobs import records

    deadline = time.monotonic() + timeout
    found: dict[str, dict] = {}
    while time.monotonic() < deadline:
        for job_id in job_ids:
            if job_id not in found or not found[job_id].get("cost_final"):
                record = records.get(job_id)
                if record:
                    found[job_id] = record
        if all(found.get(j, {}).get("cost_final") for j in job_ids):
            break
        time.sleep(0.5)
    return found


def exact(record: dict) -> bool:
    from tests.cost.reference import expected_cost
    from tests.e2e.chaos_support import predictions

    return expected_cost(predictions(record), MODEL).cost_nanos == record["cost"]["cost_nanos"]


def creates(stack, args) -> dict:
    from tests.e2e.chaos_support import kill, wait_back
    from tests.e2e.helpers import make_key

    info = stack.info
    run = uuid.uuid4().hex[:6]
    key = make_key(info, f"chaos-c-{run}", folder=f"chaos/{run}")
    answers: dict[str, dict] = {}
    kills = 0
    faults = f"{info['vertex_url']}/_sim/faults"
    requests.post(faults, json={"create_reply_seconds": args.create_reply}, timeout=10)
    for round_ in range(args.rounds):
        bodies = [
            create_body(info, f"chaos/{run}/r{round_}j{i}", f"chaos-{run}-r{round_}-j{i}")
            for i in range(args.creates)
        ]
        threads = []
        deadline = time.monotonic() + 120
        for body in bodies:

            def client(body=body, deadline=deadline):
                answers[body["displayName"]] = create_until_answered(
                    info, key, body, deadline=deadline
                )

            threads.append(threading.Thread(target=client, daemon=True))
        for thread in threads:
            thread.start()
        time.sleep(random.uniform(0.05, args.kill_window))
        pid = kill(stack, "passthrough")
        kills += 1
        wait_back(stack, "passthrough", pid)
        for thread in threads:
            thread.join(timeout=150)
    requests.post(faults, json={"create_reply_seconds": 0}, timeout=10)
    vertex = sim_jobs(info, f'display_name:"chaos-{run}-*"')
    job_ids = [j["name"].rsplit("/", 1)[-1] for j in vertex]
    settled = settle(job_ids, timeout=args.settle)
    per_create = Counter(j["displayName"] for j in vertex)
    return {
        "kills": kills,
        "creates": len(answers),
        "answered": sum(1 for a in answers.values() if a["name"]),
        "retried_after_a_reset_or_409": sum(1 for a in answers.values() if a["attempts"] > 1),
        "vertex_jobs": len(vertex),
        "creates_with_a_second_job": sum(1 for n in per_create.values() if n > 1),
        "recorded_by_their_create": sum(1 for r in settled.values() if not r.get("adopted")),
        "adopted": sum(1 for r in settled.values() if r.get("adopted")),
        "orphans": len(set(job_ids) - set(settled)),
        "cost_final": sum(1 for r in settled.values() if r.get("cost_final")),
        "cost_exact": sum(1 for r in settled.values() if r.get("cost_final") and exact(r)),
    }


def alerts(stack, args, *, jobs: int, kills: bool) -> dict:
    from google.cloud import pubsub_v1

    from shared.core import clients, times
    from tests.e2e.chaos_support import drain, kill, wait_back
    from tests.e2e.helpers import make_key

    info = stack.info
    run = uuid.uuid4().hex[:6]
    subscriber = pubsub_v1.SubscriberClient()
    subscription = subscriber.subscription_path(info["project"], f"chaos-alerts-{run}")
    subscriber.create_subscription(name=subscription, topic=clients.topic_path("batch-job-alerts"))
    key = make_key(info, f"chaos-a-{run}", folder=f"chaos/{run}")
    done = threading.Event()
    killed = 0

    def killer():
        nonlocal killed
        while kills and not done.is_set():
            time.sleep(random.uniform(0.5, 1.5) * args.kill_every)
            if done.is_set():
                return
            pid = kill(stack, "on_job_event")
            killed += 1
            wait_back(stack, "on_job_event", pid)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    names = []
    deadline = time.monotonic() + 600
    for i in range(jobs):
        body = create_body(info, f"chaos/{run}/j{i}", f"chaos-{run}-j{i}")
        names.append(create_until_answered(info, key, body, deadline=deadline)["name"])
        time.sleep(random.uniform(0.1, 0.5))
    job_ids = [n.rsplit("/", 1)[-1] for n in names if n]
    settled = settle(job_ids, timeout=args.settle)
    done.set()
    thread.join(timeout=90)
    time.sleep(5)  # a copy published late would arrive now
    copies = [
        c
        for c in drain(subscriber, subscription)
        if c["attributes"].get("kind") == "terminal" and c["attributes"]["job_id"] in settled
    ]
    per_job = Counter(c["attributes"]["job_id"] for c in copies)
    ids_per_job = {
        j: {c["attributes"]["alert_id"] for c in copies if c["attributes"]["job_id"] == j}
        for j in per_job
    }
    first = {}
    for copy in sorted(copies, key=lambda c: c["published"]):
        first.setdefault(copy["attributes"]["job_id"], copy["published"])
    ended = {
        j: times.parse(settled[j]["end_time"]).timestamp()
        for j in first
        if settled[j].get("end_time")
    }
    learnt = {j: learnt_at(settled[j]) for j in ended}
    late = sorted(first[j] - ended[j] for j in ended)
    # Where the time went: the sync learning the end (ticks lost with the killed process),
    # then the alert after the gateway recorded the end (the claim, the lease, the resume).
    to_learn = sorted(learnt[j] - ended[j] for j in ended if learnt[j])
    after = sorted(first[j] - learnt[j] for j in ended if learnt[j])
    return {
        "kills": killed,
        "jobs": len(job_ids),
        "terminal_alerts": len(copies),
        "jobs_alerted_once": sum(1 for n in per_job.values() if n == 1),
        "jobs_with_copies": sum(1 for n in per_job.values() if n > 1),
        "jobs_with_two_alert_ids": sum(1 for ids in ids_per_job.values() if len(ids) > 1),
        "jobs_without_alert": len(set(job_ids) - set(per_job)),
        "cost_final": sum(1 for r in settled.values() if r.get("cost_final")),
        "cost_exact": sum(1 for r in settled.values() if r.get("cost_final") and exact(r)),
        "late_median_s": round(statistics.median(late), 1) if late else None,
        "late_max_s": round(late[-1], 1) if late else None,
        "late_over_20s": sum(1 for s in late if s > 20),
        "end_learnt_median_s": round(statistics.median(to_learn), 1) if to_learn else None,
        "end_learnt_max_s": round(to_learn[-1], 1) if to_learn else None,
        "alert_after_learnt_median_s": round(statistics.median(after), 1) if after else None,
        "alert_after_learnt_max_s": round(after[-1], 1) if after else None,
    }


def learnt_at(record: dict) -> float | None:
    """When the gateway recorded the job's terminal state (its state history)."""
    from shared.core import times
    from shared.core.vertex import TERMINAL_STATES

    for entry in record.get("state_history") or []:
        if entry.get("to") in TERMINAL_STATES:
            return times.parse(entry["time"]).timestamp()
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--creates", type=int, default=20)
    parser.add_argument("--kill-window", type=float, default=4.0)
    # Vertex's create answers after the job exists; how long is assumed (not sourced).
    parser.add_argument("--create-reply", type=float, default=0.5)
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--kill-every", type=float, default=12.0)
    parser.add_argument("--settle", type=float, default=180)
    args = parser.parse_args()

    from local.stack import Stack

    with tempfile.TemporaryDirectory(prefix="vbg-chaos-") as state:
        stack = Stack(state, speed=SPEED, sync_interval=SYNC_INTERVAL, extra_env=ENV)
        with stack:
            point_at(stack.info)
            started = time.monotonic()
            print("creates:", json.dumps(creates(stack, args)), flush=True)
            baseline = alerts(stack, args, jobs=max(args.jobs // 3, 1), kills=False)
            print("alerts, no kills (baseline):", json.dumps(baseline), flush=True)
            killed = alerts(stack, args, jobs=args.jobs, kills=True)
            print("alerts, on_job_event killed:", json.dumps(killed), flush=True)
            print(f"took {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
