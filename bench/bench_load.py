"""The gateway under load, as it runs in production, beside the same calls to the simulator.

Starts the local stack (`local/stack.py`: Firestore, Pub/Sub and GCS emulators, the Vertex
simulator, the three functions under functions-framework, which serves them with gunicorn)
with the passthrough function's sizing from Terraform (`infra/variables.tf`: one worker,
as many threads as its `max_instance_request_concurrency`, so one instance takes the
requests Cloud Run would send it). Then:

1. Load: `--clients` concurrent clients, each looping create -> get -> list (pageSize 10) for
   `--seconds`, straight to the simulator (the baseline) and then through the gateway with
   a key. Prints throughput, p50/p99 per call, the latency the gateway adds, and errors
   (anything but HTTP 200; must be 0).
2. List at scale: one key with `--list-jobs` jobs (created in the simulator with the key's
   owner label and recorded in Firestore as the gateway records them), listed page by page
   to the end through the gateway, and straight from the simulator with the same filter:
   p50/p99 per page, pages read, jobs seen.

    .venv/bin/python bench/bench_load.py [--clients 32] [--seconds 20] [--list-jobs 10000]
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local.stack import DEFAULT_BUCKET, DEFAULT_PROJECT, Stack  # noqa: E402
from shared.core.labels import OWNER_LABEL  # noqa: E402

JOBS = f"/v1/projects/{DEFAULT_PROJECT}/locations/us-central1/batchPredictionJobs"
INPUT = f"gs://{DEFAULT_BUCKET}/load/input.jsonl"
# Jobs never leave PENDING: the load is on the gateway, not on the simulator's job threads.
SIM_SPEED = 1_000_000


def passthrough_sizing() -> dict:
    """The passthrough function's sizing as Terraform declares it."""
    import hcl2

    with open(ROOT / "infra" / "variables.tf") as handle:
        variables = hcl2.load(handle)["variable"]
    functions = next(v['"functions"'] for v in variables if '"functions"' in v)
    return {k: str(v).strip('"') for k, v in functions["default"]["passthrough"].items()}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def job_body(labels: dict | None = None) -> dict:
    body = {
        "displayName": "load",
        "model": "publishers/google/models/gemini-2.5-flash",
        "inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": [INPUT]}},
        "outputConfig": {
            "predictionsFormat": "jsonl",
            "gcsDestination": {"outputUriPrefix": f"gs://{DEFAULT_BUCKET}/load/out/"},
        },
    }
    if labels:
        body["labels"] = labels
    return body


class Target:
    """Where the calls go: the simulator itself, or the gateway with a key."""

    def __init__(self, base: str, key: str | None, key_id: str):
        self.base, self.key, self.key_id = base, key, key_id

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}"} if self.key else {}

    def get_path(self, job: dict) -> str:
        if self.key:
            return f"{JOBS}/{job['name'].rsplit('/', 1)[-1]}"
        return f"/v1/{job['name']}"

    def list_params(self, page_size: int, token: str = "") -> dict:
        params = {"pageSize": str(page_size)}
        if not self.key:  # what the gateway asks the simulator for this key
            params["filter"] = f'labels.{OWNER_LABEL}="{self.key_id}"'
        if token:
            params["pageToken"] = token
        return params


def load(target: Target, clients: int, seconds: float) -> dict:
    samples: dict[str, list[float]] = {"create": [], "get": [], "list": []}
    errors: list[str] = []
    lock = threading.Lock()
    deadline = float("inf")

    def call(session, op, method, path, **kwargs):
        started = time.perf_counter()
        try:
            response = session.request(
                method, target.base + path, headers=target.headers(), timeout=60, **kwargs
            )
            ok = response.status_code == 200
            detail = f"{op} {response.status_code} {response.text[:200]}"
        except requests.RequestException as exc:
            response, ok, detail = None, False, f"{op} {exc!r}"
        elapsed = (time.perf_counter() - started) * 1000
        with lock:
            (samples[op] if ok else errors).append(elapsed if ok else detail)
        return response if ok else None

    ready = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        # Connect first, a few ms apart (a burst of connects overflows the simulator's listen
        # backlog of 5), then all start together; keep-alive holds the connection.
        session = requests.Session()
        time.sleep(index * 0.01)
        try:
            session.get(target.base + JOBS, params=target.list_params(1), headers=target.headers())
        finally:
            ready.wait()
        while time.perf_counter() < deadline:
            created = call(session, "create", "POST", JOBS, json=job_body())
            if created is not None:
                call(session, "get", "GET", target.get_path(created.json()))
            call(session, "list", "GET", JOBS, params=target.list_params(10))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    deadline = started + seconds
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    calls = sum(len(v) for v in samples.values())
    return {"samples": samples, "errors": errors, "rps": calls / elapsed, "calls": calls}


def seed_jobs(sim_url: str, key: dict, count: int) -> None:
    """`count` jobs of one key: created in the simulator with the owner label the gateway
    stamps, and recorded in Firestore as `records.new_record` records them."""
    from shared.core import clients
    from shared.core.config import Deployment
    from shared.core.keys import Caller
    from shared.jobs import records

    deployment = Deployment(
        model_name="gemini-2.5-flash",
        model="gemini-2.5-flash",
        project=DEFAULT_PROJECT,
        location="us-central1",
    )
    caller = Caller(key_id=key["id"], alias=key["alias"], team="")
    body = job_body({OWNER_LABEL: key["id"]})
    local = threading.local()

    def create(_):
        if not hasattr(local, "session"):
            local.session = requests.Session()
        response = local.session.post(sim_url + JOBS, json=body, timeout=60)
        response.raise_for_status()
        return records.new_record(
            upstream_job=response.json(),
            request_body=body,
            caller=caller,
            deployment=deployment,
            public_model="gemini-2.5-flash",
            api_version="v1",
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(create, range(count)))
    db = clients.firestore()
    for start in range(0, len(made), 500):
        batch = db.batch()
        for record in made[start : start + 500]:
            batch.set(records.job_ref(record["job_id"]), record)
        batch.commit()


