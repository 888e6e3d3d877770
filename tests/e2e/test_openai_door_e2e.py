"""The OpenAI door as OpenAI behaves (#26), judged by the official `openai` SDK, unchanged,
against the whole local stack (emulators, the simulator, the gateway's functions)."""

import json
import time

import openai
import pytest
import requests

from tests.e2e.helpers import make_key, wait_for
from tests.e2e.test_openai_e2e import finished, jsonl, read_lines, sdk
from tests.jobs.test_alerts import Receiver
from tests.openai.transcripts import TRANSCRIPT, line

pytestmark = pytest.mark.e2e


def test_agent_transcripts_with_tools_run_as_a_batch(stack):
    """Calls without arguments, an open schema, parallel calls and a second conversation
    turn: OpenAI takes this file; so does the gateway, and every line runs on a Gemini 3
    model (the simulator fails a row Gemini would refuse: unanswered calls, no signature)."""
    client = sdk(stack, make_key(stack, "openai-tools", folder="openai-tools"))
    lines = [
        line(custom_id="whole"),
        line(TRANSCRIPT[:5], custom_id="after-parallel-step"),
        line(TRANSCRIPT[:7], custom_id="after-second-step"),
        line(TRANSCRIPT[:2], tools=None, custom_id="no-tools-declared"),
    ]
    uploaded = client.files.create(file=jsonl(lines), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status != "failed", batch.errors
    done = finished(client, batch.id)
    assert done.status == "completed", done
    assert (done.request_counts.completed, done.request_counts.failed) == (4, 0)
    rows = read_lines(client, done.output_file_id)
    assert sorted(r["custom_id"] for r in rows) == sorted(x["custom_id"] for x in lines)
    assert all(r["response"]["status_code"] == 200 for r in rows)
    assert done.error_file_id is None


def test_metadata_comes_back_as_sent_and_copies_into_a_new_batch(stack):
    """16 pairs (OpenAI's most) come back exactly; the Vertex job id is beside them, so a
    client that copies `metadata` into its next batch is not refused for 18 pairs."""
    client = sdk(stack, make_key(stack, "openai-metadata", folder="openai-metadata"))
    uploaded = client.files.create(
        file=jsonl([line(TRANSCRIPT[:2], tools=None, custom_id="m")]), purpose="batch"
    )
    metadata = {f"key {n}": f"value {n}" for n in range(16)}
    first = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata=metadata,
    )
    assert first.metadata == metadata and first.vertex_job_id.isdigit()
    fetched = client.batches.retrieve(first.id)
    assert fetched.metadata == metadata
    second = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata=fetched.metadata,
    )
    assert second.metadata == metadata and second.vertex_job_id != first.vertex_job_id
    assert finished(client, second.id).status == "completed"


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.stop()


