"""The simulator's usage rule and row shapes: pure, so the cost code can rely on them."""

import json
from datetime import UTC, datetime

import pytest

from local.sim_rows import JobCache, expected_usage, model_family, output_row, shuffled
from local.vertex_sim import compile_filter
from shared.core.errors import ApiError

NOW = datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def request(text: str, **extra) -> dict:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}], **extra}


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gemini-2.5-flash", "gemini"),
        ("gemini-2.0-flash-001", "gemini"),
        ("gemini-2.5-flash-lite", "gemini"),
        ("text-embedding-005", "text-embedding"),
        ("text-multilingual-embedding-002", "text-embedding"),
        ("gemini-embedding-001", "gemini-embedding"),
        ("gemini-1.0-pro", None),
        ("gemini-2.5-flash-01", None),
        ("text-embedding-006", None),
    ],
)
def test_model_family(model, family):
    assert model_family(model) == family


def test_prompt_tokens_count_text_parts_and_system_instruction():
    usage = expected_usage(
        "gemini-2.0-flash",
        request("a" * 10, systemInstruction={"parts": [{"text": "b" * 7}]}),
    )
    assert usage["promptTokenCount"] == 5  # ceil(17 / 4)
    assert usage["promptTokensDetails"] == [{"modality": "TEXT", "tokenCount": 5}]
    assert "thoughtsTokenCount" not in usage
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]


def test_non_text_parts_are_counted_by_modality():
    req = {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "describe"},
                    {"fileData": {"fileUri": "gs://a/b.png", "mimeType": "image/png"}},
                    {"inlineData": {"data": "AAAA", "mimeType": "audio/mp3"}},
                ],
            }
        ]
    }
    details = expected_usage("gemini-2.5-pro", req)["promptTokensDetails"]
    assert details == [
        {"modality": "TEXT", "tokenCount": 2},
        {"modality": "IMAGE", "tokenCount": 258},
        {"modality": "AUDIO", "tokenCount": 258},
    ]


def test_candidates_are_deterministic_and_capped_by_max_output_tokens():
    free = expected_usage("gemini-2.0-flash", request("same"))
    assert free == expected_usage("gemini-2.0-flash", request("same"))
    assert 10 <= free["candidatesTokenCount"] < 100
    capped = expected_usage(
        "gemini-2.0-flash", request("same", generationConfig={"maxOutputTokens": 3})
    )
    assert capped["candidatesTokenCount"] == 3


def test_thinking_rules_per_model_and_budget():
    assert expected_usage("gemini-2.5-pro", request("x"))["thoughtsTokenCount"] >= 50
    assert "thoughtsTokenCount" in expected_usage("gemini-2.5-flash", request("x"))
    assert "thoughtsTokenCount" not in expected_usage("gemini-2.5-flash-lite", request("x"))
    off = request("x", generationConfig={"thinkingConfig": {"thinkingBudget": 0}})
    assert "thoughtsTokenCount" not in expected_usage("gemini-2.5-flash", off)
    small = request("x", generationConfig={"thinkingConfig": {"thinkingBudget": 7}})
    assert expected_usage("gemini-2.5-flash-lite", small)["thoughtsTokenCount"] == 7
    usage = expected_usage("gemini-2.5-flash", small)
    assert usage["totalTokenCount"] == (
        usage["promptTokenCount"] + usage["candidatesTokenCount"] + usage["thoughtsTokenCount"]
    )


def test_explicit_cached_content_fails_the_row_in_batch():
    line = json.dumps({"key": "a", "request": request("hi", cachedContent="cachedContents/1")})
    row, ok = output_row("gemini-2.5-flash", line, NOW)
    assert not ok
    assert "INVALID_ARGUMENT" in row["status"]
    assert "does not support cached content with batch prediction" in row["status"]
    assert "response" not in row


