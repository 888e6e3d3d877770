"""The live budget stop: a running job that would cross its key's or team's budget is cancelled.

Admission (shared/jobs/budgets.py) holds a create to its estimate; a job can still run past
it (an estimate is an estimate, and an admin may lower a budget while a job runs). So after
every incremental output file (shared/jobs/finalize.py), with the job's cost so far already
booked, each budget the job counts against (`budgets.budgets_of_owner`: the key's and the
team's, read now) is checked for the period the job's cost lands in (its create day):

    spent + committed > limit  ->  stop

- `spent`: the period's booked cost (`Budget.actual_nanos`), this job's provisional cost
  included;
- `committed`: what the scope's other open jobs may still cost: per reservation, its
  estimate less what that job has booked so far (never below 0; a reservation not bound to a
  job counts whole). This job's own reservation is left out: its cost so far is in `spent`.

Stopping: Vertex is asked to cancel the job (`submit.cancel_job`), one `budget_stop` alert
gives the figures (limit, spent, committed, the job's provisional cost), then the record
keeps them (`budget_stop`). Idempotent: a job already stopped, terminal or final is left
alone; a redelivered event that finds the stop half done finishes it (a second cancel of a
cancelling job is harmless, the alert goes once).

Overshoot: Vertex writes a job's rows in incremental files, so a job is seen crossing only
when a file lands: it can pass the limit by at most the rows of one incremental file, plus
whatever Vertex finishes between the cancel and its stop (their cost is billed and booked).
The figures measured on the simulator are in docs/accounting.md.
"""

from dataclasses import dataclass
from datetime import UTC, datetime

from shared.core import logs, times
from shared.cost.pricing import nanos_to_usd
from shared.jobs import alerts, budgets, records, submit


@dataclass(frozen=True)
class Standing:
    """One budget's figures at the check (nano-dollars)."""

    scope: str
    subject: str
    label: str
    period: str
    limit_nanos: int
    spent_nanos: int
    committed_nanos: int
    job_nanos: int

    @property
    def over(self) -> bool:
        return stop_needed(self.limit_nanos, self.spent_nanos, self.committed_nanos)


def stop_needed(limit_nanos: int, spent_nanos: int, committed_nanos: int) -> bool:
    """The rule: the period's spend (the job's cost so far in it) plus what other open jobs
    may still cost passes the limit. Reaching it exactly is allowed, as admission allows."""
    return spent_nanos + committed_nanos > limit_nanos


def committed_remaining(entries: dict, booked: dict[str, int], job_id: str) -> int:
    """What the scope's other open jobs may still cost: each reservation's estimate less the
    cost its job has booked so far, never below zero; unbound reservations count whole; the
    checked job's own reservation is left out."""
    total = 0
    for entry in entries.values():
        owner = entry.get("job_id")
        if owner == job_id:
            continue
        total += max(0, int(entry.get("nanos") or 0) - booked.get(owner, 0))
    return total


def _booked(entries: dict) -> dict[str, int]:
    ids = sorted({e["job_id"] for e in entries.values() if e.get("job_id")})
    found = records.get_many(ids) if ids else {}
    return {jid: int((r.get("cost") or {}).get("cost_nanos") or 0) for jid, r in found.items()}


def standings(record: dict, job_id: str) -> list[Standing]:
    """Each budget the job counts against, as it stands now."""
    at = times.parse(record.get("create_time")) or datetime.now(UTC)
    job_nanos = int((record.get("cost") or {}).get("cost_nanos") or 0)
    found = []
    for budget in budgets.budgets_of_owner(record.get("owner_key_id"), record.get("team")):
        entries = budgets.commitments(budget, at)
        found.append(
            Standing(
                scope=budget.scope,
                subject=budget.subject,
                label=budget.label,
                period=budget.period,
                limit_nanos=budget.limit_nanos,
                spent_nanos=budget.actual_nanos(at),
                committed_nanos=committed_remaining(entries, _booked(entries), job_id),
                job_nanos=job_nanos,
            )
        )
    return found


def check(job_id: str) -> Standing | None:
    """Stop the job if it would cross a budget; the crossed budget's figures, else None."""
    record = records.get(job_id)
    if not record or record.get("terminal") or record.get("cost_final"):
        return None
    if record.get("budget_stop"):
        return None
    for standing in standings(record, job_id):
        if standing.over:
            stop({**record, "job_id": job_id}, standing)
            return standing
    return None


def stop(record: dict, standing: Standing) -> None:
    job_id = record["job_id"]
    upstream = submit.cancel_job(record)
    logs.warning(
        "budget stop: job cancelled",
        job_id=job_id,
        scope=standing.scope,
        subject=standing.subject,
        limit_nanos=standing.limit_nanos,
        spent_nanos=standing.spent_nanos,
        committed_nanos=standing.committed_nanos,
        job_nanos=standing.job_nanos,
        cancel_status=upstream.status,
    )
    alerts.send_budget_stop_alert(record, figures(standing))
    records.mark(job_id, budget_stop={**figures(standing), "time": datetime.now(UTC)})


def figures(standing: Standing) -> dict:
    """The stop as the alert and the record show it."""
    return {
        "scope": standing.scope,
        "subject": standing.subject,
        "name": standing.label,
        "period": standing.period,
        "limit_usd": nanos_to_usd(standing.limit_nanos),
        "limit_nanos": standing.limit_nanos,
        "spent_usd": nanos_to_usd(standing.spent_nanos),
        "spent_nanos": standing.spent_nanos,
        "committed_usd": nanos_to_usd(standing.committed_nanos),
        "committed_nanos": standing.committed_nanos,
        "job_cost_usd": nanos_to_usd(standing.job_nanos),
        "job_cost_nanos": standing.job_nanos,
    }
