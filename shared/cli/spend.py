"""`vbg spend [--group-by model] [--since DATE] [--until DATE]`: what was spent, grouped.

The key sees its own spend (a team admin the team's, the master key everything), over UTC
days of the jobs' create time (`GET /v1/gateway/spend`).
"""

import json

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
    report = Gateway.from_args(args).call("GET", "/v1/gateway/spend", params=params)
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
    parser.set_defaults(func=run)
