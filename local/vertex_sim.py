"""A local Vertex AI batch prediction service: the REST surface, states, outputs and faults.

Run: `python -m local.vertex_sim --port 8790 [--speed 1.0] [--fail-creates-in-location L]...`
(storage is the GCS emulator named by STORAGE_EMULATOR_HOST). In-process:
`with SimulatorThread(speed=0.05) as sim: sim.url` or `make_server(port, speed)`.

Routes (`/v1/` and `/v1beta1/` alike), bodies in Vertex REST JSON (camelCase), validated
with the official `google.cloud.aiplatform_v1` types; `$alt=json;enum-encoding=int` makes
enums integers, as the official REST clients ask:

- POST   .../projects/{p}/locations/{l}/batchPredictionJobs            create -> the job
- GET    .../projects/{p}/locations/{l}/batchPredictionJobs            list: filter, pageSize,
  pageToken; newest first. Filter: clauses joined by AND (OR binds tighter, as AIP-160), each
  `field op value`, with the fields and operators Vertex documents (ListBatchPredictionJobs
  `filter`): `display_name` (`=`, `!=`, `:` contains with `*` wildcards),
  `model_display_name` (`=`, `!=`; the model id, e.g. `gemini-2.5-flash`), `state` (`=`,
  `!=`), `create_time` (`=`, `!=`, `<`, `<=`, `>`, `>=`, RFC 3339), `labels.KEY` (`=`, `!=`,
  `labels.KEY:*` = has the key). Any other field or operator is a 400, as on Vertex.
- GET    .../batchPredictionJobs/{id}                                    get
- POST   .../batchPredictionJobs/{id}:cancel -> {} (a terminal job: 400 FAILED_PRECONDITION)
- DELETE .../batchPredictionJobs/{id} -> an Operation, not yet done (a job not yet terminal:
  400 FAILED_PRECONDITION, cancel it first)
- GET    .../projects/{p}/locations/{l}/operations/{id}   the delete operation: done (with an
  Empty `response`) `max(0.2 s, speed)` after the delete, so clients exercise the poll.

Decisions where Vertex is not written down:
- `model` is stored and returned as `publishers/google/models/{id}` whichever of the short,
  publisher or full `projects/.../publishers/google/models/{id}` forms the caller sent (the
  form Vertex returns for publisher models). Unknown models: 404 NOT_FOUND.
- Names keep the project as the caller spelled it (real Vertex returns the project number).
- Missing or unreadable input, or an input Vertex's importer rejects (a broken line, one
  field with two types, nesting deeper than 15, `$` or spaces in a field name, `{}`; see
  shared/jobs/input_rules.py), or one over the job limits (requests, bytes): the job reaches
  RUNNING, then FAILED with `error {code: 3, message: "Failed to import data. ..."}` naming
  the first problems (the code Vertex reports; its exact wording is not reproduced).
- Rows that fail (e.g. no `contents`) do not fail the job: it SUCCEEDS with `failedCount`;
  the row keeps the line's sibling keys and its `status` reads `Bad Request: {"error": ...}`.
- The output directory is `{outputUriPrefix}/prediction-model-{createTime}` with the time as
  `2025-01-01T00:00:00.000000Z` (real folders carry a time about the create time).
- Jobs carry `modelVersionId: "1"` (Google's create example for a publisher model).
- Cancelled jobs carry `error {code: 1, message: "CANCELED"}`.
- Rows are written progressively while RUNNING: every quarter of the rows goes to
  `{outputDirectory}/incremental_predictions/predictions_0000N.jsonl` (one state step
  apart), then all rows to `predictions.jsonl` on success. A job cancelled meanwhile keeps
  the incremental files of the rows it processed (`successfulCount`/`failedCount`; the rest
  `incompleteCount`), as Vertex keeps and bills them. Vertex's incremental layout is not
  documented: paths seen in the wild contain `incremental_predictions` (the rest inferred).
- The rows of each file are shuffled, deterministically per job and file (Vertex returns
  rows in any order).

Each state step takes `--speed` seconds: PENDING -> QUEUED -> RUNNING -> (output written)
SUCCEEDED. Row shapes and the usage rule: see local/sim_rows.py (`expected_usage`).

Faults, per job through the label `sim-fault`:
- `create-429`: create answers 429 RESOURCE_EXHAUSTED, nothing is created.
- `failed`: the job ends JOB_STATE_FAILED with `error {code: 13}` and no output.
- `partial`: JOB_STATE_PARTIALLY_SUCCEEDED; the rows at odd positions (0-based) fail.
- `expired`: the job stays QUEUED one step, then JOB_STATE_EXPIRED (`error {code: 4}`).
- `slow`: every state step takes 10x.
- `stuck-queued`: the job stays QUEUED until cancelled.
- `reply-late`: the job is created and runs, but the create's answer is sent only after
  `REPLY_LATE_SECONDS` (a caller killed meanwhile leaves a job it never learnt of).
- `create-hang`: the create waits up to `CREATE_HANG_SECONDS` before it is accepted, and is
  dropped, nothing created, if its caller went away meanwhile (a create that never reached
  Vertex); a caller still waiting then gets the job.
Server-wide: `--fail-creates-in-location L` (repeatable), or at run time
`POST /_sim/faults {"create_429_locations": ["us-central1"]}` (GET shows them): every create
in those locations answers 429; `{"create_reply_seconds": 0.5}`: every create answers that
long after its job exists (`make chaos` kills the gateway in that window at random);
`{"fail_inputs": ["pieces/00001"]}`: a job whose input URI contains one of these strings
ends like `failed` (one piece of a run, say).
`GET /_sim/health`, `POST /_sim/reset` (forget every job and fault).
"""

