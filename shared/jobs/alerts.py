"""Alerts on `batch-job-alerts`: one per job per kind (terminal, stuck, unpriced, reconcile),
one per key per budget period per threshold (budget), one per tampered output generation
(tamper), each a message a person can act on.

Delivery is exactly once to subscribers that dedupe on the alert's `alert_id` (attribute and
body field, the same on every copy): a durable claim `alerts_sent/{alert id}` holding the
message, then the publish, then the mark; a claim whose sender died is published by the next
sender or the next sync tick within seconds (shared/jobs/alert_outbox.py).
"""

from datetime import UTC, date, datetime, time
from decimal import Decimal

from shared.core import times
from shared.core.config import settings
from shared.cost.pricing import nanos_to_usd
from shared.cost.usage import TOKEN_FIELDS
from shared.jobs import alert_outbox

BUDGET_THRESHOLDS = (80, 100)
TERMINAL_SEVERITY = {
    "JOB_STATE_SUCCEEDED": "INFO",
    "JOB_STATE_PARTIALLY_SUCCEEDED": "WARNING",
    "JOB_STATE_CANCELLED": "WARNING",
    "JOB_STATE_FAILED": "ERROR",
    "JOB_STATE_EXPIRED": "ERROR",
}
QUEUED_STATES = frozenset({"JOB_STATE_QUEUED", "JOB_STATE_PENDING"})
RUNNING_STATES = frozenset({"JOB_STATE_RUNNING"})
COUNT_FIELDS = ("rows", "succeeded", "failed", "malformed")

SENT = alert_outbox.SENT_NOW
ALREADY = alert_outbox.ALREADY
IN_FLIGHT = alert_outbox.IN_FLIGHT


# --- pure parts ------------------------------------------------------------------------------


def short_state(state: str | None) -> str:
    return (state or "JOB_STATE_UNSPECIFIED").removeprefix("JOB_STATE_")


def console_url(job: dict) -> str | None:
    name = job.get("name") or ""
    parts = name.split("/")
    if len(parts) != 6 or parts[0] != "projects":
        return None
    project, location, job_id = parts[1], parts[3], parts[5]
    return (
        f"https://console.cloud.google.com/vertex-ai/locations/{location}/"
        f"batch-predictions/{job_id}?project={project}"
    )


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m {secs}s"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def _start_time(job: dict) -> datetime | None:
    return times.parse(job.get("start_time")) or _entered(job, RUNNING_STATES)


def _entered(job: dict, states) -> datetime | None:
    """When the job first entered one of `states`, from its recorded history."""
    for entry in job.get("state_history") or []:
        if entry.get("to") in states:
            return times.parse(entry.get("update_time")) or times.parse(entry.get("time"))
    return None


