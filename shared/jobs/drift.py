"""The daily reconciliation and the `drift` alert (#27 item 2).

Cloud Scheduler publishes `{"type": "reconcile"}` on `batch-job-events` once a day
(infra/scheduler.tf, when `billing_export_table` is set); `on_job_event` runs `daily`: the
books against the Cloud Billing export (shared/books/reconcile.py) for the UTC day
`VBG_RECONCILE_LAG_DAYS` (3) ago, since the export arrives late ("there are no delivery or
latency guarantees for the export to BigQuery":
https://cloud.google.com/billing/docs/how-to/export-data-bigquery-tables). When the day's
drift is over `VBG_DRIFT_THRESHOLD_PCT` (1 %) of the books or over `VBG_DRIFT_THRESHOLD_USD`
(when set), one `drift` alert goes out for that day (`alerts_sent/drift:<day>`): a
redelivered tick or a second run sends nothing more.
"""

from datetime import UTC, date, datetime, timedelta

from shared.books import reconcile
from shared.core import logs
from shared.core.config import settings
from shared.jobs import alerts

ALERT_KIND = "drift"


def alert_body(report: dict, *, threshold_pct, threshold_usd) -> dict:
    """What the alert says: the figures, the drifting groups and the jobs that explain them."""
    return {
        "day": report["start"],
        "booked_usd": report["bookedUsd"],
        "billed_usd": report["billedUsd"],
        "drift_usd": report["driftUsd"],
        "drift_pct": report["driftPct"],
        "credits_usd": report["creditsUsd"],
        "threshold_pct": str(threshold_pct),
        "threshold_usd": None if threshold_usd is None else str(threshold_usd),
        "groups": report["driftGroups"][:20],
        "jobs": report["jobs"][:20],
        "charges_without_job": report["chargesWithoutJob"][:20],
        "jobs_past_their_day": report["jobsPastTheirDay"][:20],
        "billing_table": report["billingTable"],
    }


def daily(*, today: date | None = None) -> str:
    """Reconcile one day; `off` (not configured), `within`, or the alert's outcome."""
    config = settings()
    if not config.billing_table or not config.books_dataset:
        logs.info("reconciliation not configured: VBG_BILLING_TABLE, VBG_BOOKS_DATASET")
        return "off"
    day = (today or datetime.now(UTC).date()) - timedelta(days=config.reconcile_lag_days)
    report = reconcile.reconcile(
        billing_table=config.billing_table, books_dataset=config.books_dataset, start=day, end=day
    )
    usd = config.drift_threshold_usd
    crossed = reconcile.over_threshold(
        report,
        pct=config.drift_threshold_pct,
        usd_nanos=None if usd is None else int(usd * 10**9),
    )
    logs.info(
        "books reconciled with the billing export",
        day=day.isoformat(),
        booked_usd=report["bookedUsd"],
        billed_usd=report["billedUsd"],
        drift_usd=report["driftUsd"],
        drift_pct=report["driftPct"],
        over_threshold=crossed,
    )
    if not crossed:
        return "within"
    body = alert_body(report, threshold_pct=config.drift_threshold_pct, threshold_usd=usd)
    return alerts.send(
        alert_id=f"{ALERT_KIND}:{day.isoformat()}",
        kind=ALERT_KIND,
        state="DRIFT",
        severity="WARNING",
        job_id="",
        body=body,
    )
