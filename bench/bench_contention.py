"""Contention: 200 prediction files of 20 jobs of one key (same day, same model) finalized at
once, every event delivered twice, on the Firestore and GCS emulators.

Runs the scenario of tests/jobs/contention.py twice in fresh projects: with one rollup
document per day x key x model (the baseline: `ROLLUP_SHARDS = 1`) and with the sharded
rollups. For each: files priced (must equal the files: exactly once), the write retries,
the time, whether the totals equal the independently computed ones, the most writes one
rollup document took and their rate over the run. Firestore sustains about one write per
second per document (the emulator has no such limit): above it, production commits slow
down and abort on the hot document, and the busiest document needs at least that many
seconds to absorb the burst.

    .venv/bin/python bench/bench_contention.py [--jobs 20] [--files-per-job 10] [--workers 32]
"""

import argparse
import os
import sys
import tempfile
import uuid
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local.processes import (  # noqa: E402
    firestore_emulator,
    free_port,
    gcloud_emulators_missing,
    storage_emulator,
)


def run(shards: int, args) -> dict:
    from shared.core import clients
    from shared.cost import ledger
    from shared.jobs import records
    from tests.jobs import contention
    from tests.support import reset_process

    os.environ["VBG_PROJECT"] = os.environ["GOOGLE_CLOUD_PROJECT"] = f"bench-{uuid.uuid4().hex[:8]}"
    reset_process()
    ledger.ROLLUP_SHARDS = shards
    bucket = f"contention-{uuid.uuid4().hex[:8]}"
    clients.storage().create_bucket(bucket)
    scenario = contention.build(bucket, jobs=args.jobs, files_per_job=args.files_per_job)
    result = contention.finalize_all(scenario, workers=args.workers, deliveries=2)
    spent = ledger.spend_nanos(start=date(2025, 3, 1), end=date(2025, 3, 31))
    jobs_exact = all(
        records.get(job_id)["cost"]["cost_nanos"] == want
        for job_id, want in scenario.expected_by_job.items()
    )
    return {
        **result,
        "files": len(scenario.files),
        "exact": spent == scenario.expected["cost_nanos"] and jobs_exact,
        "max_writes": max(contention.writes_per_rollup_doc(scenario).values()),
        "job_writes": args.files_per_job,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--files-per-job", type=int, default=10)
    parser.add_argument("--workers", type=int, default=32, help="concurrent deliveries")
    args = parser.parse_args()
    missing = gcloud_emulators_missing()
    if missing:
        raise SystemExit(f"needs the gcloud emulators: {missing}")
    work = Path(tempfile.mkdtemp(prefix="vbg-bench-"))
    firestore = firestore_emulator(free_port(), work).start()
    storage = storage_emulator(free_port(), work).start()
    try:
        firestore.wait_ready(timeout=90)
        storage.wait_ready(timeout=30)
        config = work / "models.yaml"
        from tests.support import DEFAULT_MODEL_LIST

        config.write_text(DEFAULT_MODEL_LIST)
        os.environ.update(
            {
                "FIRESTORE_EMULATOR_HOST": firestore.host,
                "STORAGE_EMULATOR_HOST": storage.url,
                "VBG_CONFIG": str(config),
                "VBG_VERTEX_ENDPOINT": "http://127.0.0.1:9",
            }
        )
        from shared.core import logs
        from shared.cost import ledger

        logs.log = lambda *_, **__: None  # figures on stdout, not the functions' log lines
        sharded = ledger.ROLLUP_SHARDS
        print(
            f"{args.jobs} jobs x {args.files_per_job} files of one key, day and model; "
            f"each finalize event delivered twice, {args.workers} at a time"
        )
        header = f"{'rollups':<22}{'files':>6}{'priced':>7}{'exact':>7}{'retries':>8}{'s':>7}"
        print(header + f"{'max writes/doc':>16}{'its writes/s':>14}")
        for label, shards in (("1 doc (baseline)", 1), (f"{sharded} shards", sharded)):
            result = run(shards, args)
            print(
                f"{label:<22}{result['files']:>6}{result['recorded']:>7}"
                f"{'yes' if result['exact'] else 'NO':>7}{result['retries']:>8}"
                f"{result['seconds']:>7.1f}{result['max_writes']:>16}"
                f"{result['max_writes'] / result['seconds']:>14.1f}"
            )
            if result["recorded"] != result["files"] or not result["exact"]:
                raise SystemExit("a file was priced twice or not at all, or a total is off")
        print(f"each job document: {args.files_per_job} writes (one per file of that job)")
    finally:
        firestore.stop()
        storage.stop()


if __name__ == "__main__":
    main()
