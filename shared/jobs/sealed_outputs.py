"""Sealed outputs: Vertex writes into a per-job folder the gateway owns; the client gets copies.

Why: a key holder who can write to its own output folder can delete, or zero the usage of,
each predictions file before the gateway reads it (issue #22: a $0.0102 job ended final at
$0, and the attacker kept every answer). So, per deployment unless `model_info:
{seal_outputs: false}`, the create path (shared/jobs/submit.py) points Vertex at a per-job
folder of the staging bucket, which keys cannot write, and records on the job:

- `output_prefix`: that folder, `gs://<staging>/outputs/<YYYY-MM-DD>/<key id>/<intent id>/`
  (where Vertex writes; the output index names the job there, and only this job);
- `client_output_prefix`: the folder the client asked for;
- `outputs_sealed: true`.

After the create (this module):

1. Each object Vertex writes under the per-job folder is priced there (shared/jobs/finalize.py;
   the job is found by its folder, never guessed), then copied to
   `client_output_prefix + <its path below the per-job folder>`, i.e. the output directory's
   own name (`prediction-model-<time>/...`) under the client's folder.
2. Copies are server-side (GCS rewrite) and generation-pinned: exactly the generation that was
   priced; a generation that is no longer live is not copied (the newer one is, by its own
   event). Each is made once: `jobs/{id}/copies/{sha256 of bucket/name#generation}` records a
   done copy; a copy whose record is missing but whose destination already holds the same
   bytes (crc32c and size: a crash between the copy and its record) is recorded, not redone.
3. Before the first copy lands, the client's output directory is recorded on the job
   (`client_output_directory`) and indexed: the finalize event of a copy (when the client's
   bucket is watched too) finds this job by an exact match and is not priced a second time,
   nor attributed to another job sharing the client's prefix.
4. At the terminal state the lifecycle lists the per-job folder and delivers whatever has no
   copy yet (a lost event loses no file), then sets `outputs_delivered`.

What clients see (`present`, used by get and list): `outputInfo.gcsOutputDirectory` and
`outputConfig.gcsDestination.outputUriPrefix` point at the client's folder, so
`JobServiceClient`, `google-genai` and `vbg` find results where they expect them; and a job
Vertex reports ended is shown `JOB_STATE_RUNNING` (`JOB_STATE_CANCELLING` when it was
cancelled), without `endTime`, until its outputs are delivered (a job whose folder holds
nothing is not held: there is nothing to wait for): a client that sees a terminal
state finds its files in place. Once deliveries have failed long enough for the `reconcile`
alert (shared/jobs/lifecycle.py), the true state is shown; the alert says why.

Trade-off: each output is stored twice until the staging lifecycle rule deletes the staging
copy, and results reach the client's folder after the copy (same location and storage class:
GCS copies by metadata, in one call; otherwise the bytes move, in several; see
docs/benchmarks.md). `model_info: {seal_outputs: false}` keeps direct writes (no copy, no
second storage; the books then rest on the floor of shared/cost/floor.py alone).
"""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.core import clients, logs
from shared.core.vertex import JOB_STATES, TERMINAL_STATES, state_name
from shared.jobs import records, sealing

COPIES = "copies"
HELD_STATE = "JOB_STATE_RUNNING"
HELD_CANCELLED_STATE = "JOB_STATE_CANCELLING"
STATE_NUMBERS = {name: number for number, name in JOB_STATES.items()}


@dataclass(frozen=True)
class Copy:
    """Where one staging object goes: source (bucket, name, generation) -> destination."""

    bucket: str
    name: str
    generation: int
    destination_bucket: str
    destination_name: str

    @property
    def source_uri(self) -> str:
        return f"gs://{self.bucket}/{self.name}"

    @property
    def destination_uri(self) -> str:
        return f"gs://{self.destination_bucket}/{self.destination_name}"


def _folder(uri: str | None) -> str:
    return "" if not uri else uri if uri.endswith("/") else uri + "/"


def _split(uri: str) -> tuple[str, str]:
    bucket, _, path = uri.removeprefix("gs://").partition("/")
    return bucket, path


