"""Issue #22 items 3, 4 and 5 (create side): one streaming pass over the sealed input.

Through the gateway's HTTP layer, on the GCS, Firestore and Pub/Sub emulators and the Vertex
simulator. Money figures are worked out by hand from the published batch rates of the test's
model (prices.json, with its sources).
"""

import base64
import io
import json
import struct
import zlib

import pytest

from shared.core import clients
from shared.cost import estimate
from shared.jobs import records
from tests.jobs.lifecycle_support import JOBS_PATH, make_world
from tests.support import MASTER_KEY, auth, create_key, gemini_request, job_body, upload_jsonl


@pytest.fixture
def world(gcp, monkeypatch, tmp_path):
    made = make_world(gcp, monkeypatch, tmp_path, speed=0.2)
    yield made
    made.sim.stop()


def staging() -> str:
    from shared.core.config import settings

    return settings().staging_bucket


def media_row(*parts: dict) -> dict:
    return {"request": {"contents": [{"role": "user", "parts": [{"text": "look"}, *parts]}]}}


def file_part(uri: str, mime: str = "image/png") -> dict:
    return {"fileData": {"mimeType": mime, "fileUri": uri}}


def post(world, key: str, body: dict):
    return world.gateway.post(JOBS_PATH, json=body, headers=auth(key))


# --- item 3: object URIs inside request lines ------------------------------------------------


def test_a_file_uri_in_another_keys_folder_is_refused_naming_the_line_and_field(world):
    bucket = world.gcp["bucket"]
    rows = [
        gemini_request("fine"),
        media_row(file_part(f"gs://{bucket}/in/mine.png")),
        media_row(file_part(f"gs://{bucket}/bob/secret.png")),
    ]
    uri = upload_jsonl(bucket, "in/steal.jsonl", rows)
    response = post(world, world.key, job_body(bucket, input_uri=uri))
    assert response.status_code == 403, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["status"] == "PERMISSION_DENIED"
    field = "request.contents[0].parts[1].fileData.fileUri"
    assert (
        f"{uri} line 3: `{field}` names gs://{bucket}/bob/secret.png: outside this key's "
        f"input prefixes (allowed: gs://{bucket}/in/)" in error["message"]
    )
    [violation] = error["details"][0]["fieldViolations"]
    assert violation["field"] == f"{uri} line 3: {field}"
    assert world.sim.sim.jobs == {}
    assert list(clients.storage().list_blobs(staging(), prefix="sealed/")) == []


@pytest.mark.parametrize(
    "named",
    [
        "gs://{staging}/sealed/x/00000-in.jsonl",
        "https://storage.googleapis.com/{staging}/openai/k/files/f.jsonl",
        "https://{staging}.storage.googleapis.com/retries/1/x.jsonl",
        "GS://{staging}/x",
    ],
)
def test_the_staging_bucket_is_never_reachable_through_request_content(world, named):
    """Not even by the master key, whose prefixes are everything."""
    bucket = world.gcp["bucket"]
    named = named.format(staging=staging())
    uri = upload_jsonl(bucket, "in/reach.jsonl", [media_row(file_part(named, "text/plain"))])
    for key in (world.key, MASTER_KEY):
        response = post(world, key, job_body(bucket, input_uri=uri))
        assert response.status_code == 403, response.get_data(as_text=True)
        assert "the gateway's staging bucket" in response.get_json()["error"]["message"]


def test_any_uri_field_is_checked_and_other_urls_pass(world):
    """A multimodal embedding's `gcsUri`, a function response's file part: any field whose
    name ends in uri/url. An https URL off GCS names no bucket of the gateway."""
    bucket = world.gcp["bucket"]
    nested = {
        "functionResponse": {
            "name": "f",
            "response": {},
            "parts": [{"fileData": {"fileUri": "gs://other/x.png"}}],
        }
    }
    cases = [
        ({"instances": [{"image": {"gcsUri": "gs://other/a.png"}}]}, "instances[0].image.gcsUri"),
        (media_row(nested), "request.contents[0].parts[1].functionResponse.parts[0].fileData"),
    ]
    for row, field in cases:
        uri = upload_jsonl(bucket, "in/nested.jsonl", [row])
        response = post(world, world.key, job_body(bucket, input_uri=uri))
        assert response.status_code == 403, row
        assert f"`{field}" in response.get_json()["error"]["message"]
    web = upload_jsonl(bucket, "in/web.jsonl", [media_row(file_part("https://example.com/a.png"))])
    assert post(world, world.key, job_body(bucket, input_uri=web)).status_code == 200


