"""`vbg jobs list|get|cancel|watch|retry-failed`: the caller's jobs from a terminal.

`watch` (and `vbg run`) show a live progress line on stderr: state, rows done and failed,
elapsed time, cost so far; the live state comes from Vertex (through the gateway), the cost
from the gateway's books. When the job ends they wait for its cost to be final. Ctrl-C asks
whether to cancel the job or leave it running.
"""

import json
import time
from dataclasses import dataclass

from shared.cli import output
from shared.cli.errors import EXIT_OK, CliError
from shared.cli.gateway import Gateway, job_path, target_args

TERMINAL = {"SUCCEEDED", "PARTIALLY_SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"}
EXIT_INTERRUPTED = 130


def job_summary(gateway: Gateway, job_id: str) -> dict:
    return gateway.call("GET", f"/v1/gateway/jobs/{job_id}")


@dataclass
class Progress:
    """One poll of a job: Vertex's live state and counts, the gateway's cost."""

    state: str
    succeeded: int
    failed: int
    incomplete: int
    cost_usd: str
    cost_final: bool
    upstream: dict

    @property
    def terminal(self) -> bool:
        return output.short_state(self.state) in TERMINAL


def poll(gateway: Gateway, job_id: str, name: str) -> Progress:
    upstream = gateway.call("GET", job_path(name))
    summary = job_summary(gateway, job_id)
    stats = upstream.get("completionStats") or {}
    return Progress(
        state=upstream.get("state") or summary["state"],
        succeeded=int(stats.get("successfulCount") or 0),
        failed=int(stats.get("failedCount") or 0),
        incomplete=int(stats.get("incompleteCount") or 0),
        cost_usd=summary["costUsd"],
        cost_final=summary["costFinal"],
        upstream=upstream,
    )


def cancel(gateway: Gateway, job_id: str) -> None:
    name = job_summary(gateway, job_id)["name"]
    gateway.call("POST", job_path(name, ":cancel"), {})


class Interrupted(Exception):
    """The user pressed Ctrl-C and chose to leave the job running."""


def watch(
    gateway: Gateway,
    job_id: str,
    *,
    rows: int | None = None,
    interval: float = 2.0,
    cost_timeout: float = 120.0,
    show: bool = True,
) -> Progress:
    """Poll until the job ends and its cost is final (or `cost_timeout` passes after the end);
    raises Interrupted when the user leaves it running."""
    name = job_summary(gateway, job_id)["name"]
    started = time.monotonic()
    ended_at = None
    live = _live(rows) if show else None
    task = live.add_task("", total=rows) if live else None
    try:
        if live:
            live.start()
        while True:
            try:
                current = poll(gateway, job_id, name)
                if live:
                    done = current.succeeded + current.failed
                    cost = "final" if current.cost_final else "so far"
                    live.update(
                        task,
                        completed=done,
                        description=(
                            f"{output.styled_state(current.state)}  ok {current.succeeded:,}  "
                            f"failed {current.failed:,}  cost {output.usd(current.cost_usd)} {cost}"
                        ),
                    )
                if current.terminal:
                    ended_at = ended_at or time.monotonic()
                    if current.cost_final or time.monotonic() - ended_at > cost_timeout:
                        return current
                time.sleep(interval)
            except KeyboardInterrupt:
                if live:
                    live.stop()
                if not output.ask(f"\nCancel job {job_id}? (no: leave it running)"):
                    raise Interrupted(job_id) from None
                cancel(gateway, job_id)
                output.err().print(f"cancel requested for job {job_id}; waiting for it to stop")
                if live:
                    live.start()
    finally:
        if live:
            live.stop()
        if show:
            output.err().print(f"elapsed {time.monotonic() - started:.1f}s")


def _live(rows: int | None):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn() if rows else TextColumn(""),
        TimeElapsedColumn(),
        console=output.err(),
        transient=False,
    )


def final_line(job_id: str, progress: Progress) -> str:
    cost = output.usd(progress.cost_usd)
    note = "" if progress.cost_final else " (not final yet: the gateway is still counting)"
    return (
        f"job {job_id} {output.short_state(progress.state)}: {progress.succeeded:,} ok, "
        f"{progress.failed:,} failed, {progress.incomplete:,} not processed; cost {cost}{note}"
    )


# --- commands ----------------------------------------------------------------------------


def run_list(args) -> int:
    params = {"pageSize": str(args.limit)}
    if args.state:
        params["state"] = args.state
    if args.label:
        params["label"] = args.label
    jobs = Gateway.from_args(args).call("GET", "/v1/gateway/jobs", params=params)["jobs"]
    if args.json:
        print(json.dumps(jobs))
        return EXIT_OK
    output.table(
        ["ID", "NAME", "MODEL", "STATE", "CREATED", "OK", "FAILED", "ESTIMATE", "COST"],
        [
            [
                j["jobId"],
                j["displayName"],
                j["model"],
                output.styled_state(j["state"]),
                (j["createTime"] or "")[:19].replace("T", " "),
                j["rows"]["succeeded"],
                j["rows"]["failed"],
                output.usd(j["estimateUsd"]),
                output.usd(j["costUsd"]) + ("" if j["costFinal"] else " so far"),
            ]
            for j in jobs
        ],
        numeric=("OK", "FAILED", "ESTIMATE", "COST"),
    )
    return EXIT_OK