import argparse
import base64
import fnmatch
import itertools
import json
import os
import random
import re
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from google.cloud.aiplatform_v1.types import BatchPredictionJob, JobState
from google.protobuf import json_format

from local import sim_bigquery, sim_rows
from shared.core import jsonl, logs
from shared.core.errors import ApiError, invalid_argument, not_found, resource_exhausted
from shared.cost import pricing
from shared.jobs import input_rules, job_limits

DEFAULT_SPEED = 1.0
DELETE_METADATA_TYPE = "type.googleapis.com/google.cloud.aiplatform.v1.DeleteOperationMetadata"
EMPTY_TYPE = "type.googleapis.com/google.protobuf.Empty"
MIN_OPERATION_SECONDS = 0.2
FAULT_LABEL = "sim-fault"
FINAL_FILE = "predictions.jsonl"
BQ_TABLE = re.compile(r"bq://[A-Za-z0-9][\w:.-]*\.\w+\.[\w$-]+")
BQ_URI = re.compile(r"bq://[A-Za-z0-9][\w:-]*(\.\w+(\.[\w$-]+)?)?")
INCREMENTAL_FILE = "incremental_predictions/predictions_{index:05d}.jsonl"
INCREMENTAL_PARTS = 4
# What Vertex puts on a cancelled job: google.rpc.Code.CANCELLED (1), message "CANCELED".
CANCELED = (1, "CANCELED")
# BatchPredictionJob.modelVersionId of a publisher model, as Google's create example shows.
PUBLISHER_MODEL_VERSION_ID = "1"
FAULTS = (
    "create-429",
    "failed",
    "partial",
    "expired",
    "slow",
    "stuck-queued",
    "reply-late",
    "create-hang",
)
REPLY_LATE_SECONDS = 5.0
CREATE_HANG_SECONDS = 5.0
TERMINAL = frozenset(
    {
        JobState.JOB_STATE_SUCCEEDED,
        JobState.JOB_STATE_FAILED,
        JobState.JOB_STATE_CANCELLED,
        JobState.JOB_STATE_EXPIRED,
        JobState.JOB_STATE_PARTIALLY_SUCCEEDED,
    }
)
OUTPUT_ONLY = (
    "name",
    "state",
    "error",
    "output_info",
    "create_time",
    "start_time",
    "end_time",
    "update_time",
    "completion_stats",
    "resources_consumed",
    "partial_failures",
    "model_version_id",
)

_API = r"^/(?P<version>v1|v1beta1)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
ROUTES = [
    (re.compile(_API + r"/batchPredictionJobs"), "collection"),
    (re.compile(_API + r"/batchPredictionJobs/(?P<job>[^/:]+):cancel"), "cancel"),
    (re.compile(_API + r"/batchPredictionJobs/(?P<job>[^/:]+)"), "job"),
    # The official REST clients poll operations under /ui/ (the first http rule of
    # google.longrunning.Operations.GetOperation in aiplatform's transport), others under /v1.
    (
        re.compile(
            _API.replace("v1|v1beta1", "v1|v1beta1|ui") + r"/operations/(?P<operation>[^/:]+)"
        ),
        "operation",
    ),
]
_MODEL = re.compile(
    r"(?:projects/[^/]+/locations/[^/]+/)?(?:publishers/(?P<publisher>[^/]+)/models/)?"
    r"(?P<model>[^/@]+)"
)


def failed_precondition(message: str) -> ApiError:
    return ApiError(400, message, status="FAILED_PRECONDITION")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Job:
    pb: object  # the BatchPredictionJob protobuf message
    fault: str | None
    created_ns: int
    wake: threading.Event = field(default_factory=threading.Event)
    cancel_requested: bool = False
    abandoned: bool = False
    history: list[str] = field(default_factory=lambda: ["JOB_STATE_PENDING"])


