"""Create and cancel a Vertex batch job for a caller: the one path every door goes through.

Every door parses its body once into a `create_request.CreateRequest` and calls
`create_job`, a chain of small steps, each taking a value and returning the next: `plan`
(model routing, the key's bucket prefixes and labels) -> `fix_inputs` (the inputs listed
once and sealed, shared/jobs/sealing.py) -> `admit` (the checks and the budget, over
exactly the sealed bytes) -> `call_vertex` (failover on 429) -> `record` (the job record and
its output index, then the `job.created` event, published after the record is committed so
that its handler always finds the record). Errors are `ApiError`s in the Vertex envelope; an
upstream error comes back as the upstream's own reply.
"""

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from shared.core import gcs_paths, logs, routing, vertex
from shared.core.config import Deployment, settings
from shared.core.errors import ApiError, invalid_argument
from shared.core.keys import Caller
from shared.core.labels import (
    INTENT_LABEL,
    MAX_LABELS,
    OWNER_LABEL,
    TEAM_LABEL,
    label_value,
    validate_labels,
)
from shared.cost import estimate, pricing, readiness, retirement
from shared.jobs import (
    budgets,
    events,
    idempotency,
    input_pass,
    intents,
    job_limits,
    records,
    sealing,
)
from shared.jobs.create_request import CreateRequest


@dataclass(frozen=True)
class Submitted:
    upstream: vertex.Upstream
    deployment: Deployment
    record: dict | None  # None when Vertex refused the create


@dataclass(frozen=True)
class Planned:
    """A create the key may make: where it may run and the labels the job will carry."""

    caller: Caller
    request: CreateRequest
    deployments: tuple[Deployment, ...]
    labels: Mapping[str, str]
    intent_id: str

    @property
    def deployment(self) -> Deployment:
        return self.deployments[0]


@dataclass(frozen=True)
class Admitted:
    """A planned create whose inputs are fixed (sealed), checked and, if budgeted, reserved."""

    planned: Planned
    inputs: sealing.Sealed
    estimate: dict | None


@dataclass(frozen=True)
class Intended:
    """An admitted create whose output folders are named and whose intent is recorded."""

    admitted: Admitted
    outputs: sealing.Outputs


def check_buckets(caller: Caller, request: CreateRequest) -> tuple[list[str], str]:
    """The input URIs and output prefix; a key may only name its own prefixes, unless the
    gateway itself wrote the inputs (`request.door.gateway_inputs`: an OpenAI batch's or a
    retry's file) or owns the output folder too (`gateway_output`: the OpenAI door)."""
    uris, prefix = list(request.input_uris), request.output_prefix
    if caller.is_master or request.door.gateway_output:
        return uris, prefix
    for uri in [] if request.door.gateway_inputs else uris:
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


def stamped_labels(caller: Caller, request: CreateRequest, intent_id: str | None = None) -> dict:
    """The client's labels, the key's (authoritative: a different value is a 403) and the
    gateway's stamps (the create's `vbg-intent` among them); Vertex's limit of 64 counts
    them all."""
    labels = dict(request.labels)
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
        **request.gateway_labels,
        OWNER_LABEL: caller.key_id,
    }
    if intent_id:
        stamped[INTENT_LABEL] = intent_id
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


# --- the create, step by step: each step takes a value and returns the next ----------------


def plan(caller: Caller, request: CreateRequest) -> Planned:
    """What the key may do with this request: the model's deployments, its prefixes, the
    labels the job will carry. Reads no input."""
    deployments = routing.resolve(
        request.model,
        readiness.model_list_or_error(),
        caller,
        refuse=retirement.refuser(),
    )
    check_buckets(caller, request)
    intent_id = intents.new_id()
    labels = stamped_labels(caller, request, intent_id)
    return Planned(caller, request, tuple(deployments), MappingProxyType(labels), intent_id)