def estimated_note(cost: dict) -> str | None:
    """The rows the floor booked at the estimate, and why, for `vbg jobs get`."""
    floor = cost.get("floor") or {}
    if not cost.get("estimatedRows"):
        return None
    return (
        f"{cost['estimatedRows']:,} rows {output.usd(cost['estimatedUsd'])} (in the cost): "
        f"Vertex ran {floor.get('vertexSucceeded', 0):,} ok rows, its files hold "
        f"{floor.get('bookedSucceeded', 0):,}; booked at the estimate, not final"
    )


def run_get(args) -> int:
    gateway = Gateway.from_args(args)
    job = job_summary(gateway, args.job_id)
    cost = gateway.call("GET", f"/v1/gateway/jobs/{args.job_id}/cost")
    if args.json:
        print(json.dumps({**job, "cost": cost}))
        return EXIT_OK
    rows = job["rows"]
    output.facts(
        [
            ("job", f"{job['jobId']}  {job['displayName'] or ''}"),
            ("state", output.styled_state(job["state"])),
            ("model", job["model"]),
            ("owner", f"{job['ownerAlias']} ({job['ownerKeyId']})"),
            ("labels", ", ".join(f"{k}={v}" for k, v in job["labels"].items())),
            ("created", job["createTime"]),
            (
                "rows",
                f"{rows['succeeded']:,} ok, {rows['failed']:,} failed, "
                f"{rows['incomplete']:,} not processed",
            ),
            ("estimate", output.usd(job["estimateUsd"])),
            (
                "cost",
                output.usd(cost["costUsd"]) + (" (final)" if cost["costFinal"] else " so far"),
            ),
            ("estimated", estimated_note(cost)),
            ("tampered files", cost.get("tamperedFiles") or None),
            ("retry of", job["retryOf"]),
            ("retries", ", ".join(job["retries"])),
            (
                "chain total",
                output.usd(cost["chain"]["totalCostUsd"])
                if len(cost["chain"]["jobs"]) > 1
                else None,
            ),
            ("error", (job.get("error") or {}).get("message")),
        ]
    )
    for step in job["timeline"]:
        came = output.short_state(step["from"]) + " -> " if step["from"] else ""
        output.out().print(f"  {step['time']}  {came}{output.styled_state(step['to'])}")
    return EXIT_OK


def run_cancel(args) -> int:
    gateway = Gateway.from_args(args)
    cancel(gateway, args.job_id)
    print(
        json.dumps({"jobId": args.job_id, "cancelRequested": True})
        if args.json
        else f"cancel requested for job {args.job_id}"
    )
    return EXIT_OK


def run_watch(args) -> int:
    gateway = Gateway.from_args(args)
    try:
        final = watch(gateway, args.job_id, interval=args.interval, show=not args.json)
    except Interrupted:
        output.err().print(f"job {args.job_id} left running: vbg jobs watch {args.job_id}")
        return EXIT_INTERRUPTED
    if args.json:
        print(json.dumps(job_summary(gateway, args.job_id)))
    else:
        print(final_line(args.job_id, final))
    return EXIT_OK


def run_retry(args) -> int:
    retried = Gateway.from_args(args).call(
        "POST", f"/v1/gateway/jobs/{args.job_id}:retryFailed", {}
    )
    if args.json:
        print(json.dumps(retried))
    else:
        rows = retried["rows"]
        print(
            f"retry job {retried['jobId']} created from job {args.job_id}: {rows['total']:,} rows "
            f"({rows['failed']:,} failed, {rows['unprocessed']:,} not processed)"
        )
    return EXIT_OK


def _job_id(text: str) -> str:
    job_id = text.rstrip("/").rsplit("/", 1)[-1]
    if not job_id.isdigit():
        raise CliError(f"{text!r} is not a job id (a number, or a job's full name)")
    return job_id


def register(subparsers) -> None:
    common = target_args()
    jobs = subparsers.add_parser("jobs", help="list, inspect, cancel, watch and retry jobs")
    actions = jobs.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", parents=[common], help="the jobs this key may see")
    listing.add_argument("--state", help="e.g. RUNNING, SUCCEEDED, FAILED")
    listing.add_argument("--label", help="NAME=VALUE")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=run_list)

    for action, func, text in (
        ("get", run_get, "a job: state, rows, cost, timeline, retries"),
        ("cancel", run_cancel, "ask Vertex to cancel a job"),
        ("watch", run_watch, "live progress until the job ends and its cost is final"),
        ("retry-failed", run_retry, "a new job of the rows that failed or never ran"),
    ):
        parser = actions.add_parser(action, parents=[common], help=text)
        parser.add_argument("job_id", type=_job_id)
        if action == "watch":
            parser.add_argument("--interval", type=float, default=2.0, help="seconds per poll")
        parser.set_defaults(func=func)
