"""`vbg run INPUT.jsonl --model M`: a local JSONL in, its answers out, in order, with the cost.

1. Upload the file under the key's input prefix (`--input-prefix`, else the first of the key's
   own, from `GET /v1/gateway/me`) as `<prefix>vbg-run/<run id>/<file name>`, with the user's
   GCS credentials (the emulator for the local stack).
2. Show the estimate (`POST /v1/gateway/estimate`) and ask, unless `--yes`.
3. Create the job (output under `<output prefix>vbg-run/<run id>/`), show its progress.
4. When it ends: download every `predictions*.jsonl`, join the rows to the input lines on
   the request (Vertex does not keep the order; identical requests map one to one) and write
   one row per input line, in input order, to `--out` (default `<input>.results.jsonl`). A
   line with no row gets `{"request": ..., "status": "not processed: ..."}`.
5. Print the final cost, as the gateway's books have it.

Access: the user's principal needs write access to the input prefix (the upload) and only
read access to the output prefix: nothing here writes outputs (the gateway copies sealed
outputs into the client's folder; docs/accounting.md "Books that hold"). Read-only is what
keys' principals should get there: whoever can write to an output folder can replace the
answers people read.
"""

import json
import time
import uuid
from pathlib import Path

from shared.cli import output
from shared.cli.errors import EXIT_FAILURE, EXIT_OK, CliError
from shared.cli.gateway import Gateway, target_args
from shared.cli.jobs import EXIT_INTERRUPTED, Interrupted, watch
from shared.core import jsonl
from shared.jobs import rows as rowjoin


def read_lines(path: Path) -> list[str]:
    """The input's non-blank lines, as Vertex reads them."""
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc}") from None
    lines = jsonl.records(text)
    if not lines:
        raise CliError(f"{path} has no rows")
    return lines


def ordered_results(lines: list[str], output_rows, state: str) -> tuple[list[dict], dict]:
    """One row per input line, in input order, and the counts."""
    joined = rowjoin.join(lines, output_rows)
    results = []
    for raw, row in zip(lines, joined.rows, strict=True):
        if row is None:
            try:
                request = rowjoin.request_of(json.loads(raw))
            except ValueError:
                request = raw
            row = {"request": request, "status": f"not processed: the job ended {state}"}
        results.append(row)
    counts = {
        "rows": len(lines),
        "succeeded": len(joined.succeeded),
        "failed": len(joined.failed),
        "notProcessed": len(joined.missing),
        "unmatchedOutputRows": len(joined.unmatched),
    }
    return results, counts


def _under(prefix: str, run_id: str) -> str:
    return prefix.rstrip("/") + f"/vbg-run/{run_id}/"


def _prefixes(gateway: Gateway, args) -> tuple[str, str]:
    me = gateway.call("GET", "/v1/gateway/me")
    input_prefix = args.input_prefix or next(iter(me.get("inputPrefixes") or []), None)
    output_prefix = args.output_prefix or next(iter(me.get("outputPrefixes") or []), None)
    if not input_prefix or not output_prefix:
        raise CliError(
            "this key names no input/output prefix: pass --input-prefix and --output-prefix"
        )
    for prefix in (input_prefix, output_prefix):
        if not prefix.startswith("gs://"):
            raise CliError(f"{prefix!r} is not a gs:// prefix")
    return input_prefix, output_prefix


def _split(uri: str) -> tuple[str, str]:
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    return bucket, name


def upload(gateway: Gateway, path: Path, uri: str) -> None:
    bucket, name = _split(uri)
    try:
        blob = gateway.storage().bucket(bucket).blob(name)
        blob.upload_from_filename(str(path), content_type="application/jsonl")
    except Exception as exc:
        raise CliError(f"cannot upload {path} to {uri}: {exc}", EXIT_FAILURE) from None


def download_rows(gateway: Gateway, directory: str):
    """Every row of the files that answer the job (`rows.answer_files`: the final files, or
    the incremental ones of a cancelled or expired job)."""
    bucket, folder = _split(directory.rstrip("/") + "/")
    client = gateway.storage()
    names = [blob.name for blob in client.list_blobs(bucket, prefix=folder)]
    for name in rowjoin.answer_files(names, folder):
        for line in jsonl.records(client.bucket(bucket).blob(name).download_as_bytes().decode()):
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict):
                yield row


