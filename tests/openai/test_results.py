"""Vertex output rows -> OpenAI output and error lines, field by field (pure logic)."""

import base64
import json
import random
import struct
from datetime import UTC, datetime

import pytest

from shared.core import jsonl
from shared.openai.results import (
    Translator,
    chat_completion,
    embedding_list,
    fingerprint,
    request_fingerprint,
    status_code_of,
)

CREATED = 1_800_000_000


def gemini_row(custom_id: str | None, **response) -> dict:
    row = {
        "request": {"contents": [{"role": "user", "parts": [{"text": custom_id or "?"}]}]},
        "status": "",
        "processed_time": "2027-01-15T10:00:01.000+00:00",
        "response": {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": "ok"}]}, "finishReason": "STOP"}
            ],
            "usageMetadata": {
                "promptTokenCount": 3,
                "candidatesTokenCount": 2,
                "totalTokenCount": 5,
            },
            "createTime": "2027-01-15T10:00:00.000000Z",
            "responseId": f"resp-{custom_id}",
            **response,
        },
    }
    if custom_id is not None:
        row["custom_id"] = custom_id
    return row


def test_chat_completion_maps_text_usage_and_time():
    row = gemini_row(
        "a",
        candidates=[
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "thinking...", "thought": True},
                        {"text": "Hel"},
                        {"text": "lo"},
                    ],
                },
                "finishReason": "MAX_TOKENS",
            }
        ],
        usageMetadata={
            "promptTokenCount": 1200,
            "toolUsePromptTokenCount": 30,
            "candidatesTokenCount": 40,
            "thoughtsTokenCount": 250,
            "cachedContentTokenCount": 512,
            "totalTokenCount": 1520,
            "promptTokensDetails": [
                {"modality": "TEXT", "tokenCount": 1000},
                {"modality": "AUDIO", "tokenCount": 200},
            ],
        },
    )
    body = chat_completion(row, model="gemini-2.5-flash", request_id="resp-a", created=CREATED)
    assert body == {
        "id": "chatcmpl-resp-a",
        "object": "chat.completion",
        "created": int(datetime(2027, 1, 15, 10, 0, 0, tzinfo=UTC).timestamp()),
        "model": "gemini-2.5-flash",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello",
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "length",
            }
        ],
        "usage": {
            "prompt_tokens": 1230,
            "completion_tokens": 290,
            "total_tokens": 1520,
            "prompt_tokens_details": {"cached_tokens": 512, "audio_tokens": 200},
            "completion_tokens_details": {
                "reasoning_tokens": 250,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "system_fingerprint": None,
        "service_tier": None,
    }


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("OTHER", "stop"),
        (None, "stop"),
    ],
)
def test_finish_reasons(reason, expected):
    row = gemini_row(
        "a", candidates=[{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]
    )
    body = chat_completion(row, model="m", request_id="r", created=CREATED)
    assert body["choices"][0]["finish_reason"] == expected


def test_function_calls_become_tool_calls():
    row = gemini_row(
        "a",
        candidates=[
            {
                "content": {
                    "parts": [
                        {"functionCall": {"name": "weather", "args": {"city": "Paris"}}},
                        {"functionCall": {"name": "now", "args": {}}},
                    ]
                },
                "finishReason": "STOP",
            }
        ],
    )
    choice = chat_completion(row, model="m", request_id="r1", created=CREATED)["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    calls = choice["message"]["tool_calls"]
    assert [(c["type"], c["function"]["name"]) for c in calls] == [
        ("function", "weather"),
        ("function", "now"),
    ]
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}
    assert len({c["id"] for c in calls}) == 2


def test_several_candidates_become_several_choices():
    row = gemini_row(
        "a",
        candidates=[
            {"index": 0, "content": {"parts": [{"text": "one"}]}, "finishReason": "STOP"},
            {"index": 1, "content": {"parts": [{"text": "two"}]}, "finishReason": "STOP"},
        ],
    )
    choices = chat_completion(row, model="m", request_id="r", created=CREATED)["choices"]
    assert [(c["index"], c["message"]["content"]) for c in choices] == [(0, "one"), (1, "two")]


def test_a_blocked_prompt_is_a_content_filter_choice():
    row = gemini_row("a", candidates=[], promptFeedback={"blockReason": "SAFETY"})
    choice = chat_completion(row, model="m", request_id="r", created=CREATED)["choices"][0]
    assert choice["finish_reason"] == "content_filter"
    assert choice["message"]["content"] is None and "SAFETY" in choice["message"]["refusal"]


def test_embedding_rows_of_both_layouts():
    gemini = {
        "custom_id": "e",
        "response": {
            "embedding": {"values": [0.5, -0.25]},
            "usageMetadata": {"promptTokenCount": 6},
        },
    }
    assert embedding_list([gemini], model="gemini-embedding-001") == {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}],
        "model": "gemini-embedding-001",
        "usage": {"prompt_tokens": 6, "total_tokens": 6},
    }
    text = {
        "instance": {"custom_id": "e", "content": "x", "encoding_format": "base64"},
        "predictions": [{"embeddings": {"values": [0.5, -0.25], "statistics": {"token_count": 3}}}],
        "status": "",
    }
    body = embedding_list([text], model="text-embedding-005")
    packed = base64.b64decode(body["data"][0]["embedding"])
    assert struct.unpack("<2f", packed) == (0.5, -0.25)
    assert body["usage"] == {"prompt_tokens": 3, "total_tokens": 3}


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("Bad Request: invalid argument", 400),
        ("Internal error while processing this row", 500),
        ("RESOURCE_EXHAUSTED: quota", 429),
        ("UNAVAILABLE: try again", 503),
        ("Deadline exceeded", 504),
    ],
)
def test_status_code_of_row_messages(message, code):
    assert status_code_of(message) == code


