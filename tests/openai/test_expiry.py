"""A batch's completion window (#26 item 2): at `expires_at` an unfinished batch is
`expired` (its job cancelled, finished lines delivered, the rest `batch_expired`); a job
Vertex cut off after 24 hours running is `expired`; a user's cancel stays `cancelled`."""

import json
import time
from decimal import Decimal

import pytest

from shared.core import clients
from shared.openai import batches
from tests.openai.test_openai_api import chat_line, create_batch, jsonl, sync_until_final, upload
from tests.support import auth

HOUR = 3600


def record(state: str, running_at: str | None, ended_at: str, **fields) -> dict:
    history = [{"to": "JOB_STATE_RUNNING", "time": running_at}] if running_at else []
    history.append({"to": state, "time": ended_at})
    return {"state": state, "state_history": history, **fields}


@pytest.mark.parametrize(
    ("doc", "rec", "status"),
    [
        # Vertex's own ends are the batch's
        ({}, record("JOB_STATE_SUCCEEDED", None, "2026-01-01T01:00:00Z"), "completed"),
        ({}, record("JOB_STATE_EXPIRED", None, "2026-01-03T00:00:00Z"), "expired"),
        # the gateway's expiry cancelled it
        (
            {"expiring_at": 1},
            record("JOB_STATE_CANCELLED", None, "2026-01-02T00:00:00Z"),
            "expired",
        ),
        # a user's cancel, even past the window, stays cancelled
        (
            {"cancelling_at": 1, "expiring_at": 1},
            record("JOB_STATE_CANCELLED", None, "2026-01-02T00:00:00Z"),
            "cancelled",
        ),
        # Vertex cut it off after 24 h running: expired
        (
            {},
            record("JOB_STATE_CANCELLED", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"),
            "expired",
        ),
        # a cancel after 23 h 59 min of running that nobody here asked for: cancelled
        (
            {},
            record("JOB_STATE_CANCELLED", "2026-01-01T00:01:00Z", "2026-01-02T00:00:00Z"),
            "cancelled",
        ),
        # the budget stop cancels: cancelled
        (
            {},
            record(
                "JOB_STATE_CANCELLED",
                "2026-01-01T00:00:00Z",
                "2026-01-03T00:00:00Z",
                budget_stop={"limit": 1},
            ),
            "cancelled",
        ),
    ],
)
def test_the_end_of_a_batch(doc, rec, status):
    assert batches.final_status(doc, rec) == status


def overdue(batch_id: str) -> None:
    ref = clients.firestore().collection(batches.BATCHES).document(batch_id)
    ref.update({"expires_at": int(time.time()) - 1})


def test_a_batch_past_its_window_expires_and_its_requests_say_so(gateway, alice):
    lines = [chat_line(f"q{n}", f"question {n}") for n in range(3)]
    file_id = upload(gateway, alice, jsonl(lines)).get_json()["id"]
    batch = create_batch(gateway, alice, file_id, metadata={"sim-fault": "stuck-queued"})
    batch = batch.get_json()
    # inside the window nothing happens
    assert batches.expire_overdue() == 0
    overdue(batch["id"])
    assert batches.expire_overdue() == 1
    assert batches.expire_overdue() == 0  # asked once; not again within the retry delay
    seen = gateway.get(f"/v1/batches/{batch['id']}", headers=auth(alice)).get_json()
    assert seen["status"] in ("finalizing", "expired")
    sync_until_final(batch["vertex_job_id"])
    done = gateway.get(f"/v1/batches/{batch['id']}", headers=auth(alice)).get_json()
    assert done["status"] == "expired" and done["expired_at"] is not None
    assert done["cancelled_at"] is None
    assert done["request_counts"] == {"total": 3, "completed": 0, "failed": 3}
    errors = gateway.get(f"/v1/files/{done['error_file_id']}/content", headers=auth(alice))
    codes = sorted(
        (json.loads(x)["custom_id"], json.loads(x)["error"]["code"])
        for x in errors.data.splitlines()
    )
    assert codes == [("q0", "batch_expired"), ("q1", "batch_expired"), ("q2", "batch_expired")]
    # an ended batch is not expired again
    assert batches.expire_overdue() == 0


def test_a_users_cancel_stays_cancelled(gateway, alice):
    file_id = upload(gateway, alice, jsonl([chat_line("q", "x")])).get_json()["id"]
    batch = create_batch(gateway, alice, file_id, metadata={"sim-fault": "stuck-queued"})
    batch = batch.get_json()
    assert gateway.post(f"/v1/batches/{batch['id']}/cancel", headers=auth(alice)).status_code == 200
    overdue(batch["id"])
    assert batches.expire_overdue() == 0
    sync_until_final(batch["vertex_job_id"])
    done = gateway.get(f"/v1/batches/{batch['id']}", headers=auth(alice)).get_json()
    assert done["status"] == "cancelled"
    errors = gateway.get(f"/v1/files/{done['error_file_id']}/content", headers=auth(alice))
    assert json.loads(errors.data.splitlines()[0])["error"]["code"] == "batch_cancelled"


def test_a_finished_batch_past_its_window_is_left_alone(gateway, alice):
    file_id = upload(gateway, alice, jsonl([chat_line("q", "x")])).get_json()["id"]
    batch = create_batch(gateway, alice, file_id).get_json()
    sync_until_final(batch["vertex_job_id"])
    overdue(batch["id"])
    assert batches.expire_overdue() == 0
    done = gateway.get(f"/v1/batches/{batch['id']}", headers=auth(alice)).get_json()
    assert done["status"] == "completed"


def test_the_lines_finished_before_the_window_closed_are_delivered_and_billed(gateway, alice):
    """A slow job expires after its first quarter of rows is written: those rows are in the
    output file and in the job's cost; the others are batch_expired."""
    lines = [chat_line(f"q{n}", f"question {n}") for n in range(4)]
    file_id = upload(gateway, alice, jsonl(lines)).get_json()["id"]
    batch = create_batch(gateway, alice, file_id, metadata={"sim-fault": "slow"}).get_json()
    doc = clients.firestore().collection(batches.BATCHES).document(batch["id"]).get().to_dict()
    bucket_name, prefix = doc["output_prefix"].removeprefix("gs://").split("/", 1)
    bucket = clients.storage().bucket(bucket_name)
    deadline = time.monotonic() + 60
    while not any("incremental_predictions" in b.name for b in bucket.list_blobs(prefix=prefix)):
        assert time.monotonic() < deadline, "no incremental file"
        time.sleep(0.05)
    overdue(batch["id"])
    assert batches.expire_overdue() == 1
    sync_until_final(batch["vertex_job_id"], timeout=60)
    done = gateway.get(f"/v1/batches/{batch['id']}", headers=auth(alice)).get_json()
    assert done["status"] == "expired"
    finished_rows = done["request_counts"]["completed"]
    assert 1 <= finished_rows < 4 and done["request_counts"]["failed"] == 4 - finished_rows
    output = gateway.get(f"/v1/files/{done['output_file_id']}/content", headers=auth(alice))
    assert len(output.data.splitlines()) == finished_rows
    errors = gateway.get(f"/v1/files/{done['error_file_id']}/content", headers=auth(alice))
    codes = {json.loads(x)["error"]["code"] for x in errors.data.splitlines()}
    assert codes == {"batch_expired"}
    cost = gateway.get(f"/v1/gateway/jobs/{batch['vertex_job_id']}/cost", headers=auth(alice))
    assert cost.get_json()["totals"]["succeeded"] == finished_rows
    assert Decimal(cost.get_json()["totals"]["costUsd"]) > 0
