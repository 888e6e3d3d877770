"""What makes Vertex fail a whole batch job at import, and its per-job limits: a pure check.

Vertex loads a JSONL input through a BigQuery-style importer that infers one schema for the
whole input. A line that breaks that schema fails the entire job (JOB_STATE_FAILED,
`error {code: 3, message: "Failed to import data ..."}`) after it waited in the queue,
instead of failing one row. The rules below (issue #11 item 6, from captures of real jobs
and BigQuery's documented JSON load rules; the exact BigQuery messages are not reproduced):

- a line that is not valid JSON, or not a JSON object;
- one field with different JSON types on different lines (or within one array): string,
  number, boolean, object and array are each their own type; `null` fits any type. Paths
  name array elements with `[]`, e.g. `request.contents[].parts`;
- objects nested deeper than 15 levels (the row is level 0, each object inside adds one,
  arrays add none: BigQuery's limit of 15 nested RECORD levels);
- a field name containing `$` or whitespace (e.g. JSON-schema `$defs` or `$ref` inside a
  `responseSchema`);
- an empty object `{}` anywhere, the whole line included.

Vertex's per-job limits (rows, bytes) are the catalog's, read by `shared/jobs/job_limits.py`;
`InputCheck.limit_problems` words them as the importer's problems (the simulator's view).

The check streams: feed it the bytes of each input object in order (`start_file`, `feed`,
`end_file`); memory holds one line, the first `max_problems` problems and the types of at
most `MAX_TRACKED_FIELDS` field paths (beyond that, new paths are not type-checked).
Whoever reads the inputs (the simulator, the gateway's create path, sealing) can feed it.
"""

import re
from dataclasses import dataclass

import msgspec

from shared.core import json_text

MAX_NESTING = 15
MAX_PROBLEMS = 5
MAX_TRACKED_FIELDS = 10_000
IMPORT_FAILED = "Failed to import data"


@dataclass(frozen=True)
class Problem:
    file: str
    line: int  # 1-based; 0 for a problem of the whole input
    reason: str

    def __str__(self) -> str:
        return f"{self.file} line {self.line}: {self.reason}" if self.line else self.reason


_KIND = {
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
}
_NESTED = frozenset({"an object", "an array"})
_BAD_NAME = re.compile(r"[$\s]")


class InvalidJson:
    """A line that is not JSON, with json's reason."""

    def __init__(self, error: str):
        self.error = error


UNPARSED = object()


def decode(raw: bytes):
    """One line's JSON value (msgspec, the fast path), or `InvalidJson` with json's reason."""
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):  # msgspec recurses too: deep nesting
        try:
            return json_text.loads(raw, surrogates=True)  # deep nesting: a ValueError too
        except ValueError as exc:
            return InvalidJson(str(exc))


class InputCheck:
    """Vertex's import rules over the lines of a job's input files, streamed."""

    def __init__(self, max_problems: int = MAX_PROBLEMS):
        self.max_problems = max_problems
        self.problems: list[Problem] = []
        self.rows = 0
        self.bytes = 0
        self.complete = True
        self._fields: dict[str, tuple[str, str, int]] = {}
        self._good_names: set[str] = set()
        self._file = ""
        self._lineno = 0
        self._rest = b""

    @property
    def full(self) -> bool:
        return len(self.problems) >= self.max_problems

    def start_file(self, name: str) -> None:
        self._file, self._lineno, self._rest = name, 0, b""

    def feed(self, chunk: bytes) -> None:
        self.bytes += len(chunk)
        lines = (self._rest + chunk).split(b"\n")
        self._rest = lines.pop()
        for line in lines:
            self.line(line)

    def end_file(self, complete: bool = True) -> None:
        """`complete=False`: only a head of the file was fed; its cut last line is dropped."""
        if complete and self._rest:
            self.line(self._rest)
        self.complete = self.complete and complete
        self._rest = b""

    @property
    def lineno(self) -> int:
        """The number of the last line fed (1-based, blank lines counted)."""
        return self._lineno

    def line(self, raw: bytes, parsed=UNPARSED) -> None:
        """One line; `parsed`: its value when the caller already decoded it (`decode`)."""
        self._lineno += 1
        if not raw.strip():
            return
        self.rows += 1
        if self.full:
            return
        reason = self._line_problem(raw, parsed)
        if reason:
            self.problems.append(Problem(self._file, self._lineno, reason))

    def too_long(self, size: int, limit: int) -> None:
        """A line over Vertex's per-request size, which the reader did not hold."""
        self._lineno += 1
        self.rows += 1
        if not self.full:
            reason = f"the line is {size:,} bytes; Vertex takes at most {limit:,} per request"
            self.problems.append(Problem(self._file, self._lineno, reason))

    def _line_problem(self, raw: bytes, parsed=UNPARSED) -> str | None:
        row = decode(raw) if parsed is UNPARSED else parsed
        if isinstance(row, InvalidJson):
            return f"not valid JSON ({row.error})"
        if not isinstance(row, dict):
            return "not a JSON object"
        if not row:
            return "an empty object {}"
        return self._walk(row)

    def _walk(self, row: dict) -> str | None:
        """Depth-first over the row's objects and arrays (iterative: rows are hostile)."""
        good_names = self._good_names
        stack = [(row, "", 0)]
        while stack:
            value, path, level = stack.pop()
            if type(value) is dict:
                if level > MAX_NESTING:
                    return f"`{path}` is nested {level} levels deep (Vertex allows {MAX_NESTING})"
                if not value and path:
                    return f"`{path}` is an empty object {{}}"
                prefix = path + "." if path else ""
                for name, child in value.items():
                    if name not in good_names:
                        if _BAD_NAME.search(name):
                            return f"field name {name!r} contains `$` or whitespace"
                        if len(good_names) < MAX_TRACKED_FIELDS:
                            good_names.add(name)
                    kind = _KIND.get(type(child))
                    if kind is not None:  # null fits any type
                        reason = self._typed(prefix + name, kind)
                        if reason:
                            return reason
                        if kind in _NESTED:
                            stack.append((child, prefix + name, level + 1))
            else:  # an array: its elements share one path and must share one type
                child_path = path + "[]"
                kinds = dict.fromkeys(
                    kind for child in value if (kind := _KIND.get(type(child))) is not None
                )
                for kind in kinds:
                    reason = self._typed(child_path, kind)
                    if reason:
                        return reason
                if kinds.keys() & _NESTED:
                    stack.extend((child, child_path, level) for child in value if child)
        return None

    def _typed(self, path: str, kind: str) -> str | None:
        seen = self._fields.get(path)
        if seen is None:
            if len(self._fields) < MAX_TRACKED_FIELDS:
                self._fields[path] = (kind, self._file, self._lineno)
            return None
        if seen[0] == kind:
            return None
        where = f"line {seen[2]}" if seen[1] == self._file else f"{seen[1]} line {seen[2]}"
        return f"`{path}` is {kind} here but {seen[0]} on {where}"

    def limit_problems(self, limits, model: str, total_bytes: int) -> list[Problem]:
        """`limits` (a `job_limits.JobLimits`) as problems; rows are judged only when every
        byte was fed."""
        rows = self.rows if self.complete else None
        return [
            Problem("", 0, f"{over}; a {model} batch job takes at most {limit:,}: split it")
            for _, limit, over in limits.problems(rows=rows, size=total_bytes)
        ]


def describe(problems: list[Problem]) -> str:
    return "; ".join(str(p) for p in problems)
