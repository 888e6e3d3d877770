"""`vbg spend [--group-by model] [--since DATE] [--until DATE] [--csv|--jsonl]`: what was
spent, grouped.

The key sees its own spend (a team admin the team's, the master key everything), over UTC
days of the jobs' create time (`GET /v1/gateway/spend`). `--csv` and `--jsonl` write the
export instead (one row per day and group, `GET /v1/gateway/spend/export`) to stdout, as the
gateway streams it.
"""

import json
import sys

from shared.cli import output
from shared.cli.errors import EXIT_OK
from shared.cli.gateway import Gateway, target_args

NAME_FIELDS = {"key": "alias", "team": "team", "model": "model", "day": "day"}


def group_name(group_by: str, group: dict) -> str:
    if group_by.startswith("label:"):
        return group.get("value") or "(no label)"
    return group.get(NAME_FIELDS[group_by]) or "-"


def run(args) -> int:
    params = {"groupBy": args.group_by}
    if args.since:
        params["start"] = args.since
    if args.until:
        params["end"] = args.until
    gateway = Gateway.from_args(args)
    if args.export:
        out = sys.stdout.buffer
        for chunk in gateway.stream("/v1/gateway/spend/export", {**params, "format": args.export}):
            out.write(chunk)
        out.flush()
        return EXIT_OK
    report = gateway.call("GET", "/v1/gateway/spend", params=params)
    if args.json:
        print(json.dumps(report))
        return EXIT_OK
    rows = [
        [
            group_name(args.group_by, group),
            f"{group['rows']:,}",
            f"{group['failed']:,}",
            output.usd(group["costUsd"]),
        ]
        for group in report["groups"]
    ]
    totals = report["totals"]
    rows.append(
        [
            "[bold]total[/bold]",
            f"{totals['rows']:,}",
            f"{totals['failed']:,}",
            f"[bold]{output.usd(totals['costUsd'])}[/bold]",
        ]
    )
    output.table(
        [args.group_by.upper(), "ROWS", "FAILED", "COST"],
        rows,
        title=f"Spend {report['start']} to {report['end']} (UTC)",
        numeric=("ROWS", "FAILED", "COST"),
    )
    return EXIT_OK


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "spend", parents=[target_args()], help="spend over days, grouped"
    )
    parser.add_argument(
        "--group-by", default="model", help="model, key, team, day or label:NAME (default model)"
    )
    parser.add_argument("--since", help="first day, YYYY-MM-DD (default: the 1st of this month)")
    parser.add_argument("--until", help="last day, YYYY-MM-DD (default: today)")
    formats = parser.add_mutually_exclusive_group()
    formats.add_argument(
        "--csv",
        dest="export",
        action="store_const",
        const="csv",
        help="write the export as CSV to stdout: one row per day and group",
    )
    formats.add_argument(
        "--jsonl",
        dest="export",
        action="store_const",
        const="jsonl",
        help="write the export as JSON lines to stdout: one row per day and group",
    )
    parser.set_defaults(func=run, export=None)
