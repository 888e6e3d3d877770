"""The official `openai` SDK, unchanged, against the whole local stack: files, batches, the
outputs translated back, errors, cancel, paging and an embeddings batch.

Expected figures come from the simulator's own usage rule (`local/sim_rows.expected_usage`)
applied to the Gemini request the line should become, written out by hand in each test,
never from the gateway's translation code.
"""

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import openai
import pytest
import requests

from local import sim_rows
from tests.e2e.helpers import make_key, wait_for

pytestmark = pytest.mark.e2e

TERMINAL = ("completed", "failed", "expired", "cancelled")


def sdk(stack, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack["gateway_url"] + "/v1", api_key=key, max_retries=0)


def jsonl(lines: list[dict]) -> io.BytesIO:
    data = io.BytesIO("".join(json.dumps(line) + "\n" for line in lines).encode())
    data.name = "requests.jsonl"
    return data


def chat_line(custom_id: str, text: str, **extra) -> dict:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gemini-3.5-flash-lite",
            "messages": [{"role": "user", "content": text}],
            **extra,
        },
    }


def finished(client: openai.OpenAI, batch_id: str, timeout: float = 60):
    return wait_for(
        lambda: (b := client.batches.retrieve(batch_id)).status in TERMINAL and b,
        timeout=timeout,
        what=f"batch {batch_id} to end",
    )


def read_lines(client: openai.OpenAI, file_id: str) -> list[dict]:
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


def test_chat_batch_round_trips_every_custom_id_with_usage(stack):
    client = sdk(stack, make_key(stack, "openai-chat", folder="openai-chat"))
    # Custom ids no label could hold: upper case, spaces, unicode, 200 characters.
    ids = ["Request 1/ÉTÉ", "x" * 200, "req-3", "REQ_4"]
    lines = [
        chat_line(
            ids[0],
            "Name three rivers.",
            max_tokens=30,
            temperature=0.2,
        ),
        {
            **chat_line(ids[1], "ignored"),
            "body": {
                "model": "gemini-3.5-flash-lite",
                "messages": [
                    {"role": "system", "content": "Answer in JSON."},
                    {"role": "user", "content": "Give a city."},
                ],
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "city",
                        "schema": {
                            "type": "object",
                            "properties": {"name": {"type": "string"}},
                            "required": ["name"],
                            "additionalProperties": False,
                        },
                    },
                },
                "reasoning_effort": "low",
            },
        },
        chat_line(ids[2], "Hello there", max_completion_tokens=12),
        chat_line(ids[3], "What is 2+2?", n=1, seed=7, stop=["\n\n"]),
    ]
    uploaded = client.files.create(file=jsonl(lines), purpose="batch")
    assert uploaded.object == "file" and uploaded.purpose == "batch"
    assert uploaded.id.startswith("file-") and uploaded.bytes > 0

    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"Project Name": "Apollo 11", "owner": "data team"},
    )
    assert batch.status in ("validating", "in_progress")
    assert batch.metadata["Project Name"] == "Apollo 11"
    assert batch.metadata == {"Project Name": "Apollo 11", "owner": "data team"}
    assert batch.vertex_job_id.isdigit()

    done = finished(client, batch.id)
    assert done.status == "completed"
    assert done.request_counts.total == 4
    assert done.request_counts.completed == 4 and done.request_counts.failed == 0
    assert done.error_file_id is None and done.completed_at is not None

    rows = read_lines(client, done.output_file_id)
    assert sorted(r["custom_id"] for r in rows) == sorted(ids)
    by_id = {r["custom_id"]: r for r in rows}

    # What each line must have become at Vertex, written out by hand, priced by the
    # simulator's rule: the usage that comes back must be that usage, renamed.
    expected_requests = {
        ids[0]: {
            "contents": [{"role": "user", "parts": [{"text": "Name three rivers."}]}],
            "generationConfig": {"maxOutputTokens": 30, "temperature": 0.2},
        },
        ids[1]: {
            "contents": [{"role": "user", "parts": [{"text": "Give a city."}]}],
            "systemInstruction": {"parts": [{"text": "Answer in JSON."}]},
            "generationConfig": {
                "responseMimeType": "application/json",
                "responseSchema": {
                    "type": "OBJECT",
                    "properties": {"name": {"type": "STRING"}},
                    "required": ["name"],
                },
                "thinkingConfig": {"thinkingBudget": 1024},
            },
        },
        ids[2]: {
            "contents": [{"role": "user", "parts": [{"text": "Hello there"}]}],
            "generationConfig": {"maxOutputTokens": 12},
        },
        ids[3]: {
            "contents": [{"role": "user", "parts": [{"text": "What is 2+2?"}]}],
            "generationConfig": {"stopSequences": ["\n\n"], "seed": 7},
        },
    }
    for custom_id, request in expected_requests.items():
        row = by_id[custom_id]
        assert row["id"].startswith("batch_req_") and row["error"] is None
        assert row["response"]["status_code"] == 200
        body = row["response"]["body"]
        assert body["object"] == "chat.completion" and body["model"] == "gemini-3.5-flash-lite"
        choice = body["choices"][0]
        assert choice["message"]["role"] == "assistant"
        assert choice["message"]["content"].startswith("Simulated answer")
        assert choice["finish_reason"] == "stop"
        usage = sim_rows.expected_usage("gemini-3.5-flash-lite", request)
        thoughts = usage.get("thoughtsTokenCount", 0)
        assert body["usage"]["prompt_tokens"] == usage["promptTokenCount"], custom_id
        assert body["usage"]["completion_tokens"] == usage["candidatesTokenCount"] + thoughts
        assert body["usage"]["total_tokens"] == usage["totalTokenCount"]
        assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == thoughts
        assert body["usage"]["prompt_tokens_details"]["cached_tokens"] == 0

    # The batch is a gateway job like any other: its cost view counts its four rows.
    cost = requests.get(
        f"{stack['gateway_url']}/v1/gateway/jobs/{done.vertex_job_id}/cost",
        headers={"Authorization": f"Bearer {client.api_key}"},
        timeout=30,
    )
    assert cost.status_code == 200, cost.text
    assert cost.json()["costFinal"] is True
    assert cost.json()["totals"]["rows"] == 4 and cost.json()["totals"]["succeeded"] == 4