def test_implicit_cache_only_for_a_repeated_long_prefix():
    system = {"parts": [{"text": "s" * 4 * 2100}]}  # a 2,100-token shared prefix

    def asked(question, system_instruction=system):
        return {
            "contents": [{"role": "user", "parts": [{"text": question}]}],
            "systemInstruction": system_instruction,
        }

    cache = JobCache()
    first = expected_usage("gemini-2.5-pro", asked("q1"), cache)
    assert "cachedContentTokenCount" not in first  # the first occurrence is full price
    second = expected_usage("gemini-2.5-pro", asked("q2"), cache)
    assert second["promptTokenCount"] == 2100 + 1
    assert second["cachedContentTokenCount"] == 2048  # 2,100 rounded down to 256s
    # A prefix under 2,048 tokens never caches, repeated or not.
    short = {"parts": [{"text": "s" * 4 * 2000}]}
    for question in ("a", "b"):
        assert "cachedContentTokenCount" not in expected_usage(
            "gemini-2.5-pro", asked(question, short), cache
        )
    # A long prompt without a repeated prefix (one part, nothing shared) never caches.
    assert "cachedContentTokenCount" not in expected_usage(
        "gemini-2.5-pro", request("x" * 4 * 3000), cache
    )
    # 2.0 models get no implicit caching in batch.
    other = JobCache()
    for question in ("a", "b"):
        usage = expected_usage("gemini-2.0-flash", asked(question), other)
        assert "cachedContentTokenCount" not in usage


def test_embedding_usage_and_truncation():
    assert expected_usage("text-embedding-004", {"content": "abcde"}) == {
        "token_count": 2,
        "truncated": False,
    }
    assert expected_usage("text-embedding-004", {"content": "a" * 10000}) == {
        "token_count": 2048,
        "truncated": True,
    }
    gemb = {"content": {"parts": [{"text": "Hello World"}]}}
    assert expected_usage("gemini-embedding-001", gemb) == {
        "promptTokenCount": 3,
        "totalTokenCount": 3,
    }
    with pytest.raises(ValueError):
        expected_usage("nope", {})


def test_gemini_row_shape():
    line = {"id": 7, "request": request("hello")}
    row, ok = output_row("gemini-2.5-flash-001", json.dumps(line), NOW)
    assert ok
    assert row["id"] == 7 and row["request"] == line["request"] and row["status"] == ""
    assert row["processed_time"] == "2025-01-02T03:04:05.678+00:00"
    response = row["response"]
    assert response["modelVersion"] == "gemini-2.5-flash-001"
    assert response["createTime"] == "2025-01-02T03:04:05.678000Z"
    assert response["responseId"]
    assert response["usageMetadata"] == expected_usage("gemini-2.5-flash", line["request"])
    assert response["candidates"][0]["content"]["role"] == "model"


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("{not json", "{not json"),
        ("[1, 2]", "[1, 2]"),
        ('{"request": {"contents": []}}', {"contents": []}),
        ('{"other": 1}', {"other": 1}),
    ],
)
def test_malformed_gemini_lines_become_failed_rows(raw, kept):
    row, ok = output_row("gemini-2.5-flash", raw, NOW)
    assert not ok
    assert row["request"] == kept and row["status"] and "response" not in row
    assert row["processed_time"]


def test_failed_rows_keep_sibling_keys_and_carry_a_bad_request_status():
    line = {"key": "k-1", "custom_id": "c-9", "request": {"generationConfig": {}}}
    row, ok = output_row("gemini-2.5-flash", json.dumps(line), NOW)
    assert not ok
    assert row["key"] == "k-1" and row["custom_id"] == "c-9"
    assert row["request"] == {"generationConfig": {}} and "response" not in row
    prefix = "Bad Request: "
    assert row["status"].startswith(prefix)
    error = json.loads(row["status"][len(prefix) :])["error"]
    assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT"
    assert "contents" in error["message"]


def test_shuffled_is_a_deterministic_permutation_per_job():
    rows = list(range(50))
    first = shuffled(rows, "projects/p/locations/l/batchPredictionJobs/1")
    assert sorted(first) == rows and first != rows
    assert shuffled(rows, "projects/p/locations/l/batchPredictionJobs/1") == first
    assert shuffled(rows, "projects/p/locations/l/batchPredictionJobs/2") != first
    assert rows == list(range(50))


def test_forced_failure_and_embedding_rows():
    row, ok = output_row("gemini-2.0-flash", json.dumps({"request": request("x")}), NOW, "boom")
    assert (ok, row["status"]) == (
        False,
        'Internal Server Error: {"error": {"code": 500, "message": "boom", "status": "INTERNAL"}}',
    )
    row, ok = output_row("text-embedding-005", '{"content": "hi"}', NOW)
    assert ok and row["status"] == "" and row["instance"] == {"content": "hi"}
    values = row["predictions"][0]["embeddings"]["values"]
    assert len(values) == 8 and all(-1 <= value < 1 for value in values)
    row, ok = output_row("text-embedding-005", "garbage", NOW)
    assert not ok and row["instance"] == "garbage" and row["status"]
    line = {"request": {"content": {"parts": [{"text": "x"}]}, "embed_content_config": {}}}
    row, ok = output_row("gemini-embedding-001", json.dumps(line), NOW)
    assert ok and row["response"]["usageMetadata"]["promptTokenCount"] == 1
    row, ok = output_row("gemini-embedding-001", '{"request": {}}', NOW)
    assert not ok and row["request"] == {} and row["status"]