# --- the translator --------------------------------------------------------------------------


def run(rows, requests, state="JOB_STATE_SUCCEEDED", endpoint="/v1/chat/completions"):
    lines = {"output": [], "error": []}
    translator = Translator(
        batch_id="batch_x",
        model="gemini-2.5-flash",
        endpoint=endpoint,
        requests=requests,
        created=CREATED,
        emit=lambda kind, line: lines[kind].append(line),
    )
    for row in rows:
        translator.row(row if isinstance(row, (str, bytes)) else json.dumps(row))
    totals = translator.finish(state)
    return lines, totals


def requests_for(rows_by_id: dict) -> list[tuple[str, str]]:
    return [(cid, fingerprint(row["request"])) for cid, row in rows_by_id.items()]


def test_rows_out_of_order_come_back_once_each():
    rows = {f"id-{n}": gemini_row(f"id-{n}") for n in range(50)}
    shuffled = list(rows.values())
    random.Random(7).shuffle(shuffled)
    lines, totals = run([*shuffled, shuffled[3]], requests_for(rows))
    assert sorted(line["custom_id"] for line in lines["output"]) == sorted(rows)
    assert lines["error"] == []
    assert (totals.completed, totals.failed, totals.duplicate_rows) == (50, 0, 1)
    assert len({line["id"] for line in lines["output"]}) == 50
    assert totals.input_tokens == 150 and totals.output_tokens == 100


