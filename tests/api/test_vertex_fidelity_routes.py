"""Where the gateway meets Vertex's stricter side: input checks at create, the delete
Operation route, and readMask on GET. Real parts: emulators and the simulator."""

import json
import time

import pytest

from shared.jobs import records
from tests.api.test_passthrough import JOBS, create, error_of, job_id, wait_state
from tests.support import (
    DEFAULT_MODEL_LIST,
    auth,
    gateway_env,
    gemini_request,
    job_body,
    reset_process,
    upload_jsonl,
)


def bad_input(bucket: str, name: str = "in/bad.jsonl") -> str:
    return upload_jsonl(
        bucket,
        name,
        [
            {"key": "a", **gemini_request("fine")},
            {"key": 2, **gemini_request("key is a number here")},
            "not json at all",
            {"key": "d", "request": {"contents": [], "generationConfig": {}}},
        ],
    )


def test_create_refuses_an_input_vertex_would_fail_whole(gateway, gcp, sim, alice):
    uri = bad_input(gcp["bucket"])
    response = create(gateway, alice, job_body(gcp["bucket"], input_uri=uri))
    assert response.status_code == 400
    error = error_of(response)
    assert error["status"] == "INVALID_ARGUMENT"
    assert "Failed to import data" in error["message"]
    assert f"{uri} line 2: `key` is a number here but a string on line 1" in error["message"]
    assert f"{uri} line 3: not valid JSON" in error["message"]
    assert f"{uri} line 4: `request.generationConfig` is an empty object" in error["message"]
    violations = error["details"][0]["fieldViolations"]
    assert [v["field"] for v in violations] == ["inputConfig.gcsSource.uris"] * 3
    assert sim.sim.jobs == {}  # Vertex never saw it


def test_create_refuses_a_job_over_vertex_limits(gateway, gcp, sim, alice):
    """The Vertex-native door is one Vertex job per create: over the catalog's limit for
    text-embedding (30,000 prompts) is a 400 naming the limit and pointing at runs."""
    uri = upload_jsonl(gcp["bucket"], "in/prompts.jsonl", [{"content": "x"}] * 30_001)
    response = create(
        gateway, alice, job_body(gcp["bucket"], model="text-embedding-005", input_uri=uri)
    )
    assert response.status_code == 400
    error = error_of(response)
    message = error["message"]
    assert "30,001 prompts" in message and "at most 30,000 prompts" in message
    assert "the per-job limit of Vertex" in message and "/v1/gateway/runs" in message
    (info,) = [d for d in error["details"] if d.get("reason") == "OVER_JOB_LIMIT"]
    assert info["metadata"] == {"rowsLimit": "30000", "runs": "/v1/gateway/runs"}
    ok = upload_jsonl(gcp["bucket"], "in/prompts-ok.jsonl", [{"content": "x"}] * 30_000)
    body = job_body(gcp["bucket"], model="text-embedding-005", input_uri=ok)
    assert create(gateway, alice, body).status_code == 200
    assert len(sim.sim.jobs) == 1


CAPPED = DEFAULT_MODEL_LIST.replace(
    """      vertex_location: us-central1
  - model_name: gemini-3.5-flash-lite""",
    """      vertex_location: us-central1
    model_info: {max_job_rows: 2, max_job_bytes: 100}
  - model_name: gemini-3.5-flash-lite""",
    1,
)


def test_a_deployment_cap_lowers_the_limits(gateway, gcp, sim, alice, monkeypatch, tmp_path):
    """1 GiB is too big to upload here: a deployment's own cap (model_info) is a lower limit,
    refused before the input is read, and named as the deployment's."""
    gateway_env(monkeypatch, tmp_path, vertex_url=sim.url, model_list=CAPPED)
    response = create(gateway, alice, job_body(gcp["bucket"]))
    assert response.status_code == 400
    message = error_of(response)["message"]
    assert "takes at most 100 bytes" in message
    assert "this deployment (model_info.max_job_bytes)" in message
    assert "at most 2 requests" not in message  # the rows were never read
    assert sim.sim.jobs == {}


