"""Sealed outputs: the time to put a job's output file into the client's folder, per GB.

A sealed job's files land in the gateway's staging bucket; the gateway copies each to the
client's folder (shared/jobs/sealed_outputs.py: `copy_generation`, a GCS rewrite pinned to
the priced generation). Measured here beside the naive way a function could copy a file
(download it, upload it again), on one synthetic predictions file, through
`local/gcs_proxy.py`'s model of GCS: 30 ms per request, 100 MB/s per download stream and per
upload request. Three runs:

- naive: download + upload through the function (the bytes cross the function twice);
- rewrite, same location and storage class: GCS copies metadata in one call, so the time is
  a request's;
- rewrite, bytes moving (another location or storage class): modelled at
  `--rewrite-mbps` (default 200 MB/s) in calls of 256 MiB. GCS documents that such a rewrite
  may take several calls (https://docs.cloud.google.com/rust/docs/storage-rewrite-objects),
  not its rate: this figure is a model (inferred), the first is the one to trust.

Each run checks the copy's bytes. Prints seconds, MB/s and seconds per GB.

    .venv/bin/python bench/bench_sealed_copies.py [--mb 256]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_ranged_reads import synthetic_file  # noqa: E402
from local.gcs_proxy import GcsProxy  # noqa: E402
from local.processes import free_port, storage_emulator  # noqa: E402

STAGING, CLIENT = "bench-staging", "bench-client"
NAME = "outputs/2025-01-01/k/i/prediction-model-2025-01-01T00:00:00.000000Z/predictions.jsonl"
COPY = "ana/out/prediction-model-2025-01-01T00:00:00.000000Z/predictions.jsonl"


def naive(storage, generation: int) -> None:
    """Download the generation to a temporary file and upload it to the client's folder."""
    source = storage.bucket(STAGING).blob(NAME, generation=generation)
    with tempfile.NamedTemporaryFile() as spool:
        source.download_to_file(spool, timeout=600)
        spool.flush()
        spool.seek(0)
        storage.bucket(CLIENT).blob(COPY).upload_from_file(spool, timeout=600)


def sealed(generation: int) -> None:
    from shared.jobs import sealed_outputs

    sealed_outputs.copy_generation(sealed_outputs.Copy(STAGING, NAME, generation, CLIENT, COPY))


def timed(label: str, work, size: int, check, repeat: int) -> None:
    """The best of `repeat` runs (the machine is shared), each on a fresh destination."""
    best = float("inf")
    for _ in range(repeat):
        check(None)
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
        check(size)
    rate = size / 1e6 / best
    print(f"{label:<56}{best:>8.2f}{rate:>9.0f}{best * 1e9 / size:>10.2f}")


def _check(storage, expected: int | None, label: str) -> None:
    """None: clear the destination; else the copy must be there, whole."""
    found = storage.bucket(CLIENT).get_blob(COPY)
    if expected is None:
        if found is not None:
            found.delete()
    elif found is None or int(found.size) != expected:
        raise SystemExit(f"{label}: the copy is not the file")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=256, help="size of the file (MiB)")
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--stream-mbps", type=float, default=100.0, help="MB/s per stream")
    parser.add_argument("--rewrite-mbps", type=float, default=200.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    work = Path(os.environ.get("TMPDIR", "/tmp"))
    emulator = storage_emulator(free_port(), work).start()
    try:
        emulator.wait_ready(timeout=30)
        os.environ.update({"STORAGE_EMULATOR_HOST": emulator.url, "VBG_PROJECT": "bench"})
        from shared.core import clients

        data = synthetic_file(args.mb)
        for name in (STAGING, CLIENT):
            clients.storage().create_bucket(name)
        blob = clients.storage().bucket(STAGING).blob(NAME)
        blob.upload_from_string(data, timeout=600)
        blob.reload()
        generation = int(blob.generation)
        print(
            f"file: {len(data) / 1e6:.0f} MB of Gemini rows; GCS modelled by the proxy: "
            f"{args.latency_ms:.0f} ms a request, {args.stream_mbps:.0f} MB/s a stream"
        )
        print(f"{'copy':<56}{'s':>8}{'MB/s':>9}{'s per GB':>10}")
        stream = args.stream_mbps * 1e6
        runs = [
            ("naive: download + upload through the function", {}, "naive"),
            ("sealed: rewrite, same location (metadata)", {}, "sealed"),
            (
                f"sealed: rewrite, bytes move at {args.rewrite_mbps:.0f} MB/s (model)",
                {"rewrite_bytes_per_second": args.rewrite_mbps * 1e6},
                "sealed",
            ),
            ("(the emulator's own copy, in every row above)", None, "sealed"),
        ]
        for label, options, how in runs:
            if options is None:  # straight to the emulator: its local copying cost

                def check_direct(expected, label=label):
                    _check(clients.storage(), expected, label)

                timed(label, lambda: sealed(generation), len(data), check_direct, args.repeat)
                continue
            with GcsProxy(
                emulator.url,
                latency=args.latency_ms / 1000,
                stream_bytes_per_second=stream,
                upload_bytes_per_second=stream,
                **options,
            ) as proxy:
                proxy._bytes_of(STAGING, NAME, None)  # its copy of the object, before timing
                os.environ["STORAGE_EMULATOR_HOST"] = proxy.url
                clients.reset()
                storage = clients.storage()

                def check(expected, storage=storage, label=label):
                    _check(storage, expected, label)

                work_fn = (
                    (lambda s=storage: naive(s, generation))
                    if how == "naive"
                    else (lambda: sealed(generation))
                )
                timed(label, work_fn, len(data), check, args.repeat)
            os.environ["STORAGE_EMULATOR_HOST"] = emulator.url
            clients.reset()
    finally:
        emulator.stop()


if __name__ == "__main__":
    main()
