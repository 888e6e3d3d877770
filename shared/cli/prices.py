"""`vbg prices list|show|diff|import`: the price catalog in force, and imports without a release.

- `list` / `show MODEL`: every model (or one) with the rates in force on a day (`--at`), at a
  location (`--location`, show), and where each price comes from. From the gateway
  (`GET /v1/gateway/prices`, master key), or `--offline` from the catalog bundled with vbg.
- `reprice JOB_ID`: the job's counted files priced again with the catalog in force, the
  difference booked as one recorded adjustment (`POST /v1/gateway/jobs/{id}:reprice`).
- `diff` / `import`: read LiteLLM's price map (`--litellm FILE_OR_URL`) or Google's Cloud
  Billing Catalog (`--billing FILE` of saved `services.skus.list` responses, or
  `--billing-api-key KEY` to read them live), send the Vertex entries to
  `POST /v1/gateway/prices:import`, and print what would change. `import --apply` makes it a
  new operator catalog version; nothing is applied without it.
"""

import json
import os
from pathlib import Path

from shared.cli import output
from shared.cli.errors import EXIT_OK, CliError
from shared.cli.gateway import Gateway, target_args

BILLING_API = "https://cloudbilling.googleapis.com/v1/services/{service}/skus"
# The Vertex AI service of the Billing Catalog (as listed by services.list; inferred: check
# `GET https://cloudbilling.googleapis.com/v1/services` if Google renames it).
VERTEX_SERVICE = "C7E2-9256-1C43"
MAX_PAGES = 50


def _read(source: str) -> bytes:
    if source.startswith(("http://", "https://")):
        import requests

        try:
            response = requests.get(source, timeout=(5, 60))
            response.raise_for_status()
        except requests.RequestException as exc:
            raise CliError(f"cannot read {source}: {exc}") from None
        return response.content
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {source}: {exc.strerror or exc}") from None


def _json(data: bytes, source: str):
    try:
        return json.loads(data)
    except ValueError as exc:
        raise CliError(f"{source} is not JSON: {exc}") from None


def litellm_document(source: str) -> dict:
    """LiteLLM's map, only its Vertex entries (the rest does not price Vertex batch rows)."""
    document = _json(_read(source), source)
    if not isinstance(document, dict):
        raise CliError(f"{source}: a LiteLLM price map is a JSON object")
    return {
        key: entry
        for key, entry in document.items()
        if isinstance(entry, dict)
        and str(entry.get("litellm_provider", "")).startswith("vertex_ai")
    }


def billing_pages(args) -> list:
    """Saved skus.list responses (one object or a list), or read live with an API key."""
    if args.billing:
        pages = _json(_read(args.billing), args.billing)
        return pages if isinstance(pages, list) else [pages]
    import requests

    url = BILLING_API.format(service=args.billing_service)
    pages, token = [], ""
    for _ in range(MAX_PAGES):
        params = {"key": args.billing_api_key, "pageSize": 5000}
        if token:
            params["pageToken"] = token
        try:
            response = requests.get(url, params=params, timeout=(5, 60))
            response.raise_for_status()
        except requests.RequestException as exc:
            raise CliError(f"cannot read the Billing Catalog: {exc}") from None
        page = response.json()
        pages.append(page)
        token = page.get("nextPageToken") or ""
        if not token:
            break
    return pages


def _rate(tiers: list, key: str) -> str:
    value = tiers[0].get(key) if tiers else None
    return "-" if value is None else f"${value}"


def _input_rate(tiers: list) -> str:
    """The first tier's input rate: per token, per embedding token or per character."""
    for key in ("input", "embeddingInput", "characterInput"):
        if tiers and key in tiers[0]:
            return _rate(tiers, key)
    return "-"


def run_list(args) -> int:
    params = {"at": args.at} if args.at else None
    if args.offline:
        report = _offline("catalog_view", args.at)
    else:
        report = Gateway.from_args(args).call("GET", "/v1/gateway/prices", params=params)
    if args.json:
        print(json.dumps(report))
        return EXIT_OK
    rows = [
        [
            m["model"],
            m["kind"],
            _input_rate(m["batch"]),
            _rate(m["batch"], "output") if m["kind"] == "gemini" else "-",
            m["regionalUplift"],
            m["retires"] or "-",
            ", ".join(m["sources"]),
        ]
        for m in report["models"]
    ]
    output.table(
        ["MODEL", "KIND", "BATCH IN /1M", "BATCH OUT /1M", "UPLIFT", "RETIRES", "SOURCES"],
        rows,
        title=f"Prices {report['catalogVersion']}",
        whole=("MODEL",),
    )
    return EXIT_OK


def _offline(view, *args) -> dict:
    """A view of the catalog bundled with vbg (no gateway, no operator catalog)."""
    from shared.core.errors import ApiError
    from shared.cost import price_views

    try:
        return getattr(price_views, view)(*args)
    except ApiError as exc:
        raise CliError(exc.message) from None