def sealed(record: dict) -> bool:
    """Vertex writes this job's outputs into a per-job staging folder."""
    return bool(record.get("outputs_sealed")) and bool(record.get("output_prefix"))


def relative(record: dict, uri: str) -> str | None:
    """The path of `uri` below the job's per-job folder, or None when it is not below it."""
    folder = _folder(record.get("output_prefix"))
    if not sealed(record) or not uri.startswith(folder) or uri == folder:
        return None
    return uri[len(folder) :]


def to_client(record: dict, uri: str | None) -> str | None:
    """A staging URI of a sealed job as the client's side names it (others unchanged)."""
    if not uri or not sealed(record):
        return uri
    client = records.client_output_prefix(record) or ""
    if _folder(uri) == _folder(record["output_prefix"]):
        return client if uri.endswith("/") else client.rstrip("/")
    rest = relative(record, uri)
    return uri if rest is None else _folder(client) + rest


def client_directory(record: dict, uri: str) -> str | None:
    """The client's output directory (with a trailing slash) of a staging object or folder:
    the client's prefix plus the first folder below the per-job folder."""
    rest = relative(record, _folder(uri) if uri.endswith("/") else uri)
    if rest is None or "/" not in rest:
        return None
    return _folder(records.client_output_prefix(record)) + rest.split("/", 1)[0] + "/"


def plan(record: dict, bucket: str, name: str, generation: int) -> Copy | None:
    """The copy of one staging object of a sealed job, or None when it is not the job's."""
    rest = relative(record, f"gs://{bucket}/{name}")
    if rest is None:
        return None
    target_bucket, target_path = _split(_folder(records.client_output_prefix(record)) + rest)
    return Copy(bucket, name, int(generation), target_bucket, target_path)


def copy_id(bucket: str, name: str, generation: int) -> str:
    return hashlib.sha256(f"{bucket}/{name}#{int(generation)}".encode()).hexdigest()


# --- what get and list show ------------------------------------------------------------------


def held(record: dict, upstream_state: str, *, has_outputs: bool = True) -> bool:
    """Whether a sealed job Vertex reports ended still waits for its copies (until they are
    delivered, or the `reconcile` alert said they cannot be). A job that wrote nothing (one
    cancelled while queued, say) has nothing to wait for."""
    return (
        sealed(record)
        and has_outputs
        and upstream_state in TERMINAL_STATES
        and not record.get("outputs_delivered")
        and not (record.get("alerts") or {}).get("reconcile")
    )


# The record fields `shown` and `present` read (a reader of a partial record reads these).
SHOWN_FIELDS = (
    "outputs_sealed",
    "output_prefix",
    "client_output_prefix",
    "outputs_delivered",
    "alerts.reconcile",
)


def shown(job: dict, record: dict) -> dict:
    """`present`, after one listing of the per-job folder when the job would be held: does
    it hold anything to copy? (Only for a sealed job that ended and is not delivered yet.)"""
    if not held(record, state_name(job.get("state"))):
        return present(job, record)
    bucket, path = _split(_folder(record["output_prefix"]))
    found = list(clients.storage().list_blobs(bucket, prefix=path, max_results=1))
    return present(job, record, has_outputs=bool(found))


def present(job: dict, record: dict, *, has_outputs: bool = True) -> dict:
    """Vertex's job as the client sees it (a new dict; see the module docstring)."""
    if not sealed(record):
        return job
    shown = dict(job)
    info = job.get("outputInfo")
    if isinstance(info, dict) and info.get("gcsOutputDirectory"):
        directory = to_client(record, info["gcsOutputDirectory"])
        shown["outputInfo"] = {**info, "gcsOutputDirectory": directory}
    config = job.get("outputConfig")
    config = config if isinstance(config, dict) else {}
    destination = config.get("gcsDestination")
    if isinstance(destination, dict) and destination.get("outputUriPrefix"):
        prefix = to_client(record, destination["outputUriPrefix"])
        destination = {**destination, "outputUriPrefix": prefix}
        shown["outputConfig"] = {**config, "gcsDestination": destination}
    state = state_name(job.get("state"))
    if held(record, state, has_outputs=has_outputs):
        wanted = HELD_CANCELLED_STATE if state == "JOB_STATE_CANCELLED" else HELD_STATE
        numeric = isinstance(job.get("state"), int)
        shown["state"] = STATE_NUMBERS[wanted] if numeric else wanted
        shown.pop("endTime", None)
    return shown


