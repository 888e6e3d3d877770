"""`:retryFailed` of a run: a new run of every line that did not succeed, across every piece.

Each piece's results file holds one row per input line, in line order (shared/runs/
merge.py), so a piece's sealed input and its results file are read side by side as two
streams: a line whose row failed, or was never processed, is copied as written into the
retry's input (`gs://<staging>/runs/<run id>/retries/<random>.jsonl`, streamed: memory
holds one line of each). The new run is created like any run, for the run's owner, with its
model, labels and output folder, and `retry_of` naming the parent (the parent's `retries`
names the child); its inputs are the gateway's own file (`Door.RETRY`), so only the output
folder is held to the key's prefixes again.
"""

import json
import secrets

from google.cloud import firestore

from shared.core.config import settings
from shared.core.errors import ApiError
from shared.jobs import create_request
from shared.runs import create, drive, store
from shared.runs import merge as merged_files


def failed_precondition(message: str) -> ApiError:
    return ApiError(400, message, status="FAILED_PRECONDITION")


def _row_failed(raw: bytes) -> bool:
    try:
        row = json.loads(raw)
    except ValueError:
        return True
    return not isinstance(row, dict) or bool(row.get("status"))


def retry_failed(run: dict, *, max_concurrent: int | None = None) -> create.Created:
    """Create the retry run of a terminal run, or say why there is nothing to retry."""
    run_id = run["run_id"]
    if not run.get("terminal"):
        raise failed_precondition(
            f"Run {run_id} is {run.get('state')}: retry its failed rows once it has ended "
            "(or cancel it first)."
        )
    staging = settings().staging_bucket
    name = f"runs/{run_id}/retries/{secrets.token_hex(8)}.jsonl"
    writer = merged_files.Writer(f"gs://{staging}/{name}")
    for piece in store.pieces(run_id):
        result = (piece.get("merge") or {}).get("resultUri")
        if not result:
            continue
        answers = merged_files.lines(result)
        for line in merged_files.lines(piece["input_uri"]):
            answer = next(answers, None)
            if answer is None or _row_failed(answer):
                writer.write(line + b"\n")
    writer.close()
    if writer.count == 0:
        raise failed_precondition(f"Run {run_id} has no failed or unprocessed rows.")
    body = {
        "displayName": f"{run.get('display_name') or run_id} (retry)"[:128],
        "model": run["model"],
        "inputConfig": {
            "instancesFormat": "jsonl",
            "gcsSource": {"uris": [f"gs://{staging}/{name}"]},
        },
        "outputConfig": {
            "predictionsFormat": "jsonl",
            "gcsDestination": {"outputUriPrefix": run["client_output_prefix"]},
        },
        "labels": dict(run.get("labels") or {}),
    }
    made = create.create_run(
        caller=drive.owner_caller(run),
        body=body,
        max_concurrent=max_concurrent or run.get("max_concurrent"),
        door=create_request.Door.RETRY,
        retry_of=run_id,
    )
    store.update(run_id, retries=firestore.ArrayUnion([made.run["run_id"]]))
    return made
