"""Match a job's output rows to its input lines, since Vertex does not keep the input order.

An output row echoes its request (`request` for Gemini, `instance` for text-embedding), so
rows and lines are joined on that request, compared as canonical JSON. Identical requests
are interchangeable: each one takes the next unused output row with the same request, so
duplicates map one to one. Pure functions: the retry route and `vbg run` use them alike.
"""

import hashlib
import json
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.core import json_text


def request_of(line: object) -> object:
    """The part of an input line (or output row) Vertex echoes: `request`, or the whole
    line for instance-per-line models (text-embedding)."""
    if isinstance(line, dict):
        if "request" in line:
            return line["request"]
        if "instance" in line:
            return line["instance"]
    return line


def request_key(value: object) -> str:
    """A short, order-insensitive fingerprint of a request (memory stays small)."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def line_key(raw_line: str) -> str:
    """The key of one input line; a line that is not JSON is keyed by its own text, which is
    what Vertex echoes for it."""
    try:
        return request_key(request_of(json_text.loads(raw_line, surrogates=True)))
    except ValueError:
        return request_key(raw_line.strip())


def answer_files(names: list[str], folder: str) -> list[str]:
    """Of the object names under a job's output directory `folder` (bucket-relative, with a
    trailing slash), those whose rows answer the job: the final `predictions*.jsonl` files
    when there are any, else the incremental files a cancelled or expired job left
    (`shared/jobs/finalize.py` decides which is which, as for pricing)."""
    from shared.jobs.finalize import FINAL, INCREMENTAL, output_file

    kinds = {name: output_file(name) for name in names}
    ours = {name: kind[0] for name, kind in kinds.items() if kind and kind[1] == folder}
    finals = sorted(name for name, kind in ours.items() if kind == FINAL)
    return finals or sorted(name for name, kind in ours.items() if kind == INCREMENTAL)


def failed(row: dict) -> bool:
    """A row with a non-empty `status` failed (Vertex's convention)."""
    return bool(row.get("status"))


@dataclass
class Joined:
    """Input positions and their output rows; `missing` are positions no row answered."""

    rows: list[dict | None]
    unmatched: list[dict] = field(default_factory=list)  # rows no input line asked for

    @property
    def missing(self) -> list[int]:
        return [i for i, row in enumerate(self.rows) if row is None]

    @property
    def failed(self) -> list[int]:
        return [i for i, row in enumerate(self.rows) if row is not None and failed(row)]

    @property
    def succeeded(self) -> list[int]:
        return [i for i, row in enumerate(self.rows) if row is not None and not failed(row)]


def join(input_lines: list[str], output_rows: Iterable[dict]) -> Joined:
    """Each input line's output row (or None), in input order.

    Among rows with the same request, succeeded rows are handed out before failed ones, so
    a line asked twice, once failed and once answered, counts one answer and one failure
    whichever order the files hold them in.
    """
    pending: dict[str, deque[int]] = defaultdict(deque)
    for index, raw in enumerate(input_lines):
        pending[line_key(raw)].append(index)
    result: list[dict | None] = [None] * len(input_lines)
    unmatched: list[dict] = []
    deferred: list[tuple[str, dict]] = []
    for row in output_rows:
        key = request_key(request_of(row))
        if failed(row):
            deferred.append((key, row))
            continue
        if pending.get(key):
            result[pending[key].popleft()] = row
        else:
            unmatched.append(row)
    for key, row in deferred:
        if pending.get(key):
            result[pending[key].popleft()] = row
        else:
            unmatched.append(row)
    return Joined(result, unmatched)
