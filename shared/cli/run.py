"""`vbg run INPUT.jsonl --model M`: a local JSONL of any size in, its answers out, in order.

1. Upload the file through a resumable upload session the gateway opens for the key's own
   input prefix (`POST /v1/gateway/uploads`, `--input-prefix` to choose the folder): the
   bytes go straight to GCS in `CHUNK` pieces (Content-Range), so no Google credentials are
   needed and no request passes Cloud Functions' 32 MiB cap. The file is read as a stream.
2. Show the estimate (`POST /v1/gateway/estimate`) and ask, unless `--yes`.
3. Create a run (`POST /v1/gateway/runs`, shared/runs/): the gateway splits the file under
   the model's per-job limits, queues the pieces and merges their outputs in input order
   into `<output prefix>vbg-run/<stamp>/<run id>/results-*.jsonl`; show its progress.
4. When it ends: stream the results files, in name order (= input order), into `--out`
   (default `<input>.results.jsonl`): one row per input line; a line with no answer reads
   `{"request": ..., "status": "not processed: ..."}`.
5. Print the run's cost: the sum of its pieces' books, as the gateway has them.

Access: the upload needs nothing but the key. The download reads the key's own output folder
with the user's GCS credentials (read access is enough; the emulator for the local stack):
the gateway writes the results there, nothing here writes outputs. Memory stays flat
whatever the file's size: a chunk of the upload, a chunk of the download.
"""

import json
import time
from pathlib import Path

from shared.cli import output
from shared.cli.errors import EXIT_FAILURE, EXIT_OK, CliError
from shared.cli.gateway import Gateway, target_args
from shared.cli.jobs import EXIT_INTERRUPTED
from shared.core import jsonl

CHUNK = 8 * 1024 * 1024  # a multiple of 256 KiB, as GCS resumable uploads want
TERMINAL = {"SUCCEEDED", "PARTIALLY_SUCCEEDED", "FAILED", "CANCELLED"}
UPLOAD_TIMEOUT = 300


def count_lines(path: Path) -> int:
    """Non-blank lines, read as a stream (a first look: the gateway's pass is the judge)."""
    rows = 0
    try:
        with path.open("rb") as handle:
            for line in handle:  # binary: lines end at "\n" alone
                if not jsonl.is_blank(line):
                    rows += 1
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc}") from None
    if not rows:
        raise CliError(f"{path} has no rows")
    return rows


def upload(gateway: Gateway, path: Path, prefix: str | None) -> str:
    """Stream the file into a gateway-opened resumable session; the object's gs:// URI."""
    import requests

    size = path.stat().st_size
    body: dict = {"name": path.name, "size": size}
    if prefix:
        body["inputPrefix"] = prefix
    session = gateway.call("POST", "/v1/gateway/uploads", body)
    start = 0
    with path.open("rb") as handle:
        while True:
            chunk = handle.read(CHUNK)
            end = start + len(chunk) - 1
            span = f"bytes {start}-{end}/{size}" if chunk else f"bytes */{size}"
            try:
                response = requests.put(
                    session["sessionUri"],
                    data=chunk,
                    headers={"Content-Range": span},
                    timeout=UPLOAD_TIMEOUT,
                )
            except requests.RequestException as exc:
                raise CliError(f"upload of {path} failed: {exc}", EXIT_FAILURE) from None
            if response.status_code in (200, 201):
                return session["uri"]
            if response.status_code != 308:
                raise CliError(
                    f"upload of {path} failed: HTTP {response.status_code} {response.text[:200]}",
                    EXIT_FAILURE,
                )
            start += len(chunk)
            if not chunk:
                raise CliError(f"upload of {path} did not complete", EXIT_FAILURE)


def _split(uri: str) -> tuple[str, str]:
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    return bucket, name


def download(gateway: Gateway, directory: str, out_path: Path) -> int:
    """Stream the run's results files, in name order, into `out_path`; the rows written."""
    bucket, folder = _split(directory)
    client = gateway.storage()
    names = sorted(
        blob.name
        for blob in client.list_blobs(bucket, prefix=folder)
        if blob.name.rsplit("/", 1)[-1].startswith("results-")
    )
    rows = 0
    with out_path.open("wb") as handle:
        for name in names:
            with client.bucket(bucket).blob(name).open("rb", chunk_size=CHUNK) as source:
                while chunk := source.read(CHUNK):
                    handle.write(chunk)
                    rows += chunk.count(b"\n")
    return rows


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


def _output_prefix(gateway: Gateway, args) -> str:
    prefix = args.output_prefix
    if not prefix:
        me = gateway.call("GET", "/v1/gateway/me")
        prefix = next(iter(me.get("outputPrefixes") or []), None)
    if not prefix or not prefix.startswith("gs://"):
        raise CliError("this key names no gs:// output prefix: pass --output-prefix")
    return prefix.rstrip("/") + "/vbg-run/" + time.strftime("%Y%m%d-%H%M%S") + "/"