def test_a_failed_row_without_custom_id_is_matched_by_its_request():
    ok, failed = gemini_row("a"), gemini_row("b")
    failed_row = {"request": failed["request"], "status": "Internal error (simulated)"}
    lines, totals = run([failed_row, ok], requests_for({"a": ok, "b": failed}))
    [error] = lines["error"]
    assert error["custom_id"] == "b" and error["error"] is None
    assert error["response"]["status_code"] == 500
    assert error["response"]["body"]["error"] == {
        "message": "Internal error (simulated)",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    assert (totals.completed, totals.failed) == (1, 1)


def test_identical_requests_that_failed_without_ids_are_each_matched_once():
    same = gemini_row(None)
    requests = [("x", fingerprint(same["request"])), ("y", fingerprint(same["request"]))]
    failed = {"request": same["request"], "status": "Bad Request"}
    lines, _ = run([failed, failed], requests)
    assert sorted(e["custom_id"] for e in lines["error"]) == ["x", "y"]


def test_bad_rows_never_stop_the_others_and_missing_requests_get_error_lines():
    rows = {c: gemini_row(c) for c in ("a", "b", "c", "d")}
    broken = {"custom_id": "c", "status": "", "response": "not an object"}
    lines, totals = run(
        ["{truncated", rows["a"], broken, {"custom_id": "stranger", "status": ""}, rows["b"]],
        requests_for(rows),
        state="JOB_STATE_EXPIRED",
    )
    assert sorted(line["custom_id"] for line in lines["output"]) == ["a", "b"]
    by_id = {line["custom_id"]: line for line in lines["error"]}
    assert set(by_id) == {"c", "d"}
    assert by_id["c"]["response"]["status_code"] == 400
    assert by_id["d"]["response"] is None
    assert by_id["d"]["error"]["code"] == "batch_expired"
    assert (totals.completed, totals.failed, totals.unmatched_rows) == (2, 2, 1)


@pytest.mark.parametrize(
    ("state", "code"),
    [("JOB_STATE_CANCELLED", "batch_cancelled"), ("JOB_STATE_EXPIRED", "batch_expired")],
)
def test_requests_without_rows_name_how_the_job_ended(state, code):
    lines, _ = run([], [("a", "f")], state=state)
    assert lines["error"][0]["error"]["code"] == code
    assert lines["error"][0]["response"] is None


# The codes OpenAI documents for an error line (BatchRequestOutputError.code), written out here
# from OpenAI's API description, not taken from the code under test.
DOCUMENTED_CODES = {"batch_expired", "batch_cancelled", "request_timeout"}


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("JOB_STATE_FAILED", "The batch failed before this request ran."),
        ("JOB_STATE_SUCCEEDED", "Vertex AI returned no result for this request."),
    ],
)
def test_other_ends_are_server_errors_without_an_undocumented_code(state, message):
    lines, totals = run([], [("a", "f")], state=state)
    line = lines["error"][0]
    assert line["error"] is None
    assert line["response"]["status_code"] == 500
    assert line["response"]["body"]["error"] == {
        "message": message,
        "type": "server_error",
        "param": None,
        "code": None,
    }
    assert totals.failed == 1


def test_a_row_vertex_timed_out_is_request_timeout():
    row = {"custom_id": "a", "request": {}, "status": "DEADLINE_EXCEEDED: deadline exceeded"}
    lines, _ = run([row], [("a", "f")])
    assert lines["error"][0]["error"]["code"] == "request_timeout"
    assert lines["error"][0]["error"]["message"] == row["status"]


@pytest.mark.parametrize("state", ["JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED", "JOB_STATE_FAILED"])
def test_every_error_code_written_is_documented(state):
    rows = [
        {"custom_id": "a", "request": {}, "status": "INTERNAL: boom"},
        {"custom_id": "b", "request": {}, "status": "Bad Request: no"},
        {"custom_id": "c", "request": {}, "status": "504 Deadline Exceeded"},
    ]
    lines, _ = run(rows, [(c, "f") for c in "abcd"], state=state)
    codes = {(x["error"] or x["response"]["body"]["error"])["code"] for x in lines["error"]}
    assert codes - {None} <= DOCUMENTED_CODES


def test_text_embedding_rows_carry_the_custom_id_in_the_instance():
    row = {
        "instance": {"custom_id": "t1", "content": "hello"},
        "predictions": [{"embeddings": {"values": [0.1], "statistics": {"token_count": 2}}}],
        "status": "",
    }
    mark = request_fingerprint({"custom_id": "t1", "content": "hello"})
    lines, _ = run([row], [("t1", mark)], endpoint="/v1/embeddings")
    assert lines["output"][0]["custom_id"] == "t1"
    assert lines["output"][0]["response"]["body"]["data"][0]["embedding"] == [0.1]


def embedding_row(custom_id: str, index: int, values: list, tokens: int, status: str = "") -> dict:
    row = {"custom_id": custom_id, "input_index": index, "status": status}
    if not status:
        row["response"] = {
            "embedding": {"values": values},
            "usageMetadata": {"promptTokenCount": tokens},
        }
    return row