def test_list_filter_rejects_unknown_fields_and_parses_clauses():
    from google.cloud.aiplatform_v1.types import BatchPredictionJob, JobState

    pb = BatchPredictionJob.pb()(
        display_name="nightly-run", state=JobState.JOB_STATE_RUNNING, labels={"team": "ml"}
    )
    assert compile_filter('display_name:"nightly*"')(pb)
    assert compile_filter("state=3 AND labels.team=ml")(pb)
    assert compile_filter("NOT labels.team=ops")(pb)
    assert not compile_filter("labels.owner:*")(pb)
    assert compile_filter("labels.owner!=x")(pb)
    with pytest.raises(ApiError) as caught:
        compile_filter("nonsense")
    assert caught.value.code == 400
    with pytest.raises(ApiError):
        compile_filter("colour=red")


@pytest.mark.parametrize(
    "text",
    [
        "model=gemini-2.5-flash",  # not a documented filter field
        'update_time>"2025-01-01T00:00:00Z"',
        "state<3",  # state takes = and != only
        "model_display_name:gemini",  # = and != only
        'display_name>"a"',
        "labels.team:ml",  # labels.KEY: takes only *
    ],
)
def test_list_filter_rejects_what_vertex_rejects(text):
    with pytest.raises(ApiError) as caught:
        compile_filter(text)
    assert caught.value.code == 400


def test_list_filter_model_display_name():
    from google.cloud.aiplatform_v1.types import BatchPredictionJob

    pb = BatchPredictionJob.pb()(model="publishers/google/models/gemini-2.5-flash")
    assert compile_filter('model_display_name="gemini-2.5-flash"')(pb)
    assert not compile_filter("model_display_name=gemini-2.5-pro")(pb)
    assert compile_filter("modelDisplayName!=gemini-2.5-pro")(pb)


CALL = {"functionCall": {"name": "now"}}
SIGNED_CALL = {**CALL, "thoughtSignature": "skip_thought_signature_validator"}
ANSWER = {"functionResponse": {"name": "now", "response": {"content": "noon"}}}


def transcript(*model_parts, answers=1) -> dict:
    return {
        "contents": [
            {"role": "user", "parts": [{"text": "time?"}]},
            {"role": "model", "parts": list(model_parts)},
            {"role": "user", "parts": [ANSWER] * answers},
        ]
    }


def row_error(model: str, req: dict) -> str | None:
    row, ok = output_row(model, json.dumps({"request": req}), NOW)
    return (
        None if ok else json.loads(row["status"].removeprefix("Bad Request: "))["error"]["message"]
    )


def test_every_function_call_of_a_turn_is_answered_in_the_next_turn():
    assert row_error("gemini-2.5-flash", transcript(CALL, CALL, answers=2)) is None
    assert "number of function response parts" in row_error(
        "gemini-2.5-flash", transcript(CALL, CALL, answers=1)
    )


def test_gemini_3_wants_a_thought_signature_on_the_current_turns_first_call():
    assert row_error("gemini-2.5-flash", transcript(CALL)) is None
    assert "`now` in the 2. content block is missing a `thought_signature`" in row_error(
        "gemini-3.5-flash-lite", transcript(CALL)
    )
    assert row_error("gemini-3.5-flash-lite", transcript(SIGNED_CALL)) is None
    # only the current turn is checked: a new user text starts a turn
    older = transcript(CALL)
    older["contents"].append({"role": "user", "parts": [{"text": "and now?"}]})
    assert row_error("gemini-3.5-flash-lite", older) is None


@pytest.mark.parametrize("parts", ["text", 7, [7, "x"], None])
def test_function_turn_rules_survive_odd_parts(parts):
    req = {"contents": [{"role": "model", "parts": parts}, {"role": "user", "parts": parts}]}
    row, _ = output_row("gemini-3.5-flash-lite", json.dumps({"request": req}), NOW)
    assert row["request"] == req
