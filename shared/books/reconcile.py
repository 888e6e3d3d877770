"""Reconciliation: the gateway's books against Google's Cloud Billing detailed export.

Both sides are read from BigQuery: the books from the `job_costs` view of the cost-records
dataset (each job whose end was published, by its spend day: the UTC day it was created),
the invoice from the billing export (shared/books/billing_export.py: the Vertex AI service's
charges by the day of use). They are compared per day, project and model (the model a SKU
names, `importers.sku_model`; a charge whose SKU names no model is its own group,
`sku:<description>`), and per job where the export carries the job's `vbg-intent` label.

Drift = billed - booked (integer nano-dollars; positive: Google billed more than the books
hold), in dollars and in percent of the booked figure. The jobs and days that explain it: a
group's jobs whose own charges differ from their books, jobs the export carries no charge
for (when it carries intent labels at all), charges labelled with an intent no booked job
has, and jobs that ran past the day they were created (their charges fall on a later day:
a per-day drift that the period's total does not show).

Not matchable (and why): charges of jobs still running (no job row yet: the books publish a
job when it ends); charges used outside the period of jobs created inside it (and the
reverse); credits (reported apart: the books hold list prices at the batch rate).
"""

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from shared.books import billing_export
from shared.books.billing_export import Charge
from shared.core import clients
from shared.cost.importers import sku_model
from shared.cost.pricing import nanos_to_usd

TABLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_:.-]{0,127}\.[A-Za-z0-9_]{1,1024}\.[\w$-]{1,1024}")
MODEL_VERSION = re.compile(r"-\d{3}\Z")


class BadTable(ValueError):
    """A table name that is not PROJECT.DATASET.TABLE."""


def table_name(value: str) -> str:
    if not TABLE_NAME.fullmatch(value or ""):
        raise BadTable(f"{value!r} is not a table name: use PROJECT.DATASET.TABLE")
    return value


@dataclass(frozen=True)
class BookedJob:
    job_id: str
    day: str
    project: str
    model: str
    nanos: int
    intent: str | None
    ended_day: str | None = None


def model_key(model: str) -> str:
    """A publisher model id without its `-001` version: what a SKU description names."""
    return MODEL_VERSION.sub("", (model or "").lower())


JOBS_QUERY = """
SELECT job_id, day, project, vertex_model, cost_nanos, labels, DATE(time) AS published_day
FROM `{dataset}.job_costs`
WHERE day >= @start AND day <= @end
"""


def booked_jobs(*, books_dataset: str, start: date, end: date) -> list[BookedJob]:
    """The jobs of the books created from `start` to `end` (their latest totals)."""
    from google.cloud import bigquery

    config = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ScalarQueryParameter("start", "DATE", start.isoformat()),
            bigquery.ScalarQueryParameter("end", "DATE", end.isoformat()),
        ]
    )
    rows = clients.bigquery().query(JOBS_QUERY.format(dataset=books_dataset), job_config=config)
    return [
        BookedJob(
            job_id=row["job_id"],
            day=str(row["day"]),
            project=row["project"],
            model=model_key(row["vertex_model"]),
            nanos=int(row["cost_nanos"]),
            intent=next(
                (label["value"] for label in row["labels"] or () if label["key"] == "vbg-intent"),
                None,
            ),
            ended_day=str(row["published_day"]),
        )
        for row in rows.result()
    ]


def percent(drift: int, base: int) -> str | None:
    """drift / base as a percentage with two decimals; None when nothing was booked."""
    if base == 0:
        return None
    value = Decimal(drift) * 100 / Decimal(base)
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


@dataclass
class _Group:
    booked: int = 0
    billed: int = 0
    jobs: list = field(default_factory=list)