def test_a_batch_end_reaches_the_keys_webhook_verified_by_the_sdk(stack, receiver):
    """The functions of the stack deliver; the SDK's `webhooks.unwrap` verifies."""
    key = make_key(stack, "openai-webhooks", folder="openai-webhooks")
    registered = requests.post(
        stack["gateway_url"] + "/v1/gateway/webhooks",
        json={"url": receiver.url, "events": ["batch.completed", "batch.failed"]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert registered.status_code == 200, registered.text
    secret = registered.json()["secret"]
    client = sdk(stack, key)
    uploaded = client.files.create(
        file=jsonl([line(TRANSCRIPT[:2], tools=None, custom_id="w")]), purpose="batch"
    )
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    wait_for(lambda: receiver.requests, timeout=60, what="the batch's webhook")
    headers, body = receiver.requests[0]
    verifier = type(client)(api_key=key, base_url=client.base_url, webhook_secret=secret)
    event = verifier.webhooks.unwrap(body.decode(), {k.lower(): v for k, v in headers.items()})
    assert (event.type, event.data.id) == ("batch.completed", batch.id)
    assert client.batches.retrieve(batch.id).status == "completed"


# --- files: expiry and purposes (#26 item 4) -------------------------------------------------

DAY = 24 * 3600


def test_files_expire_as_openai_files_do(stack):
    client = sdk(stack, make_key(stack, "openai-expiry", folder="openai-expiry"))
    data = [line(TRANSCRIPT[:2], tools=None, custom_id="x")]
    # OpenAI: a batch file expires after 30 days unless `expires_after` says otherwise
    default = client.files.create(file=jsonl(data), purpose="batch")
    assert default.expires_at == default.created_at + 30 * DAY
    hour = client.files.create(
        file=jsonl(data), purpose="batch", expires_after={"anchor": "created_at", "seconds": 3600}
    )
    assert hour.expires_at == hour.created_at + 3600
    assert client.files.retrieve(hour.id).expires_at == hour.expires_at
    for seconds in (3599, 2_592_001):
        with pytest.raises(openai.BadRequestError) as refused:
            client.files.create(
                file=jsonl(data),
                purpose="batch",
                expires_after={"anchor": "created_at", "seconds": seconds},
            )
        assert refused.value.body["param"] == "expires_after"
    # the output file expires as `output_expires_after` asks, anchored at its creation
    batch = client.batches.create(
        input_file_id=default.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        extra_body={"output_expires_after": {"anchor": "created_at", "seconds": 7200}},
    )
    done = finished(client, batch.id)
    output = client.files.retrieve(done.output_file_id)
    assert output.purpose == "batch_output"
    assert output.expires_at == output.created_at + 7200


@pytest.mark.parametrize("purpose", ["fine-tune", "assistants", "vision", "user_data", "evals"])
def test_purposes_the_gateway_does_not_serve_are_refused_naming_batch(stack, purpose):
    client = sdk(stack, make_key(stack, f"openai-{purpose}", folder=f"openai-{purpose}"))
    with pytest.raises(openai.BadRequestError) as refused:
        client.files.create(file=jsonl([line(custom_id="p")]), purpose=purpose)
    assert refused.value.body["param"] == "purpose"
    assert purpose in refused.value.message and "purpose batch" in refused.value.message


def test_an_expired_file_is_gone_then_deleted_by_the_tick(stack, stack_env):
    from shared.core import clients

    client = sdk(stack, make_key(stack, "openai-gone", folder="openai-gone"))
    uploaded = client.files.create(file=jsonl([line(custom_id="g")]), purpose="batch")
    ref = clients.firestore().collection("openai_files").document(uploaded.id)
    uri = ref.get().to_dict()["uri"]
    bucket, name = uri.removeprefix("gs://").split("/", 1)
    assert clients.storage().bucket(bucket).blob(name).exists()
    ref.update({"expires_at": int(time.time()) - 1})
    # gone for its key at once, whatever the tick has done yet
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)
    assert uploaded.id not in [f.id for f in client.files.list()]
    wait_for(lambda: not ref.get().exists, timeout=30, what="the expired file's record to go")
    assert not clients.storage().bucket(bucket).blob(name).exists()


# --- the completion window (#26 item 2) ------------------------------------------------------


def test_a_batch_past_its_window_expires(stack, stack_env):
    from shared.core import clients

    client = sdk(stack, make_key(stack, "openai-window", folder="openai-window"))
    uploaded = client.files.create(
        file=jsonl([line(TRANSCRIPT[:2], tools=None, custom_id=f"e{n}") for n in range(2)]),
        purpose="batch",
    )
    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"sim-fault": "stuck-queued"},
    )
    assert batch.expires_at == batch.created_at + 24 * 3600
    clients.firestore().collection("openai_batches").document(batch.id).update(
        {"expires_at": int(time.time()) - 1}
    )
    done = finished(client, batch.id)
    assert done.status == "expired" and done.expired_at is not None
    assert (done.request_counts.completed, done.request_counts.failed) == (0, 2)
    codes = [r["error"]["code"] for r in read_lines(client, done.error_file_id)]
    assert codes == ["batch_expired", "batch_expired"]


# --- uploads: a file in parts (#25 item 3) ---------------------------------------------------