def job_alert_body(job: dict, kind: str, *, now: datetime | None = None, note: str = "") -> dict:
    """The alert a person reads: who, what, how it ended, what it cost, where to look."""
    now = now or datetime.now(UTC)
    state = job.get("state")
    cost = job.get("cost") or {}
    created = times.parse(job.get("create_time"))
    started = _start_time(job)
    ended = times.parse(job.get("end_time"))
    if ended is None and job.get("terminal"):
        ended = times.parse((job.get("state_history") or [{}])[-1].get("update_time"))
    begun = started or created
    duration = (ended or now) - begun if begun else None
    cost_nanos = int(cost.get("cost_nanos") or 0)
    stats = job.get("completion_stats") or {}
    error = job.get("error") or None
    job_id = job.get("job_id") or (job.get("name") or "").rsplit("/", 1)[-1]
    who = job.get("owner_alias") or job.get("owner_key_id") or "unknown"
    if job.get("team"):
        who += f" ({job['team']})"
    headline = {
        "terminal": f"ended {short_state(state)}",
        "stuck": f"stuck in {short_state(state)}",
        "unpriced": "has rows the gateway could not price (booked at $0)",
        "tamper": "had an output file rewritten that the books did not take",
        "budget_stop": "was cancelled: it would cross a budget",
        "reconcile": "cannot have its outputs priced",
        "adopted": "was adopted: Vertex ran it but the gateway had no record of it",
    }.get(kind, kind)
    text = f"Batch job {job_id} ({job.get('display_name') or '-'}, {job.get('model')}) of {who} "
    text += headline
    if duration is not None:
        text += f" after {_duration(duration.total_seconds())}"
    if kind == "terminal":
        text += f"; cost ${nanos_to_usd(cost_nanos)}"
        if stats:
            text += (
                f"; rows ok {stats.get('successfulCount', 0)}, failed "
                f"{stats.get('failedCount', 0)}, incomplete {stats.get('incompleteCount', 0)}"
            )
    if error:
        text += f"; error {error.get('code')}: {error.get('message')}"
    if note:
        text += f". {note}"
    link = console_url(job)
    if link:
        text += f" {link}"
    return {
        "text": text,
        "job_id": job_id,
        "name": job.get("name"),
        "display_name": job.get("display_name"),
        "model": job.get("model"),
        "deployment": job.get("deployment"),
        "owner_key_id": job.get("owner_key_id"),
        "owner_alias": job.get("owner_alias"),
        "team": job.get("team"),
        "labels": job.get("labels") or {},
        "state": state,
        "create_time": times.iso(created),
        "start_time": times.iso(started),
        "end_time": times.iso(ended),
        "duration_seconds": int(duration.total_seconds()) if duration is not None else None,
        "completion_stats": stats or None,
        "cost": {
            "usd": nanos_to_usd(cost_nanos),
            "cost_nanos": cost_nanos,
            "final": bool(job.get("cost_final"))
            or (
                kind == "terminal"
                and not job.get("reconcile_failures")
                and not int(cost.get("estimated_rows") or 0)
            ),
            **{name: int(cost.get(name) or 0) for name in COUNT_FIELDS},
            "estimated_rows": int(cost.get("estimated_rows") or 0),
            "estimated_usd": nanos_to_usd(int(cost.get("estimated_nanos") or 0)),
        },
        "tokens": {name: int(cost.get(name) or 0) for name in TOKEN_FIELDS},
        "error": error,
        "output_directory": job.get("output_directory"),
        "console_url": link,
        "note": note or None,
    }


def stuck_reason(job: dict, *, now: datetime, queued_hours, running_hours) -> str | None:
    """Why a job counts as stuck, or None: queued/pending past the limit since it was
    created, running past the limit since it started."""
    state = job.get("state")
    if state in QUEUED_STATES:
        since = times.parse(job.get("create_time"))
        limit = Decimal(queued_hours)
    elif state in RUNNING_STATES:
        since = _start_time(job)
        limit = Decimal(running_hours)
    else:
        return None
    if since is None:
        return None
    waited = now - since
    if Decimal(waited.total_seconds()) <= limit * 3600:
        return None
    return (
        f"It has been {short_state(state)} for {_duration(waited.total_seconds())}, "
        f"longer than the {limit} h limit"
    )


def crossed_thresholds(spent_nanos: int, budget_nanos: int) -> list[int]:
    if spent_nanos <= 0:
        return []
    return [pct for pct in BUDGET_THRESHOLDS if spent_nanos * 100 >= budget_nanos * pct]


# --- sending ---------------------------------------------------------------------------------


def send(*, alert_id: str, kind: str, state: str, severity: str, job_id: str, body: dict) -> str:
    """Publish one alert unless it went, or is claimed, already: SENT, ALREADY or IN_FLIGHT
    (claimed by a sender alive or dead: it goes out either way). `alert_id` names the alert
    (`1234:terminal`); subscribers get it as `alert_id`. A failed publish raises."""
    return alert_outbox.send(
        alert_outbox.message(
            name=alert_id, kind=kind, state=state, severity=severity, job_id=job_id, body=body
        )
    )


def send_job_alert(job: dict, kind: str, *, severity: str | None = None, note: str = "") -> str:
    """The one `kind` alert of a job (terminal, stuck, unpriced, ...); once it went, the
    job's `alerts.{kind}` says when."""
    job_id = job["job_id"]
    state = job.get("state") or "JOB_STATE_UNSPECIFIED"
    if severity is None:
        severity = TERMINAL_SEVERITY.get(state, "WARNING") if kind == "terminal" else "WARNING"
    return send(
        alert_id=f"{job_id}:{kind}",
        kind=kind,
        state=state,
        severity=severity,
        job_id=job_id,
        body=job_alert_body(job, kind, note=note),
    )


