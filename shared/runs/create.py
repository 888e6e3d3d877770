"""Create a run: one pass over the client's input that splits, seals, checks and estimates it.

`create_run` parses the body as any create (`create_request.parse`, the run's `vbg-run`
label counted among Vertex's 64), plans it with the create path's own rules
(`submit.plan`: the model's deployments, the key's prefixes and labels), lists the inputs
once and reads every line once (`input_pass.read`, ranged reads, memory flat): the same
import rules, URI rule and exact estimate as a create, and each line, as read, goes to the
piece being filled (`split.Splitter`, under the per-job limits of the tightest deployment)
in the staging bucket (`gs://<staging>/runs/<run id>/pieces/<index>.jsonl`), streamed
(resumable uploads of `UPLOAD_CHUNK` bytes). So the pieces are sealed: what each job runs
is exactly what was checked and estimated, in a bucket keys cannot write.

Then, before anything starts: a refusal (403 for a URI, 400 for what Vertex would fail) drops
the pieces; the whole run's estimate is checked against the key's and team's budgets
(`budgets.check`, 429); only then the run and its pieces are recorded (every piece `queued`)
and `run.advance` is published. The pieces are created later, by the driver
(shared/runs/drive.py), each through `submit.create_job` like any job.

`create_from_gateway_files` is the entry point for a door whose input the gateway wrote
itself (the OpenAI door: files in the staging bucket): the same run, without the caller's
input-prefix check on the files.
"""

import time
from dataclasses import dataclass
from typing import Any

from shared.core import clients, logs
from shared.core.config import Deployment, settings
from shared.core.errors import ApiError
from shared.core.keys import Caller
from shared.core.labels import RUN_LABEL
from shared.cost import estimate, pricing
from shared.jobs import budgets, create_request, events, input_pass, job_limits, submit
from shared.jobs.job_limits import JobLimits
from shared.runs import split, store

UPLOAD_CHUNK = 8 * 1024 * 1024  # a multiple of 256 KiB, as GCS resumable uploads want
MAX_CONCURRENT = 1000


def tightest(deployments: tuple[Deployment, ...]) -> JobLimits:
    """The limits every deployment of the model can take (a piece may fail over to any)."""
    found = [job_limits.for_deployment(d) for d in deployments]

    def least(values):
        known = [v for v in values if v is not None]
        return min(known) if known else None

    rows = least(f.rows for f in found)
    size = least(f.bytes for f in found)
    first = next(f for f in found if f.rows == rows) if rows is not None else found[0]
    by_bytes = next(f for f in found if f.bytes == size) if size is not None else found[0]
    return JobLimits(rows, size, found[0].noun, first.rows_source, by_bytes.bytes_source)


class PieceWriter:
    """Streams each line into the piece the splitter says it belongs to."""

    def __init__(self, staging: str, run_id: str, limits: JobLimits):
        self.bucket = clients.storage().bucket(staging)
        self.staging = staging
        self.run_id = run_id
        self.splitter = split.Splitter(limits)
        self.names: list[str] = []
        self._handle = None

    def name(self, index: int) -> str:
        return f"runs/{self.run_id}/pieces/{store.piece_id(index)}.jsonl"

    def add(self, line: bytes) -> None:
        if self.splitter.add(len(line) + 1):
            self._close()
            self.names.append(self.name(len(self.names)))
            blob = self.bucket.blob(self.names[-1], chunk_size=UPLOAD_CHUNK)
            self._handle = blob.open("wb", content_type="application/jsonl", ignore_flush=True)
        assert self._handle is not None
        self._handle.write(line + b"\n")

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def finish(self) -> list[split.Piece]:
        self._close()
        return self.splitter.finish()

    def discard(self) -> None:
        """Drop what was written (a refused run); best effort, the staging lifecycle too."""
        try:
            self._close()
        except Exception as exc:  # the upload may be what failed
            logs.warning("piece upload not closed", run_id=self.run_id, error=repr(exc))
        for name in self.names:
            try:
                self.bucket.blob(name).delete()
            except Exception as exc:
                logs.warning("refused run's piece not deleted", name=name, error=repr(exc))


@dataclass(frozen=True)
class Created:
    run: dict
    pieces: list[dict]


def _estimator(deployment: Deployment, rule: input_pass.UriRule):
    try:
        return estimate.estimator_for(deployment, input_pass.MediaLookup(rule)), None
    except pricing.UnknownModelError as exc:
        return None, estimate.unpriced_error(deployment, exc)