def test_the_sdks_chunked_upload_makes_a_file_that_runs_as_a_batch(stack, tmp_path):
    """40 parts (more than GCS composes in one call) joined in order, md5 checked."""
    import hashlib

    client = sdk(stack, make_key(stack, "openai-uploads", folder="openai-uploads"))
    rows = [line(TRANSCRIPT[:2], tools=None, custom_id=f"u{n:03d}") for n in range(120)]
    data = "".join(json.dumps(row) + "\n" for row in rows).encode()
    path = tmp_path / "requests.jsonl"
    path.write_bytes(data)
    part_size = -(-len(data) // 40)
    upload = client.uploads.upload_file_chunked(
        file=path,
        mime_type="application/jsonl",
        purpose="batch",
        part_size=part_size,
        md5=hashlib.md5(data).hexdigest(),
    )
    assert upload.status == "completed" and upload.bytes == len(data)
    assert upload.file is not None and upload.file.bytes == len(data)
    assert client.files.content(upload.file.id).content == data
    batch = client.batches.create(
        input_file_id=upload.file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    done = finished(client, batch.id, timeout=120)
    assert done.status == "completed" and done.request_counts.completed == 120


def test_an_upload_refuses_what_openai_refuses(stack):
    client = sdk(stack, make_key(stack, "openai-uploads-bad", folder="openai-uploads-bad"))
    data = (json.dumps(line(custom_id="x")) + "\n").encode()
    upload = client.uploads.create(
        bytes=len(data) + 1, filename="in.jsonl", mime_type="application/jsonl", purpose="batch"
    )
    assert upload.status == "pending" and upload.expires_at == upload.created_at + 3600
    part = client.uploads.parts.create(upload_id=upload.id, data=data)
    # the bytes do not add up to what was announced
    with pytest.raises(openai.BadRequestError):
        client.uploads.complete(upload_id=upload.id, part_ids=[part.id])
    other = client.uploads.create(
        bytes=len(data), filename="in.jsonl", mime_type="application/jsonl", purpose="batch"
    )
    # another Upload's part, and a wrong md5
    with pytest.raises(openai.BadRequestError):
        client.uploads.complete(upload_id=other.id, part_ids=[part.id])
    mine = client.uploads.parts.create(upload_id=other.id, data=data)
    with pytest.raises(openai.BadRequestError) as refused:
        client.uploads.complete(upload_id=other.id, part_ids=[mine.id], md5="0" * 32)
    assert refused.value.body["param"] == "md5"
    assert client.uploads.cancel(upload_id=upload.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError):
        client.uploads.parts.create(upload_id=upload.id, data=data)
    with pytest.raises(openai.BadRequestError) as purpose:
        client.uploads.create(
            bytes=10, filename="x", mime_type="application/jsonl", purpose="fine-tune"
        )
    assert purpose.value.body["param"] == "purpose"
    # another key sees no Upload of this one
    stranger = sdk(stack, make_key(stack, "openai-uploads-other", folder="openai-uploads-o"))
    with pytest.raises(openai.NotFoundError):
        stranger.uploads.parts.create(upload_id=other.id, data=data)


# --- /v1/responses (#26 item 6) --------------------------------------------------------------


def test_a_responses_batch_comes_back_as_response_objects(stack):
    from openai.types.responses import Response

    from local import sim_rows

    client = sdk(stack, make_key(stack, "openai-responses", folder="openai-responses"))
    lines = [
        {
            "custom_id": "plain",
            "method": "POST",
            "url": "/v1/responses",
            "body": {
                "model": "gemini-3.5-flash-lite",
                "input": "Name a river.",
                "max_output_tokens": 40,
            },
        },
        {
            "custom_id": "agent",
            "method": "POST",
            "url": "/v1/responses",
            "body": {
                "model": "gemini-3.5-flash-lite",
                "instructions": "Be brief.",
                "input": [
                    {"role": "user", "content": "What time is it?"},
                    {"type": "function_call", "call_id": "c1", "name": "now", "arguments": ""},
                    {"type": "function_call_output", "call_id": "c1", "output": "noon"},
                ],
                "tools": [
                    {
                        "type": "function",
                        "name": "now",
                        "parameters": {"type": "object", "properties": {}},
                    }
                ],
            },
        },
    ]
    uploaded = client.files.create(file=jsonl(lines), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/responses", completion_window="24h"
    )
    done = finished(client, batch.id)
    assert done.status == "completed", done
    assert (done.request_counts.completed, done.request_counts.failed) == (2, 0)
    rows = {r["custom_id"]: r for r in read_lines(client, done.output_file_id)}
    # The Gemini request each line must have become, written out by hand; its usage by the
    # simulator's rule.
    gemini = {
        "plain": {
            "contents": [{"role": "user", "parts": [{"text": "Name a river."}]}],
            "generationConfig": {"maxOutputTokens": 40},
        },
        "agent": {
            "contents": [
                {"role": "user", "parts": [{"text": "What time is it?"}]},
                {
                    "role": "model",
                    "parts": [
                        {
                            "functionCall": {"name": "now"},
                            "thoughtSignature": "skip_thought_signature_validator",
                        }
                    ],
                },
                {
                    "role": "user",
                    "parts": [
                        {"functionResponse": {"name": "now", "response": {"content": "noon"}}}
                    ],
                },
            ],
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "tools": [{"functionDeclarations": [{"name": "now"}]}],
        },
    }
    total_input = 0
    for custom_id, request in gemini.items():
        response = Response.model_validate(rows[custom_id]["response"]["body"])
        assert response.status == "completed" and response.output_text.startswith(
            "Simulated answer"
        )
        usage = sim_rows.expected_usage("gemini-3.5-flash-lite", request)
        assert response.usage.input_tokens == usage["promptTokenCount"], custom_id
        assert response.usage.total_tokens == usage["totalTokenCount"], custom_id
        total_input += usage["promptTokenCount"]
    assert done.usage.input_tokens == total_input
