"""Pricing a large prediction file: one download stream against parallel ranged reads.

Uploads a synthetic predictions file (Gemini rows as the simulator writes them) to the GCS
emulator, then prices it (read + parse, as `on_output_finalized` does) in a fresh child
process per run, four ways:
- straight from the emulator (no latency, no bandwidth cap), reading only;
- through `local/gcs_proxy.py` modelling real GCS (30 ms per request, 100 MB/s per stream),
  reading only, then reading and parsing;
each with `usage.read_gcs_chunks` (one stream: the baseline) and
`ranged_reads.read_gcs_chunks` (`--streams` concurrent ranges). Prints seconds, MB/s, the
speed-up, the child's CPU seconds (on a busy machine, wall time / CPU time shows how much of
it was waiting for a core), its peak RSS, and the time a 5 GB file would take at that rate.
The emulator serves one request at a time and copies the whole object for each range, so
parallel reads cannot gain there; the proxy holds the object in memory and serves
concurrently, as GCS does.

    .venv/bin/python bench/bench_ranged_reads.py [--mb 256] [--streams 8]
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local.gcs_proxy import GcsProxy  # noqa: E402
from local.processes import free_port, storage_emulator  # noqa: E402

BUCKET = "bench-ranged"
NAME = "out/prediction-model-2025-01-01T00:00:00.000000Z/predictions.jsonl"
FIVE_GB = 5 * 1000**3


def synthetic_file(megabytes: int) -> bytes:
    """Rows as the simulator writes them, repeated to the size asked."""
    from datetime import UTC, datetime

    from local import sim_rows

    now = datetime(2025, 1, 1, tzinfo=UTC)
    rows = []
    for i in range(200):
        request = {"contents": [{"role": "user", "parts": [{"text": f"question {i} " * (i % 40)}]}]}
        row, _ = sim_rows.output_row("gemini-2.5-flash", json.dumps({"request": request}), now)
        rows.append(json.dumps(row) + "\n")
    block = "".join(rows).encode()
    return block * max(1, megabytes * 1024 * 1024 // len(block))


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM; ru_maxrss would carry the parent's over the fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(reader: str, streams: int, work: str) -> None:
    """One read (or read + parse) in this process; prints seconds, bytes, rows, peak RSS."""
    from shared.core import clients
    from shared.cost import ranged_reads, usage

    clients.storage()
    started, cpu_started = time.perf_counter(), time.process_time()
    if reader == "single":
        chunks = usage.read_gcs_chunks(BUCKET, NAME, None)
    else:
        chunks = ranged_reads.read_gcs_chunks(BUCKET, NAME, None, streams=streams)
    total = 0

    def counted():
        nonlocal total
        for chunk in chunks:
            total += len(chunk)
            yield chunk

    rows = None
    if work == "price":
        rows = usage.parse_predictions(counted(), model="gemini-2.5-flash").rows
    else:
        for _ in counted():
            pass
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    peak_mb = peak_rss_mb()
    print(json.dumps({"s": seconds, "cpu": cpu, "bytes": total, "rows": rows, "rss": peak_mb}))


def run_child(reader: str, streams: int, work: str, storage_url: str) -> dict:
    env = {**os.environ, "STORAGE_EMULATOR_HOST": storage_url, "VBG_PROJECT": "bench"}
    argv = [sys.executable, __file__, "--child", reader, "--streams", str(streams), "--work", work]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256, help="size of the file (MiB)")
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--stream-mbps", type=float, default=100.0, help="MB/s per stream")
    parser.add_argument("--child", choices=["single", "parallel"], help=argparse.SUPPRESS)
    parser.add_argument("--work", choices=["read", "price"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.streams, args.work)
        return

    work = Path(os.environ.get("TMPDIR", "/tmp"))
    emulator = storage_emulator(free_port(), work).start()
    try:
        emulator.wait_ready(timeout=30)
        os.environ.update({"STORAGE_EMULATOR_HOST": emulator.url, "VBG_PROJECT": "bench"})
        from shared.core import clients

        data = synthetic_file(args.mb)
        bucket = clients.storage().create_bucket(BUCKET)
        bucket.blob(NAME).upload_from_string(data, timeout=600)
        size_mb = len(data) / 1e6
        print(
            f"file: {size_mb:.0f} MB of Gemini rows; parallel: {args.streams} streams of "
            f"{8} MiB ranges; each run in a fresh process (read + parse, as finalize does)"
        )
        header = f"{'where':<30}{'work':<7}{'reader':<10}{'s':>7}{'MB/s':>8}{'x':>6}"
        print(header + f"{'CPU s':>7}{'peak RSS MB':>13}{'5 GB in s':>11}")
        with GcsProxy(
            emulator.url,
            latency=args.latency_ms / 1000,
            stream_bytes_per_second=args.stream_mbps * 1e6,
        ) as proxy:
            proxy._bytes_of(BUCKET, NAME, None)  # its copy of the object, before any timing
            modelled = f"proxy {args.latency_ms:.0f} ms {args.stream_mbps:.0f} MB/s/str"
            runs = [
                ("GCS emulator", "read", emulator.url),
                (modelled, "read", proxy.url),
                (modelled, "price", proxy.url),
            ]
            for label, work, url in runs:
                results = {r: run_child(r, args.streams, work, url) for r in ("single", "parallel")}
                base = results["single"]["s"]
                for reader, result in results.items():
                    if result["bytes"] != len(data):
                        raise SystemExit(f"{reader} read {result['bytes']} of {len(data)} bytes")
                    rate = size_mb / result["s"]
                    print(
                        f"{label:<30}{work:<7}{reader:<10}{result['s']:>7.2f}{rate:>8.0f}"
                        f"{base / result['s']:>6.1f}{result['cpu']:>7.2f}{result['rss']:>13.0f}"
                        f"{FIVE_GB / 1e6 / rate:>11.0f}"
                    )
                if results["single"]["rows"] != results["parallel"]["rows"]:
                    raise SystemExit("the two readers priced different rows")
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
