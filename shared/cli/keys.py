"""`vbg keys create|list|revoke`: the admin API from a terminal.

The gateway URL and the master key come from flags, else VBG_GATEWAY_URL and
VBG_MASTER_KEY, else the running local stack's `.local/stack.json` (`shared/cli/gateway.py`).
"""

import json

from shared.cli.errors import CliError
from shared.cli.gateway import Gateway, target_args


def _call(args, method: str, path: str, body: dict | None = None) -> dict:
    return Gateway.from_args(args).call(method, f"/v1/gateway/keys{path}", body)


def _labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise CliError(f"--label {pair!r}: expected NAME=VALUE")
        labels[name] = value
    return labels


def run_create(args) -> int:
    body: dict = {
        "alias": args.alias,
        "team": args.team or "",
        "models": args.model or [],
        "inputPrefixes": args.input_prefix or [],
        "outputPrefixes": args.output_prefix or [],
        "labels": _labels(args.label or []),
        "teamAdmin": args.team_admin,
    }
    if args.budget_usd is not None:
        body["budgetUsd"] = args.budget_usd
        body["budgetPeriod"] = args.budget_period
    created = _call(args, "POST", "", body)
    if args.json:
        print(json.dumps(created))
    else:
        print(f"key id   {created['id']}\nalias    {created['alias']}\nkey      {created['key']}")
        print("The key is shown once: store it now.")
    return 0


def run_list(args) -> int:
    listed = _call(args, "GET", "?showRevoked=true" if args.show_revoked else "")["keys"]
    if args.json:
        print(json.dumps(listed))
        return 0
    print(f"{'ID':<18}{'ALIAS':<20}{'TEAM':<16}{'MODELS':<28}{'BUDGET':<16}REVOKED")
    for key in listed:
        budget = f"{key['budgetUsd']}/{key['budgetPeriod']}" if key.get("budgetUsd") else "-"
        print(
            f"{key['id']:<18}{key['alias']:<20}{(key['team'] or '-'):<16}"
            f"{(','.join(key['models']) or 'all'):<28}{budget:<16}{key.get('revokeTime') or '-'}"
        )
    return 0


def run_revoke(args) -> int:
    revoked = _call(args, "POST", f"/{args.key_id}:revoke")
    print(json.dumps(revoked) if args.json else f"revoked {revoked['id']} ({revoked['alias']})")
    return 0


def register(subparsers) -> None:
    common = target_args(master=True)
    keys = subparsers.add_parser("keys", help="create, list and revoke gateway API keys")
    actions = keys.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser("create", parents=[common], help="make a key; shown once")
    create.add_argument("--alias", required=True)
    create.add_argument("--team")
    create.add_argument("--model", action="append", help="allowed model (repeat; default all)")
    create.add_argument("--input-prefix", action="append", help="gs:// prefix (repeat)")
    create.add_argument("--output-prefix", action="append", help="gs:// prefix (repeat)")
    create.add_argument("--label", action="append", help="NAME=VALUE stamped on jobs (repeat)")
    create.add_argument("--team-admin", action="store_true", help="may see the team's jobs")
    create.add_argument("--budget-usd", help="spend limit in USD per period")
    create.add_argument("--budget-period", choices=("day", "month"), default="month")
    create.set_defaults(func=run_create)

    listing = actions.add_parser(
        "list", parents=[common], help="list keys (never the keys themselves)"
    )
    listing.add_argument("--show-revoked", action="store_true")
    listing.set_defaults(func=run_list)

    revoke = actions.add_parser("revoke", parents=[common], help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(func=run_revoke)
