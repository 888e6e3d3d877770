"""The floor: a finished job's books never hold fewer billed rows than Vertex says it ran.

What Vertex reports (`BatchPredictionJob.completionStats`, REST int64 values as decimal
strings; https://docs.cloud.google.com/ruby/docs/reference/google-cloud-ai_platform-v1/latest/Google-Cloud-AIPlatform-V1-CompletionStats.md.txt):
- `successfulCount`: "the number of entities that had been processed successfully";
- `failedCount`: "the number of entities for which any error was encountered";
- `incompleteCount`: entities not finished either way when a job fails or is cancelled as a
  whole (-1 when unknown).
Vertex ran successful + failed rows. What counts for money: failed rows cost nothing (they
carry a `status` and no usage; DESIGN.md "Cost"), so the rows the books owe are Vertex's
`successfulCount`, and the books' side is the `succeeded` counter of the file set the job
counts (shared/cost/ledger.py). Malformed or missing rows are not succeeded rows, so a
deleted, truncated or garbled file leaves a gap; a zeroed usage block does not (that row is
still a succeeded row: sealed outputs, shared/jobs/sealed_outputs.py, are what keep it).

A gap (successful rows the books lack) is booked at the job's estimated per-row rate
(`per_row_nanos`), marked `estimated`; the job's cost is then not final. The rows are booked
through the ledger (`ledger.record_floor`), exactly once and serialised with the job's files.
"""

from dataclasses import dataclass

# Counts above this are not believed (no job holds a billion rows: Vertex's row limits are
# far below); they are read as unknown rather than booked.
MAX_ROWS = 10**9
MAX_DIGITS = 10  # of MAX_ROWS: a longer string is never read as a number


def count(value) -> int | None:
    """One completionStats count (an int64 sent as a decimal string, or an int), or None
    when it is absent, negative (-1: unknown) or not a count."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isdecimal() and len(value) <= MAX_DIGITS:
        value = int(value)
    if isinstance(value, int) and 0 <= value <= MAX_ROWS:
        return value
    return None


@dataclass(frozen=True)
class Ran:
    """What Vertex says a job ran."""

    succeeded: int
    failed: int


def ran(stats) -> Ran | None:
    """Vertex's counts from a job's `completion_stats`, or None when it gave none. An absent
    count is zero (proto3 JSON leaves zeros out)."""
    if not isinstance(stats, dict) or not stats:
        return None
    succeeded = count(stats.get("successfulCount", 0))
    failed = count(stats.get("failedCount", 0))
    if succeeded is None or failed is None:
        return None
    return Ran(succeeded, failed)


def gap_rows(vertex_succeeded: int, booked_succeeded: int) -> int:
    """Successful rows Vertex ran that the books do not hold; never negative (books holding
    more, e.g. rows written into an unsealed folder by someone else, are not a gap)."""
    return max(0, vertex_succeeded - booked_succeeded)


def per_row_nanos(estimate: dict | None) -> int | None:
    """The rate a missing row is booked at: the estimate's expected cost per row
    (`expected // rows`), or None when the job has no usable estimate (none, an error, no
    rows); it then pays the estimate of one row of its model (shared/jobs/lifecycle.py)."""
    record = estimate or {}
    rows = record.get("rows")
    expected = (record.get("cost_nanos") or {}).get("expected")
    if record.get("error") or not isinstance(rows, int) or not isinstance(expected, int):
        return None
    if rows <= 0 or expected < 0:
        return None
    return expected // rows