class Simulator:
    """The jobs, their state machine and the faults; HTTP-free so tests can call it too."""

    def __init__(self, speed: float = DEFAULT_SPEED, fail_create_locations=()):
        self.speed = speed
        self.create_429_locations = set(fail_create_locations)
        # Server-wide: each create answers this long after its job exists (a caller killed
        # meanwhile leaves a job it never learnt of, as with a real create's latency).
        self.create_reply_seconds = 0.0
        self.fail_inputs: set[str] = set()
        self.jobs: dict[str, Job] = {}
        self.operations: dict[str, tuple[dict, float]] = {}
        self.operation_seconds = max(MIN_OPERATION_SECONDS, speed)
        self.lock = threading.RLock()
        self.stopping = threading.Event()
        self._ids = itertools.count(random.randint(10**17, 9 * 10**17) * 10)
        self._storage = None

    # -- storage ---------------------------------------------------------------------------
    def storage(self):
        if self._storage is None:
            from google.cloud import storage

            if os.environ.get("STORAGE_EMULATOR_HOST"):
                from google.auth.credentials import AnonymousCredentials

                self._storage = storage.Client(
                    project="vertex-sim", credentials=AnonymousCredentials()
                )
            else:
                self._storage = storage.Client()
        return self._storage

    def _read_inputs(self, uris) -> list[tuple[str, bytes]]:
        """(gs:// uri, bytes) of every input object, wildcards expanded."""
        files: list[tuple[str, bytes]] = []
        for uri in uris:
            bucket_name, _, path = uri.removeprefix("gs://").partition("/")
            bucket = self.storage().bucket(bucket_name)
            if "*" in path or "?" in path:
                prefix = re.split(r"[*?\[]", path, maxsplit=1)[0]
                names = sorted(
                    blob.name
                    for blob in self.storage().list_blobs(bucket_name, prefix=prefix)
                    if fnmatch.fnmatchcase(blob.name, path)
                )
                if not names:
                    raise FileNotFoundError(f"No files match {uri}.")
            else:
                names = [path]
            for name in names:
                try:
                    data = bucket.blob(name).download_as_bytes()
                except Exception as exc:  # NotFound, Forbidden: Vertex fails the import alike
                    raise FileNotFoundError(f"gs://{bucket_name}/{name}: {exc}") from exc
                files.append((f"gs://{bucket_name}/{name}", data))
        return files

    @staticmethod
    def _import_error(model: str, files: list[tuple[str, bytes]]) -> str | None:
        """Why Vertex's importer would fail the whole job, or None (shared/jobs/input_rules)."""
        check = input_rules.InputCheck()
        for uri, data in files:
            check.start_file(uri)
            check.feed(data)
            check.end_file()
        size = sum(len(d) for _, d in files)
        problems = check.problems or check.limit_problems(job_limits.for_model(model), model, size)
        if not problems:
            return None
        return f"{input_rules.IMPORT_FAILED}. {input_rules.describe(problems)}"

    @staticmethod
    def _input_lines(files: list[tuple[str, bytes]]) -> list[str]:
        return [line for _, data in files for line in jsonl.records(data.decode("utf-8"))]

    def _write_output(
        self, directory: str, rows: list[dict], job: Job, name: str = FINAL_FILE
    ) -> None:
        bucket_name, _, path = directory.removeprefix("gs://").partition("/")
        rows = sim_rows.shuffled(rows, seed=f"{job.pb.name}/{name}")
        data = b"".join(jsonl.dumps(row, separators=(", ", ": ")) for row in rows)
        blob = self.storage().bucket(bucket_name).blob(f"{path}/{name}")
        blob.upload_from_string(data, content_type="application/jsonl")

    # -- API -------------------------------------------------------------------------------
    def create(self, project: str, location: str, body) -> Job:
        if not isinstance(body, dict):
            raise invalid_argument("Invalid JSON payload: the body must be a JSON object.")
        pb = BatchPredictionJob.pb()()
        try:
            json_format.ParseDict(body, pb, ignore_unknown_fields=False)
        except json_format.ParseError as exc:
            unknown = re.search(r'has no field named "([^"]+)"', str(exc))
            if unknown:
                raise invalid_argument(
                    f'Invalid JSON payload received. Unknown name "{unknown[1]}" at '
                    "'batch_prediction_job': Cannot find field.",
                    field=f"batch_prediction_job.{unknown[1]}",
                ) from exc
            raise invalid_argument(f"Invalid JSON payload received. {exc}") from exc
        missing = [
            name
            for name in ("display_name", "model", "input_config", "output_config")
            if not (pb.HasField(name) if name.endswith("config") else getattr(pb, name))
        ]
        if missing:
            found = "".join(
                f"{i}.Field: batch_prediction_job.{name}; Message: Required field is not set.\t"
                for i, name in enumerate(missing, 1)
            )
            raise invalid_argument(f"List of found errors:\t{found}")
        model_id = self._resolve_model(project, location, pb.model)
        self._check_io(pb)
        labels = dict(pb.labels)
        fault = labels.get(FAULT_LABEL)
        if fault is not None and fault not in FAULTS:
            raise invalid_argument(
                f"Unknown simulator fault label {FAULT_LABEL}={fault!r}; use one of "
                + ", ".join(FAULTS)
            )
        if fault == "create-429" or location in self.create_429_locations:
            raise resource_exhausted(
                "Quota exceeded for aiplatform.googleapis.com/"
                f"batch_prediction_jobs in {location} (simulated): retry later or elsewhere."
            )
        for name in OUTPUT_ONLY:
            pb.ClearField(name)
        now = _now()
        with self.lock:
            job_id = str(next(self._ids))
            pb.name = f"projects/{project}/locations/{location}/batchPredictionJobs/{job_id}"
            pb.model = f"publishers/google/models/{model_id}"
            pb.model_version_id = PUBLISHER_MODEL_VERSION_ID
            pb.state = JobState.JOB_STATE_PENDING
            pb.create_time.FromDatetime(now)
            pb.update_time.FromDatetime(now)
            job = Job(pb=pb, fault=fault, created_ns=time.time_ns())
            self.jobs[pb.name] = job
        logs.info("vertex_sim job created", job=pb.name, model=model_id, fault=fault)
        threading.Thread(target=self._run, args=(job,), daemon=True, name=job_id).start()
        return job

    @staticmethod
    def _resolve_model(project: str, location: str, model: str) -> str:
        """The model a create names, if Vertex serves it here today.

        A retired model is answered as Google documents ("API requests referencing a retired
        model ID typically return a 404 error", https://docs.cloud.google.com/vertex-ai/
        generative-ai/docs/learn/model-versions); the message is the unknown model's (its
        exact wording for a retired one is inferred). A model whose batch runs only in some
        locations (gemini-embedding-2: global, us, eu) is a 400 elsewhere (inferred wording).
        """
        match = _MODEL.fullmatch(model)
        known = match and match["publisher"] in (None, "google")
        if known and sim_rows.model_family(match["model"]):
            facts = pricing.facts(match["model"])
            if not facts.retired(_now().date()):
                if facts.batch_locations and location not in facts.batch_locations:
                    raise invalid_argument(
                        f"Batch prediction for {match['model']} is not supported in "
                        f"{location}; use one of {', '.join(facts.batch_locations)}."
                    )
                return match["model"]
        model_id = match["model"] if match else model
        raise not_found(
            f"Publisher Model `projects/{project}/locations/{location}/publishers/google/"
            f"models/{model_id}` not found. Known models: "
            + ", ".join(
                sim_rows.GEMINI_MODELS
                + sim_rows.TEXT_EMBEDDING_MODELS
                + sim_rows.GEMINI_EMBEDDING_MODELS
            )
        )

    @staticmethod
    def _check_io(pb) -> None:
        source = pb.input_config
        if not source.instances_format:
            raise invalid_argument("`inputConfig.instancesFormat` is required (use `jsonl`).")
        if source.HasField("bigquery_source"):
            if not BQ_TABLE.fullmatch(source.bigquery_source.input_uri):
                raise invalid_argument(
                    "`inputConfig.bigquerySource.inputUri` must be bq://project.dataset.table."
                )
        elif not source.HasField("gcs_source"):
            raise invalid_argument(
                "The simulator reads `inputConfig.gcsSource` (JSONL in Cloud Storage) or "
                "`inputConfig.bigquerySource` (a table)."
            )
        elif not source.gcs_source.uris or not all(
            uri.startswith("gs://") for uri in source.gcs_source.uris
        ):
            raise invalid_argument("`inputConfig.gcsSource.uris` must be gs:// URIs.")
        dest = pb.output_config
        if not dest.predictions_format:
            raise invalid_argument("`outputConfig.predictionsFormat` is required (use `jsonl`).")
        if dest.HasField("bigquery_destination"):
            if not BQ_URI.fullmatch(dest.bigquery_destination.output_uri):
                raise invalid_argument(
                    "`outputConfig.bigqueryDestination.outputUri` must be bq://project, "
                    "bq://project.dataset or bq://project.dataset.table."
                )
        elif not dest.gcs_destination.output_uri_prefix.startswith("gs://"):
            raise invalid_argument(
                "The simulator writes to `outputConfig.gcsDestination.outputUriPrefix` "
                "(a gs:// URI) or `outputConfig.bigqueryDestination` (a table)."
            )

    def get(self, name: str) -> Job:
        with self.lock:
            job = self.jobs.get(name)
        if job is None:
            raise not_found(f'The BatchPredictionJob "{name}" does not exist.')
        return job

    def cancel(self, name: str) -> None:
        with self.lock:
            job = self.get(name)
            state = job.pb.state
            if state in TERMINAL:
                raise failed_precondition(
                    f"BatchPredictionJob {name} is in state {JobState(state).name} and cannot "
                    "be cancelled."
                )
            if not job.cancel_requested:
                job.cancel_requested = True
                self._set(job, JobState.JOB_STATE_CANCELLING)
        job.wake.set()

    def delete(self, name: str) -> dict:
        """Delete a finished job; the answer is a long-running Operation not yet done.

        Shape (google.longrunning.Operation): `name` = `{parent}/operations/{id}`,
        `metadata` = a DeleteOperationMetadata `{genericMetadata: {createTime, updateTime}}`;
        once done, `done: true` and `response` = google.protobuf.Empty. It turns done after
        `operation_seconds`, so clients must poll `GET .../operations/{id}` as on Vertex.
        """
        with self.lock:
            job = self.get(name)
            if job.pb.state not in TERMINAL:
                raise failed_precondition(
                    f"BatchPredictionJob {name} is in state {JobState(job.pb.state).name}: "
                    "only a finished job can be deleted; cancel it first."
                )
            del self.jobs[name]
            parent = name.split("/batchPredictionJobs/")[0]
            now = sim_rows.rfc3339(_now())
            operation = {
                "name": f"{parent}/operations/{next(self._ids)}",
                "metadata": {
                    "@type": DELETE_METADATA_TYPE,
                    "genericMetadata": {"createTime": now, "updateTime": now},
                },
            }
            self.operations[operation["name"]] = (
                operation,
                time.monotonic() + self.operation_seconds,
            )
        return dict(operation)

    def get_operation(self, name: str) -> dict:
        with self.lock:
            found = self.operations.get(name)
        if found is None:
            raise not_found(f"Operation {name} does not exist.")
        operation, done_at = found
        if time.monotonic() < done_at:
            return dict(operation)
        return {**operation, "done": True, "response": {"@type": EMPTY_TYPE}}

    def list(self, parent: str, filter_text: str = "", page_size=None, page_token="") -> dict:
        matches = compile_filter(filter_text)
        try:
            size = int(page_size or 100)
        except ValueError as exc:
            raise invalid_argument("pageSize must be an integer.") from exc
        size = max(1, min(size, 1000))
        after = None
        if page_token:
            try:
                created, _, job_id = base64.urlsafe_b64decode(page_token).decode().partition(":")
                after = (int(created), int(job_id))
            except ValueError as exc:
                raise invalid_argument("Invalid pageToken: pass back a nextPageToken.") from exc
        with self.lock:
            jobs = [
                (job.created_ns, int(name.rsplit("/", 1)[1]), job)
                for name, job in self.jobs.items()
                if name.startswith(parent + "/batchPredictionJobs/")
            ]
            jobs.sort(key=lambda item: item[:2], reverse=True)
            selected = [
                item for item in jobs if (after is None or item[:2] < after) and matches(item[2].pb)
            ]
            page = selected[:size]
            out = {"batchPredictionJobs": [item[2] for item in page]}
        if len(selected) > size:
            last = page[-1]
            out["nextPageToken"] = base64.urlsafe_b64encode(
                f"{last[0]}:{last[1]}".encode()
            ).decode()
        return out

    def reset(self) -> None:
        with self.lock:
            for job in self.jobs.values():
                job.abandoned = True
                job.wake.set()
            self.jobs.clear()
            self.operations.clear()
            self.create_429_locations.clear()
            self.create_reply_seconds = 0.0
            self.fail_inputs.clear()

    def stop(self) -> None:
        self.stopping.set()
        with self.lock:
            for job in self.jobs.values():
                job.wake.set()

    # -- the state machine -----------------------------------------------------------------
    def _set(self, job: Job, state, **changes) -> None:
        """Change state and stamp updateTime; the caller holds the lock."""
        now = _now()
        old = job.pb.state
        job.pb.state = state
        job.history.append(JobState(state).name)
        job.pb.update_time.FromDatetime(now)
        if state == JobState.JOB_STATE_RUNNING:
            job.pb.start_time.FromDatetime(now)
        if state in TERMINAL:
            job.pb.end_time.FromDatetime(now)
        for key, value in changes.items():
            if key == "error":
                job.pb.error.code, job.pb.error.message = value
            elif key == "stats":
                ok, failed, incomplete = value
                job.pb.completion_stats.successful_count = ok
                job.pb.completion_stats.failed_count = failed
                job.pb.completion_stats.incomplete_count = incomplete
            elif key == "output_directory":
                job.pb.output_info.gcs_output_directory = value
            elif key == "output_table":
                table = value.removeprefix("bq://")
                job.pb.output_info.bigquery_output_dataset = "bq://" + table.rsplit(".", 1)[0]
                job.pb.output_info.bigquery_output_table = table.rsplit(".", 1)[1]
        logs.info(
            "vertex_sim state",
            job=job.pb.name,
            old=JobState(old).name,
            new=JobState(state).name,
        )

    def _step(self, job: Job, steps: float = 1.0) -> bool:
        """Wait one state step; True when the job was cancelled, abandoned or the server stops."""
        seconds = self.speed * steps * (10 if job.fault == "slow" else 1)
        job.wake.wait(seconds)
        return job.cancel_requested or job.abandoned or self.stopping.is_set()

    def _finish_cancel(self, job: Job, rows: int = 0, ok: int = 0, failed: int = 0) -> None:
        """CANCELLED; `ok` and `failed` rows were processed (their incremental output stays),
        `rows` were not."""
        if job.abandoned or self.stopping.is_set():
            return
        self.stopping.wait(self.speed * (10 if job.fault == "slow" else 1))
        with self.lock:
            changes = {"stats": (ok, failed, rows)} if rows or ok or failed else {}
            self._set(job, JobState.JOB_STATE_CANCELLED, error=CANCELED, **changes)

    def _advance(self, job: Job, state, **changes) -> bool:
        """Move to `state` unless cancelled meanwhile; False when the job must stop here."""
        with self.lock:
            if job.cancel_requested or job.abandoned:
                return False
            self._set(job, state, **changes)
            return True

    @staticmethod
    def _output_directory(job: Job) -> str:
        """`prediction-model-{createTime}`: real folders carry a time about the create time."""
        created = job.pb.create_time.ToDatetime(tzinfo=UTC)
        return (
            job.pb.output_config.gcs_destination.output_uri_prefix.rstrip("/")
            + "/prediction-model-"
            + sim_rows.rfc3339(created)
        )

    def _run(self, job: Job) -> None:
        try:
            self._run_steps(job)
        except Exception as exc:  # a simulator bug must show on the job, not kill silently
            logs.error("vertex_sim job crashed", job=job.pb.name, error=repr(exc))
            self._advance(job, JobState.JOB_STATE_FAILED, error=(13, f"Internal error: {exc}"))

    def _run_steps(self, job: Job) -> None:  # noqa: C901 (a job's states in order, each with its faults)
        if self._step(job) or not self._advance(job, JobState.JOB_STATE_QUEUED):
            return self._finish_cancel(job)
        if job.fault == "stuck-queued":
            while not self._step(job, 10):
                pass
            return self._finish_cancel(job)
        if self._step(job):
            return self._finish_cancel(job)
        if job.fault == "expired":
            self._advance(
                job,
                JobState.JOB_STATE_EXPIRED,
                error=(4, "The job expired: it stayed queued longer than 72 hours (simulated)."),
            )
            return None
        to_table = job.pb.output_config.HasField("bigquery_destination")
        if to_table:
            created = job.pb.create_time.ToDatetime(tzinfo=UTC)
            uri = job.pb.output_config.bigquery_destination.output_uri
            output = {"output_table": sim_bigquery.output_table(uri, created)}
        else:
            output = {"output_directory": self._output_directory(job)}
        if not self._advance(job, JobState.JOB_STATE_RUNNING, **output):
            return self._finish_cancel(job)
        passthrough: list[dict] = []
        fields: list = []
        try:
            if job.pb.input_config.HasField("bigquery_source"):
                uri = job.pb.input_config.bigquery_source.input_uri
                data, passthrough, fields = sim_bigquery.read_input(uri)
                files = [(uri, data)]
            else:
                files = self._read_inputs(list(job.pb.input_config.gcs_source.uris))
        except FileNotFoundError as exc:
            self._advance(
                job,
                JobState.JOB_STATE_FAILED,
                error=(3, f"Failed to import data. Not found: {exc}"),
            )
            return None
        import_error = self._import_error(job.pb.model.rsplit("/", 1)[1], files)
        if import_error:
            self._advance(job, JobState.JOB_STATE_FAILED, error=(3, import_error))
            return None
        lines = self._input_lines(files)
        if self._step(job):
            return self._finish_cancel(job, len(lines))
        uris = list(job.pb.input_config.gcs_source.uris)
        with self.lock:
            failing = any(part in uri for part in self.fail_inputs for uri in uris)
        if job.fault == "failed" or failing:
            self._advance(
                job,
                JobState.JOB_STATE_FAILED,
                error=(13, "Internal error occurred while running the job (simulated)."),
            )
            return None
        model = job.pb.model.rsplit("/", 1)[1]
        rows, ok = [], 0
        cache = sim_rows.JobCache()
        per_part = max(1, -(-len(lines) // INCREMENTAL_PARTS))
        for index, line in enumerate(lines):
            forced = None
            if job.fault == "partial" and index % 2 == 1:
                forced = "Internal error while processing this row (simulated partial failure)."
            row, succeeded = sim_rows.output_row(model, line, _now(), fail=forced, cache=cache)
            rows.append(row)
            ok += succeeded
            done = index + 1
            if to_table or (done % per_part and done != len(lines)):
                continue
            part = (done - 1) // per_part
            self._write_output(
                output["output_directory"],
                rows[part * per_part : done],
                job,
                INCREMENTAL_FILE.format(index=part),
            )
            if done != len(lines) and self._step(job):
                return self._finish_cancel(job, len(lines) - done, ok, done - ok)
        if to_table:
            passthrough = passthrough or [{} for _ in rows]
            sim_bigquery.write_output(output["output_table"], rows, passthrough, fields)
        else:
            self._write_output(output["output_directory"], rows, job)
        final = (
            JobState.JOB_STATE_PARTIALLY_SUCCEEDED
            if job.fault == "partial"
            else JobState.JOB_STATE_SUCCEEDED
        )
        if not self._advance(job, final, stats=(ok, len(rows) - ok, 0)):
            return self._finish_cancel(job)
        return None

    # -- rendering -------------------------------------------------------------------------
    @staticmethod
    def render(job: Job, int_enums: bool = False) -> dict:
        return json_format.MessageToDict(job.pb, use_integers_for_enums=int_enums)


# -- list filters ----------------------------------------------------------------------------
# The fields and operators ListBatchPredictionJobsRequest.filter documents (googleapis
# aiplatform v1 job_service.proto); anything else is refused as Vertex refuses it.
FILTER_OPERATORS = {
    "display_name": {"=", "!=", ":"},
    "model_display_name": {"=", "!="},
    "state": {"=", "!="},
    "create_time": {"=", "!=", "<", "<=", ">", ">="},
    "labels": {"=", "!=", ":"},
}
_CLAUSE = re.compile(
    r"\s*(?P<neg>NOT\s+|-)?(?P<field>[A-Za-z_][\w.\-]*)\s*(?P<op>!=|>=|<=|=|:|>|<)\s*"
    r"(?P<value>.+?)\s*"
)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _compare(actual, op: str, expected) -> bool:
    return {
        "=": actual == expected,
        "!=": actual != expected,
        "<": actual < expected,
        ">": actual > expected,
        "<=": actual <= expected,
        ">=": actual >= expected,
    }[op]


def _has(actual: str, expected: str) -> bool:
    if expected == "*":
        return True
    if "*" in expected:
        return fnmatch.fnmatchcase(actual, expected)
    return expected in actual


def _clause(text: str):  # noqa: C901 (one branch per filter field and operator)
    match = _CLAUSE.fullmatch(text.strip().strip("()"))
    if not match:
        raise invalid_argument(f"Unsupported filter expression: {text.strip()!r}.")
    name, op, raw = match["field"], match["op"], _unquote(match["value"])
    negate = bool(match["neg"])
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()

    def value_of(pb):
        if snake == "state":
            return JobState(pb.state).name
        if snake == "display_name":
            return pb.display_name
        if snake == "model_display_name":
            return pb.model.rsplit("/", 1)[-1]
        if snake == "create_time":
            return pb.create_time.ToDatetime(tzinfo=UTC)
        if snake.startswith("labels."):
            return pb.labels.get(name.split(".", 1)[1])
        raise invalid_argument(
            f"Unsupported filter field {name!r}: Vertex filters on display_name, "
            "model_display_name, state, create_time and labels.KEY."
        )

    field_name = "labels" if snake.startswith("labels.") else snake
    allowed = FILTER_OPERATORS.get(field_name)
    if allowed is not None and op not in allowed:
        raise invalid_argument(
            f"Unsupported operator {op!r} for filter field {name!r}: it supports "
            + ", ".join(sorted(allowed))
            + "."
        )
    if field_name == "labels" and op == ":" and raw != "*":
        raise invalid_argument(f"`{name}:` takes only `*` (the label exists).")

    expected: object = raw
    if snake == "create_time":
        try:
            expected = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError as exc:
            raise invalid_argument(f"Invalid RFC 3339 time in filter: {raw!r}.") from exc
    if snake == "state" and raw.isdigit():
        expected = JobState(int(raw)).name

    def test(pb) -> bool:
        actual = value_of(pb)
        if op == ":":
            result = actual is not None and _has(str(actual), str(raw))
        elif actual is None:
            result = op == "!="
        else:
            result = _compare(actual, op, expected)
        return result != negate

    value_of(BatchPredictionJob.pb()())  # reject unknown fields now, not per job
    return test


def compile_filter(text: str):
    """A predicate over job protos for a Vertex list `filter` (see the module docstring)."""
    if not text or not text.strip():
        return lambda _pb: True
    groups = [
        [_clause(part) for part in re.split(r"\s+OR\s+", conj)]
        for conj in re.split(r"\s+AND\s+", text.strip())
    ]
    return lambda pb: all(any(test(pb) for test in group) for group in groups)


# -- HTTP ------------------------------------------------------------------------------------
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without this, delayed ACKs add ~40 ms.
    disable_nagle_algorithm = True
    server: "SimulatorServer"

    def log_message(self, format, *args):
        pass

    def _send(self, status: int, payload) -> None:
        body = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            logs.info("vertex_sim caller went away before the answer", path=self.path)

    def _caller_gone(self, seconds: float) -> bool:
        """Whether the caller closed its connection within `seconds` (it sends nothing more
        while it waits for the answer, so a readable socket with no data is a close)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            readable, _, _ = select.select([self.connection], [], [], 0.05)
            if readable:
                try:
                    return self.connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    return True
        return False

    def _read_body(self) -> bytes:
        # Read every body, used or not: on a kept-alive HTTP/1.1 connection unread bytes
        # would become the start of the next request.
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _body(self):
        raw = self._raw_body
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise invalid_argument(f"Invalid JSON payload received. {exc}") from exc

    def _handle(self, method: str) -> None:
        self._raw_body = self._read_body()
        try:
            status, payload = self._route(method)
            if status is None:
                return  # nobody to answer
        except ApiError as exc:
            status, payload = exc.code, exc.envelope()
        except Exception as exc:
            logs.error("vertex_sim request failed", path=self.path, error=repr(exc))
            status, payload = 500, ApiError(500, f"Internal error: {exc}").envelope()
        self._send(status, payload)

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    def do_DELETE(self):
        self._handle("DELETE")

    def _route(self, method: str):  # noqa: C901 (the simulator's route table)
        sim = self.server.sim
        url = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        int_enums = "enum-encoding=int" in query.get("$alt", "")
        path = url.path
        if path in ("/", "/_sim/health"):
            if method != "GET":
                raise ApiError(405, f"{method} is not allowed on {path}.")
            with sim.lock:
                count = len(sim.jobs)
            return 200, {"status": "ok", "service": "vertex-sim", "jobs": count, "speed": sim.speed}
        if path == "/_sim/faults":
            if method == "POST":
                body = self._body()
                locations = body.get("create_429_locations", [])
                failing = body.get("fail_inputs", [])
                if not isinstance(locations, list) or not isinstance(failing, list):
                    raise invalid_argument(
                        "create_429_locations and fail_inputs must be lists of strings."
                    )
                reply = body.get("create_reply_seconds", 0)
                if not isinstance(reply, int | float) or not 0 <= reply <= 60:
                    raise invalid_argument("create_reply_seconds must be a number of 0 to 60.")
                with sim.lock:
                    sim.create_429_locations = set(locations)
                    sim.create_reply_seconds = float(reply)
                    sim.fail_inputs = {str(part) for part in failing}
            with sim.lock:
                return 200, {
                    "create_429_locations": sorted(sim.create_429_locations),
                    "create_reply_seconds": sim.create_reply_seconds,
                    "fail_inputs": sorted(sim.fail_inputs),
                }
        if path == "/_sim/reset" and method == "POST":
            sim.reset()
            return 200, {}
        for pattern, route in ROUTES:
            match = pattern.fullmatch(path)
            if match:
                kind = route
                break
        else:
            raise not_found(f"No such route: {method} {path}.")
        parent = f"projects/{match['project']}/locations/{match['location']}"
        if kind == "collection" and method == "POST":
            body = self._body()
            labels = body.get("labels") if isinstance(body, dict) else None
            fault = labels.get(FAULT_LABEL) if isinstance(labels, dict) else None
            if fault == "create-hang" and self._caller_gone(CREATE_HANG_SECONDS):
                logs.info("vertex_sim create dropped: its caller went away first")
                return None, None
            job = sim.create(match["project"], match["location"], body)
            time.sleep(REPLY_LATE_SECONDS if fault == "reply-late" else sim.create_reply_seconds)
            with sim.lock:
                return 200, sim.render(job, int_enums)
        if kind == "collection" and method == "GET":
            result = sim.list(
                parent, query.get("filter", ""), query.get("pageSize"), query.get("pageToken", "")
            )
            with sim.lock:
                jobs = [sim.render(job, int_enums) for job in result["batchPredictionJobs"]]
            out = {"batchPredictionJobs": jobs} if jobs else {}
            if "nextPageToken" in result:
                out["nextPageToken"] = result["nextPageToken"]
            return 200, out
        if kind == "job":
            name = f"{parent}/batchPredictionJobs/{match['job']}"
            if method == "GET":
                job = sim.get(name)
                with sim.lock:
                    return 200, sim.render(job, int_enums)
            if method == "DELETE":
                return 200, sim.delete(name)
        if kind == "cancel" and method == "POST":
            sim.cancel(f"{parent}/batchPredictionJobs/{match['job']}")
            return 200, {}
        if kind == "operation" and method == "GET":
            return 200, sim.get_operation(f"{parent}/operations/{match['operation']}")
        raise ApiError(405, f"{method} is not allowed on {path}.")


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, sim: Simulator):
        self.sim = sim
        super().__init__(address, Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def server_close(self) -> None:
        self.sim.stop()
        super().server_close()


def make_server(
    port: int = 0, speed: float = DEFAULT_SPEED, host: str = "127.0.0.1", fail_create_locations=()
) -> SimulatorServer:
    """A bound, not yet serving, server (port 0 = any free port); call serve_forever()."""
    return SimulatorServer((host, port), Simulator(speed, fail_create_locations))


class SimulatorThread:
    """The simulator served from a daemon thread of this process: `with SimulatorThread() as s`."""

    def __init__(self, port: int = 0, speed: float = 0.05, fail_create_locations=()):
        self.server = make_server(port, speed, fail_create_locations=fail_create_locations)
        self.sim = self.server.sim
        self.url = self.server.url
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def start(self) -> "SimulatorThread":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "SimulatorThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Local Vertex AI batch prediction simulator.")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--speed", type=float, default=DEFAULT_SPEED, help="seconds per state step")
    parser.add_argument(
        "--fail-creates-in-location",
        action="append",
        default=[],
        metavar="LOCATION",
        help="answer 429 to every create in this location (repeatable)",
    )
    args = parser.parse_args(argv)
    server = make_server(args.port, args.speed, args.host, args.fail_creates_in_location)
    logs.info("vertex_sim listening", url=server.url, speed=args.speed)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