def _labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep:
            raise CliError(f"--label {pair!r}: expected NAME=VALUE")
        labels[name] = value
    return labels


def _show_estimate(estimate: dict, rows: int) -> None:
    cost = estimate.get("costUsd") or {}
    output.err().print(
        f"{rows:,} rows, model {estimate.get('model')}: estimated cost "
        f"{output.usd(cost.get('expected'))} (from {output.usd(cost.get('low'))} to "
        f"{output.usd(cost.get('high'))})"
    )
    for budget in estimate.get("budgets") or []:
        fits = "fits" if budget.get("fits") else "DOES NOT FIT"
        output.err().print(
            f"  {budget['scope']} budget {budget['subject']}: {output.usd(budget['remainingUsd'])}"
            f" left of {output.usd(budget['limitUsd'])} ({fits})"
        )


def run(args) -> int:
    path = Path(args.input)
    lines = read_lines(path)
    gateway = Gateway.from_args(args)
    input_prefix, output_prefix = _prefixes(gateway, args)
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
    input_uri = _under(input_prefix, run_id) + path.name
    body = {
        "displayName": args.name or path.stem,
        "model": args.model,
        "inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": [input_uri]}},
        "outputConfig": {
            "predictionsFormat": "jsonl",
            "gcsDestination": {"outputUriPrefix": _under(output_prefix, run_id)},
        },
        "labels": _labels(args.label),
    }
    show = not args.json
    upload(gateway, path, input_uri)
    if show:
        output.err().print(f"uploaded {len(lines):,} rows to {input_uri}")
    estimate = gateway.call("POST", "/v1/gateway/estimate", body)
    if show:
        _show_estimate(estimate, len(lines))
    if not args.yes and not output.ask("Create the job?"):
        output.err().print("not created")
        return EXIT_FAILURE
    created = gateway.call("POST", "/v1/projects/-/locations/-/batchPredictionJobs", body)
    job_id = created["name"].rsplit("/", 1)[-1]
    if show:
        output.err().print(f"job {job_id} created ({created['name']})")
    try:
        final = watch(gateway, job_id, rows=len(lines), interval=args.interval, show=show)
    except Interrupted:
        output.err().print(f"job {job_id} left running: vbg jobs watch {job_id}")
        return EXIT_INTERRUPTED
    state = output.short_state(final.state)
    directory = (final.upstream.get("outputInfo") or {}).get("gcsOutputDirectory")
    results, counts = ordered_results(
        lines, download_rows(gateway, directory) if directory else [], state
    )
    out_path = Path(args.out) if args.out else path.with_name(path.stem + ".results.jsonl")
    with out_path.open("w", encoding="utf-8") as handle:
        for row in results:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    summary = {
        "jobId": job_id,
        "state": state,
        "out": str(out_path),
        **counts,
        "costUsd": final.cost_usd,
        "costFinal": final.cost_final,
        "estimateUsd": (estimate.get("costUsd") or {}).get("expected"),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        cost = output.usd(final.cost_usd) + ("" if final.cost_final else " (not final yet)")
        print(
            f"job {job_id} {state}: {counts['succeeded']:,} ok, {counts['failed']:,} failed, "
            f"{counts['notProcessed']:,} not processed; cost {cost}"
        )
        print(f"{len(results):,} rows written in input order to {out_path}")
    return EXIT_OK if state == "SUCCEEDED" else EXIT_FAILURE


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        parents=[target_args()],
        help="run a local JSONL file as a batch job and write the answers in input order",
    )
    parser.add_argument("input", help="the JSONL file of requests")
    parser.add_argument("--model", required=True, help="a model name the gateway offers")
    parser.add_argument("--out", help="where to write the results (default INPUT.results.jsonl)")
    parser.add_argument("--label", action="append", help="NAME=VALUE on the job (repeat)")
    parser.add_argument("--name", help="the job's display name (default: the file's name)")
    parser.add_argument("--yes", "-y", action="store_true", help="create without asking")
    parser.add_argument("--input-prefix", help="gs:// prefix to upload under (default: the key's)")
    parser.add_argument(
        "--output-prefix",
        help="gs:// prefix for the outputs (default: the key's); read access is enough",
    )
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    parser.set_defaults(func=run)
