"""A run of many short chat rows through the local stack, beside the same rows as the fewest
jobs Vertex allows.

Starts the local stack (`local/stack.py`, the parts `make dev` starts: emulators, the Vertex
simulator at `--speed` seconds per state step, the three functions, the finalize bridge and
the sync ticker every `--sync` seconds) with one more deployment, `bench-runs`, whose jobs
hold at most `ceil(rows / pieces)` requests (model_info.max_job_rows): `--rows` rows split
into `--pieces` pieces model what Vertex's own 200,000-request limit does to ten times as
many rows. Then:

1. The run: `vbg run FILE --model bench-runs` as a user runs it (upload through a resumable
   session, split and seal, pieces queued under `--concurrent` jobs, merged in input order,
   streamed back into one file). Prints its wall time, the peak RSS of `vbg run` and of each
   function (VmHWM of each function's process tree, reset before), split-and-seal seconds
   per GB, merge throughput (rows per second of the merges), the gateway's time per piece
   (from Vertex's end of its job to the piece merged: priced, copied, merged), and the lag
   from each of Vertex's state changes (start, end) to the record.
2. The baseline: the same file as one plain job of `gemini-3.5-flash-lite` (the fewest jobs
   Vertex allows for these rows: their count is under its 200,000 limit), created through the
   gateway and waited for until its cost is final; its outputs stay in Vertex's order and
   files. Same figures where they apply.
3. On paper, `--plan-rows` rows of the same kind (default 10,000,000) on `gemini-3.5-flash-lite`
   as a run under Vertex's own limits (`split.paper_plan`): pieces, rounds at the gateway's
   default per-key limit (VBG_RUN_JOBS_PER_KEY) and at its per-deployment one, and the cost
   of the measured tokens per row at the catalog's batch rates (the simulator's answers are
   short and made up: the output tokens of real answers set the real figure).

    .venv/bin/python bench/bench_runs.py [--rows 200000] [--pieces 10] [--concurrent 4]
        [--speed 0.5] [--sync 1] [--plan-rows 10000000]
"""

import argparse
import contextlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local.stack import DEFAULT_BUCKET, DEFAULT_PROJECT, Stack, default_config  # noqa: E402

MODEL = "gemini-3.5-flash-lite"
CAPPED = "bench-runs"
FUNCTIONS = ("passthrough", "on_job_event", "on_output_finalized")
GB = 1 << 30


def write_input(path: Path, rows: int) -> int:
    """`rows` short chat requests, all different; the file's size."""
    with path.open("w") as handle:
        for n in range(rows):
            text = f"question {n}: what is {n} plus {n}?"
            line = {"request": {"contents": [{"role": "user", "parts": [{"text": text}]}]}}
            handle.write(json.dumps(line) + "\n")
    return path.stat().st_size


def tree(pid: int) -> list[int]:
    """The process and its descendants (Linux /proc)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found, grew = {pid}, True
    while grew:
        more = {p for p, parent in parents.items() if parent in found} - found
        found |= more
        grew = bool(more)
    return sorted(found)


def peak_mb(pid: int) -> float:
    """The largest peak RSS (VmHWM) among the process tree's members, in MB."""
    peaks = []
    for member in tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks.append(int(line.split()[1]) / 1024)
    return max(peaks, default=0.0)


def reset_peaks(pid: int) -> None:
    """Start each member's VmHWM again from its current RSS (`5` to /proc/PID/clear_refs)."""
    for member in tree(pid):
        with contextlib.suppress(OSError):
            Path(f"/proc/{member}/clear_refs").write_text("5")


def seconds_between(start, end) -> float | None:
    from shared.core import times

    a, b = times.parse(start), times.parse(end)
    return (b - a).total_seconds() if a and b else None


def lags(record: dict) -> dict:
    """Seconds from Vertex's start and end of the job to the record saying so."""
    history = record.get("state_history") or []

    def recorded(states):
        return next((h["time"] for h in history if h.get("to") in states), None)

    running = recorded(("JOB_STATE_RUNNING",))
    ended = recorded(("JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_PARTIALLY_SUCCEEDED"))
    return {
        "start": seconds_between(record.get("start_time"), running),
        "end": seconds_between(record.get("end_time"), ended),
    }