# --- copying -----------------------------------------------------------------------------------


def _copies(job_id: str):
    return records.job_ref(job_id).collection(COPIES)


def ensure_client_directory(job_id: str, record: dict, directory: str | None) -> None:
    """Record and index the client's output directory once, before a copy can land there."""
    if not directory or _folder(record.get("client_output_directory")) == directory:
        return
    records.index_folder(directory, job_id)
    if not record.get("client_output_directory"):
        records.mark(job_id, client_output_directory=directory)
        record["client_output_directory"] = directory


def _same_bytes(source, target) -> bool:
    return (
        target is not None
        and source.crc32c is not None
        and source.crc32c == target.crc32c
        and int(source.size or 0) == int(target.size or 0)
    )


def deliver(*, job_id: str, record: dict, bucket: str, name: str, generation: int) -> str:
    """Copy one staging object generation to the client's folder, once. Returns `copied`,
    `done` (already copied), `not_live` (a newer generation will be copied) or `not_ours`."""
    from google.api_core import exceptions

    planned = plan(record, bucket, name, generation)
    if planned is None:
        return "not_ours"
    marker = _copies(job_id).document(copy_id(bucket, name, generation))
    if marker.get().exists:
        return "done"
    ensure_client_directory(job_id, record, client_directory(record, planned.source_uri))
    storage = clients.storage()
    source = storage.bucket(bucket).get_blob(name)
    if source is None or int(source.generation or 0) != planned.generation:
        logs.info(
            "staging output generation not live; the live one is copied",
            job_id=job_id,
            uri=f"{planned.source_uri}#{generation}",
        )
        return "not_live"
    outcome = "done"
    target = storage.bucket(planned.destination_bucket).get_blob(planned.destination_name)
    if not _same_bytes(source, target):
        try:
            copy_generation(planned)
        except exceptions.NotFound:
            return "not_live"
        outcome = "copied"
    marker.set(
        {
            "source": planned.source_uri,
            "generation": planned.generation,
            "destination": planned.destination_uri,
            "size": int(source.size or 0),
            "copied": datetime.now(UTC),
        }
    )
    logs.info(
        "sealed output delivered",
        job_id=job_id,
        source=f"{planned.source_uri}#{generation}",
        destination=planned.destination_uri,
        outcome=outcome,
    )
    return outcome


def copy_generation(planned: Copy) -> None:
    """The server-side copy (a GCS rewrite of exactly that generation; a large or
    cross-location one takes several calls, each resuming with the token). NotFound: the
    generation is gone."""
    storage = clients.storage()
    pinned = storage.bucket(planned.bucket).blob(planned.name, generation=planned.generation)
    target = storage.bucket(planned.destination_bucket).blob(planned.destination_name)
    token, _, _ = target.rewrite(pinned)
    while token is not None:
        token, _, _ = target.rewrite(pinned, token=token)


def deliver_all(job_id: str, record: dict) -> int:
    """Copy every live object of the per-job folder that has no copy yet; how many now."""
    bucket, path = _split(_folder(record["output_prefix"]))
    copied = 0
    for blob in clients.storage().list_blobs(bucket, prefix=path):
        outcome = deliver(
            job_id=job_id, record=record, bucket=bucket, name=blob.name, generation=blob.generation
        )
        copied += outcome == "copied"
    return copied


def staging_output(bucket: str, name: str) -> bool:
    """An object of the staging bucket's per-job output folders (other staging objects, sealed
    inputs and the gateway's own files, are never outputs)."""
    from shared.core.config import settings

    return bucket == settings().staging_bucket and name.startswith(sealing.OUTPUTS_PREFIX + "/")
