"""One streaming pass over what Vertex will read: every line of the sealed copies, once.

After the inputs are sealed, `read` reads each line of the copies (ranged reads of 8 MiB;
memory holds one chunk and at most one line of `MAX_REQUEST_BYTES`, whatever the input's
size) and, on the one parse of each line:

- checks Vertex's whole-job import rules (`input_rules.InputCheck`) over the sealed bytes,
  every line of them (its job limits: `shared/jobs/job_limits.py`, from the rows counted);
- checks every object URI the request names (`UriRule`): any field whose name ends in
  `uri`/`url` (`fileData.fileUri` in `contents`, `systemInstruction` or a function
  response; `gcsUri` of a multimodal embedding instance; ...) holding a `gs://` URI or a GCS
  https URL must lie in the key's input prefixes, and never in the gateway's staging
  bucket (not even for the master key): Vertex reads it with its service agent, which can
  read every bucket the gateway uses. A refusal is a 403 naming the line and the field;
- estimates every row exactly (`cost/estimate.py`), media by kind and size
  (`cost/media_tokens.py`; a referenced object's size and first 64 KiB are read once per
  distinct URI, up to `MAX_MEDIA_LOOKUPS` a create);
- refuses a line over `MAX_REQUEST_BYTES`, Vertex's per-request size (400).

Referenced media are checked, not sealed and not pinned: Vertex's `fileData` takes no
generation, so pinning is impossible without a copy, and copying every object a request
names would make a create's time and storage unbounded (the media can be terabytes). A
swap after the create cannot move a request outside the key's prefixes; it can change the
media's size, which the books bill from Vertex's own usage and the live budget stop bounds.
"""

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from shared.core import clients, gcs_paths, jsonl, logs
from shared.core.config import settings
from shared.core.errors import ApiError
from shared.core.keys import Caller
from shared.cost import estimate, media_tokens
from shared.jobs import input_rules

# Vertex's per-request size, read as 20 MiB (see docs/http-api.md: the sourced figure is the
# 20 MB request limit of the Vertex AI Gemini API from Firebase; batch is inferred to match).
MAX_REQUEST_BYTES = 20 * 1024 * 1024
MAX_MEDIA_LOOKUPS = 1000
MAX_REFUSALS = 5
GCS_HOSTS = ("storage.googleapis.com", "storage.cloud.google.com")
_VIRTUAL_HOST = re.compile(r"https?://([^/]+)\.storage\.googleapis\.com/(.*)", re.IGNORECASE | re.S)


@dataclass(frozen=True)
class UriRefusal:
    file: str
    line: int
    field: str
    uri: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file} line {self.line}: `{self.field}` names {self.uri}: {self.reason}"


def object_uri(value: str) -> str | None:
    """The gs:// form of a string that names a GCS object (gs://, or a GCS https URL)."""
    text = value.strip()
    lowered = text.lower()
    if lowered.startswith("gs://"):
        return "gs://" + text[5:]
    for host in GCS_HOSTS:
        for scheme in ("https://", "http://"):
            if lowered.startswith(f"{scheme}{host}/"):
                return "gs://" + text[len(scheme) + len(host) + 1 :]
    virtual = _VIRTUAL_HOST.match(text)
    return f"gs://{virtual.group(1)}/{virtual.group(2)}" if virtual else None


def _names_uris(name: str) -> bool:
    return name.lower().endswith(("uri", "url", "uris", "urls"))


class UriRule:
    """Which object URIs a key's request lines may name."""

    def __init__(self, caller: Caller, staging: str):
        self.caller = caller
        self.staging = staging

    def reason(self, value: str) -> str | None:
        """Why the request may not name `value`, or None (not a GCS object, or allowed)."""
        uri = object_uri(value)
        if uri is None:
            return None
        problem = gcs_paths.problem(uri)
        if problem:
            return f"not a plain GCS object URI ({problem})"
        bucket = uri.removeprefix("gs://").partition("/")[0]
        if self.staging and bucket == self.staging:
            return "the gateway's staging bucket, which request content may never name"
        if self.caller.is_master or gcs_paths.under(uri, self.caller.input_prefixes):
            return None
        allowed = ", ".join(self.caller.input_prefixes) or "none (ask an admin to add some)"
        return f"outside this key's input prefixes (allowed: {allowed})"

    def refusals(self, row: dict, file: str, line: int) -> list[UriRefusal]:
        """Every URI-naming field of the row, judged (iterative: rows are hostile)."""
        found: list[UriRefusal] = []
        stack: list[tuple[object, str, bool]] = [(row, "", False)]
        while stack:
            value, path, named = stack.pop()
            if isinstance(value, dict):
                for name, child in value.items():
                    child_path = f"{path}.{name}" if path else str(name)
                    stack.append((child, child_path, _names_uris(str(name))))
            elif isinstance(value, list):
                stack.extend((child, f"{path}[{i}]", named) for i, child in enumerate(value))
            elif named and isinstance(value, str):
                reason = self.reason(value)
                if reason:
                    found.append(UriRefusal(file, line, path, value[:200], reason))
        return found