def spread(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    return f"p50 {statistics.median(values):.2f} / max {max(values):.2f}"


def plan(rows: int, measured_rows: int, measured_bytes: int, total: dict) -> None:
    """The paper plan of `rows` rows like the measured ones (see the module docstring)."""
    from shared.core.config import settings
    from shared.cost import pricing
    from shared.jobs import job_limits
    from shared.runs import split

    limits = job_limits.for_model(MODEL)
    size = measured_bytes * rows // measured_rows
    by_key = split.paper_plan(
        rows=rows, size=size, limits=limits, concurrent=settings().run_jobs_per_key
    )
    by_deployment = split.paper_plan(
        rows=rows, size=size, limits=limits, concurrent=settings().run_jobs_per_deployment
    )
    rates = pricing.pricing(MODEL, None, batch=True).tiers[0].rates  # nano-USD per token
    prompt_tokens = total["promptTokens"] * rows // measured_rows
    output_tokens = (total["candidatesTokens"] + total["thoughtsTokens"]) * rows // measured_rows
    nanos = prompt_tokens * rates.input + output_tokens * rates.output
    print(
        f"plan: {rows:,} rows ({size / GB:.2f} GB) on {MODEL}: {by_key.pieces} pieces of "
        f"{by_key.rows_per_piece:,} rows (Vertex: {limits.rows:,} requests, {limits.bytes:,} "
        f"bytes a job); {by_key.waves} rounds at {settings().run_jobs_per_key} jobs a key, "
        f"{by_deployment.waves} at {settings().run_jobs_per_deployment} a deployment"
    )
    print(
        f"  {prompt_tokens / rows:.1f} prompt and {output_tokens / rows:.1f} output tokens a row "
        f"(measured) at {rates.input} and {rates.output} nano-USD a token (batch): "
        f"{pricing.nanos_to_usd(int(nanos))} USD"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--pieces", type=int, default=10)
    parser.add_argument("--concurrent", type=int, default=4)
    parser.add_argument("--speed", type=float, default=0.5, help="simulator seconds per step")
    parser.add_argument("--sync", type=float, default=1.0, help="sync tick seconds")
    parser.add_argument("--plan-rows", type=int, default=10_000_000)
    args = parser.parse_args()
    cap = math.ceil(args.rows / args.pieces)
    state = Path(tempfile.mkdtemp(prefix="vbg-bench-runs-"))
    source = state / "questions.jsonl"
    size = write_input(source, args.rows)
    config = state / "models.yaml"
    config.write_text(
        default_config(DEFAULT_PROJECT)
        + f"  - model_name: {CAPPED}\n"
        + "    litellm_params:\n"
        + f"      model: vertex_ai/{MODEL}\n"
        + f"      vertex_project: {DEFAULT_PROJECT}\n"
        + "      vertex_location: global\n"
        + f"    model_info: {{max_job_rows: {cap}}}\n"
    )
    stack = Stack(state, speed=args.speed, sync_interval=args.sync, config=config)
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
        from shared.jobs import records
        from shared.runs import store

        gateway = info["gateway_url"]
        prefix = f"gs://{DEFAULT_BUCKET}/bench/"
        made = requests.post(
            f"{gateway}/v1/gateway/keys",
            json={"alias": "bench", "inputPrefixes": [prefix], "outputPrefixes": [prefix]},
            headers={"Authorization": f"Bearer {info['master_key']}"},
            timeout=30,
        )
        made.raise_for_status()
        key = made.json()["key"]
        headers = {"x-goog-api-key": key}
        pids = {name: info["pids"][name] for name in FUNCTIONS}
        print(
            f"machine: {os.cpu_count()} cores (shared), {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
            f"{args.rows:,} rows, {size / 1e6:.1f} MB; simulator {args.speed} s per step, "
            f"sync tick {args.sync} s"
        )

        # 1. The run, as a user runs it.
        for pid in pids.values():
            reset_peaks(pid)
        out = state / "answers.jsonl"
        command = [
            str(Path(sys.executable).with_name("vbg")),
            "run",
            str(source),
            "--model",
            CAPPED,
            "--yes",
            "--json",
            "--out",
            str(out),
            "--interval",
            "1",
            "--max-concurrent-jobs",
            str(args.concurrent),
            "--gateway",
            gateway,
            "--key",
            key,
        ]
        started = time.monotonic()
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(child.pid, 0)
        run_seconds = time.monotonic() - started
        stdout, stderr = child.stdout.read(), child.stderr.read()
        if status != 0:
            raise SystemExit(f"vbg run failed ({status}): {stderr.decode()[-2000:]}")
        summary = json.loads(stdout)
        run_peaks = {name: peak_mb(pid) for name, pid in pids.items()}
        run = requests.get(
            f"{gateway}/v1/gateway/runs/{summary['runId']}", headers=headers, timeout=60
        ).json()
        pieces = run["pieceList"]
        jobs = records.get_many([p["jobId"] for p in pieces])
        stored = {p["index"]: p for p in store.pieces(summary["runId"])}
        merged_rows = sum(p["merge"]["succeeded"] + p["merge"]["failed"] for p in pieces)
        merge_seconds = sum(p["merge"]["seconds"] for p in pieces)
        answers = sum(1 for _ in out.open("rb"))
        after_end = [
            seconds_between(jobs[p["jobId"]].get("end_time"), stored[p["index"]].get("merged"))
            for p in pieces
        ]
        print(
            f"run: {run['pieces']} pieces of at most {cap:,} rows, {args.concurrent} at a time; "
            f"{run['state']}, {answers:,} answers in input order in {run_seconds:.1f} s"
        )
        print(f"  peak RSS of vbg run: {usage.ru_maxrss / 1024:.0f} MB")
        for name, peak in run_peaks.items():
            print(f"  peak RSS of {name}: {peak:.0f} MB")
        print(
            f"  split and seal: {run['splitSeconds']:.1f} s for {run['bytes'] / 1e6:.1f} MB "
            f"= {run['splitSeconds'] / (run['bytes'] / GB):.0f} s per GB"
        )
        print(
            f"  merge: {merged_rows:,} rows in {merge_seconds:.1f} s of merges "
            f"= {merged_rows / max(merge_seconds, 1e-9):,.0f} rows/s"
        )
        print(f"  Vertex's end of a piece's job to the piece merged (s): {spread(after_end)}")
        run_lags = [lags(jobs[p["jobId"]]) for p in pieces]
        print(
            f"  lag, Vertex state -> record (s): start {spread([x['start'] for x in run_lags])}; "
            f"end {spread([x['end'] for x in run_lags])}"
        )
        print(f"  cost: {summary['costUsd']} USD (final: {summary['costFinal']})")

        # 2. The baseline: the same rows as one job, the fewest Vertex allows.
        for pid in pids.values():
            reset_peaks(pid)
        name = "bench/whole.jsonl"
        clients.storage().bucket(DEFAULT_BUCKET).blob(name).upload_from_filename(str(source))
        body = {
            "displayName": "bench baseline",
            "model": MODEL,
            "inputConfig": {
                "instancesFormat": "jsonl",
                "gcsSource": {"uris": [f"gs://{DEFAULT_BUCKET}/{name}"]},
            },
            "outputConfig": {
                "predictionsFormat": "jsonl",
                "gcsDestination": {"outputUriPrefix": prefix + "whole-out/"},
            },
        }
        started = time.monotonic()
        created = requests.post(
            f"{gateway}/v1/projects/{DEFAULT_PROJECT}/locations/global/batchPredictionJobs",
            json=body,
            headers=headers,
            timeout=600,
        )
        created.raise_for_status()
        create_seconds = time.monotonic() - started
        job_id = created.json()["name"].rsplit("/", 1)[-1]
        while True:
            cost = requests.get(
                f"{gateway}/v1/gateway/jobs/{job_id}/cost", headers=headers, timeout=60
            ).json()
            if cost.get("costFinal"):
                break
            time.sleep(1)
        job_seconds = time.monotonic() - started
        record = records.get(job_id)
        job_lags = lags(record)
        print(
            f"baseline: one job of {args.rows:,} rows, created in {create_seconds:.1f} s "
            f"(seal, check, estimate), cost final in {job_seconds:.1f} s; outputs in Vertex's "
            "order"
        )
        for function, pid in pids.items():
            print(f"  peak RSS of {function}: {peak_mb(pid):.0f} MB")
        print(
            f"  lag, Vertex state -> record (s): start {spread([job_lags['start']])}; "
            f"end {spread([job_lags['end']])}"
        )
        print(f"  cost: {cost['costUsd']} USD")
        plan(args.plan_rows, args.rows, size, run["cost"]["total"])
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
