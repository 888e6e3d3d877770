"""Sealed inputs: at create the gateway fixes what will run.

The estimate reads a job's input at admission; Vertex reads it later (hours later for a
queued job). Had Vertex been given the client's URIs, the owner could swap the input in
between and run 800 rows on a 2-row budget. So `submit.create_job` seals the inputs first:

1. every input URI is listed once (wildcards expanded as Vertex expands them), each object
   with its generation (`submit.create_job` lists, this module copies what was listed);
2. each object is copied server-side (GCS rewrite, generation-pinned: the bytes of the
   generation that was listed, or a 400 if it changed meanwhile) into the gateway-owned
   staging bucket (`VBG_STAGING_BUCKET`) under `sealed/<day>/<key id>/<seal id>/`, which
   keys cannot write and Vertex's service agent can read;
3. the estimate and the budget price exactly those copies, and Vertex is given their URIs.

The job record keeps the client's URIs (`input_uris`) and the sealed copies
(`sealed_inputs`: source, generation, uri, size); Vertex's own get/list show the sealed URIs
(what runs). The staging bucket's lifecycle rule deletes copies (Terraform: 30 days).

A deployment may turn sealing off (`model_info: {seal_inputs: false}` in the model list):
creates are then faster for large inputs and use no staging storage, but the estimate and
the budget hold only until the input is overwritten. With `VBG_STAGING_BUCKET` unset sealing
is off everywhere (logged at each create).

Sealed outputs (the create side): with `outputs_enabled`, Vertex is given a per-job folder of
the staging bucket, `gs://<staging>/outputs/<YYYY-MM-DD>/<key id>/<intent id>/` (named from
the create's intent id and recorded in `intents/{intent id}` before Vertex is called, so a
job Vertex accepted always has a known folder), and the client's folder is kept as the
job's `client_output_prefix`. A deployment keeps direct writes with `model_info:
{seal_outputs: false}`; the OpenAI door's folder is in the staging bucket already and is not
sealed again. What happens to the files after the create is the outputs side's.

The create path reads the sealed copies (`Sealed.input_objects`) for its checks and the
estimate; a refusal after sealing deletes the copies (`discard`).
"""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.core import clients, logs
from shared.core.config import settings
from shared.core.errors import ApiError, invalid_argument
from shared.cost import estimate

MAX_INPUT_OBJECTS = 1000
SEALED_PREFIX = "sealed"
OUTPUTS_PREFIX = "outputs"
MAX_BASENAME = 200


@dataclass(frozen=True)
class SealedObject:
    source_uri: str
    source_generation: int
    bucket: str
    name: str
    size: int

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.name}"

    def input_object(self) -> estimate.InputObject:
        return estimate.InputObject(self.bucket, self.name, self.size)

    def record(self) -> dict:
        return {
            "source": self.source_uri,
            "generation": self.source_generation,
            "uri": self.uri,
            "size": self.size,
        }


@dataclass(frozen=True)
class Sealed:
    """What a create will run: sealed copies, or (sealing off) the client's own URIs."""

    objects: tuple[SealedObject, ...]
    client_uris: tuple[str, ...]
    listed: tuple[estimate.InputObject, ...] = ()  # the client's objects, as listed

    @property
    def sealed(self) -> bool:
        return bool(self.objects)

    @property
    def uris(self) -> list[str]:
        return [o.uri for o in self.objects] if self.objects else list(self.client_uris)

    def input_objects(self) -> list[estimate.InputObject]:
        """What Vertex will read: the sealed copies, or (sealing off) the listed objects."""
        return [o.input_object() for o in self.objects] if self.objects else list(self.listed)

    def named_objects(self) -> list[tuple[str, estimate.InputObject]]:
        """(the client's URI of the object, what Vertex will read): messages name the first."""
        if self.objects:
            return [(o.source_uri, o.input_object()) for o in self.objects]
        return [(o.uri, o) for o in self.listed]

    def record_fields(self) -> dict:
        return {
            "input_uris": list(self.client_uris),
            "sealed_inputs": [o.record() for o in self.objects] if self.objects else None,
        }


def enabled(deployment) -> bool:
    return bool(settings().staging_bucket) and deployment.seal_inputs


@dataclass(frozen=True)
class Outputs:
    """Where Vertex writes (`prefix`) and the folder the client asked for."""

    prefix: str
    client_prefix: str

    @property
    def sealed(self) -> bool:
        return self.prefix != self.client_prefix

    def record_fields(self) -> dict:
        return {
            "output_prefix": self.prefix,
            "client_output_prefix": self.client_prefix,
            "outputs_sealed": self.sealed,
        }