def list_all(target: Target, page_size: int) -> dict:
    session = requests.Session()
    token, pages, jobs, latencies = "", 0, 0, []
    while True:
        started = time.perf_counter()
        response = session.get(
            target.base + JOBS,
            params=target.list_params(page_size, token),
            headers=target.headers(),
            timeout=60,
        )
        latencies.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"list page {pages + 1}: {response.status_code} {response.text[:300]}")
        page = response.json()
        pages += 1
        jobs += len(page.get("batchPredictionJobs", []))
        token = page.get("nextPageToken", "")
        if not token:
            return {"pages": pages, "jobs": jobs, "latencies": latencies}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--list-jobs", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args()
    sizing = passthrough_sizing()
    threads = int(sizing.get("concurrency") or 1)
    state = Path(tempfile.mkdtemp(prefix="vbg-bench-load-"))
    stack = Stack(
        state,
        speed=SIM_SPEED,
        sync_interval=3600,
        finalize_bridge=False,
        extra_env={"WORKERS": "1", "THREADS": str(threads)},
    )
    info = stack.start()
    try:
        os.environ.update(
            {
                "FIRESTORE_EMULATOR_HOST": info["firestore_host"],
                "STORAGE_EMULATOR_HOST": info["storage_url"],
                "VBG_PROJECT": info["project"],
                "GOOGLE_CLOUD_PROJECT": info["project"],
            }
        )
        from shared.core import clients

        clients.storage().bucket(DEFAULT_BUCKET).blob("load/input.jsonl").upload_from_string(
            '{"request": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}}\n'
        )
        gateway, sim = info["gateway_url"], info["vertex_url"]
        admin = {"Authorization": f"Bearer {info['master_key']}"}

        def new_key(alias: str) -> dict:
            body = {
                "alias": alias,
                "inputPrefixes": [f"gs://{DEFAULT_BUCKET}/load/"],
                "outputPrefixes": [f"gs://{DEFAULT_BUCKET}/load/"],
            }
            response = requests.post(f"{gateway}/v1/gateway/keys", json=body, headers=admin)
            response.raise_for_status()
            return response.json()

        loader = new_key("load")
        direct = Target(sim, None, loader["id"])
        through = Target(gateway, loader["key"], loader["id"])
        load(through, 4, 2)  # warm: connection pools, first reads, imports
        print(
            f"machine: {os.cpu_count()} cores (shared), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
            f"passthrough: gunicorn, 1 worker x {threads} threads "
            f"(Terraform: concurrency {sizing.get('concurrency')}, memory {sizing.get('memory')})"
        )
        print(f"load: {args.clients} clients, create -> get -> list, {args.seconds:.0f} s each")
        results = {
            "direct": load(direct, args.clients, args.seconds),
            "gateway": load(through, args.clients, args.seconds),
        }
        print(f"{'path':<10}{'calls':>7}{'calls/s':>9}{'errors':>8}", end="")
        for op in ("create", "get", "list"):
            print(f"{op + ' p50':>12}{op + ' p99':>11}", end="")
        print()
        for label, result in results.items():
            print(
                f"{label:<10}{result['calls']:>7}{result['rps']:>9.1f}{len(result['errors']):>8}",
                end="",
            )
            for op in ("create", "get", "list"):
                values = result["samples"][op] or [float("nan")]
                p50, p99 = statistics.median(values), percentile(values, 0.99)
                print(f"{p50:>12.1f}{p99:>11.1f}", end="")
            print()
        print(f"{'added':<10}{'':>24}", end="")
        for op in ("create", "get", "list"):
            gw, dr = results["gateway"]["samples"][op], results["direct"]["samples"][op]
            if gw and dr:
                added_50 = statistics.median(gw) - statistics.median(dr)
                added_99 = percentile(gw, 0.99) - percentile(dr, 0.99)
                print(f"{added_50:>12.1f}{added_99:>11.1f}", end="")
        print("   (ms)")
        for label, result in results.items():
            for error in result["errors"][:5]:
                print(f"  {label} error: {error}")

        lister = new_key("lister")
        started = time.perf_counter()
        seed_jobs(sim, lister, args.list_jobs)
        seeded = time.perf_counter() - started
        print(
            f"list: a key with {args.list_jobs} jobs (seeded in {seeded:.0f} s), "
            f"pageSize {args.page_size}, every page to the end"
        )
        print(f"{'path':<10}{'pages':>7}{'jobs':>7}{'p50 ms':>9}{'p99 ms':>9}{'total s':>9}")
        for label, target in (
            ("direct", Target(sim, None, lister["id"])),
            ("gateway", Target(gateway, lister["key"], lister["id"])),
        ):
            listed = list_all(target, args.page_size)
            values = listed["latencies"]
            print(
                f"{label:<10}{listed['pages']:>7}{listed['jobs']:>7}"
                f"{statistics.median(values):>9.1f}{percentile(values, 0.99):>9.1f}"
                f"{sum(values) / 1000:>9.1f}"
            )
        if results["gateway"]["errors"]:
            failed = len(results["gateway"]["errors"])
            raise SystemExit(f"{failed} calls through the gateway failed")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
