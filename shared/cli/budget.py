"""`vbg budget`: the key's budgets (its own and its team's): limit, spent, committed, left."""

import json
from decimal import Decimal

from shared.cli import output
from shared.cli.errors import EXIT_OK
from shared.cli.gateway import Gateway, target_args


def used_pct(budget: dict) -> str:
    limit = Decimal(budget["limitUsd"])
    if not limit:
        return "-"
    used = (Decimal(budget["spentUsd"]) + Decimal(budget["committedUsd"])) * 100 / limit
    style = "red" if used >= 100 else "yellow" if used >= 80 else "green"
    return f"[{style}]{used:.1f}%[/{style}]"


def run(args) -> int:
    budgets = Gateway.from_args(args).call("GET", "/v1/gateway/budget")["budgets"]
    if args.json:
        print(json.dumps(budgets))
        return EXIT_OK
    if not budgets:
        output.out().print("No budget applies to this key.")
        return EXIT_OK
    output.table(
        ["SCOPE", "SUBJECT", "PERIOD", "LIMIT", "SPENT", "COMMITTED", "LEFT", "USED"],
        [
            [
                b["scope"],
                b["subject"],
                b["period"]
                + (f" {b['periodStart']}..{b['periodEnd']}" if b["periodStart"] else ""),
                output.usd(b["limitUsd"]),
                output.usd(b["spentUsd"]),
                output.usd(b["committedUsd"]),
                output.usd(b["remainingUsd"]),
                used_pct(b),
            ]
            for b in budgets
        ],
        numeric=("LIMIT", "SPENT", "COMMITTED", "LEFT", "USED"),
    )
    return EXIT_OK


def register(subparsers) -> None:
    parser = subparsers.add_parser("budget", parents=[target_args()], help="this key's budgets")
    parser.set_defaults(func=run)
