"""A create body, parsed once into a frozen value that every step of the create path reads.

Every door builds one: the Vertex-native route from the client's JSON, the OpenAI door and
retries from the body they compose. `parse` checks the body's shape (GCS only, the input
URIs and the output prefix present and plain, the client's labels valid); what the key may
do with it (prefixes, models, stamped labels, budgets) is judged later, in
`shared/jobs/submit.py`. Nothing writes into the body: the body Vertex receives is a new
dict built by `CreateRequest.vertex_body`.
"""

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from shared.core import gcs_paths
from shared.core.errors import invalid_argument
from shared.core.labels import validate_labels

# What one job record may hold of the client's input URIs (a Firestore doc holds 1 MiB).
MAX_INPUT_URIS = 100
MAX_INPUT_URI_CHARS = 64 * 1024
URIS_FIELD = "inputConfig.gcsSource.uris"
PREFIX_FIELD = "outputConfig.gcsDestination.outputUriPrefix"


class Door(enum.Enum):
    """Who wrote the inputs and who owns the output folder."""

    CLIENT = "client"  # the client's own inputs and output folder: both held to its prefixes
    RETRY = "retry"  # the gateway wrote the inputs (staging); the output is the client's
    GATEWAY = "gateway"  # the OpenAI door: inputs and output folder in the staging bucket

    @property
    def gateway_inputs(self) -> bool:
        return self is not Door.CLIENT

    @property
    def gateway_output(self) -> bool:
        return self is Door.GATEWAY


@dataclass(frozen=True)
class CreateRequest:
    """One create, as parsed: read-only; `vertex_body` builds what Vertex receives."""

    body: Mapping[str, Any]
    model: Any
    input_uris: tuple[str, ...]
    output_prefix: str
    labels: Mapping[str, str]
    door: Door = Door.CLIENT
    gateway_labels: Mapping[str, str] = field(default_factory=dict)
    idempotency_key: str | None = None

    def vertex_body(
        self, *, model: str, input_uris: list[str], output_prefix: str, labels: dict
    ) -> dict:
        """The body as sent, with the gateway's choices in place: a new dict, the nested
        objects it changes copied (the client's body is never written)."""
        body = dict(self.body)
        source = body["inputConfig"]["gcsSource"]
        destination = body["outputConfig"]["gcsDestination"]
        return {
            **body,
            "model": model,
            "labels": dict(labels),
            "inputConfig": {
                **body["inputConfig"],
                "gcsSource": {**source, "uris": list(input_uris)},
            },
            "outputConfig": {
                **body["outputConfig"],
                "gcsDestination": {**destination, "outputUriPrefix": output_prefix},
            },
        }


def parse(
    body: Mapping[str, Any],
    *,
    door: Door = Door.CLIENT,
    gateway_labels: Mapping[str, str] | None = None,
    idempotency_key: str | None = None,
) -> CreateRequest:
    """Check the body's shape (400s naming the field) and read it into a `CreateRequest`."""
    input_config = body.get("inputConfig") or {}
    output_config = body.get("outputConfig") or {}
    if not isinstance(input_config, dict) or not isinstance(output_config, dict):
        raise invalid_argument("`inputConfig` and `outputConfig` must be objects.")
    if "bigquerySource" in input_config or "bigqueryDestination" in output_config:
        raise invalid_argument(
            "The gateway supports GCS input and output only (its cost tracking reads the "
            "output files): use inputConfig.gcsSource and outputConfig.gcsDestination."
        )
    source = input_config.get("gcsSource") or {}
    destination = output_config.get("gcsDestination") or {}
    if not isinstance(source, dict):
        raise invalid_argument(
            '`inputConfig.gcsSource` must be an object: {"uris": ["gs://..."]}.',
            field="inputConfig.gcsSource",
        )
    if not isinstance(destination, dict):
        raise invalid_argument(
            '`outputConfig.gcsDestination` must be an object: {"outputUriPrefix": "gs://..."}.',
            field="outputConfig.gcsDestination",
        )
    uris = source.get("uris")
    if isinstance(uris, str):
        uris = [uris]
    if not uris or not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
        raise invalid_argument(
            "`inputConfig.gcsSource.uris` is required: a list of gs:// URIs.", field=URIS_FIELD
        )
    if len(uris) > MAX_INPUT_URIS or sum(len(u) for u in uris) > MAX_INPUT_URI_CHARS:
        raise invalid_argument(
            f"`inputConfig.gcsSource.uris` holds {len(uris)} URIs; at most {MAX_INPUT_URIS} "
            f"(and {MAX_INPUT_URI_CHARS} characters in all) are allowed: use a wildcard "
            "(gs://bucket/folder/*.jsonl) or combine the files.",
            field=URIS_FIELD,
        )
    prefix = destination.get("outputUriPrefix")
    if not isinstance(prefix, str) or not prefix.startswith("gs://"):
        raise invalid_argument(
            "`outputConfig.gcsDestination.outputUriPrefix` is required: a gs:// prefix.",
            field=PREFIX_FIELD,
        )
    for uri in uris:
        gcs_paths.check_uri(uri, URIS_FIELD)
    gcs_paths.check_uri(prefix, PREFIX_FIELD)
    labels = body.get("labels") or {}
    if not isinstance(labels, dict):
        raise invalid_argument("`labels` must be an object of strings.", field="labels")
    validate_labels(labels)
    return CreateRequest(
        body=MappingProxyType(dict(body)),
        model=body.get("model"),
        input_uris=tuple(uris),
        output_prefix=prefix,
        labels=MappingProxyType(dict(labels)),
        door=door,
        gateway_labels=MappingProxyType(dict(gateway_labels or {})),
        idempotency_key=idempotency_key,
    )