def test_partial_failures_land_in_the_error_file(stack):
    client = sdk(stack, make_key(stack, "openai-partial", folder="openai-partial"))
    ids = [f"row-{n}" for n in range(5)]
    uploaded = client.files.create(
        file=jsonl([chat_line(i, f"Question {i}") for i in ids]), purpose="batch"
    )
    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"sim-fault": "partial"},
    )
    done = finished(client, batch.id)
    assert done.status == "completed"
    # The simulator fails the rows at odd positions: rows 1 and 3.
    assert (done.request_counts.completed, done.request_counts.failed) == (3, 2)
    outputs = read_lines(client, done.output_file_id)
    errors = read_lines(client, done.error_file_id)
    assert sorted(r["custom_id"] for r in outputs) == ["row-0", "row-2", "row-4"]
    assert sorted(r["custom_id"] for r in errors) == ["row-1", "row-3"]
    for row in errors:
        assert row["response"]["status_code"] == 500
        assert "simulated partial failure" in row["response"]["body"]["error"]["message"]
    error_file = client.files.retrieve(done.error_file_id)
    assert error_file.purpose == "batch_output"


def test_cancel_writes_every_request_to_the_error_file(stack):
    client = sdk(stack, make_key(stack, "openai-cancel", folder="openai-cancel"))
    uploaded = client.files.create(
        file=jsonl([chat_line("a", "one"), chat_line("b", "two")]), purpose="batch"
    )
    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"sim-fault": "stuck-queued"},
    )
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None
    done = finished(client, batch.id)
    assert done.status == "cancelled" and done.cancelled_at is not None
    assert done.output_file_id is None
    errors = read_lines(client, done.error_file_id)
    assert sorted(r["custom_id"] for r in errors) == ["a", "b"]
    assert {r["error"]["code"] for r in errors} == {"batch_cancelled"}
    # Cancelling again is a no-op that shows the batch as it is.
    assert client.batches.cancel(batch.id).status == "cancelled"


def test_a_completed_batch_cannot_be_cancelled(stack):
    client = sdk(stack, make_key(stack, "openai-done", folder="openai-done"))
    uploaded = client.files.create(file=jsonl([chat_line("z", "zz")]), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert finished(client, batch.id).status == "completed"
    with pytest.raises(openai.ConflictError) as refused:
        client.batches.cancel(batch.id)
    assert "completed" in refused.value.body["message"]


def test_list_pages_with_after_and_keys_see_only_their_own(stack):
    client = sdk(stack, make_key(stack, "openai-list", folder="openai-list"))
    other = sdk(stack, make_key(stack, "openai-other", folder="openai-other"))
    uploaded = client.files.create(file=jsonl([chat_line("only", "hi")]), purpose="batch")
    created = [
        client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        ).id
        for _ in range(5)
    ]
    first = client.batches.list(limit=2)
    assert [b.id for b in first.data] == created[::-1][:2]
    assert first.has_more is True
    second = client.batches.list(limit=2, after=first.last_id)
    assert [b.id for b in second.data] == created[::-1][2:4]
    # Iterating a page follows `after` (the SDK's auto-paging) until has_more is false.
    assert [b.id for b in client.batches.list(limit=2)] == created[::-1]
    assert other.batches.list().data == []
    with pytest.raises(openai.NotFoundError) as missing:
        other.batches.retrieve(created[0])
    assert missing.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.NotFoundError):
        other.files.content(uploaded.id)
    # The five batches' output files are the key's too; `purpose` filters them out.
    assert [f.id for f in client.files.list(purpose="batch").data] == [uploaded.id]
    outputs = wait_for(
        lambda: (
            len((page := client.files.list(purpose="batch_output", order="asc")).data) == 5 and page
        ),
        timeout=60,
        what="the five batches' output files",
    )
    assert {f.purpose for f in outputs.data} == {"batch_output"}
    assert outputs.data[0].created_at <= outputs.data[-1].created_at
    assert client.files.delete(uploaded.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)


