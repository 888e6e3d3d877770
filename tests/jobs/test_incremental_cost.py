"""Incremental and final output files: a job is billed for its rows exactly once, through
`on_output_finalized` on the Firestore and GCS emulators. Figures by hand: gemini-3.5-flash-lite
batch is 150 nano-dollars per input token and 1,250 per output token."""

import json

import pytest

from shared.jobs import records
from tests.cost.cost_helpers import make_job, upload
from tests.jobs.test_finalize import DIRECTORY, deliver, finalize  # noqa: F401 - the fixture

INCREMENTAL = f"{DIRECTORY}/incremental_predictions/predictions_{{:05d}}.jsonl"
FINAL = f"{DIRECTORY}/predictions.jsonl"


def rows(*prompts: int) -> bytes:
    return b"".join(
        json.dumps(
            {
                "status": "",
                "response": {
                    "usageMetadata": {"promptTokenCount": p, "candidatesTokenCount": 10},
                    "modelVersion": "gemini-3.5-flash-lite",
                },
            }
        ).encode()
        + b"\n"
        for p in prompts
    )


def nanos(*prompts: int) -> int:
    return sum(p * 150 + 10 * 1250 for p in prompts)


def put(client, bucket: str, name: str, data: bytes) -> None:
    assert deliver(client, bucket, name, upload(bucket, name, data)).status_code == 200


def job_cost(job_id: str) -> tuple[int, int, str]:
    job = records.get(job_id)
    cost = job.get("cost") or {}
    return int(cost.get("cost_nanos") or 0), int(cost.get("rows") or 0), job.get("cost_basis")


def test_incremental_files_count_while_no_final_file_exists(finalize, gcp):  # noqa: F811
    bucket = gcp["bucket"]
    make_job(bucket, "701")
    put(finalize, bucket, INCREMENTAL.format(0), rows(100, 200))
    assert job_cost("701") == (nanos(100, 200), 2, "incremental")
    put(finalize, bucket, INCREMENTAL.format(1), rows(300))
    assert job_cost("701") == (nanos(100, 200, 300), 3, "incremental")


def test_the_final_file_supersedes_the_incremental_files_never_both(finalize, gcp):  # noqa: F811
    bucket = gcp["bucket"]
    make_job(bucket, "702")
    put(finalize, bucket, INCREMENTAL.format(0), rows(100, 200))
    put(finalize, bucket, INCREMENTAL.format(1), rows(300))
    put(finalize, bucket, FINAL, rows(100, 200, 300, 400))
    assert job_cost("702") == (nanos(100, 200, 300, 400), 4, "final")
    # A late incremental file (events come in any order) changes nothing once the final counts.
    put(finalize, bucket, INCREMENTAL.format(2), rows(400))
    assert job_cost("702") == (nanos(100, 200, 300, 400), 4, "final")


@pytest.mark.parametrize("final_first", [True, False])
def test_order_of_arrival_does_not_matter(finalize, gcp, final_first):  # noqa: F811
    bucket = gcp["bucket"]
    job_id = f"70{3 + final_first}"
    make_job(bucket, job_id)
    files = [(INCREMENTAL.format(0), rows(100)), (FINAL, rows(100, 50))]
    for name, data in reversed(files) if final_first else files:
        put(finalize, bucket, name, data)
    assert job_cost(job_id) == (nanos(100, 50), 2, "final")


def test_a_final_set_billing_less_than_the_rows_already_seen_does_not_lower_the_cost(
    finalize,  # noqa: F811
    gcp,
):
    bucket = gcp["bucket"]
    make_job(bucket, "705")
    put(finalize, bucket, INCREMENTAL.format(0), rows(1000, 1000))
    # A first final shard (or a forged final file) with one cheap row.
    put(finalize, bucket, f"{DIRECTORY}/predictions_00001.jsonl", rows(1))
    assert job_cost("705") == (nanos(1000, 1000), 2, "incremental")
    # The rest of the final set arrives: now it bills at least as much, and it counts alone.
    put(finalize, bucket, f"{DIRECTORY}/predictions_00002.jsonl", rows(1000, 1000))
    assert job_cost("705") == (nanos(1, 1000, 1000), 3, "final")


def test_cost_view_marks_running_cost_provisional_and_says_which_files_count(finalize, gcp):  # noqa: F811
    from shared.cost import ledger
    from shared.cost.spend import job_cost_view

    bucket = gcp["bucket"]
    make_job(bucket, "706")
    put(finalize, bucket, INCREMENTAL.format(0), rows(100))
    view = job_cost_view(ledger.job_cost("706"))
    assert (view["provisional"], view["costBasis"]) == (True, "incremental")
    assert view["costUsd"] == "0.000027500"  # 100 * 150 + 10 * 1250 = 27,500 nano-dollars
    put(finalize, bucket, FINAL, rows(100))
    view = job_cost_view(ledger.job_cost("706"))
    counted = {f["kind"]: f["counted"] for f in view["files"]}
    assert counted == {"incremental": False, "final": True}
    assert view["costUsd"] == "0.000027500"