class MediaLookup:
    """A referenced object's (size, first bytes), read once per URI, only for URIs the rule
    allows, at most `MAX_MEDIA_LOOKUPS` a create (beyond: unknown, priced at the bounds)."""

    def __init__(self, rule: UriRule):
        self.rule = rule
        self.found: dict[str, tuple[int, bytes] | None] = {}

    def __call__(self, value: str) -> tuple[int, bytes] | None:
        if value in self.found:
            return self.found[value]
        uri = object_uri(value)
        if uri is None or self.rule.reason(value) or len(self.found) >= MAX_MEDIA_LOOKUPS:
            return None
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        try:
            blob = clients.storage().bucket(bucket).get_blob(name)
            size = int(blob.size or 0) if blob is not None else None
            head = b""
            if blob is not None and size:
                end = min(size, media_tokens.HEADER_BYTES) - 1
                head = blob.download_as_bytes(start=0, end=end)
        except Exception as exc:
            logs.warning("media not sized", uri=uri, error=repr(exc))
            size, head = None, b""
        self.found[value] = (size, head) if size is not None else None
        return self.found[value]


def bounded_lines(chunks: Iterable[bytes], limit: int) -> Iterator[tuple[bytes | None, int]]:
    """(line, size) of each line ending at "\\n" (the last may lack it); a line over `limit`
    bytes is never held: it comes as (None, size)."""
    parts: list[bytes] = []
    held = 0
    over = False
    for chunk in chunks:
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            held += len(piece)
            if not over:
                if held > limit:
                    over, parts = True, []
                else:
                    parts.append(piece)
            if end < 0:
                break
            yield (None if over else b"".join(parts)), held
            parts, held, over = [], 0, False
            start = end + 1
    if held:
        yield (None if over else b"".join(parts)), held


@dataclass
class Report:
    check: input_rules.InputCheck
    refused: list[UriRefusal] = field(default_factory=list)
    tally: estimate.Tally | None = None
    bytes_read: int = 0


def read(
    named_objects: list[tuple[str, estimate.InputObject]],
    *,
    rule: UriRule,
    estimator: estimate.RowEstimator | None,
    sink: Callable[[bytes], None] | None = None,
) -> Report:
    """The one pass; stops early once the create is refused anyway (problems or URIs).
    `sink` is given each non-blank line as read (a run writes its pieces from exactly the
    bytes checked and estimated here)."""
    report = Report(input_rules.InputCheck(), tally=estimate.Tally() if estimator else None)
    check = report.check
    for name, obj in named_objects:
        check.start_file(name)
        for raw, size in bounded_lines(estimate.read_chunks(obj), MAX_REQUEST_BYTES):
            report.bytes_read += size + 1
            if raw is None:
                check.too_long(size, MAX_REQUEST_BYTES)
                continue
            blank = jsonl.is_blank(raw)
            if sink is not None and not blank:
                sink(raw)
            row = input_rules.UNPARSED if blank else input_rules.decode(raw)
            check.line(raw, row)
            if isinstance(row, dict):
                report.refused.extend(rule.refusals(row, name, check.lineno))
            tally = report.tally
            if estimator is not None and tally is not None and row is not input_rules.UNPARSED:
                estimator.add_row(tally, row, size)
            if check.full or len(report.refused) >= MAX_REFUSALS:
                check.end_file(complete=False)
                return report
        check.end_file()
    return report


def refuse(report: Report) -> None:
    """403 for a URI the request may not name, else 400 for what Vertex would fail whole
    (its per-job limits are judged apart: shared/jobs/job_limits.py)."""
    if report.refused:
        shown = report.refused[:MAX_REFUSALS]
        raise ApiError(
            403,
            "The input's requests name objects this key may not use: "
            + "; ".join(str(r) for r in shown)
            + ". Request content may name only objects inside the key's input prefixes.",
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [
                        {"field": f"{r.file} line {r.line}: {r.field}", "description": r.reason}
                        for r in shown
                    ],
                }
            ],
        )
    problems = report.check.problems
    if problems:
        raise ApiError(
            400,
            'Vertex would fail this job whole ("Failed to import data") after it waited in '
            f"the queue: {input_rules.describe(problems)}. Fix the input and submit again.",
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [
                        {"field": "inputConfig.gcsSource.uris", "description": str(problem)}
                        for problem in problems
                    ],
                }
            ],
        )


def staging_bucket() -> str:
    return settings().staging_bucket
