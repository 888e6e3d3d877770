"""Create and cancel a Vertex batch job for a caller: the one path every door goes through.

The Vertex-native routes, and any other door into the gateway, call `create_job`: model
routing with failover on 429, the key's bucket prefixes and labels, sealed inputs
(shared/jobs/sealing.py), the budget admission of exactly the sealed bytes, the job record
and its output index, and then the `job.created` event (published after the record is
committed, so that its handler always finds the record). Errors are `ApiError`s in the
Vertex envelope; an upstream error comes back as the upstream's own reply.
"""

import json
from dataclasses import dataclass

from shared.core import gcs_paths, logs, routing, vertex
from shared.core.config import Deployment, model_list_or_error, settings
from shared.core.errors import ApiError, invalid_argument
from shared.core.labels import (
    MAX_LABELS,
    OWNER_LABEL,
    TEAM_LABEL,
    label_value,
    validate_labels,
)
from shared.cost import estimate
from shared.jobs import budgets, events, input_rules, records, sealing

# What one job record may hold of the client's input URIs (a Firestore doc holds 1 MiB).
MAX_INPUT_URIS = 100
MAX_INPUT_URI_CHARS = 64 * 1024


@dataclass(frozen=True)
class Submitted:
    upstream: vertex.Upstream
    deployment: Deployment
    record: dict | None  # None when Vertex refused the create


def check_buckets(
    caller, body: dict, *, gateway_owned: bool = False, gateway_inputs: bool = False
) -> tuple[list[str], str]:
    """The input URIs and output prefix; a key may only name its own prefixes, unless the
    gateway itself wrote the inputs and owns the output folder (`gateway_owned`), or wrote
    the inputs only (`gateway_inputs`: a retry's file; the output prefix is still the
    caller's to prove)."""
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
            "`inputConfig.gcsSource.uris` is required: a list of gs:// URIs.",
            field="inputConfig.gcsSource.uris",
        )
    if len(uris) > MAX_INPUT_URIS or sum(len(u) for u in uris) > MAX_INPUT_URI_CHARS:
        raise invalid_argument(
            f"`inputConfig.gcsSource.uris` holds {len(uris)} URIs; at most {MAX_INPUT_URIS} "
            f"(and {MAX_INPUT_URI_CHARS} characters in all) are allowed: use a wildcard "
            "(gs://bucket/folder/*.jsonl) or combine the files.",
            field="inputConfig.gcsSource.uris",
        )
    prefix = destination.get("outputUriPrefix")
    if not isinstance(prefix, str) or not prefix.startswith("gs://"):
        raise invalid_argument(
            "`outputConfig.gcsDestination.outputUriPrefix` is required: a gs:// prefix.",
            field="outputConfig.gcsDestination.outputUriPrefix",
        )
    for uri in uris:
        gcs_paths.check_uri(uri, "inputConfig.gcsSource.uris")
    gcs_paths.check_uri(prefix, "outputConfig.gcsDestination.outputUriPrefix")
    if caller.is_master or gateway_owned:
        return uris, prefix
    for uri in [] if gateway_inputs else uris:
        if not gcs_paths.under(uri, caller.input_prefixes):
            allowed = ", ".join(caller.input_prefixes) or "none (ask an admin to add some)"
            raise ApiError(
                403,
                f"inputConfig.gcsSource.uris: {uri} is outside this key's input prefixes. "
                f"Allowed: {allowed}.",
            )
    # The output may be a folder inside a prefix, or the prefix's folder itself.
    if not gcs_paths.under(prefix, caller.output_prefixes) and (
        prefix + "/" not in caller.output_prefixes
    ):
        allowed = ", ".join(caller.output_prefixes) or "none (ask an admin to add some)"
        raise ApiError(
            403,
            f"outputConfig.gcsDestination.outputUriPrefix: {prefix} is outside this key's "
            f"output prefixes. Allowed: {allowed}.",
        )
    return uris, prefix


def check_inputs(uris: list[str], model: str) -> None:
    """Refuse (400) an input Vertex would fail whole at import, or one over its job limits.

    Vertex fails such a job only after it waited in the queue (hours); here the caller hears
    at once, with the first lines and reasons (rules: shared/jobs/input_rules.py). The first
    `VBG_ESTIMATE_READ_LIMIT_BYTES` of the input (64 MiB by default, all files together) are
    checked line by line; beyond that only the byte limit is judged, and the row limit is
    left to Vertex (counting rows would mean reading gigabytes at create). An input the
    gateway cannot list or read is left to the estimate and to Vertex (logged): this check
    refuses only what it has read.
    """
    try:
        objects = estimate.list_inputs(uris)
    except ApiError as exc:
        logs.warning("input check skipped: inputs not listable", error=exc.message)
        return
    check = input_rules.InputCheck()
    budget = settings().estimate_read_limit_bytes
    try:
        for obj in objects:
            take = min(obj.size, budget)
            check.start_file(obj.uri)
            for chunk in estimate.read_chunks(obj, take):
                check.feed(chunk)
            check.end_file(complete=take >= obj.size)
            budget -= take
    except ApiError as exc:
        logs.warning("input check skipped: inputs not readable", error=exc.message)
        return
    problems = check.problems + check.limit_problems(model, sum(o.size for o in objects))
    if problems:
        raise ApiError(
            400,
            'Vertex would fail this job whole ("Failed to import data") after it waited in '
            f"the queue: {input_rules.describe(problems)}. Fix the input and submit again.",
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [
                        {"field": "inputConfig.gcsSource.uris", "description": str(problem)}
                        for problem in problems
                    ],
                }
            ],
        )


