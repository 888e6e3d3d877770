"""Joining output rows to input lines on the request: order, duplicates, failures, gaps."""

import json
import random

from shared.jobs import rows


def line(text: str, **extra) -> str:
    return json.dumps({"request": {"contents": [{"parts": [{"text": text}]}], **extra}})


def answer(raw: str, text: str) -> dict:
    return {"request": json.loads(raw)["request"], "status": "", "response": {"text": text}}


def failure(raw: str) -> dict:
    return {"request": json.loads(raw)["request"], "status": "Internal error"}


def test_rows_shuffled_come_back_in_input_order():
    lines = [line(f"q{i}") for i in range(200)]
    outputs = [answer(raw, f"a{i}") for i, raw in enumerate(lines)]
    random.Random(7).shuffle(outputs)
    joined = rows.join(lines, outputs)
    assert [r["response"]["text"] for r in joined.rows] == [f"a{i}" for i in range(200)]
    assert joined.missing == [] and joined.failed == [] and joined.unmatched == []


def test_identical_requests_map_one_to_one():
    lines = [line("same"), line("other"), line("same"), line("same")]
    outputs = [answer(lines[0], "x"), answer(lines[1], "y"), answer(lines[0], "z")]
    joined = rows.join(lines, outputs)
    assert [r and r["response"]["text"] for r in joined.rows] == ["x", "y", "z", None]
    assert joined.missing == [3]
    assert len({id(r) for r in joined.rows if r}) == 3


def test_answers_go_before_failures_of_the_same_request():
    lines = [line("dup"), line("dup")]
    outputs = [failure(lines[0]), answer(lines[0], "ok")]
    joined = rows.join(lines, outputs)
    assert joined.succeeded == [0] and joined.failed == [1]


def test_key_order_inside_a_request_does_not_matter():
    raw = '{"request": {"b": 1, "a": {"y": 2, "x": 1}}}'
    echoed = {"request": {"a": {"x": 1, "y": 2}, "b": 1}, "status": ""}
    assert rows.join([raw], [echoed]).rows == [echoed]


def test_rows_no_line_asked_for_are_unmatched_not_placed():
    lines = [line("asked")]
    stray = answer(line("never asked"), "?")
    joined = rows.join(lines, [stray])
    assert joined.rows == [None] and joined.unmatched == [stray]


def test_embedding_instances_and_lines_that_are_not_json():
    lines = ['{"content": "hello"}', "not json at all"]
    outputs = [
        {"instance": {"content": "hello"}, "predictions": [{"embeddings": {}}]},
        {"request": "not json at all", "status": "Invalid JSON in input line"},
    ]
    joined = rows.join(lines, outputs)
    assert joined.succeeded == [0] and joined.failed == [1]


def test_answer_files_are_the_final_set_else_the_incremental_one():
    folder = "out/prediction-model-2026-01-01T00:00:00.000000Z/"
    incremental = [
        f"{folder}incremental_predictions/predictions_0001.jsonl",
        f"{folder}incremental_predictions/predictions_0000.jsonl",
    ]
    finals = [f"{folder}predictions_00002.jsonl", f"{folder}predictions_00001.jsonl"]
    other = [f"{folder}errors.txt", "out/prediction-model-other/predictions.jsonl"]
    assert rows.answer_files(incremental + finals + other, folder) == sorted(finals)
    assert rows.answer_files(incremental + other, folder) == sorted(incremental)
    assert rows.answer_files(other, folder) == []
