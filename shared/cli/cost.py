"""`vbg cost`: price a predictions file offline, with the gateway's own price table.

The file is a local path, a `gs://` object, or a Vertex batch output table in BigQuery
(`bq://project.dataset.table`, read row by row as prediction lines: shared/books/bq_tables.py).

A row that cannot be priced (its model has no price, or it carries no usage in any known
shape) is counted, never a silent $0: the report says how many (`unpriced_rows`,
`no_usage_rows`), stderr warns, and `--strict` turns the warning into exit code 2.
"""

import json
import sys

from shared.cli.errors import EXIT_OK, EXIT_USAGE, CliError


def _chunks(target: str):
    from shared.cost import usage

    if target.startswith("bq://"):
        from shared.books import bq_tables

        try:
            bq_tables.table_of(target)
        except bq_tables.BadTableUri as exc:
            raise CliError(str(exc)) from None
        return bq_tables.prediction_chunks(target)
    if target.startswith("gs://"):
        try:
            bucket, name = usage.parse_uri(target)
        except ValueError as exc:
            raise CliError(str(exc)) from None
        return usage.read_gcs_chunks(bucket, name)
    return usage.read_file_chunks(target)


def cost_report(result, model: str | None) -> dict:
    """The `vbg cost --json` object: every counter of the usage parser (`COUNTER_FIELDS`),
    the cost as `cost_usd` (a USD string), plus by_model if mixed."""
    from shared.cost import pricing
    from shared.cost.usage import COUNTER_FIELDS

    counters = [name for name in COUNTER_FIELDS if name != "cost_nanos"]

    # Failed rows carry no model: only the models of succeeded rows name the file's model.
    carried = {name: part for name, part in result.by_model.items() if part.succeeded}
    models = sorted(carried) or result.models()
    out = {"model": model or (models[0] if len(models) == 1 else None)}
    out.update({name: getattr(result, name) for name in counters})
    out["cost_usd"] = result.cost_usd
    if len(models) > 1:
        out["by_model"] = {
            name: {
                **{field: getattr(part, field) for field in counters},
                "cost_usd": pricing.nanos_to_usd(part.cost_nanos),
            }
            for name, part in sorted(carried.items())
        }
    return out


def _table(target: str, report: dict, result, batch: bool) -> str:
    lines = [
        f"file        {target}",
        f"model       {report['model'] or 'several (see below)'}"
        f"  ({'batch' if batch else 'online'} rates)",
        f"rows        {result.rows:,}  succeeded {result.succeeded:,}  failed {result.failed:,}"
        f"  malformed {result.malformed:,}",
    ]
    tokens = [
        ("prompt", result.prompt_tokens),
        ("cached", result.cached_tokens),
        ("candidates", result.candidates_tokens),
        ("thoughts", result.thoughts_tokens),
        ("tool use", result.tool_use_prompt_tokens),
        ("audio", result.audio_prompt_tokens),
        ("embedding", result.embedding_tokens),
        ("characters", result.embedding_characters),
    ]
    lines.append("tokens      " + "  ".join(f"{name} {value:,}" for name, value in tokens if value))
    lines.append(f"cost        ${report['cost_usd']} USD")
    for name, part in report.get("by_model", {}).items():
        lines.append(f"  {name:<32} rows {part['rows']:,}  ${part['cost_usd']}")
    for sample in result.failed_samples:
        lines.append(f"failed      line {sample['line']}: {sample['message'][:120]}")
    for sample in result.malformed_samples:
        lines.append(f"malformed   line {sample['line']}: {sample['error'][:120]}")
    for sample in result.unpriced_samples:
        lines.append(f"unpriced    line {sample['line']}: {sample['model']}: {sample['reason']}")
    return "\n".join(lines)


def unpriced_warning(result) -> str | None:
    """One stderr line when any row went unpriced, naming the models and reasons."""
    if not (result.unpriced_rows or result.no_usage_rows):
        return None
    from shared.cost import pricing, usage

    parts = []
    if result.unpriced_rows:
        samples = result.unpriced_samples
        names = sorted({str(s["model"]) for s in samples if s["reason"] == usage.NO_PRICE})
        parts.append(
            f"{result.unpriced_rows} row(s) name a model with no price ({', '.join(names)}); "
            f"pass --model (known: {', '.join(pricing.known_models())})"
        )
    if result.no_usage_rows:
        parts.append(f"{result.no_usage_rows} row(s) carry no usage in any known shape")
    return "warning: priced at $0, not counted in cost_usd: " + "; ".join(parts)


def run_cost(args) -> int:
    from shared.cost import pricing, usage

    model = None
    if args.model:
        try:
            model = pricing.resolve_model(args.model)
        except pricing.UnknownModelError as exc:
            raise CliError(str(exc)) from None
    try:
        result = usage.parse_predictions(
            _chunks(args.target),
            model=model,
            batch=not args.online,
            location=args.location,
        )
    except usage.ObjectGone as exc:
        raise CliError(str(exc)) from None
    except FileNotFoundError:
        raise CliError(f"{args.target}: no such file") from None
    except IsADirectoryError:
        raise CliError(f"{args.target}: is a directory, expected a predictions file") from None
    except PermissionError as exc:
        raise CliError(f"{args.target}: {exc.strerror or exc}") from None
    report = cost_report(result, model)
    if args.json:
        print(json.dumps(report, separators=(", ", ": ")))
    else:
        print(_table(args.target, report, result, not args.online))
    warning = unpriced_warning(result)
    if warning:
        print(warning, file=sys.stderr)
        if args.strict:
            return EXIT_USAGE
    return EXIT_OK


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "cost",
        help="price a predictions file offline",
        description="Count and price every row of a Vertex batch predictions file "
        "(a local path or gs://bucket/object) with the gateway's price table.",
    )
    parser.add_argument("target", metavar="PATH_GS_OR_BQ_URI")
    parser.add_argument(
        "--model", help="the job's model (default: each row's response.modelVersion)"
    )
    parser.add_argument(
        "--location",
        default="global",
        help="the job's location: global (default), a region such as us-central1, or us / eu; "
        "outside global the models that carry Google's regional uplift cost 10%% more",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--online", action="store_true", help="price at online rates instead of batch rates"
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit 2 when any row could not be priced (default: warn on stderr)",
    )
    parser.set_defaults(func=run_cost)