def run_show(args) -> int:
    if args.offline:
        report = _offline("model_view", args.model, args.at, args.location)
    else:
        params = {"location": args.location, **({"at": args.at} if args.at else {})}
        report = Gateway.from_args(args).call(
            "GET", f"/v1/gateway/prices/{args.model}", params=params
        )
    if args.json:
        print(json.dumps(report))
        return EXIT_OK
    print(
        f"{report['model']}  (catalog {report['catalogVersion']}, on {report['on']}, "
        f"location {report['location']}, uplift {report['regionalUplift']})"
    )
    for mode in ("batch", "online"):
        for tier in report[mode]:
            limit = tier.get("maxPromptTokens")
            scope = (
                f"prompt <= {limit:,}"
                if limit
                else "any prompt"
                if len(report[mode]) == 1
                else "above"
            )
            rates = ", ".join(f"{k} ${v}" for k, v in tier.items() if k != "maxPromptTokens")
            print(f"  {mode:6} {scope:20} per 1M: {rates}")
    facts = report.get("facts") or {}
    if facts.get("retires"):
        print(f"  retires {facts['retires']}; successor {facts.get('successor')}")
    print("  sources:")
    for key, source in (report.get("sources") or {}).items():
        if source:
            print(f"    {key}: {source['url']} (as of {source.get('as_of')})")
    for item in report.get("inferred") or ():
        print(f"  inferred: {item}")
    return EXIT_OK


def run_import(args) -> int:
    if args.litellm:
        body: dict[str, object] = {"source": "litellm", "document": litellm_document(args.litellm)}
    elif args.billing or args.billing_api_key:
        body = {"source": "billing", "document": billing_pages(args)}
    else:
        raise CliError(
            "name what to import: --litellm FILE_OR_URL, --billing FILE or --billing-api-key KEY"
        )
    if args.models:
        body["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    apply = bool(getattr(args, "apply", False))
    body["apply"] = apply
    if args.note:
        body["note"] = args.note
    report = Gateway.from_args(args).call("POST", "/v1/gateway/prices:import", body)
    if args.json:
        print(json.dumps(report))
        return EXIT_OK
    for change in report["diff"]:
        if change["status"] == "unchanged":
            continue
        print(f"{change['status']:9} {change['model']}")
        for field in change["changes"]:
            print(f"    {field['field']}: {field['old']} -> {field['new']}")
    unchanged = sum(1 for c in report["diff"] if c["status"] == "unchanged")
    print(f"{unchanged} model(s) unchanged; {len(report['skipped'])} SKU(s) skipped")
    if report["applied"]:
        print(f"applied: catalog {report['applied']}")
    elif apply:
        print("nothing to apply")
    else:
        print("not applied: run `vbg prices import ... --apply` to make this the catalog in force")
    return EXIT_OK


def run_reprice(args) -> int:
    body = {"note": args.note} if args.note else {}
    report = Gateway.from_args(args).call("POST", f"/v1/gateway/jobs/{args.job_id}:reprice", body)
    if args.json:
        print(json.dumps(report))
        return EXIT_OK
    for item in report["files"]:
        print(
            f"{item['uri']}: {output.usd(item['recordedUsd'])} "
            f"({item['recordedCatalogVersion'] or 'unknown'}) -> {output.usd(item['repricedUsd'])}"
        )
    print(
        f"job {report['jobId']} repriced with {report['catalogVersion']}: adjustment "
        f"{report['adjustmentNanos']} nano-dollars ({report['changeNanos']} booked now)"
    )
    return EXIT_OK


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "prices",
        help="the price catalog: list, show, diff and import prices",
        description="The price catalog in force (bundled + the operator's) and imports from "
        "LiteLLM's price map or Google's Cloud Billing Catalog, applied only with --apply.",
    )
    commands = parser.add_subparsers(dest="prices_command", metavar="ACTION", required=True)
    common = target_args(master=True)

    listing = commands.add_parser("list", parents=[common], help="every model and its rates")
    listing.add_argument("--at", help="the day whose rates to show (YYYY-MM-DD; default today)")
    listing.add_argument("--offline", action="store_true", help="the bundled catalog, no gateway")
    listing.set_defaults(func=run_list)

    show = commands.add_parser("show", parents=[common], help="one model: rates and sources")
    show.add_argument("model")
    show.add_argument("--at", help="the day whose rates to show (YYYY-MM-DD; default today)")
    show.add_argument("--location", default="global", help="global (default), a region, or us / eu")
    show.add_argument("--offline", action="store_true", help="the bundled catalog, no gateway")
    show.set_defaults(func=run_show)

    for name, helptext in (
        ("diff", "what an import would change (never applies)"),
        ("import", "import prices; applied only with --apply"),
    ):
        sub = commands.add_parser(name, parents=[common], help=helptext)
        source = sub.add_mutually_exclusive_group()
        source.add_argument("--litellm", metavar="FILE_OR_URL", help="LiteLLM's price map")
        source.add_argument(
            "--billing", metavar="FILE", help="saved Billing Catalog skus.list responses"
        )
        source.add_argument(
            "--billing-api-key",
            default=os.environ.get("VBG_BILLING_API_KEY"),
            help="read the Billing Catalog live with this API key (env VBG_BILLING_API_KEY)",
        )
        sub.add_argument(
            "--billing-service", default=VERTEX_SERVICE, help="the Billing Catalog service id"
        )
        sub.add_argument("--models", help="only these models (comma-separated)")
        sub.add_argument("--note", help="why (kept with the new catalog version)")
        if name == "import":
            sub.add_argument("--apply", action="store_true", help="make it the catalog in force")
        sub.set_defaults(func=run_import)

    again = commands.add_parser(
        "reprice",
        parents=[common],
        help="reprice a job's books with the catalog in force (recorded)",
    )
    again.add_argument("job_id")
    again.add_argument("--note", help="why (kept in the job's reprice history)")
    again.set_defaults(func=run_reprice)
