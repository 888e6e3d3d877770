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
2. CPU per call, route by route: `--cpu-calls` calls of one route (4 clients) through the
   gateway and then straight to the simulator, and the CPU seconds the serving process tree
   spent meanwhile (/proc: user + system of the gunicorn master and its workers, or of the
   simulator): waits on upstream and on the emulators are not CPU, so they are excluded.
   Prints CPU ms per call per route, the gateway's beside the direct call's.
3. List at scale: one key with `--list-jobs` jobs (created in the simulator with the key's
   owner label and recorded in Firestore as the gateway records them), listed page by page
   to the end through the gateway, and straight from the simulator with the same filter:
   p50/p99 per page, pages read, jobs seen.

    .venv/bin/python bench/bench_load.py [--clients 32] [--seconds 20] [--list-jobs 10000]
        [--cpu-calls 300] [--profile DIR]   # DIR: py-spy's raw stacks per route
        [--parts load,cpu,list]             # which of the three to run (default all)
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
        "model": "publishers/google/models/gemini-3.5-flash-lite",
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
        model_name="gemini-3.5-flash-lite",
        model="gemini-3.5-flash-lite",
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
            public_model="gemini-3.5-flash-lite",
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and every descendant (Linux /proc), in seconds."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        process = int(stat.parent.name)
        parents[process] = int(fields[1])
        times[process] = (int(fields[11]) + int(fields[12])) / tick
    tree, grew = {pid}, True
    while grew:
        found = {p for p, parent in parents.items() if parent in tree} - tree
        grew = bool(found)
        tree |= found
    return sum(times.get(p, 0.0) for p in tree)


def route_calls(target: Target, op: str, count: int, clients: int = 4) -> int:
    """`count` calls of one route, from `clients` threads; the calls that answered 200."""
    session_of = threading.local()
    seed = requests.post(target.base + JOBS, json=job_body(), headers=target.headers(), timeout=60)
    seed.raise_for_status()
    path = target.get_path(seed.json())

    def one(_):
        if not hasattr(session_of, "session"):
            session_of.session = requests.Session()
        session = session_of.session
        if op == "create":
            response = session.post(
                target.base + JOBS, json=job_body(), headers=target.headers(), timeout=60
            )
        elif op == "get":
            response = session.get(target.base + path, headers=target.headers(), timeout=60)
        elif op == "floor":  # a path no route serves: the server, Flask and routing alone
            response = session.get(target.base + "/v1/gateway/nothing", timeout=60)
            return response.status_code == 404
        else:
            response = session.get(
                target.base + JOBS,
                params=target.list_params(10),
                headers=target.headers(),
                timeout=60,
            )
        return response.status_code == 200

    with ThreadPoolExecutor(max_workers=clients) as pool:
        return sum(pool.map(one, range(count)))


def cpu_per_call(target: Target, pid: int, op: str, count: int, profile: Path | None) -> float:
    """CPU ms the process tree `pid` spent per `op` call."""
    import subprocess

    recorder = None
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
        out = profile / f"{op}-{'gateway' if target.key else 'direct'}.txt"
        recorder = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "--pid",
                str(pid),
                "--subprocesses",
                "--gil",
                "--rate",
                "250",
                "--format",
                "raw",
                "-o",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)
    before = cpu_seconds(pid)
    ok = route_calls(target, op, count)
    spent = cpu_seconds(pid) - before
    if recorder is not None:
        recorder.send_signal(2)
        recorder.wait(timeout=60)
    if ok != count:
        raise SystemExit(f"{count - ok} {op} calls failed through {target.base}")
    return spent * 1000 / count


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


def main() -> None:  # noqa: C901
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--list-jobs", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=100)
    parser.add_argument("--cpu-calls", type=int, default=300)
    parser.add_argument("--profile", type=Path, help="write py-spy's stacks per route here")
    parser.add_argument("--parts", default="load,cpu,list", help="load, cpu, list: which to run")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if not parts or parts - {"load", "cpu", "list"}:
        parser.error("--parts takes load, cpu and list, comma-separated")
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
        results: dict = {}
        if "load" in parts:
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

        if "cpu" in parts:
            pids = info["pids"]
            print(
                f"cpu: {args.cpu_calls} calls per route, 4 clients; CPU ms per call of the serving"
            )
            print("     process tree (upstream and emulator waits are not CPU)")
            print(f"{'route':<10}{'gateway':>10}{'direct':>10}   (CPU ms per call)")
            for op in ("floor", "get", "list", "create"):
                gateway_ms = cpu_per_call(
                    through, pids["passthrough"], op, args.cpu_calls, args.profile
                )
                if op == "floor":
                    print(f"{op:<10}{gateway_ms:>10.2f}{'-':>10}   (a 404: server, Flask, routing)")
                    continue
                direct_ms = cpu_per_call(direct, pids["vertex-sim"], op, args.cpu_calls, None)
                print(f"{op:<10}{gateway_ms:>10.2f}{direct_ms:>10.2f}")

        if "list" in parts:
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
        if results and results["gateway"]["errors"]:
            failed = len(results["gateway"]["errors"])
            raise SystemExit(f"{failed} calls through the gateway failed")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
