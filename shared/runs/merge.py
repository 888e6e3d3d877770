"""Merge one ended piece: its output rows, one per input line, in input order, in constant memory.

Vertex does not keep the input order; a row echoes its request, so rows are joined to lines
on the request, with the rules of `shared/jobs/rows.py` (the same key, `rows.line_key` /
`rows.request_key`; identical requests map one to one; a succeeded row is preferred to a
failed one for the same line). The whole piece is never held:

1. the piece's input lines are read once, keeping only an 8-byte key per line, sorted, with
   the line's position (about 24 bytes a line: 5 MB for 200,000 Gemini requests);
2. the output rows are read once (ranged reads); each is given the first free line with its
   key (a succeeded row may take a line a failed row held: that failed row then counts as
   unmatched) and written, tagged with that position, into one of `K` bucket objects by
   position range in the staging bucket, `K` chosen so that a bucket holds about
   `WINDOW_BYTES` (a piece whose rows fit in one window stays in memory instead);
3. bucket by bucket, in order, the rows are put in line order and written to the run's
   folder, `results-<piece>-of-<pieces>.jsonl` (the results files, in name order, are the
   whole input's answers in input order), beside the input read again as a stream: a line
   no row answered gets `{"request": ..., "status": "not processed: ..."}`.

Rows are copied byte for byte, so the merged files bill what the ledger billed (`vbg cost`
over them equals the books); rows no line asked for go to `unmatched-<piece>.jsonl`.
Idempotent: a second merge of the piece writes the same objects.
"""

import json
import time
from array import array
from dataclasses import dataclass
from typing import Any

from shared.core import clients, jsonl, logs
from shared.core.config import settings
from shared.cost import usage
from shared.jobs import rows
from shared.runs import store

# A window's rows are held as Python bytes with their positions (about twice their size):
# 16 MiB keeps the merge of any piece under ~60 MB beside one read chunk (measured with
# bench/bench_runs.py: 64 MiB windows and 8 parallel reads took on_job_event to 282 MB).
WINDOW_BYTES = 16 * 1024 * 1024
UPLOAD_CHUNK = 8 * 1024 * 1024


def _split(uri: str) -> tuple[str, str]:
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    return bucket, name


def lines(uri: str):
    """The object's non-blank lines, one ranged read of `usage.CHUNK_SIZE` in memory at a
    time (nothing when it is absent)."""
    bucket, name = _split(uri)
    blob = clients.storage().bucket(bucket).get_blob(name)
    if blob is None:
        return
    yield from jsonl.byte_records(usage.read_gcs_chunks(bucket, name, blob.generation))


def read_keys(input_uri: str) -> array:
    keys = array("Q")
    for raw in lines(input_uri):
        keys.append(rows.raw_line_key(raw))
    return keys


class Writer:
    """A streamed upload, opened on the first write."""

    def __init__(self, uri: str):
        self.uri = uri
        self._handle: Any = None
        self.count = 0

    def write(self, data: bytes) -> None:
        if self._handle is None:
            bucket, name = _split(self.uri)
            blob = clients.storage().bucket(bucket).blob(name, chunk_size=UPLOAD_CHUNK)
            self._handle = blob.open("wb", content_type="application/jsonl", ignore_flush=True)
        self._handle.write(data)
        self.count += 1

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


@dataclass
class Merged:
    succeeded: int = 0
    failed: int = 0
    not_processed: int = 0
    unmatched: int = 0
    result_uri: str = ""
    seconds: float = 0.0  # the merge's wall time (bench/bench_runs.py's merge throughput)

    def view(self) -> dict:
        return {
            "succeeded": self.succeeded,
            "failed": self.failed,
            "notProcessed": self.not_processed,
            "unmatched": self.unmatched,
            "notSucceeded": self.failed + self.not_processed,
            "resultUri": self.result_uri,
            "seconds": round(self.seconds, 3),
        }