def replay(planned: Planned, *, api_version: str, params: dict) -> Submitted | None:
    """A create retried with the same idempotency key (shared/jobs/idempotency.py): the
    first create's job, as Vertex shows it now; None when this create is the first."""
    key = planned.request.idempotency_key
    if not key:
        return None
    body = dict(planned.request.body)
    first = idempotency.claim(planned.caller.key_id, key, body, planned.intent_id)
    if first is None:
        return None
    intent = intents.get(first) or {}
    if intent.get("state") in (intents.REFUSED, intents.ABANDONED) or (
        not intent and died_before_its_intent(planned.caller.key_id, key)
    ):
        idempotency.reclaim(planned.caller.key_id, key, first, planned.intent_id)
        return None
    if intent.get("state") != intents.CREATED:
        raise ApiError(
            409,
            "A create with this idempotency key is still in progress; retry in a few seconds.",
            status="ABORTED",
        )
    upstream = vertex.call(
        "GET",
        intent["deployment"]["location"],
        vertex.job_path(api_version, intent["job_name"]),
        params=params or None,
    )
    deployment = readiness.model_list().find(intent["deployment"]) or planned.deployment
    logs.info("idempotent create replayed", intent_id=first, job_id=intent["job_id"])
    return Submitted(upstream, deployment, records.get(intent["job_id"]))


def died_before_its_intent(key_id: str, idempotency_key: str) -> bool:
    """The first create claimed the key but wrote no intent for longer than a create runs
    (the adoption delay, shared/jobs/adoption.py): it died reading or sealing its inputs."""
    claimed = idempotency.claimed_at(key_id, idempotency_key)
    limit = timedelta(seconds=float(settings().adopt_after_seconds))
    return claimed is not None and datetime.now(UTC) - claimed > limit


def fix_inputs(planned: Planned) -> sealing.Sealed:
    """List the inputs once and seal them (the gateway's own files are sealed already)."""
    uris = list(planned.request.input_uris)
    objects = estimate.list_inputs(uris)
    if planned.request.door.gateway_inputs:
        return sealing.Sealed((), tuple(uris), tuple(objects))
    return sealing.seal_inputs(
        objects, client_uris=uris, deployment=planned.deployment, key_id=planned.caller.key_id
    )


def admit(planned: Planned, inputs: sealing.Sealed) -> Admitted:
    """Read what Vertex will read, once (shared/jobs/input_pass.py): refuse what Vertex
    would fail or what the key may not name, estimate every row, and reserve the estimate
    in the key's and team's budgets. A refusal drops the sealed copies."""
    try:
        made = budgets.admit(caller=planned.caller, estimate=read_inputs(planned, inputs))
    except BaseException:
        sealing.discard(inputs)
        raise
    return Admitted(planned, inputs, made)


def read_inputs(planned: Planned, inputs: sealing.Sealed) -> dict:
    """The one pass; the estimate record (or, for a model without a price, its error)."""
    started = time.monotonic()
    deployment = planned.deployment
    rule = input_pass.UriRule(planned.caller, settings().staging_bucket)
    try:
        estimator = estimate.estimator_for(deployment, input_pass.MediaLookup(rule))
        unpriced = None
    except pricing.UnknownModelError as exc:
        estimator, unpriced = None, estimate.unpriced_error(deployment, exc)
    objects = inputs.input_objects()
    size = sum(o.size for o in objects)
    limits = job_limits.for_deployment(deployment)
    job_limits.refuse(limits, model=deployment.model, rows=None, size=size)
    report = input_pass.read(inputs.named_objects(), rule=rule, estimator=estimator)
    input_pass.refuse(report)
    rows = report.check.rows if report.check.complete else None
    job_limits.refuse(limits, model=deployment.model, rows=rows, size=size)
    if estimator is None or report.tally is None:
        return {"error": unpriced.message if unpriced else "no estimate", "unpriced": True}
    return estimate.record_of(deployment, estimator, objects, report.tally, started)