def _output_directory(prefix: str, run_id: str) -> str:
    return prefix.rstrip("/") + f"/{run_id}/"


def create_run(
    *,
    caller: Caller,
    body: dict,
    max_concurrent: int | None = None,
    door: create_request.Door = create_request.Door.CLIENT,
    retry_of: str | None = None,
) -> Created:
    """Split, seal, check and estimate the whole input, check budgets, record the run."""
    staging = settings().staging_bucket
    if not staging:
        raise ApiError(
            503, "Runs need the gateway's staging bucket: set VBG_STAGING_BUCKET.", "UNAVAILABLE"
        )
    if max_concurrent is not None and not 1 <= max_concurrent <= MAX_CONCURRENT:
        raise ApiError(400, f"`maxConcurrentJobs` must be 1 to {MAX_CONCURRENT}.")
    started = time.monotonic()
    run_id = store.new_id()
    request = create_request.parse(body, door=door, gateway_labels={RUN_LABEL: run_id})
    planned = submit.plan(caller, request)
    deployment = planned.deployment
    objects = estimate.list_inputs(list(request.input_uris))
    limits = tightest(planned.deployments)
    rule = input_pass.UriRule(caller, staging)
    estimator, unpriced = _estimator(deployment, rule)
    writer = PieceWriter(staging, run_id, limits)
    try:
        report = input_pass.read(
            [(o.uri, o) for o in objects], rule=rule, estimator=estimator, sink=writer.add
        )
        pieces = writer.finish()
        input_pass.refuse(report)
        if not pieces:
            raise ApiError(400, "The input has no lines: nothing to run.")
        whole: dict[str, Any] = (
            estimate.record_of(deployment, estimator, objects, report.tally, started)
            if estimator is not None and report.tally is not None
            else {"error": unpriced.message if unpriced else "no estimate", "unpriced": True}
        )
        if budgets.budgets_for(caller):
            if whole.get("error"):
                raise ApiError(400, whole["error"], status="FAILED_PRECONDITION")
            budgets.check(caller=caller, expected_nanos=whole["cost_nanos"]["expected"])
    except BaseException:
        writer.discard()
        raise
    at = store.now()
    run = {
        "run_id": run_id,
        "state": store.RUN_RUNNING,
        "terminal": False,
        "owner_key_id": caller.key_id,
        "owner_alias": caller.alias,
        "team": caller.team,
        "model": deployment.model_name,
        "deployment": deployment.describe(),
        "deployment_label": deployment.label,
        "display_name": str(request.body.get("displayName") or run_id)[:128],
        "labels": dict(request.labels),
        "door": door.value,
        "input_uris": list(request.input_uris),
        "client_output_prefix": request.output_prefix,
        "output_directory": _output_directory(request.output_prefix, run_id),
        "limits": {"rows": limits.rows, "bytes": limits.bytes},
        "rows": writer.splitter.lines,
        "bytes": sum(p.bytes for p in pieces),
        "pieces_total": len(pieces),
        "max_concurrent": max_concurrent,
        "estimate": whole,
        "retry_of": retry_of,
        "retries": [],
        "created": at,
        "updated": at,
        "split_seconds": round(time.monotonic() - started, 3),
    }
    piece_docs = [
        {
            "run_id": run_id,
            "index": p.index,
            "first_line": p.first_line,
            "rows": p.rows,
            "bytes": p.bytes,
            "input_uri": f"gs://{staging}/{writer.names[p.index]}",
            "state": store.QUEUED,
            "owner_key_id": caller.key_id,
            "deployment_label": deployment.label,
            "attempts": 0,
            "not_before": at,
            "job_id": None,
            "created": at,
            "updated": at,
        }
        for p in pieces
    ]
    store.create(run, piece_docs)
    logs.info(
        "run created",
        run_id=run_id,
        pieces=len(pieces),
        rows=run["rows"],
        bytes=run["bytes"],
        seconds=run["split_seconds"],
    )
    events.publish_event("run.advance", run_id=run_id)
    return Created(run, piece_docs)


def create_from_gateway_files(
    *, caller: Caller, body: dict, max_concurrent: int | None = None
) -> Created:
    """A run over input files the gateway wrote itself (the OpenAI door's staging files): the
    body is a batchPredictionJobs create body whose `inputConfig.gcsSource.uris` name those
    files and whose output prefix the gateway chose; every other rule holds."""
    return create_run(
        caller=caller,
        body=body,
        max_concurrent=max_concurrent,
        door=create_request.Door.GATEWAY,
    )