def test_the_texts_of_one_embeddings_request_come_back_as_one_line_in_input_order():
    requests = [("many", "f0"), ("many", "f1"), ("many", "f2"), ("one", "g0"), ("broken", "h0")]
    requests.append(("broken", "h1"))
    rows = [
        embedding_row("many", 2, [0.3], 5),
        embedding_row("one", 0, [0.9], 1),
        embedding_row("many", 0, [0.1], 2),
        embedding_row("broken", 1, [], 0, status="Bad Request: text too long"),
        embedding_row("many", 1, [0.2], 4),
        embedding_row("broken", 0, [0.5], 3),
    ]
    lines, totals = run(rows, requests, endpoint="/v1/embeddings")
    by_id = {line["custom_id"]: line for line in lines["output"]}
    assert by_id["many"]["response"]["body"]["data"] == [
        {"object": "embedding", "index": 0, "embedding": [0.1]},
        {"object": "embedding", "index": 1, "embedding": [0.2]},
        {"object": "embedding", "index": 2, "embedding": [0.3]},
    ]
    assert by_id["many"]["response"]["body"]["usage"] == {"prompt_tokens": 11, "total_tokens": 11}
    assert by_id["one"]["response"]["body"]["data"][0]["embedding"] == [0.9]
    [error] = lines["error"]
    assert error["custom_id"] == "broken"
    assert error["response"]["body"]["error"]["message"] == "Bad Request: text too long"
    assert (totals.completed, totals.failed) == (2, 1)


def test_an_embeddings_request_missing_a_text_row_is_an_error_line():
    requests = [("pair", "p0"), ("pair", "p1")]
    lines, totals = run(
        [embedding_row("pair", 0, [0.1], 2), embedding_row("pair", 7, [0.1], 2)],
        requests,
        state="JOB_STATE_CANCELLED",
        endpoint="/v1/embeddings",
    )
    assert lines["output"] == []
    assert lines["error"][0]["error"]["code"] == "batch_cancelled"
    assert (totals.failed, totals.unmatched_rows) == (1, 1)


# --- request counts while a batch runs (#26 item 3) -------------------------------------------


def counts(stats: dict, **doc) -> dict:
    from shared.openai.batches import _request_counts

    return _request_counts(doc, {"completion_stats": stats})


def test_an_embeddings_batch_counts_requests_not_texts():
    """The issue's case: 2 requests of 2,000 texts each once showed 4,000 completed."""
    doc = {"endpoint": "/v1/embeddings", "total": 2, "texts": 4000, "widest_request": 2000}
    assert counts({"successfulCount": "4000"}, **doc) == {"total": 2, "completed": 2, "failed": 0}
    # half the texts in: no request is proven done yet
    assert counts({"successfulCount": "2000"}, **doc)["completed"] == 0
    # one request whole (2,000) and one text of the other: still only the one proven
    assert counts({"successfulCount": "2001"}, **doc)["completed"] == 0
    assert counts({"successfulCount": "3999", "failedCount": "1"}, **doc) == {
        "total": 2,
        "completed": 1,
        "failed": 1,
    }


def test_a_chat_batch_counts_rows_as_requests():
    doc = {"endpoint": "/v1/chat/completions", "total": 5}
    stats = {"successfulCount": "3", "failedCount": "1"}
    assert counts(stats, **doc) == {"total": 5, "completed": 3, "failed": 1}


def test_counts_never_pass_the_total():
    doc = {"endpoint": "/v1/embeddings", "total": 3, "texts": 5, "widest_request": 3}
    for ok in range(6):
        for bad in range(6 - ok):
            c = counts({"successfulCount": str(ok), "failedCount": str(bad)}, **doc)
            assert c["completed"] >= 0 and c["failed"] >= 0
            assert c["completed"] + c["failed"] <= 3


def test_an_old_embeddings_batch_without_text_counts_shows_none_while_running():
    doc = {"endpoint": "/v1/embeddings", "total": 2}
    assert counts({"successfulCount": "4000"}, **doc) == {"total": 2, "completed": 0, "failed": 0}


def test_rows_with_lone_surrogates_or_deep_nesting_are_translated_or_counted_never_a_crash():
    """Issue #22 item 14: rows a key holder wrote into an unsealed output folder."""
    row = gemini_row("s")
    row["custom_id"] = "s"
    row["response"]["candidates"][0]["content"]["parts"][0]["text"] = "ok\ud800"
    lines, totals = run([json.dumps(row), "[" * 100_000], requests_for({"s": row}))
    [output] = lines["output"]
    assert output["custom_id"] == "s"
    assert output["response"]["body"]["choices"][0]["message"]["content"] == "ok\ud800"
    assert jsonl.dumps(output).endswith(b"\n") and b"\\ud800" in jsonl.dumps(output)
    assert totals.completed == 1