def intend(admitted: Admitted, *, api_version: str) -> Intended:
    """Name the output folders and write the intent (shared/jobs/intents.py): from here on,
    a job Vertex accepts can be adopted even if this process dies before recording it."""
    planned = admitted.planned
    outputs = sealing.seal_outputs(
        planned.request.output_prefix,
        deployment=planned.deployment,
        key_id=planned.caller.key_id,
        intent_id=planned.intent_id,
        gateway_owned=planned.request.door.gateway_output,
    )
    try:
        intents.write(
            {
                "intent_id": planned.intent_id,
                "state": intents.PENDING,
                "created": datetime.now(UTC),
                "owner_key_id": planned.caller.key_id,
                "owner_alias": planned.caller.alias,
                "team": planned.caller.team,
                "model": planned.deployment.model_name,
                "deployment": planned.deployment.describe(),
                "deployments": [d.describe() for d in planned.deployments],
                "api_version": api_version,
                "display_name": planned.request.body.get("displayName"),
                "labels": dict(planned.labels),
                **admitted.inputs.record_fields(),
                **outputs.record_fields(),
                "estimate": admitted.estimate,
                "idempotency_key": planned.request.idempotency_key,
                "job_name": None,
                "job_id": None,
            }
        )
    except BaseException:
        budgets.release(estimate=admitted.estimate)
        sealing.discard(admitted.inputs)
        raise
    return Intended(admitted, outputs)


def call_vertex(
    intended: Intended, *, api_version: str, params: dict
) -> tuple[vertex.Upstream, Deployment, dict]:
    """Create the job on the first deployment that is not exhausted (429: the next)."""
    admitted = intended.admitted
    planned = admitted.planned
    upstream = None
    deployment = planned.deployment
    body: dict = {}
    for deployment in planned.deployments:
        body = planned.request.vertex_body(
            model=f"publishers/google/models/{deployment.model}",
            input_uris=admitted.inputs.uris,
            output_prefix=intended.outputs.prefix,
            labels=dict(planned.labels),
        )
        upstream = vertex.create_job(
            deployment, json.dumps(body).encode(), version=api_version, params=params
        )
        if upstream.status != 429:
            break
        logs.warning(
            "deployment exhausted; trying the next",
            deployment=deployment.label,
            model=deployment.model_name,
        )
    assert upstream is not None
    return upstream, deployment, body


def record(
    intended: Intended,
    upstream: vertex.Upstream,
    deployment: Deployment,
    body: dict,
    *,
    api_version: str,
) -> Submitted:
    """Vertex has the job (record it, complete the intent, then announce it) or refused it
    (undo the admission)."""
    admitted = intended.admitted
    planned = admitted.planned
    if not upstream.ok:
        intents.refused(planned.intent_id, upstream_status=upstream.status)
        budgets.release(estimate=admitted.estimate)
        sealing.discard(admitted.inputs)
        return Submitted(upstream, deployment, None)
    made = records.new_record(
        upstream_job=upstream.json(),
        request_body=body,
        caller=planned.caller,
        deployment=deployment,
        public_model=deployment.model_name,
        api_version=api_version,
        estimate=admitted.estimate,
        inputs=admitted.inputs.record_fields(),
        outputs={**intended.outputs.record_fields(), "intent_id": planned.intent_id},
    )
    recorded = records.record_created(made)
    intents.created(planned.intent_id, made)
    if recorded:
        # After the commit: the event's handler must find the record (it estimates the job).
        events.publish_job_event("job.created", made["job_id"])
    budgets.committed(job_id=made["job_id"], estimate=admitted.estimate)
    return Submitted(upstream, deployment, made)


def create_job(
    *,
    caller: Caller,
    request: CreateRequest,
    api_version: str = "v1",
    params: dict | None = None,
) -> Submitted:
    """Check, seal, admit and create one job; record it once Vertex has it. Every door
    (the Vertex routes, the OpenAI door, retries) builds a `CreateRequest` and calls this."""
    planned = plan(caller, request)
    replayed = replay(planned, api_version=api_version, params=params or {})
    if replayed is not None:
        return replayed
    intended = intend(admit(planned, fix_inputs(planned)), api_version=api_version)
    upstream, deployment, body = call_vertex(intended, api_version=api_version, params=params or {})
    return record(intended, upstream, deployment, body, api_version=api_version)


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