def output_files(directory: str | None) -> list[tuple[str, int]]:
    """(uri, size) of the files that answer the job (`rows.answer_files`)."""
    if not directory:
        return []
    bucket, folder = _split(directory.rstrip("/") + "/")
    blobs = {b.name: int(b.size or 0) for b in clients.storage().list_blobs(bucket, prefix=folder)}
    return [(f"gs://{bucket}/{n}", blobs[n]) for n in rows.answer_files(list(blobs), folder)]


def _not_processed(raw: bytes, why: str) -> bytes:
    text = raw.decode("utf-8", "replace")
    try:
        request = rows.request_of(json.loads(text))
    except ValueError:
        request = text
    row = {"request": request, "status": f"not processed: {why}"}
    return json.dumps(row, ensure_ascii=False).encode() + b"\n"


def merge_piece(run: dict, piece: dict, job: dict | None, why: str = "") -> Merged:  # noqa: C901
    """Write the piece's results file (see the module docstring); the counts. A piece that
    never ran (`job` None: refused, or cancelled before it started) gets a "not processed"
    row for each line, saying `why`."""
    started = time.monotonic()
    index, total = piece["index"], run["pieces_total"]
    folder = run["output_directory"]
    if job is not None:
        why = "the job ended " + str(job.get("state") or "").removeprefix("JOB_STATE_")
    keys = rows.LineKeys(read_keys(piece["input_uri"]))
    files = output_files(job.get("output_directory")) if job is not None else []
    buckets = max(1, -(-sum(size for _, size in files) // WINDOW_BYTES))
    staging = settings().staging_bucket
    temp = [
        f"gs://{staging}/runs/{run['run_id']}/merge/{store.piece_id(index)}/{b:05d}.tsv"
        for b in range(buckets)
    ]
    held: list[list[bytes]] | None = [[] for _ in range(buckets)] if buckets == 1 else None
    sinks = [Writer(uri) for uri in temp] if held is None else []
    unmatched = Writer(folder + f"unmatched-{store.piece_id(index)}.jsonl")
    merged = Merged(result_uri=folder + f"results-{store.piece_id(index)}-of-{total:05d}.jsonl")
    for uri, _ in files:
        for raw in lines(uri):  # one chunk in memory at a time
            try:
                row = json.loads(raw)
            except ValueError:
                continue  # answers nothing; the ledger counted it malformed
            if not isinstance(row, dict):
                continue
            ok = not rows.failed(row)
            line, _ = keys.assign(rows.row_key(row), ok)
            if line is None:
                unmatched.write(raw + b"\n")
                continue
            tagged = b"%d\t%d\t" % (line, ok) + raw + b"\n"
            target = line * buckets // keys.n
            if held is not None:
                held[target].append(tagged)
            else:
                sinks[target].write(tagged)
    for sink in sinks:
        sink.close()
    out = Writer(merged.result_uri)
    inputs = lines(piece["input_uri"])
    line = 0
    for b in range(buckets):
        chosen: dict[int, tuple[int, bytes]] = {}
        for tagged in held[b] if held is not None else lines(temp[b]):
            position, flag, raw = tagged.split(b"\t", 2)
            at, good = int(position), int(flag)
            before = chosen.get(at)
            if before is None or (good and not before[0]):
                if before is not None:
                    unmatched.write(before[1] + b"\n")
                chosen[at] = (good, raw.rstrip(b"\n"))
            else:
                unmatched.write(raw.rstrip(b"\n") + b"\n")
        while line < keys.n and line * buckets // keys.n == b:
            source = next(inputs)
            found = chosen.pop(line, None)
            if found is None:
                out.write(_not_processed(source, why))
                merged.not_processed += 1
            else:
                out.write(found[1] + b"\n")
                if found[0]:
                    merged.succeeded += 1
                else:
                    merged.failed += 1
            line += 1
    out.close()
    unmatched.close()
    merged.unmatched = unmatched.count
    merged.seconds = time.monotonic() - started
    for uri in temp if held is None else []:
        bucket, name = _split(uri)
        try:
            clients.storage().bucket(bucket).blob(name).delete()
        except Exception as exc:
            logs.warning("merge bucket not deleted", uri=uri, error=repr(exc))
    return merged
