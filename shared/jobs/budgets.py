"""Budgets: a create is admitted only if its expected cost fits the key's and the team's limit.

Design
------
- A budget is a limit in USD per period (`day`, `month` in UTC, or `none` = all time), on a
  key (`keys/{sha}.budget_usd` / `budget_period`, set through the keys admin API) and/or on
  a team (`teams/{team}`: `budget_usd` decimal string or null, `budget_period`, `updated`;
  `PUT/GET /v1/gateway/teams/{team}` with the master key). The master key has no budget.
- Period spend = actual + committed. Actual: `ledger.spend_nanos` over the period, i.e. the
  cost of the jobs *created* in the period (the ledger dates a job's cost by its create
  day). Committed: the expected estimates of the scope's jobs created in the period that
  are not yet costed.
- Commitments live in `budget_commitments/{scope}:{subject}:{period start}` (`all` for
  `none`): `entries`, reservation id -> {nanos, job_id, admitted, created}; committed = the
  sum of the live entries. `admit` reserves in the key's and the team's docs and checks
  (see `reserve`: write first, then read back), so concurrent creates cannot together slip
  over a limit. It is not a Firestore transaction on purpose: read-then-write transactions
  on one hot doc deadlock for a minute on the emulator and abort under contention in
  production, while field-level merges never conflict.
  `release` drops the reservation when Vertex refuses the create; `committed` binds it to
  the job id; `job_costed` drops it once the job's `cost_final` is set (its actual cost is
  in the ledger by then). Until then a costed-but-not-final job counts twice: the budget
  errs on the side of refusing.
- Roll-over: a commitment belongs to the period its job was created in (as its actual cost
  does), so a new period starts with zero actual and zero committed. A reservation never
  bound to a job (the gateway died between admit and the job record) stops counting after
  `UNBOUND_TTL`.
- One rule for every reader: admission (`budgets_for`), the budget routes and the alerts on
  spend (`alerts.check_budget_alerts`, through `budgets_of_owner`) all read a `Budget`: its
  period (an unknown stored one is a month), bounds, limit and actual spend.
- Keys without any budget are never refused and never touch the commitment docs; their
  jobs still carry the estimate. An estimate that fails (unreadable input) blocks only a
  budgeted create, with the reason.
"""

import random
import secrets
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from shared.core import clients, docids, keys, logs
from shared.core.errors import ApiError
from shared.core.keys import BUDGET_PERIODS, Caller
from shared.cost import estimate
from shared.cost.pricing import NANOS_PER_USD, nanos_to_usd
from shared.jobs import records

TEAMS = "teams"
COMMITMENTS = "budget_commitments"
UNBOUND_TTL = timedelta(minutes=15)
RESERVE_ATTEMPTS = 8
ALL_TIME = (date(1970, 1, 1), date(9999, 12, 31))


def now() -> datetime:
    """The clock budgets use (tests move it to cross a period)."""
    return datetime.now(UTC)


def period_bounds(period: str, today: date) -> tuple[date, date]:
    """First and last day (inclusive) of the period containing `today`."""
    if period == "day":
        return today, today
    if period == "month":
        first = today.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return first, following - timedelta(days=1)
    return ALL_TIME


def usd_to_nanos(value) -> int:
    return int(Decimal(str(value)) * NANOS_PER_USD)


class Budget:
    """One limit that applies to a create: the key's or the team's."""

    def __init__(self, scope: str, subject: str, label: str, limit_usd, period: str | None):
        """`period`: day, month or none; missing or unknown means month (the default)."""
        self.scope = scope
        self.subject = subject
        self.label = label
        self.limit_nanos = usd_to_nanos(limit_usd)
        self.period = period if period in BUDGET_PERIODS else "month"

    def bounds(self, at: datetime) -> tuple[date, date]:
        return period_bounds(self.period, at.date())

    def period_name(self, at: datetime) -> str:
        """The period containing `at` as alerts name it: its day, its month, or all-time."""
        start = self.bounds(at)[0]
        return {"day": start.isoformat(), "month": start.strftime("%Y-%m")}.get(
            self.period, "all-time"
        )

    def doc_id(self, at: datetime) -> str:
        start = self.bounds(at)[0]
        suffix = "all" if self.period == "none" else start.isoformat()
        return f"{self.scope}:{self.subject}:{suffix}"

    def ref(self, at: datetime):
        return clients.firestore().collection(COMMITMENTS).document(docids.doc_id(self.doc_id(at)))

    def actual_nanos(self, at: datetime) -> int:
        from shared.cost import ledger

        start, end = self.bounds(at)
        if self.scope == "key":
            return int(ledger.spend_nanos(start=start, end=end, key_id=self.subject))
        return int(ledger.spend_nanos(start=start, end=end, team=self.subject))

    def describe(self) -> str:
        period = {"day": "per day", "month": "per month", "none": "in total"}[self.period]
        return f"{self.scope} {self.label!r}: ${nanos_to_usd(self.limit_nanos)} {period}"