def stamped_labels(caller, body: dict, gateway_labels: dict | None = None) -> dict:
    """The client's labels, the key's (authoritative: a different value is a 403) and the
    gateway's stamps; Vertex's limit of 64 counts them all."""
    labels = body.get("labels") or {}
    if not isinstance(labels, dict):
        raise invalid_argument("`labels` must be an object of strings.", field="labels")
    validate_labels(labels)
    for name, value in sorted(caller.labels.items()):
        if name in labels and labels[name] != value:
            raise ApiError(
                403,
                f"Label {name!r} is set by this key to {value!r}; a job may not set it to "
                f"{labels[name]!r}. Leave it out (the gateway adds it) or set it to {value!r}.",
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "LABEL_SET_BY_KEY",
                        "domain": "vertex-batch-gateway",
                        "metadata": {"label": name, "value": value},
                    }
                ],
            )
    stamped = {
        **labels,
        **caller.labels,
        **(gateway_labels or {}),
        OWNER_LABEL: caller.key_id,
    }
    if caller.team:
        stamped[TEAM_LABEL] = label_value(caller.team)
    if len(stamped) > MAX_LABELS:
        added = sorted(set(stamped) - set(labels))
        raise invalid_argument(
            f"Too many labels: the job would carry {len(stamped)}, Vertex allows "
            f"{MAX_LABELS}. The gateway adds {len(added)} ({', '.join(added)}), so a job of "
            f"this key may set at most {MAX_LABELS - len(added)}.",
            field="labels",
        )
    return validate_labels(stamped, allow_reserved=True)


def create_job(
    *,
    caller,
    body: dict,
    api_version: str = "v1",
    params: dict | None = None,
    gateway_owned: bool = False,
    gateway_inputs: bool = False,
    gateway_labels: dict | None = None,
    check_input=None,
) -> Submitted:
    """Check, seal, admit and create one job; record it once Vertex has it.

    Other doors (the OpenAI Batch API) write the job's inputs into the staging bucket
    themselves (`gateway_owned`: already sealed, so not copied again) and stamp their own
    reserved labels (`gateway_labels`); retries write their inputs there too but keep the
    caller's output prefix (`gateway_inputs`: also sealed already). `check_input`: an
    optional check of each sealed input object (see sealing.seal_inputs).
    """
    deployments = routing.resolve(body.get("model"), model_list_or_error(), caller.models)
    uris, _ = check_buckets(
        caller, body, gateway_owned=gateway_owned, gateway_inputs=gateway_inputs
    )
    body["labels"] = stamped_labels(caller, body, gateway_labels)
    check_inputs(uris, deployments[0].model)
    if gateway_owned or gateway_inputs:
        sealed = sealing.Sealed((), tuple(uris))
    else:
        sealed = sealing.seal_inputs(
            uris, deployment=deployments[0], key_id=caller.key_id, check=check_input
        )
    if sealed.sealed:
        body["inputConfig"]["gcsSource"] = {
            **body["inputConfig"]["gcsSource"],
            "uris": sealed.uris,
        }
    try:
        estimate = budgets.admit(
            caller=caller, deployment=deployments[0], body=body, objects=sealed.input_objects()
        )
    except BaseException:
        sealing.discard(sealed)
        raise
    upstream = None
    for deployment in deployments:
        body["model"] = f"publishers/google/models/{deployment.model}"
        upstream = vertex.create_job(
            deployment, json.dumps(body).encode(), version=api_version, params=params or {}
        )
        if upstream.status != 429:
            break
        logs.warning(
            "deployment exhausted; trying the next",
            deployment=deployment.label,
            model=deployment.model_name,
        )
    if not upstream.ok:
        budgets.release(caller=caller, estimate=estimate)
        sealing.discard(sealed)
        return Submitted(upstream, deployment, None)

    record = records.new_record(
        upstream_job=upstream.json(),
        request_body=body,
        caller=caller,
        deployment=deployment,
        public_model=deployment.model_name,
        api_version=api_version,
        estimate=estimate,
        inputs=sealed.record_fields(),
    )
    if records.record_created(record):
        # After the commit: the event's handler must find the record (it estimates the job).
        events.publish_job_event("job.created", record["job_id"])
    budgets.committed(caller=caller, job_id=record["job_id"], estimate=estimate)
    return Submitted(upstream, deployment, record)


def cancel_job(record: dict, *, api_version: str = "v1", params: dict | None = None):
    """Ask Vertex to cancel; on success, sync the job soon (`job.cancel_requested`)."""
    upstream = vertex.call(
        "POST",
        record["deployment"]["location"],
        vertex.job_path(api_version, record["name"]) + ":cancel",
        params=params or None,
        body=b"{}",
    )
    if upstream.ok:
        events.publish_job_event("job.cancel_requested", record["job_id"])
    return upstream
