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

    uris = [f"gs://{storage_only['bucket']}/in/a.jsonl"]
    directory = f"gs://{storage_only['bucket']}/{folder}"
    # Read in chunks of 7 bytes: every line and row crosses chunk boundaries.
    lines = list(retry.input_lines(uris, chunk_size=7))
    assert [json.loads(x) for x in lines] == inputs
    found = list(retry.output_rows(directory, chunk_size=7))
    assert found == answers
    joined = rows.join([x.decode() for x in lines], found)
    assert (joined.failed, joined.missing, joined.succeeded) == ([0], [1], [2])
    # The streamed join says the same of each line: a failed row, none, a succeeded row.
    keys = retry.answer(retry.input_keys(uris, chunk_size=7), directory, chunk_size=7)
    assert list(keys.status) == [1, 0, 2]
