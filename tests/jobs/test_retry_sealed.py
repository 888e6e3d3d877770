"""Issue #22 item 6: `:retryFailed` reads the sealed input, not the client's object.

It looked for a field nothing writes (`sealed_input_uris`) and so read the client's input as
it is now: a 4-row parent with 2 failures gave a 60-row retry after the owner rewrote it,
and deleting the original input made retries fail. On the emulators and the simulator.
"""

import json

import pytest

from shared.core import clients
from tests.jobs.lifecycle_support import JOBS_PATH, make_world
from tests.support import auth, gemini_request, job_body, upload_jsonl


@pytest.fixture
def world(gcp, monkeypatch, tmp_path):
    made = make_world(gcp, monkeypatch, tmp_path, speed=0.1)
    yield made
    made.sim.stop()


def retry_lines(world, job_id: str) -> list[dict]:
    """Retry through the route; the lines of the newest retry file the gateway wrote."""
    response = world.gateway.post(
        f"/v1/gateway/jobs/{job_id}:retryFailed", json={}, headers=auth(world.key)
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    staged = list(clients.storage().list_blobs(_staging(), prefix=f"retries/{job_id}/"))
    newest = max(staged, key=lambda b: b.time_created)
    return [json.loads(x) for x in newest.download_as_bytes().decode().split("\n") if x]


def _staging() -> str:
    from shared.core.config import settings

    return settings().staging_bucket


def test_a_retry_reads_the_sealed_input_even_after_the_client_rewrote_or_deleted_it(world):
    bucket = world.gcp["bucket"]
    four = [gemini_request(f"row {i}") for i in range(4)]
    uri = upload_jsonl(bucket, "in/parent.jsonl", four)
    body = job_body(bucket, input_uri=uri, labels={"sim-fault": "partial"})
    created = world.gateway.post(JOBS_PATH, json=body, headers=auth(world.key))
    assert created.status_code == 200, created.get_data(as_text=True)
    job_id = created.get_json()["name"].rsplit("/", 1)[-1]
    final = world.drive(job_id)
    assert final["completion_stats"]["failedCount"] == "2"  # rows 1 and 3 (the sim's rule)

    upload_jsonl(bucket, "in/parent.jsonl", [gemini_request("swapped")] * 60)
    assert retry_lines(world, job_id) == [four[1], four[3]]

    clients.storage().bucket(bucket).blob("in/parent.jsonl").delete()
    assert retry_lines(world, job_id) == [four[1], four[3]]


def test_a_retry_writes_to_the_clients_folder_not_the_sealed_one():
    from shared.jobs import retry

    parent = {
        "job_id": "1",
        "model": "gemini-3.5-flash-lite",
        "labels": {"p": "q", "vbg-intent": "abc"},
        "output_prefix": "gs://staging/outputs/2026-12-07/k/abc/",
        "client_output_prefix": "gs://b/out/",
    }
    body = retry._retry_body(parent, "gs://staging/retries/1/x.jsonl")
    assert body["outputConfig"]["gcsDestination"]["outputUriPrefix"] == "gs://b/out/"
    assert body["labels"] == {"p": "q"}