def send_tamper_alert(job: dict, recorded) -> str:
    """One alert per tampered output generation (a `ledger.Recorded` of outcome `tamper`):
    the object, both generations, what counts and what the new generation would have made
    of it."""
    job_id = job["job_id"]
    why = (
        "after the job's cost was final"
        if recorded.job_final
        else "holding less than what already counts for it"
    )
    tamper = {
        "uri": recorded.uri,
        "previous_generation": recorded.previous_generation,
        "generation": recorded.generation,
        "job_cost_final": recorded.job_final,
        "counted_usd": nanos_to_usd(recorded.counted_nanos),
        "file_usd": nanos_to_usd(recorded.file_nanos),
        "difference_usd": nanos_to_usd(recorded.difference_nanos),
        "difference_nanos": recorded.difference_nanos,
    }
    note = (
        f"{recorded.uri} generation {recorded.generation} was written {why} "
        f"(previous generation {recorded.previous_generation}); it would have changed the "
        f"object's cost by ${tamper['difference_usd']} (${tamper['counted_usd']} counted, "
        f"${tamper['file_usd']} in the new file). The books are unchanged; give keys "
        "read-only access to their output folders"
    )
    return send(
        alert_id=f"{job_id}:tamper:{recorded.uri}#{recorded.generation}",
        kind="tamper",
        state=job.get("state") or "JOB_STATE_UNSPECIFIED",
        severity="ERROR",
        job_id=job_id,
        body={**job_alert_body(job, "tamper", note=note), "tamper": tamper},
    )


def check_stuck(job: dict, *, now: datetime | None = None) -> str | None:
    """Send the job's stuck alert if it is past its limit and none went yet."""
    if (job.get("alerts") or {}).get("stuck"):
        return None
    config = settings()
    reason = stuck_reason(
        job,
        now=now or datetime.now(UTC),
        queued_hours=config.stuck_queued_hours,
        running_hours=config.stuck_running_hours,
    )
    if not reason:
        return None
    return send_job_alert(job, "stuck", note=reason)


def unpriced_note(*, unpriced_rows: int, no_usage_rows: int, malformed_file: bool, sample) -> str:
    """What went unpriced, in words a person can act on."""
    parts = []
    if unpriced_rows:
        parts.append(f"{unpriced_rows} row(s) of a model with no price")
    if no_usage_rows:
        parts.append(f"{no_usage_rows} row(s) without usage in any known shape")
    if malformed_file:
        parts.append("a file whose rows are all unreadable (shape not recognised)")
    text = "; ".join(parts)
    if sample:
        text += f" (e.g. {sample.get('uri', '')} line {sample.get('line')}: {sample.get('model')}"
        text += f", {sample.get('reason') or sample.get('error')})"
    return text + ". Add the model to the price table (or a deployment override) and re-price."


def send_unpriced_alert(job: dict, *, note: str) -> str | None:
    """The job's one `unpriced` alert (a $0 never passes silently); None if one went already."""
    if (job.get("alerts") or {}).get("unpriced"):
        return None
    return send_job_alert(job, "unpriced", severity="WARNING", note=note)


def check_budget_alerts(*, key_id: str | None, team: str | None = None, today: date | None = None):
    """After a cost lands: alert once per threshold (80%, 100%) per budget (the key's, the
    team's: `budgets.budgets_of_owner`) per period. Returns the (scope, threshold) pairs
    alerted now. Called by finalize.price_object after each recorded cost."""
    from shared.jobs import budgets

    at = datetime.combine(today, time(12), UTC) if today else budgets.now()
    sent = []
    for budget in budgets.budgets_of_owner(key_id, team):
        first, last = budget.bounds(at)
        label = budget.period_name(at)
        scope, subject, limit = budget.scope, budget.subject, budget.limit_nanos
        spent = budget.actual_nanos(at)
        for pct in crossed_thresholds(spent, limit):
            body = {
                "text": (
                    f"{scope.capitalize()} {budget.label} ({subject}) has spent "
                    f"${nanos_to_usd(spent)} of its ${nanos_to_usd(limit)} budget "
                    f"for {label} "
                    f"({pct}% threshold crossed). "
                    + (
                        "New jobs will be refused until the period ends or the budget is raised."
                        if pct >= 100
                        else "Raise the budget or slow down before it runs out."
                    )
                ),
                "scope": scope,
                "key_id": key_id if scope == "key" else None,
                "alias": budget.label if scope == "key" else None,
                "team": subject if scope == "team" else team,
                "period": budget.period,
                "period_label": label,
                "period_start": first.isoformat(),
                "period_end": last.isoformat(),
                "threshold_percent": pct,
                "budget_usd": nanos_to_usd(limit),
                "spent_usd": nanos_to_usd(spent),
                "spent_nanos": spent,
                "remaining_usd": nanos_to_usd(max(limit - spent, 0)),
            }
            outcome = send(
                alert_id=f"budget:{scope}:{subject}:{label}:{pct}",
                kind="budget",
                state=f"BUDGET_{pct}_PERCENT",
                severity="ERROR" if pct >= 100 else "WARNING",
                job_id="",
                body=body,
            )
            if outcome == SENT:
                sent.append((scope, pct))
    return sent