def test_the_check_reads_every_line(gateway, gcp, sim, alice, monkeypatch):
    """Issue #22 item 4: the check once read only the first 64 MiB (a setting,
    `VBG_ESTIMATE_READ_LIMIT_BYTES`, which no longer exists): a bad line past it reached
    Vertex. Every line is read now, whatever that old setting says."""
    good = json.dumps(gemini_request("fine"))
    uri = upload_jsonl(gcp["bucket"], "in/late-bad.jsonl", [good] * 4 + ["not json"])
    body = job_body(gcp["bucket"], input_uri=uri)
    monkeypatch.setenv("VBG_ESTIMATE_READ_LIMIT_BYTES", str(len(good) * 3))
    reset_process()
    response = create(gateway, alice, body)
    assert response.status_code == 400
    assert f"{uri} line 5: not valid JSON" in error_of(response)["message"]


def test_a_missing_input_is_refused_at_create(gateway, gcp, sim, alice):
    """Sealed inputs (issue #10): an input that does not exist cannot be sealed, and leaving it
    to Vertex would let its owner upload an unbudgeted file after the create."""
    body = job_body(gcp["bucket"], input_uri=f"gs://{gcp['bucket']}/in/nothing-here.jsonl")
    response = create(gateway, alice, body)
    assert response.status_code == 400
    assert "does not exist" in error_of(response)["message"]
    assert sim.sim.jobs == {}


def test_get_applies_read_mask_in_the_gateway(gateway, gcp, alice):
    jid = job_id(create(gateway, alice, job_body(gcp["bucket"])))
    masked = gateway.get(f"{JOBS}/{jid}?readMask=displayName,state", headers=auth(alice))
    assert masked.status_code == 200
    assert set(masked.get_json()) == {"displayName", "state"}
    snake = gateway.get(
        f"{JOBS}/{jid}?readMask=display_name,create_time&$alt=json;enum-encoding=int",
        headers=auth(alice),
    )
    assert set(snake.get_json()) == {"displayName", "createTime"}
    whole = gateway.get(f"{JOBS}/{jid}", headers=auth(alice)).get_json()
    assert {"name", "model", "inputConfig", "state"} <= set(whole)


def _delete(gateway, gcp, key) -> tuple[str, dict]:
    jid = job_id(create(gateway, key, job_body(gcp["bucket"], labels={"sim-fault": "failed"})))
    wait_state(gateway, key, jid, "JOB_STATE_FAILED")
    deleted = gateway.delete(f"{JOBS}/{jid}", headers=auth(key))
    assert deleted.status_code == 200, deleted.get_data(as_text=True)
    return jid, deleted.get_json()


def test_delete_operation_is_polled_through_the_gateway_by_its_owner_only(
    gateway, gcp, sim, alice, bob
):
    jid, operation = _delete(gateway, gcp, alice)
    assert "done" not in operation
    assert records.get(jid)["delete_operation"] == operation["name"]
    op_id = operation["name"].rsplit("/", 1)[-1]
    path = f"/v1/projects/client-side/locations/anywhere/operations/{op_id}"

    started = time.monotonic()
    polled = gateway.get(path, headers=auth(alice)).get_json()
    while not polled.get("done"):
        assert time.monotonic() - started < 10
        time.sleep(0.05)
        polled = gateway.get(path, headers=auth(alice)).get_json()
    assert polled["name"] == operation["name"]
    assert polled["response"] == {"@type": "type.googleapis.com/google.protobuf.Empty"}
    for prefix in ("v1beta1", "ui"):
        again = gateway.get(path.replace("/v1/", f"/{prefix}/"), headers=auth(alice))
        assert again.status_code == 200 and again.get_json()["done"] is True

    stranger = gateway.get(path, headers=auth(bob))
    assert stranger.status_code == 404 and error_of(stranger)["status"] == "NOT_FOUND"
    unknown = gateway.get(path.replace(op_id, "12345"), headers=auth(alice))
    assert unknown.status_code == 404
    malformed = gateway.get(path.replace(op_id, "abc"), headers=auth(alice))
    assert malformed.status_code == 400
    assert gateway.get(path).status_code == 401


@pytest.mark.parametrize("method", ["post", "delete"])
def test_operations_are_read_only(gateway, alice, method):
    response = getattr(gateway, method)(
        "/v1/projects/p/locations/l/operations/1", headers=auth(alice)
    )
    assert response.status_code == 405