def test_the_openai_door_checks_an_image_url_too(gcp, monkeypatch, tmp_path):
    world = make_world(gcp, monkeypatch, tmp_path, speed=0.2)
    try:
        bucket = gcp["bucket"]
        key = create_key(world.gateway, alias="olga", inputPrefixes=[f"gs://{bucket}/in/"])
        content = [
            {"type": "text", "text": "what is this"},
            {"type": "image_url", "image_url": {"url": f"gs://{bucket}/bob/secret.png"}},
        ]
        line = {
            "custom_id": "r1",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "gemini-3.5-flash-lite",
                "messages": [{"role": "user", "content": content}],
            },
        }
        uploaded = world.gateway.post(
            "/v1/files",
            data={"purpose": "batch", "file": (io.BytesIO(json.dumps(line).encode()), "a.jsonl")},
            headers=auth(key),
            content_type="multipart/form-data",
        )
        assert uploaded.status_code == 200, uploaded.get_data(as_text=True)
        body = {
            "input_file_id": uploaded.get_json()["id"],
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        }
        response = world.gateway.post("/v1/batches", json=body, headers=auth(key))
        assert response.status_code == 403, response.get_data(as_text=True)
        error = response.get_json()["error"]
        assert (
            f"gs://{bucket}/bob/secret.png: outside this key's input prefixes" in (error["message"])
        )
        assert world.sim.sim.jobs == {}
    finally:
        world.sim.stop()


# --- item 4: the estimate reads every line ---------------------------------------------------


def test_a_budget_holds_past_the_first_mebibyte(world, monkeypatch):
    """The estimate once read the first 1 MiB of an input above VBG_ESTIMATE_READ_LIMIT_BYTES
    and scaled it: cheap rows first, costly rows after, and a $1 budget ran a $1.81 job.

    By hand, gemini-3.5-flash-lite at us-central1 (batch $0.15 and $1.25 per 1M tokens, times
    the 1.1 regional uplift: 165 and 1,375 nanos a token; it does not think by default):
    1,000 rows of 1,000 characters capped at 1 output token: 250 x 165 + 1 x 1,375 = 42,625
    nanos each; 20,000 rows "hi": 1 x 165 + 64 x 1,375 = 88,165 each. Total 42,625,000 +
    1,763,300,000 = 1,805,925,000 nanos."""
    monkeypatch.setenv("VBG_ESTIMATE_READ_LIMIT_BYTES", str(1024 * 1024))
    from tests.support import reset_process

    reset_process()
    bucket = world.gcp["bucket"]
    cheap = gemini_request("x" * 1000, max_output_tokens=1)
    rows = [cheap] * 1000 + [gemini_request("hi")] * 20_000
    uri = upload_jsonl(bucket, "in/skewed.jsonl", rows)
    key = create_key(
        world.gateway,
        alias="skew",
        inputPrefixes=[f"gs://{bucket}/in/"],
        outputPrefixes=[f"gs://{bucket}/out/"],
        budgetUsd="1",
        budgetPeriod="day",
    )
    response = post(world, key, job_body(bucket, input_uri=uri))
    assert response.status_code == 429, response.get_data(as_text=True)
    metadata = response.get_json()["error"]["details"][1]["metadata"]
    assert metadata["estimateUsd"] == "1.805925000"
    assert world.sim.sim.jobs == {}


def png(width: int, height: int) -> bytes:
    """A real (tiny, one-colour) PNG of the given size."""
    raw = b"".join(b"\x00" + b"\x00" * width for _ in range(height))
    chunk = lambda kind, data: (  # noqa: E731
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    )
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def test_media_are_counted_by_kind_and_size(world):
    """By hand (cost/media_tokens.py's rules): a 2000 x 1000 inline PNG is 3 x 2 tiles of
    258 = 1,548 tokens at every level; a referenced 10,000,000-byte MP4 at 2 Mbit/s
    (250,000 bytes a second) is 40 s x 263 = 10,520 tokens expected, at 8 Mbit/s 10 s x 263 =
    2,630 low, at 0.5 Mbit/s 160 s x 263 = 42,080 high; "look" is 1 token (ceil(4/4); 1 at 5
    characters a token, 2 at 2)."""
    bucket = world.gcp["bucket"]
    video = f"gs://{bucket}/in/clip.mp4"
    clients.storage().bucket(bucket).blob("in/clip.mp4").upload_from_string(b"\0" * 10_000_000)
    image = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png(2000, 1000))}}
    image["inlineData"]["data"] = image["inlineData"]["data"].decode()
    rows = [media_row(image), media_row(file_part(video, "video/mp4"))]
    uri = upload_jsonl(bucket, "in/media.jsonl", rows)
    response = post(world, world.key, job_body(bucket, input_uri=uri))
    assert response.status_code == 200, response.get_data(as_text=True)
    made = records.get(response.get_json()["name"].rsplit("/", 1)[-1])["estimate"]
    assert made["media_parts"] == 2
    assert made["input_tokens"] == {
        "low": 1 + 1548 + 1 + 2630,
        "expected": 1 + 1548 + 1 + 10_520,
        "high": 2 + 1548 + 2 + 42_080,
    }