def team_ref(team: str):
    """`teams/{team}`, the id encoded when the name is not a safe document id."""
    return clients.firestore().collection(TEAMS).document(docids.doc_id(team))


def team_record(team: str) -> dict | None:
    snapshot = team_ref(team).get()
    return snapshot.to_dict() if snapshot.exists else None


def budgets_for(caller: Caller | None) -> list[Budget]:
    """The budgets a caller's jobs count against: the key's (from its record), the team's."""
    if caller is None or caller.is_master:
        return []
    return _budgets(
        caller.key_id, caller.alias, caller.budget_usd, caller.budget_period, caller.team
    )


def budgets_of_owner(key_id: str | None, team: str | None) -> list[Budget]:
    """The budgets a job's cost counts against, read from its owner's key record now (an
    admin may have changed them since the create); none for the master key's jobs. The key
    is read as admission reads its caller (`keys.caller_from_record`, `budgets_for`), the
    job's team first."""
    record = keys.get_record(key_id) if key_id else None
    if record is None:
        return []
    owner = keys.caller_from_record(record)
    return budgets_for(replace(owner, team=team or owner.team))


def _budgets(key_id, alias, budget_usd, budget_period, team) -> list[Budget]:
    found = []
    if budget_usd not in (None, ""):
        found.append(Budget("key", key_id, alias, budget_usd, budget_period))
    if team:
        record = team_record(team) or {}
        if record.get("budget_usd") not in (None, ""):
            found.append(
                Budget("team", team, team, record["budget_usd"], record.get("budget_period"))
            )
    return found


def commitments(budget: Budget, at: datetime) -> dict:
    """The live reservations of a budget's period (reservation id -> entry)."""
    snapshot = budget.ref(at).get()
    return _live_entries(snapshot.to_dict() if snapshot.exists else {}, at)


def _live_entries(doc: dict, at: datetime) -> dict:
    """Entries that still count: bound to a job, or reserved less than UNBOUND_TTL ago."""
    live = {}
    for rid, entry in (doc.get("entries") or {}).items():
        created = entry.get("created")
        if entry.get("job_id") or not isinstance(created, datetime) or at - created < UNBOUND_TTL:
            live[rid] = entry
    return live


def _committed(entries: dict) -> int:
    return sum(int(e.get("nanos") or 0) for e in entries.values())


def status(budget: Budget, at: datetime, expected_nanos: int | None = None) -> dict:
    """A budget's standing as the API shows it."""
    start, end = budget.bounds(at)
    snapshot = budget.ref(at).get()
    entries = _live_entries(snapshot.to_dict() if snapshot.exists else {}, at)
    actual = budget.actual_nanos(at)
    committed = _committed(entries)
    view = {
        "scope": budget.scope,
        "subject": budget.subject if budget.scope == "team" else budget.label,
        "limitUsd": nanos_to_usd(budget.limit_nanos),
        "period": budget.period,
        "periodStart": None if budget.period == "none" else start.isoformat(),
        "periodEnd": None if budget.period == "none" else end.isoformat(),
        "spentUsd": nanos_to_usd(actual),
        "committedUsd": nanos_to_usd(committed),
        "openJobs": len(entries),
        "remainingUsd": nanos_to_usd(max(budget.limit_nanos - actual - committed, 0)),
    }
    if expected_nanos is not None:
        view["fits"] = actual + committed + expected_nanos <= budget.limit_nanos
    return view