def test_bad_lines_fail_the_batch_with_their_line_numbers(stack):
    client = sdk(stack, make_key(stack, "openai-bad", folder="openai-bad"))
    lines = [
        chat_line("ok", "fine"),
        chat_line("ok", "duplicate id"),
        chat_line("logit", "x", logit_bias={"1": 2}),
        {
            **chat_line("other-model", "x"),
            "body": {"model": "gemini-3.1-pro-preview", "messages": []},
        },
    ]
    uploaded = client.files.create(file=jsonl(lines), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "failed" and batch.failed_at is not None
    assert [(e.line, e.code, e.param) for e in batch.errors.data] == [
        (2, "duplicate_custom_id", "custom_id"),
        (3, "unsupported_parameter", "logit_bias"),
        (4, "mismatched_model", "body.model"),
    ]
    with pytest.raises(openai.BadRequestError) as refused:
        client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/completions", completion_window="24h"
        )
    assert refused.value.body["param"] == "endpoint"


@pytest.mark.parametrize("model", ["gemini-embedding-001", "text-embedding-005"])
def test_embeddings_batch(stack, model):
    client = sdk(stack, make_key(stack, f"openai-{model}", folder=f"openai-{model}"))
    # One text, and a request of three texts (one Vertex line each, one output line).
    texts = {"e1": ["the quick brown fox"], "e2": ["jumps over", "the lazy dog,", "twice"]}
    lines = [
        {
            "custom_id": custom_id,
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": model, "input": inputs[0] if len(inputs) == 1 else inputs},
        }
        for custom_id, inputs in texts.items()
    ]
    uploaded = client.files.create(file=jsonl(lines), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/embeddings", completion_window="24h"
    )
    done = finished(client, batch.id)
    assert done.status == "completed", done
    assert (done.request_counts.total, done.request_counts.completed) == (2, 2)
    rows = {r["custom_id"]: r for r in read_lines(client, done.output_file_id)}
    assert set(rows) == set(texts)
    for custom_id, inputs in texts.items():
        body = rows[custom_id]["response"]["body"]
        assert body["object"] == "list" and body["model"] == model
        assert [d["index"] for d in body["data"]] == list(range(len(inputs)))
        for item in body["data"]:
            assert len(item["embedding"]) == sim_rows.EMBEDDING_DIMENSIONS
            assert all(isinstance(v, float) for v in item["embedding"])
        if model == "gemini-embedding-001":
            # The simulator's vector of each text's request, in input order.
            assert [d["embedding"] for d in body["data"]] == [
                sim_rows.embedding_values({"content": {"parts": [{"text": text}]}})
                for text in inputs
            ]
        tokens = sum(-(-len(text) // 4) for text in inputs)  # ceil(chars / 4) per text
        assert body["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}
    # The batch's usage: every text's tokens, no output tokens (#26 item 3).
    all_tokens = sum(-(-len(text) // 4) for inputs in texts.values() for text in inputs)
    assert done.usage.input_tokens == done.usage.total_tokens == all_tokens
    assert done.usage.output_tokens == 0


def test_the_documented_sdk_example_runs_as_written(stack, tmp_path):
    text = (Path(__file__).resolve().parents[2] / "docs" / "openai.md").read_text()
    section = text.split("<!-- openai-e2e:start -->", 1)[1].split("<!-- openai-e2e:end -->")[0]
    [code] = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    key = make_key(stack, "openai-readme", folder="openai-readme")
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "GW": stack["gateway_url"], "KEY": key},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    status, *rows = result.stdout.splitlines()
    assert status.startswith("completed ")
    assert sorted(row.split()[0] for row in rows) == ["q-1", "q-2", "q-3"]