# --- tamper: vanished generations and the floor ---------------------------------------------


def send_vanished_alert(job: dict, uri: str, generation: int) -> str:
    """One `tamper` alert per output generation that vanished before it was priced."""
    job_id = job["job_id"]
    note = (
        f"{uri} generation {generation} was deleted or replaced before the gateway could price "
        "it. Rows it held that no other file holds are booked at the estimate when the job ends "
        "(the floor); give keys read-only access to their output folders"
    )
    tamper = {"reason": "vanished", "uri": uri, "generation": generation}
    return send(
        alert_id=f"{job_id}:tamper:{uri}#{generation}",
        kind="tamper",
        state=job.get("state") or "JOB_STATE_UNSPECIFIED",
        severity="ERROR",
        job_id=job_id,
        body={**job_alert_body(job, "tamper", note=note), "tamper": tamper},
    )


def send_floor_alert(job: dict, floored) -> str:
    """The job's one floor alert (`tamper`, reason `floor`): Vertex ran more successful rows
    than its output files hold; the gap is booked at the estimate (a `ledger.Floored`)."""
    job_id = job["job_id"]
    tamper = {
        "reason": "floor",
        "vertex_succeeded": floored.vertex_succeeded,
        "vertex_failed": floored.vertex_failed,
        "booked_succeeded": floored.booked_succeeded,
        "gap_rows": floored.rows,
        "per_row_usd": nanos_to_usd(floored.per_row_nanos),
        "per_row_nanos": floored.per_row_nanos,
        "estimated_usd": nanos_to_usd(floored.nanos),
        "estimated_nanos": floored.nanos,
    }
    note = (
        f"Vertex ran {floored.vertex_succeeded} successful row(s); its output files hold "
        f"{floored.booked_succeeded}. The gap of {floored.rows} row(s) is booked at the "
        f"estimate's ${tamper['per_row_usd']} per row (${tamper['estimated_usd']}, marked "
        "estimated) and its cost is not final. Files were deleted or rewritten before the "
        "gateway read them: give keys read-only access to their output folders"
    )
    return send(
        alert_id=f"{job_id}:tamper:floor",
        kind="tamper",
        state=job.get("state") or "JOB_STATE_UNSPECIFIED",
        severity="ERROR",
        job_id=job_id,
        body={**job_alert_body(job, "tamper", note=note), "tamper": tamper},
    )


# --- the live budget stop ----------------------------------------------------------------------


def send_budget_stop_alert(job: dict, figures: dict) -> str:
    """The job's one `budget_stop` alert: it was cancelled while running because its cost so
    far plus its scope's other commitments would cross a budget (shared/jobs/budget_stop.py).
    `figures`: scope, subject, name, period, limit, spent, committed, the job's cost so far."""
    note = (
        f"{figures['scope'].capitalize()} {figures['name']} has a ${figures['limit_usd']} "
        f"budget ({figures['period']}); spent ${figures['spent_usd']} (this job's "
        f"${figures['job_cost_usd']} so far included) and ${figures['committed_usd']} committed "
        "to other open jobs would pass it, so the job was cancelled. Rows it finished are "
        "billed and booked; raise the budget and retry the failed rows to finish it"
    )
    return send(
        alert_id=f"{job['job_id']}:budget_stop",
        kind="budget_stop",
        state=job.get("state") or "JOB_STATE_UNSPECIFIED",
        severity="ERROR",
        job_id=job["job_id"],
        body={**job_alert_body(job, "budget_stop", note=note), "budget_stop": figures},
    )
