"""A retry reads its parent's input and output lines split at "\n" alone (issue #22 item 11):
prompts holding U+2028, U+2029 or U+0085 (raw, as Vertex and the simulator write them back)
stay one line each, so the retry file holds exactly the failed lines, intact."""

import json

from shared.core import clients
from shared.jobs import retry, rows

TEXTS = ["one\u2028two", "three\u2029four", "five\x85six"]


def line(text: str) -> dict:
    return {"request": {"contents": [{"role": "user", "parts": [{"text": text}]}]}}


def test_the_failed_lines_of_a_job_whose_prompts_hold_line_separators(storage_only):
    bucket = clients.storage().bucket(storage_only["bucket"])
    inputs = [line(text) for text in TEXTS]
    bucket.blob("in/a.jsonl").upload_from_string(
        "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in inputs).encode()
    )
    folder = "out/prediction-model-2027-01-01T00:00:00.000000Z"
    answers = [
        {**inputs[2], "status": "", "response": {"candidates": []}},
        {**inputs[0], "status": "Bad Request: {}"},
    ]
    bucket.blob(f"{folder}/predictions.jsonl").upload_from_string(
        "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in answers).encode()
    )

    lines = retry.input_lines([f"gs://{storage_only['bucket']}/in/a.jsonl"])
    assert [json.loads(x) for x in lines] == inputs
    found = list(retry.output_rows(f"gs://{storage_only['bucket']}/{folder}"))
    assert found == answers
    joined = rows.join(lines, found)
    assert (joined.failed, joined.missing, joined.succeeded) == ([0], [1], [2])