def test_the_format_check_reads_the_sealed_bytes(world, monkeypatch):
    """What is checked is what runs: every byte the create reads comes from the staging
    bucket's copies (today's main read the client's objects first)."""
    bucket = world.gcp["bucket"]
    uri = upload_jsonl(bucket, "in/a.jsonl", [gemini_request("fine"), "not json"])
    read_from = []
    real = estimate.read_chunks

    def watched(obj, *args, **kwargs):
        read_from.append(obj.bucket)
        return real(obj, *args, **kwargs)

    monkeypatch.setattr(estimate, "read_chunks", watched)
    response = post(world, world.key, job_body(bucket, input_uri=uri))
    assert response.status_code == 400
    assert f"{uri} line 2: not valid JSON" in response.get_json()["error"]["message"]
    assert read_from == [staging()]


# --- item 5: lines over Vertex's per-request size --------------------------------------------


def test_an_input_line_over_vertexs_request_size_is_refused(world):
    bucket = world.gcp["bucket"]
    limit = 20 * 1024 * 1024  # Vertex's per-request size as the gateway reads it
    fits = json.dumps(gemini_request("x" * (limit - 200)))
    over = json.dumps(gemini_request("y" * limit))
    assert len(fits) <= limit < len(over)
    uri = upload_jsonl(bucket, "in/big.jsonl", [fits, over])
    response = post(world, world.key, job_body(bucket, input_uri=uri))
    assert response.status_code == 400
    message = response.get_json()["error"]["message"]
    assert f"{uri} line 2: the line is {len(over):,} bytes; Vertex takes at most " in message
    assert f"{uri} line 1" not in message


UNPRICED = """
unpriced_models: allow
model_list:
  - model_name: mystery
    litellm_params:
      model: vertex_ai/gemini-99-mystery
      vertex_project: proj-a
      vertex_location: us-central1
"""


def test_a_budgeted_create_on_a_model_without_a_price_is_a_400_saying_how_to_fix_it(
    gcp, monkeypatch, tmp_path
):
    from local.vertex_sim import SimulatorThread
    from tests.support import gateway_env, passthrough_client

    with SimulatorThread(speed=0.2) as sim:
        gateway_env(monkeypatch, tmp_path, vertex_url=sim.url, model_list=UNPRICED)
        gateway = passthrough_client()
        bucket = gcp["bucket"]
        prefixes = {
            "inputPrefixes": [f"gs://{bucket}/in/"],
            "outputPrefixes": [f"gs://{bucket}/out/"],
        }
        budgeted = create_key(gateway, alias="b", budgetUsd="10", budgetPeriod="day", **prefixes)
        free = create_key(gateway, alias="f", **prefixes)
        uri = upload_jsonl(bucket, "in/a.jsonl", [gemini_request("hello")])
        body = {**job_body(bucket, input_uri=uri), "model": "mystery"}
        refused = gateway.post(JOBS_PATH, json=body, headers=auth(budgeted))
        assert refused.status_code == 400, refused.get_data(as_text=True)
        error = refused.get_json()["error"]
        assert error["status"] == "FAILED_PRECONDITION"
        assert "model 'gemini-99-mystery' has no price in the catalog" in error["message"]
        assert "vbg prices import" in error["message"]
        assert sim.sim.jobs == {}
        # Without a budget the gateway lets it through: here the simulator knows no such model.
        passed = gateway.post(JOBS_PATH, json=body, headers=auth(free))
        assert passed.status_code == 404
        assert passed.get_json()["error"]["message"].startswith("Publisher Model")