class BudgetExceeded(Exception):
    def __init__(self, budget: Budget, actual: int, committed: int, expected: int, at: datetime):
        self.budget = budget
        self.actual = actual
        self.committed = committed
        self.expected = expected
        self.at = at
        super().__init__(budget.doc_id(at))

    def api_error(self) -> ApiError:
        b = self.budget
        remaining = max(b.limit_nanos - self.actual - self.committed, 0)
        start, end = b.bounds(self.at)
        when = (
            "the budget is not periodic"
            if b.period == "none"
            else f"the period runs {start.isoformat()} to {end.isoformat()} UTC"
        )
        message = (
            f"Budget exceeded for {b.describe()}. Spent ${nanos_to_usd(self.actual)}, "
            f"committed ${nanos_to_usd(self.committed)} to jobs not yet costed, this job's "
            f"expected cost ${nanos_to_usd(self.expected)}: that would be "
            f"${nanos_to_usd(self.actual + self.committed + self.expected)}, over the limit; "
            f"${nanos_to_usd(remaining)} remains ({when}). Make the job smaller, wait for "
            "running jobs to be costed or the period to end, or ask an admin to raise the "
            "budget. POST /v1/gateway/estimate shows a job's estimate without creating it."
        )
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [{"subject": b.doc_id(self.at), "description": b.describe()}],
            },
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "BUDGET_EXCEEDED",
                "domain": "vertex-batch-gateway",
                "metadata": {
                    "scope": b.scope,
                    "period": b.period,
                    "limitUsd": nanos_to_usd(b.limit_nanos),
                    "spentUsd": nanos_to_usd(self.actual),
                    "committedUsd": nanos_to_usd(self.committed),
                    "estimateUsd": nanos_to_usd(self.expected),
                    "remainingUsd": nanos_to_usd(remaining),
                },
            },
        ]
        return ApiError(429, message, details=details)


def _contended(entries: dict, rid: str) -> int:
    """Nanos of other reservations still being checked: they may yet be withdrawn."""
    return sum(
        int(e.get("nanos") or 0)
        for other, e in entries.items()
        if other != rid and not e.get("admitted") and not e.get("job_id")
    )


def reserve(budgets: list[Budget], expected: int, at: datetime) -> dict:
    """Reserve `expected` nanos in every budget, or none: write first, then check.

    Each attempt adds its entry to every scope's doc (a field-level merge, so concurrent
    writers never clobber each other), then reads the docs back: the entry is admitted only
    if the period's actual spend plus every live entry, its own included, fits each limit.
    Of any set of admitted creates, the last to write saw all the others, so they cannot
    together exceed a limit. An attempt that would have fitted but for entries still being
    checked withdraws and retries after a random pause, so contention delays, not refuses.
    """
    refs = [b.ref(at) for b in budgets]
    rid = f"r{int(time.time() * 1000):x}{secrets.token_hex(6)}"
    entry = {"nanos": expected, "job_id": None, "admitted": False, "created": at}
    attempt = 1
    over, retry = _attempt(budgets, refs, rid, entry, at)
    while over is not None:
        _remove(refs, rid)
        if not retry or attempt == RESERVE_ATTEMPTS:
            logs.info(
                "budget refused a create",
                budget=over.budget.doc_id(at),
                limit_nanos=over.budget.limit_nanos,
                actual_nanos=over.actual,
                committed_nanos=over.committed,
                expected_nanos=expected,
                attempts=attempt,
            )
            raise over.api_error()
        time.sleep(random.uniform(0.02, 0.1) * attempt)
        attempt += 1
        over, retry = _attempt(budgets, refs, rid, entry, at)
    for ref in refs:
        ref.update({f"entries.{rid}.admitted": True})
    return {"id": rid, "docs": [r.id for r in refs], "nanos": expected}


def _attempt(
    budgets: list[Budget], refs: list, rid: str, entry: dict, at: datetime
) -> tuple[BudgetExceeded | None, bool]:
    """Write the entry to every budget's doc, then read them back: (the first budget it does
    not fit, or None; whether it would have fitted but for entries still being checked)."""
    expected = entry["nanos"]
    actuals = [b.actual_nanos(at) for b in budgets]
    for budget, ref in zip(budgets, refs, strict=True):
        ref.set(
            {
                "scope": budget.scope,
                "subject": budget.subject,
                "period": budget.period,
                "period_start": budget.bounds(at)[0].isoformat(),
                "entries": {rid: entry},
                "updated": at,
            },
            merge=True,
        )
    over = None
    retry = False
    for budget, ref, actual in zip(budgets, refs, actuals, strict=True):
        snapshot = ref.get()
        entries = _live_entries(snapshot.to_dict() if snapshot.exists else {}, at)
        committed = _committed(entries) - expected
        if actual + committed + expected > budget.limit_nanos:
            settled = committed - _contended(entries, rid)
            if actual + settled + expected <= budget.limit_nanos:
                retry = True
            over = over or BudgetExceeded(budget, actual, settled, expected, at)
    return over, retry


