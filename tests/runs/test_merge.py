"""Merging a piece: rows joined to lines in input order, one to one, in bounded memory."""

import json
import random
from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core import clients
from shared.jobs import rows
from shared.jobs.rows import LineKeys
from shared.runs import merge


def key_of(line: str) -> int:
    return rows.raw_line_key(line.encode())


def test_line_keys_hand_out_identical_requests_one_to_one():
    lines = [json.dumps({"request": {"n": n % 3}}) for n in range(7)]  # 0,1,2,0,1,2,0
    keys = LineKeys(array("Q", [key_of(x) for x in lines]))
    zero = key_of(lines[0])
    got = [keys.assign(zero, True) for _ in range(4)]
    assert [line for line, _ in got] == [0, 3, 6, None]  # the fourth answer matches no line
    assert keys.assign(key_of('{"request": {"n": 9}}'), True) == (None, False)


def test_a_succeeded_row_takes_a_line_a_failed_row_held():
    lines = [json.dumps({"request": "same"})] * 2
    keys = LineKeys(array("Q", [key_of(x) for x in lines]))
    same = key_of(lines[0])
    assert keys.assign(same, False) == (0, False)
    assert keys.assign(same, False) == (1, False)
    assert keys.assign(same, False) == (None, False)  # a third failure: no line
    assert keys.assign(same, True) == (0, True)  # displaces the failure on line 0
    assert keys.assign(same, True) == (1, True)
    assert keys.assign(same, True) == (None, False)


@settings(max_examples=60, deadline=None)
@given(
    requests=st.lists(st.integers(0, 4), min_size=1, max_size=30),
    extra=st.lists(st.integers(0, 6), max_size=10),
    failed=st.sets(st.integers(0, 40)),
    seed=st.integers(0, 1000),
)
def test_counts_match_the_join_of_rows_py(requests, extra, failed, seed):
    """Whatever the order, the streaming assignment answers as many lines, with as many
    successes and failures, as `rows.join` (the rule both follow)."""
    lines = [json.dumps({"request": {"q": q}}) for q in requests]
    outputs = [
        {"request": {"q": q}, "status": "error" if i in failed else ""}
        for i, q in enumerate(requests + extra)
    ]
    random.Random(seed).shuffle(outputs)
    joined = rows.join(lines, outputs)
    keys = LineKeys(array("Q", [key_of(x) for x in lines]))
    holder: dict[int, bool] = {}
    for row in outputs:
        ok = not rows.failed(row)
        line, _ = keys.assign(rows.row_key(row), ok)
        if line is not None:
            holder[line] = holder.get(line, False) or ok
    assert sum(holder.values()) == len(joined.succeeded)
    assert sum(1 for ok in holder.values() if not ok) == len(joined.failed)
    assert len(lines) - len(holder) == len(joined.missing)
    # `status` says the same per line (what a job's retry reads, shared/jobs/retry.py).
    assert keys.status.count(2) == len(joined.succeeded)
    assert keys.status.count(1) == len(joined.failed)
    assert keys.status.count(0) == len(joined.missing)


def write(bucket, name, lines):
    data = "".join(x + "\n" for x in lines).encode()
    clients.storage().bucket(bucket).blob(name).upload_from_string(data)
    return f"gs://{bucket}/{name}"


@pytest.mark.parametrize("window", [merge.WINDOW_BYTES, 700])
def test_merge_piece_writes_rows_in_input_order(storage_only, monkeypatch, window):
    """In memory (one window) and through the staging buckets (a window of 700 bytes: many
    buckets), the same file: every line once, in order, answers byte for byte."""
    bucket = storage_only["bucket"]
    monkeypatch.setenv("VBG_STAGING_BUCKET", bucket)
    monkeypatch.setattr(merge, "WINDOW_BYTES", window)
    from tests.support import reset_process

    reset_process()
    lines = [
        json.dumps(
            {"request": {"contents": [{"parts": [{"text": f"t{n % 17}" if n != 5 else "unique"}]}]}}
        )
        for n in range(60)
    ]
    piece_input = write(bucket, "runs/r/pieces/00000.jsonl", lines)
    outputs = [
        json.dumps({"request": json.loads(x)["request"], "status": "", "response": {"n": i}})
        for i, x in enumerate(lines)
        if i != 5  # line 5 never answered
    ]
    outputs.append(json.dumps({"request": {"stray": True}, "status": "", "response": {}}))
    random.Random(1).shuffle(outputs)
    write(bucket, "runs/r/outputs/00000/prediction-model-1/predictions.jsonl", outputs)
    run = {
        "run_id": "run-0000000000000000",
        "pieces_total": 2,
        "output_directory": f"gs://{bucket}/out/r/",
    }
    piece = {"index": 0, "input_uri": piece_input}
    job = {
        "state": "JOB_STATE_SUCCEEDED",
        "output_directory": f"gs://{bucket}/runs/r/outputs/00000/prediction-model-1",
    }
    merged = merge.merge_piece(run, piece, job)
    assert merged.result_uri == f"gs://{bucket}/out/r/results-00000-of-00002.jsonl"
    text = (
        clients.storage()
        .bucket(bucket)
        .blob("out/r/results-00000-of-00002.jsonl")
        .download_as_text()
    )
    got = [json.loads(x) for x in text.splitlines()]
    assert [g["request"] for g in got] == [json.loads(x)["request"] for x in lines]
    assert got[5]["status"] == "not processed: the job ended SUCCEEDED"
    assert (merged.succeeded, merged.failed, merged.not_processed, merged.unmatched) == (
        59,
        0,
        1,
        1,
    )
    answered = sorted(g["response"]["n"] for g in got if "response" in g)
    assert answered == [n for n in range(60) if n != 5]  # every row once, none twice
    stray = clients.storage().bucket(bucket).blob("out/r/unmatched-00000.jsonl").download_as_text()
    assert json.loads(stray)["request"] == {"stray": True}
    leftovers = list(clients.storage().list_blobs(bucket, prefix="runs/r/merge/"))
    assert leftovers == []


def test_a_piece_that_never_ran_is_all_not_processed(storage_only, monkeypatch):
    bucket = storage_only["bucket"]
    monkeypatch.setenv("VBG_STAGING_BUCKET", bucket)
    from tests.support import reset_process

    reset_process()
    piece_input = write(bucket, "runs/r/pieces/00001.jsonl", ['{"request": {"a": 1}}', "not json"])
    run = {
        "run_id": "run-0000000000000000",
        "pieces_total": 2,
        "output_directory": f"gs://{bucket}/o/",
    }
    merged = merge.merge_piece(run, {"index": 1, "input_uri": piece_input}, None, "cancelled")
    text = (
        clients.storage().bucket(bucket).blob("o/results-00001-of-00002.jsonl").download_as_text()
    )
    assert [json.loads(x) for x in text.splitlines()] == [
        {"request": {"a": 1}, "status": "not processed: cancelled"},
        {"request": "not json", "status": "not processed: cancelled"},
    ]
    assert merged.not_processed == 2 and merged.unmatched == 0