def watch_run(gateway: Gateway, run_id: str, *, interval: float, show: bool) -> dict:
    """Poll until the run ends and its cost is final; Ctrl-C asks to cancel it."""
    while True:
        try:
            run = gateway.call("GET", f"/v1/gateway/runs/{run_id}")
            if show:
                pieces = run.get("pieceList") or []
                states = {
                    s: sum(1 for p in pieces if p["state"] == s)
                    for s in ("queued", "running", "merged")
                }
                output.err().print(
                    f"run {run_id} {run['state']}: {len(pieces)} pieces "
                    f"({states['queued']} queued, {states['running']} running, "
                    f"{states['merged']} merged); cost so far "
                    f"{output.usd(run['cost']['totalUsd'])}",
                )
            if run["terminal"] and run["cost"]["final"]:
                return run
            time.sleep(interval)
        except KeyboardInterrupt:
            if not output.ask(f"\nCancel run {run_id}? (no: leave it running)"):
                raise
            gateway.call("POST", f"/v1/gateway/runs/{run_id}:cancel", {})
            output.err().print(f"cancel requested for run {run_id}; waiting for it to stop")


def run(args) -> int:
    path = Path(args.input)
    rows = count_lines(path)
    gateway = Gateway.from_args(args)
    show = not args.json
    input_uri = upload(gateway, path, args.input_prefix)
    if show:
        output.err().print(f"uploaded {rows:,} rows to {input_uri}")
    body = {
        "displayName": args.name or path.stem,
        "model": args.model,
        "inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": [input_uri]}},
        "outputConfig": {
            "predictionsFormat": "jsonl",
            "gcsDestination": {"outputUriPrefix": _output_prefix(gateway, args)},
        },
        "labels": _labels(args.label),
    }
    estimate = gateway.call("POST", "/v1/gateway/estimate", body)
    if show:
        _show_estimate(estimate, rows)
    if not args.yes and not output.ask("Create the run?"):
        output.err().print("not created")
        return EXIT_FAILURE
    if args.max_concurrent_jobs:
        body["maxConcurrentJobs"] = args.max_concurrent_jobs
    created = gateway.call("POST", "/v1/gateway/runs", body)
    run_id = created["runId"]
    if show:
        output.err().print(f"run {run_id} created: {created['pieces']} piece(s)")
    try:
        final = watch_run(gateway, run_id, interval=args.interval, show=show)
    except KeyboardInterrupt:
        output.err().print(f"run {run_id} left running: GET /v1/gateway/runs/{run_id}")
        return EXIT_INTERRUPTED
    out_path = Path(args.out) if args.out else path.with_name(path.stem + ".results.jsonl")
    written = download(gateway, final["outputDirectory"], out_path)
    counts = final.get("counts") or {}
    summary = {
        "runId": run_id,
        "state": final["state"],
        "pieces": final["pieces"],
        "jobIds": [p["jobId"] for p in final["pieceList"] if p.get("jobId")],
        "out": str(out_path),
        "rows": written,
        "succeeded": counts.get("succeeded", 0),
        "failed": counts.get("failed", 0),
        "notProcessed": counts.get("notProcessed", 0),
        "unmatchedOutputRows": counts.get("unmatched", 0),
        "costUsd": final["cost"]["totalUsd"],
        "costFinal": final["cost"]["final"],
        "pieceCostsUsd": [p["costUsd"] for p in final["cost"]["pieces"]],
        "estimateUsd": (estimate.get("costUsd") or {}).get("expected"),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"run {run_id} {final['state']}: {summary['succeeded']:,} ok, "
            f"{summary['failed']:,} failed, {summary['notProcessed']:,} not processed; "
            f"cost {output.usd(summary['costUsd'])} ({final['pieces']} job(s))"
        )
        print(f"{written:,} rows written in input order to {out_path}")
    return EXIT_OK if final["state"] == "SUCCEEDED" else EXIT_FAILURE


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        parents=[target_args()],
        help="run a local JSONL file of any size and write the answers in input order",
    )
    parser.add_argument("input", help="the JSONL file of requests")
    parser.add_argument("--model", required=True, help="a model name the gateway offers")
    parser.add_argument("--out", help="where to write the results (default INPUT.results.jsonl)")
    parser.add_argument("--label", action="append", help="NAME=VALUE on every job (repeat)")
    parser.add_argument("--name", help="the run's display name (default: the file's name)")
    parser.add_argument("--yes", "-y", action="store_true", help="create without asking")
    parser.add_argument("--input-prefix", help="gs:// folder to upload under (default: the key's)")
    parser.add_argument(
        "--output-prefix",
        help="gs:// prefix for the outputs (default: the key's); read access is enough",
    )
    parser.add_argument(
        "--max-concurrent-jobs", type=int, help="most pieces submitted or running at once"
    )
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    parser.set_defaults(func=run)
