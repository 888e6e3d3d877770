"""Match a job's output rows to its input lines, since Vertex does not keep the input order.

An output row echoes its request (`request` for Gemini, `instance` for text-embedding), so
rows and lines are joined on that request, compared as canonical JSON. Identical requests
are interchangeable: each one takes the next unused output row with the same request, so
duplicates map one to one. Pure functions: the retry route and `vbg run` use them alike.

`LineKeys` is the same join in constant memory per line, for inputs too large to hold: each
line kept as an 8-byte key (about 21 bytes a line with its cursors), the rows streamed past
it (a job's retry, shared/jobs/retry.py; a run's merge, shared/runs/merge.py).
"""

import bisect
import hashlib
import json
from array import array
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


# --- the join in constant memory per line ---------------------------------------------------


def raw_line_key(raw: bytes) -> int:
    """`line_key` of one input line as read (bytes), cut to 64 bits."""
    return int(line_key(raw.decode("utf-8", "replace"))[:16], 16)


def row_key(row: dict) -> int:
    """The 64-bit key of the request an output row echoes (matches `raw_line_key`)."""
    return int(request_key(request_of(row))[:16], 16)


class LineKeys:
    """Each input line's key, sorted, with per-key cursors: which line a row answers.

    `status[i]` says what line `i` got: 0 no row, 1 a failed row, 2 a succeeded row. As in
    `join`, a succeeded row is preferred: it takes a line a failed row held when no line with
    its request is free (that failed row then answers nothing)."""

    def __init__(self, keys: array):
        self.n = len(keys)
        order = sorted(range(self.n), key=keys.__getitem__)
        self.order = array("I", order)
        self.keys = array("Q", (keys[i] for i in order))
        del order
        self.status = bytearray(self.n)  # 0 free, 1 a failed row, 2 a succeeded row
        self.taken = array("I", bytes(4 * self.n))  # per run of equal keys: lines handed out
        self.swept = array("I", bytes(4 * self.n))  # per run: lines checked for a failed row

    def assign(self, key: int, ok: bool) -> tuple[int | None, bool]:
        """(line, displaced): the line this row answers (None: no line asked for it) and
        whether it took the line from a failed row."""
        start = bisect.bisect_left(self.keys, key)
        if start == self.n or self.keys[start] != key:
            return None, False
        nxt = start + self.taken[start]
        if nxt < self.n and self.keys[nxt] == key:
            self.taken[start] += 1
            line = self.order[nxt]
            self.status[line] = 2 if ok else 1
            return line, False
        if not ok:
            return None, False
        at = start + self.swept[start]
        while at < self.n and self.keys[at] == key:
            line = self.order[at]
            self.swept[start] += 1
            at += 1
            if self.status[line] == 1:
                self.status[line] = 2
                return line, True
        return None, False