def outputs_enabled(deployment) -> bool:
    return bool(settings().staging_bucket) and deployment.seal_outputs


def output_folder(*, key_id: str, intent_id: str, at: datetime) -> str:
    """The per-job folder Vertex writes into: one per create, never shared."""
    day = at.astimezone(UTC).date().isoformat()
    return f"gs://{settings().staging_bucket}/{OUTPUTS_PREFIX}/{day}/{key_id}/{intent_id}/"


def seal_outputs(
    client_prefix: str, *, deployment, key_id: str, intent_id: str, gateway_owned: bool
) -> Outputs:
    """The output folders of a create (see the module docstring)."""
    if gateway_owned or not outputs_enabled(deployment):
        return Outputs(client_prefix, client_prefix)
    folder = output_folder(key_id=key_id, intent_id=intent_id, at=datetime.now(UTC))
    return Outputs(folder, client_prefix)


def seal_inputs(
    sources: list[estimate.InputObject],
    *,
    client_uris: list[str],
    deployment,
    key_id: str,
) -> Sealed:
    """Copy every listed input object into the staging bucket; see the module docstring."""
    if not enabled(deployment):
        if not settings().staging_bucket:
            logs.warning("inputs not sealed: VBG_STAGING_BUCKET is not set")
        return Sealed((), tuple(client_uris), tuple(sources))
    if len(sources) > MAX_INPUT_OBJECTS:
        raise invalid_argument(
            f"inputConfig.gcsSource.uris names {len(sources)} objects; at most "
            f"{MAX_INPUT_OBJECTS} are allowed per job: combine the input files.",
            field="inputConfig.gcsSource.uris",
        )
    staging = settings().staging_bucket
    folder = (
        f"{SEALED_PREFIX}/{datetime.now(UTC).date().isoformat()}/{key_id}/{secrets.token_hex(8)}"
    )
    sealed: list[SealedObject] = []
    try:
        for index, source in enumerate(sources):
            basename = source.name.rpartition("/")[2][-MAX_BASENAME:]
            sealed.append(_copy(source, staging, f"{folder}/{index:05d}-{basename}"))
    except BaseException:
        _delete(sealed)
        raise
    logs.info(
        "inputs sealed",
        objects=len(sealed),
        bytes=sum(o.size for o in sealed),
        folder=f"gs://{staging}/{folder}/",
    )
    return Sealed(tuple(sealed), tuple(client_uris), tuple(sources))


def _copy(source: estimate.InputObject, staging: str, name: str) -> SealedObject:
    """A server-side rewrite of exactly the listed generation (large objects take several
    calls, each resuming with the token). The last call's answer holds the new object's
    metadata (GCS's rewrite response carries `resource` once `done`), so no read follows."""
    from google.api_core import exceptions

    storage = clients.storage()
    source_blob = storage.bucket(source.bucket).blob(source.name, generation=source.generation)
    target = storage.bucket(staging).blob(name)
    try:
        token, _, _ = target.rewrite(source_blob, if_generation_match=0)
        while token is not None:
            token, _, _ = target.rewrite(source_blob, token=token, if_generation_match=0)
    except exceptions.NotFound:
        raise invalid_argument(
            f"inputConfig.gcsSource.uris: {source.uri} changed or disappeared while the job "
            "was being created; create it again.",
            field="inputConfig.gcsSource.uris",
        ) from None
    except exceptions.Forbidden as exc:
        raise ApiError(
            403,
            f"The gateway cannot copy {source.uri} to seal the job's input: grant its service "
            f"account roles/storage.objectViewer on the input bucket ({exc.message}).",
        ) from None
    except exceptions.GoogleAPICallError as exc:
        raise ApiError(503, f"Sealing {source.uri} failed: {exc.message}; retry.") from None
    return SealedObject(
        source_uri=source.uri,
        source_generation=source.generation,
        bucket=staging,
        name=name,
        size=int(target.size or 0),
    )


def discard(sealed: Sealed) -> None:
    """Best effort: the create was refused, so its copies serve nothing (the lifecycle rule
    removes any left behind)."""
    _delete(sealed.objects)


def _delete(objects) -> None:
    for obj in objects:
        try:
            clients.storage().bucket(obj.bucket).blob(obj.name).delete()
        except Exception as exc:
            logs.warning("sealed copy not deleted", uri=obj.uri, error=repr(exc))
