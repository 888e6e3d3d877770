"""`vbg reconcile --billing-table PROJECT.DATASET.TABLE --from DAY --to DAY`: the books against
the invoice (shared/books/reconcile.py).

Reads both sides from BigQuery with your own Google credentials (the local stack's emulator
when `.local/stack.json` names one): the Cloud Billing detailed export table, and the books'
dataset (`--books-dataset PROJECT.DATASET`, else VBG_BOOKS_DATASET, else the local stack's).
Prints the drift per day, project and model and the jobs that explain it (`--json`: the whole
report). Exit code 3 when the drift crosses `--threshold-pct` or `--threshold-usd`.
"""

import json
import os
from datetime import date
from decimal import Decimal, InvalidOperation

from shared.cli import output
from shared.cli.errors import EXIT_OK, CliError
from shared.cli.gateway import local_stack

EXIT_DRIFT = 3


def _day(value: str, flag: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CliError(f"{flag} {value!r} is not a day: use YYYY-MM-DD") from None


def _decimal(value: str | None, flag: str) -> Decimal | None:
    if value is None:
        return None
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        raise CliError(f"{flag} {value!r} is not a number") from None
    if not parsed.is_finite() or parsed < 0:
        raise CliError(f"{flag} {value!r} must be a number >= 0")
    return parsed


def run(args) -> int:
    from shared.books import reconcile

    start, end = _day(args.start, "--from"), _day(args.end, "--to")
    if start > end:
        raise CliError(f"--from {start} is after --to {end}")
    if (end - start).days > 366:
        raise CliError("at most 366 days at a time")
    pct = _decimal(args.threshold_pct, "--threshold-pct")
    usd = _decimal(args.threshold_usd, "--threshold-usd")
    stack = local_stack()
    books = args.books_dataset or os.environ.get("VBG_BOOKS_DATASET") or stack.get("books_dataset")
    if not books:
        raise CliError("no books dataset: pass --books-dataset PROJECT.DATASET")
    if stack.get("bigquery_url") and not os.environ.get("BIGQUERY_EMULATOR_HOST"):
        os.environ["BIGQUERY_EMULATOR_HOST"] = stack["bigquery_url"]
    try:
        report = reconcile.reconcile(
            billing_table=args.billing_table, books_dataset=books, start=start, end=end
        )
    except reconcile.BadTable as exc:
        raise CliError(str(exc)) from None
    crossed = reconcile.over_threshold(
        report, pct=pct, usd_nanos=None if usd is None else int(usd * 10**9)
    )
    if args.json:
        print(json.dumps({**report, "overThreshold": crossed}))
    else:
        _print(report)
    return EXIT_DRIFT if crossed else EXIT_OK


def _print(report: dict) -> None:
    rows = [
        [
            g["day"],
            g["project"],
            g["model"],
            output.usd(g["bookedUsd"]),
            output.usd(g["billedUsd"]),
            output.usd(g["driftUsd"]),
            f"{g['driftPct']}%" if g["driftPct"] else "-",
        ]
        for g in report["groups"]
    ]
    rows.append(
        [
            "[bold]total[/bold]",
            "",
            "",
            output.usd(report["bookedUsd"]),
            output.usd(report["billedUsd"]),
            f"[bold]{output.usd(report['driftUsd'])}[/bold]",
            f"{report['driftPct']}%" if report["driftPct"] else "-",
        ]
    )
    output.table(
        ["DAY", "PROJECT", "MODEL", "BOOKED", "BILLED", "DRIFT", "DRIFT %"],
        rows,
        title=f"Books against the invoice, {report['start']} to {report['end']} (UTC days)",
        numeric=("BOOKED", "BILLED", "DRIFT", "DRIFT %"),
    )
    for job in report["jobs"]:
        what = "no charge in the export" if job["missingFromBilling"] else "billed differently"
        print(
            f"job {job['jobId']} ({job['day']}): booked ${job['bookedUsd']}, billed "
            f"${job['billedUsd']}: {what}"
        )
    for charge in report["chargesWithoutJob"]:
        print(
            f"charges labelled vbg-intent={charge['intent']} (${charge['billedUsd']}) "
            "match no job of the books"
        )
    if report["jobsPastTheirDay"]:
        print(
            "jobs that ran past the day they were created (their charges fall later): "
            + ", ".join(report["jobsPastTheirDay"])
        )
    if not report["perJobMatching"]:
        print(
            "the export carries no vbg-intent label: jobs are compared per day, project "
            "and model only"
        )


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "reconcile", help="the books against the Cloud Billing export: drift per day and model"
    )
    parser.add_argument(
        "--billing-table", required=True, help="the detailed export table, PROJECT.DATASET.TABLE"
    )
    parser.add_argument("--from", dest="start", required=True, help="first UTC day, YYYY-MM-DD")
    parser.add_argument("--to", dest="end", required=True, help="last UTC day, YYYY-MM-DD")
    parser.add_argument("--books-dataset", help="the books, PROJECT.DATASET (VBG_BOOKS_DATASET)")
    parser.add_argument("--threshold-pct", help="exit 3 when |drift| is over this % of the books")
    parser.add_argument("--threshold-usd", help="exit 3 when |drift| is over this many USD")
    parser.add_argument("--json", action="store_true", help="the whole report as JSON")
    parser.set_defaults(func=run)