def compare(*, jobs: list[BookedJob], charges: list[Charge]) -> dict:
    """The reconciliation report (pure: both sides already read)."""
    groups: dict[tuple, _Group] = defaultdict(_Group)
    for job in jobs:
        entry = groups[(job.day, job.project, job.model)]
        entry.booked += job.nanos
        entry.jobs.append(job.job_id)
    for charge in charges:
        model = sku_model(charge.sku)
        groups[(charge.day, charge.project, model or f"sku:{charge.sku}")].billed += charge.nanos

    labelled = any(charge.intent for charge in charges)
    billed_by_intent: dict[str, int] = defaultdict(int)
    for charge in charges:
        if charge.intent:
            billed_by_intent[charge.intent] += charge.nanos
    per_job = []
    if labelled:
        for job in jobs:
            billed = billed_by_intent.get(job.intent or "", 0)
            if billed != job.nanos:
                per_job.append(
                    {
                        "jobId": job.job_id,
                        "intent": job.intent,
                        "day": job.day,
                        "bookedUsd": nanos_to_usd(job.nanos),
                        "billedUsd": nanos_to_usd(billed),
                        "driftUsd": nanos_to_usd(billed - job.nanos),
                        "missingFromBilling": billed == 0,
                    }
                )
    known = {job.intent for job in jobs if job.intent}
    orphans = [
        {"intent": intent, "billedUsd": nanos_to_usd(nanos)}
        for intent, nanos in sorted(billed_by_intent.items())
        if intent not in known
    ]
    rows = []
    for (day, project, model), entry in sorted(groups.items(), key=lambda i: tuple(map(str, i[0]))):
        drift = entry.billed - entry.booked
        rows.append(
            {
                "day": day,
                "project": project,
                "model": model,
                "bookedUsd": nanos_to_usd(entry.booked),
                "billedUsd": nanos_to_usd(entry.billed),
                "driftUsd": nanos_to_usd(drift),
                "driftPct": percent(drift, entry.booked),
                "jobs": sorted(entry.jobs),
                "_drift": drift,
            }
        )
    days: dict[str, int] = defaultdict(int)
    for row in rows:
        days[row["day"]] += row["_drift"]
    booked = sum(job.nanos for job in jobs)
    billed = sum(charge.nanos for charge in charges)
    late = sorted(job.job_id for job in jobs if job.ended_day and job.ended_day != job.day)
    return {
        "bookedUsd": nanos_to_usd(booked),
        "billedUsd": nanos_to_usd(billed),
        "bookedNanos": booked,
        "driftUsd": nanos_to_usd(billed - booked),
        "driftNanos": billed - booked,
        "driftPct": percent(billed - booked, booked),
        "creditsUsd": nanos_to_usd(sum(charge.credit_nanos for charge in charges)),
        "jobsBooked": len(jobs),
        "chargesRead": len(charges),
        "perJobMatching": labelled,
        "groups": [{k: v for k, v in row.items() if k != "_drift"} for row in rows],
        "driftGroups": [
            {k: v for k, v in row.items() if k != "_drift"} for row in rows if row["_drift"]
        ],
        "days": [
            {"day": day, "driftUsd": nanos_to_usd(nanos)}
            for day, nanos in sorted(days.items())
            if nanos
        ],
        "jobs": per_job,
        "chargesWithoutJob": orphans,
        "jobsPastTheirDay": late,
    }


def reconcile(*, billing_table: str, books_dataset: str, start: date, end: date) -> dict:
    """Read both sides and compare them; `start`/`end` are UTC days, both included."""
    charges = billing_export.charges(table=table_name(billing_table), start=start, end=end)
    jobs = booked_jobs(books_dataset=_dataset_name(books_dataset), start=start, end=end)
    return {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "billingTable": billing_table,
        "booksDataset": books_dataset,
        "currency": "USD",
        **compare(jobs=jobs, charges=charges),
    }


DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_:.-]{0,127}\.[A-Za-z0-9_]{1,1024}")


def _dataset_name(value: str) -> str:
    if not DATASET_NAME.fullmatch(value or ""):
        raise BadTable(f"{value!r} is not a dataset name: use PROJECT.DATASET")
    return value


def over_threshold(report: dict, *, pct: Decimal | None, usd_nanos: int | None) -> bool:
    """Whether the period's drift crosses the operator's threshold (either one)."""
    drift = abs(int(report["driftNanos"]))
    if usd_nanos is not None and drift > usd_nanos:
        return True
    if pct is not None:
        booked = int(report["bookedNanos"])
        return drift > 0 if booked == 0 else Decimal(drift) * 100 > pct * booked
    return False