def _remove(refs, rid: str) -> None:
    from google.cloud import firestore

    for ref in refs:
        ref.update({f"entries.{rid}": firestore.DELETE_FIELD, "updated": datetime.now(UTC)})


def _drop(doc_ids: list[str], rid: str, *, bind_job: str | None = None) -> None:
    """Remove (or bind to a job) one reservation in each doc; a missing one is a no-op."""
    from google.api_core import exceptions
    from google.cloud import firestore

    collection = clients.firestore().collection(COMMITMENTS)
    for doc_id in doc_ids:
        ref = collection.document(docids.doc_id(doc_id))
        snapshot = ref.get()
        if rid not in ((snapshot.to_dict() or {}).get("entries") or {}):
            continue
        change = (
            {f"entries.{rid}.job_id": bind_job}
            if bind_job
            else {f"entries.{rid}": firestore.DELETE_FIELD}
        )
        try:
            ref.update({**change, "updated": datetime.now(UTC)})
        except exceptions.NotFound:
            continue


# --- the three calls of passthrough.create, and the lifecycle's -----------------------------


def admit(*, caller: Caller, estimate: dict) -> dict:
    """Reserve the job's estimate when a budget applies; 429 when it does not fit.

    `estimate`: the create's estimate record, made over exactly the sealed bytes (or, for a
    model without a price, `{"error": ..., "unpriced": True}`: a budgeted create is then
    refused, 400, since its budget cannot be held)."""
    at = now()
    record = {**estimate, "created": at}
    budgets = budgets_for(caller)
    if not budgets:
        return record
    if record.get("error"):
        raise ApiError(400, record["error"], status="FAILED_PRECONDITION")
    record["reservation"] = reserve(budgets, record["cost_nanos"]["expected"], at)
    return record


def check(*, caller, expected_nanos: int) -> None:
    """429 when `expected_nanos` does not fit one of the caller's budgets now; nothing is
    reserved (a run checks its whole estimate before any piece starts; each piece is then
    admitted, and reserved, by its own create)."""
    at = now()
    for budget in budgets_for(caller):
        snapshot = budget.ref(at).get()
        committed = _committed(_live_entries(snapshot.to_dict() if snapshot.exists else {}, at))
        actual = budget.actual_nanos(at)
        if actual + committed + expected_nanos > budget.limit_nanos:
            raise BudgetExceeded(budget, actual, committed, expected_nanos, at).api_error()


def release(*, estimate: dict | None) -> None:
    reservation = (estimate or {}).get("reservation")
    if reservation:
        _drop(reservation["docs"], reservation["id"])


def committed(*, job_id: str, estimate: dict | None) -> None:
    reservation = (estimate or {}).get("reservation")
    if reservation:
        _drop(reservation["docs"], reservation["id"], bind_job=job_id)


def job_costed(job_id: str) -> None:
    """The job's cost is final: its actual cost now counts, so its commitment stops counting.

    Idempotent: a second call finds nothing to drop.
    """
    record = records.get(job_id) or {}
    reservation = (record.get("estimate") or {}).get("reservation")
    if reservation:
        _drop(reservation["docs"], reservation["id"])
        logs.info("budget commitment released", job_id=job_id, nanos=reservation.get("nanos"))


def backfill_estimate(job_id: str) -> dict | None:
    """Estimate a job created without one (its key had no budget), from its record.

    Idempotent: a job that has an estimate, or a recorded failure to make one, is left alone.
    """
    record = records.get(job_id)
    if not record or record.get("estimate") is not None:
        return None
    deployment = records.deployment_of(record)
    if deployment is None:
        return None
    try:
        made = estimate.estimate_request(deployment, uris=records.run_inputs(record))
    except Exception as exc:
        message = exc.message if isinstance(exc, ApiError) else repr(exc)
        logs.warning("estimate backfill failed", job_id=job_id, error=message)
        made = {"error": message}
    records.mark(job_id, estimate=made)
    return made
