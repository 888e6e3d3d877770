"""Adoption: a Vertex job the gateway created but never recorded gets its record from its intent.

A create writes `intents/{intent_id}` (shared/jobs/intents.py) and labels the job
`vbg-intent: <intent_id>` before Vertex is called. If the process dies after Vertex accepted
the job and before the job record was written (issue #22 item 8: passthrough killed during
20 concurrent creates left 5 of 195 Vertex jobs without a record, run and never costed),
the intent stays `pending`. Each sync tick (`adopt_pending`) looks at the pending intents
older than `adopt_after` (a create still running must not be raced: Terraform sets it to
twice the passthrough's timeout; 120 s by default) and asks Vertex, on each deployment the
create could have used, for the job carrying that label:

- found, with no record: the record is written from the intent (owner, team, deployment,
  public model, the client's and the sealed inputs, both output folders, the estimate and
  its budget reservation, now bound to the job) and from Vertex's job (state, output
  directory, counts), created with a precondition so that a late creator and the adopter
  cannot both write it; the intent is completed; one `adopted` alert (WARNING) names the
  job. From there it is any job: the same tick syncs it, and when it ends its outputs are
  listed and priced (a sealed job's per-job folder holds only its files, so attribution is
  exact; an unsealed one's output directory is Vertex's, recorded on adoption);
- found, with a record (the creator died between the record and completing the intent):
  the intent is completed and the reservation bound; no alert;
- not found on any deployment: the create never reached Vertex (or Vertex refused it and
  the refusal was not recorded). After `ABANDON_FACTOR` times `adopt_after` the intent is
  `abandoned` and its budget reservation released (an unbound one stops counting after
  15 minutes anyway: shared/jobs/budgets.py); a retry with the same idempotency key then
  starts afresh. The sealed input copies stay until the staging bucket's lifecycle rule.

Vertex is asked with the list filter `labels.vbg-intent="<id>"` (`labels.key=value` is
documented for ListBatchPredictionJobs:
https://docs.cloud.google.com/python/docs/reference/aiplatform/latest/google.cloud.aiplatform_v1beta1.types.ListBatchPredictionJobsRequest;
that a key with a hyphen parses is inferred, not sourced), and each job found is checked
for the label again. A Vertex answer other than 2xx leaves the intent for the next tick
(logged at WARNING every tick, so a filter Vertex refused would show). The job must carry the
intent's owner as `vbg-key` too (the gateway's labels cannot be set by a key holder), or it
is not adopted (logged at ERROR).
"""

from collections import Counter
from datetime import UTC, datetime, timedelta

from shared.core import logs
from shared.core.config import Deployment, model_list, settings
from shared.core.keys import Caller
from shared.core.labels import INTENT_LABEL, OWNER_LABEL
from shared.core.vertex import call
from shared.jobs import alerts, budgets, intents, records

ABANDON_FACTOR = 3
ADOPTED, COMPLETED, ABANDONED = "adopted", "completed", "abandoned"
WAITING, VERTEX_ERROR, REFUSED = "waiting", "vertex_error", "not_adopted"


def adopt_after() -> timedelta:
    return timedelta(seconds=float(settings().adopt_after_seconds))


def adopt_pending(*, now: datetime | None = None, limit: int = intents.PENDING_LIMIT) -> Counter:
    """Resolve the pending intents old enough (see the module docstring); outcome counts."""
    now = now or datetime.now(UTC)
    after = adopt_after()
    outcomes: Counter = Counter()
    for intent in intents.pending(older_than=now - after, limit=limit):
        try:
            outcomes[resolve(intent, now=now, after=after)] += 1
        except Exception as exc:
            outcomes["error"] += 1
            logs.error(
                "adoption of an intent failed; next tick",
                intent_id=intent.get("intent_id"),
                error=repr(exc),
            )
    if outcomes.keys() - {WAITING}:
        logs.info("pending intents resolved", outcomes=dict(outcomes))
    return outcomes


def resolve(intent: dict, *, now: datetime, after: timedelta) -> str:
    found = find_on_vertex(intent)
    if found is None:
        return VERTEX_ERROR
    if not found:
        if now - intent["created"] < after * ABANDON_FACTOR:
            return WAITING
        return abandon(intent)
    if len(found) > 1:
        logs.error(
            "several Vertex jobs carry one intent; the first is adopted",
            intent_id=intent["intent_id"],
            jobs=[job.get("name") for job, _ in found],
        )
    job, deployment = found[0]
    if (job.get("labels") or {}).get(OWNER_LABEL) != intent.get("owner_key_id"):
        logs.error(
            "a Vertex job carries an intent but not its owner; not adopted",
            intent_id=intent["intent_id"],
            job=job.get("name"),
        )
        return REFUSED
    return adopt(intent, job, deployment, now=now)


def find_on_vertex(intent: dict) -> list[tuple[dict, Deployment]] | None:
    """The Vertex jobs labelled with the intent, on each deployment it could have used, with
    the deployment each was found on; None when Vertex did not answer."""
    found = []
    configured = model_list()
    seen = set()
    for described in intent.get("deployments") or [intent.get("deployment") or {}]:
        deployment = configured.find(described)
        if deployment is None:
            logs.warning(
                "an intent's deployment is no longer configured",
                intent_id=intent.get("intent_id"),
                deployment=described,
            )
            continue
        where = (deployment.project, deployment.location)
        if where in seen:
            continue
        seen.add(where)
        version = intent.get("api_version") or "v1"
        upstream = call(
            "GET",
            deployment.location,
            f"{version}/projects/{deployment.project}/locations/{deployment.location}"
            "/batchPredictionJobs",
            params={"filter": f'labels.{INTENT_LABEL}="{intent["intent_id"]}"'},
            credentials_file=deployment.credentials,
        )
        if not upstream.ok:
            logs.warning(
                "vertex did not list an intent's jobs; next tick",
                intent_id=intent.get("intent_id"),
                status=upstream.status,
            )
            return None
        for job in upstream.json().get("batchPredictionJobs") or []:
            if (job.get("labels") or {}).get(INTENT_LABEL) == intent["intent_id"]:
                found.append((job, deployment))
    return found


def record_of(intent: dict, job: dict, deployment: Deployment, *, now: datetime) -> dict:
    """The job record a create would have written, from the intent and Vertex's job."""
    made = records.new_record(
        upstream_job=job,
        request_body={"displayName": intent.get("display_name"), "labels": intent.get("labels")},
        caller=Caller(
            key_id=intent["owner_key_id"],
            alias=intent.get("owner_alias") or "",
            team=intent.get("team") or "",
        ),
        deployment=deployment,
        public_model=intent.get("model") or deployment.model_name,
        api_version=intent.get("api_version") or "v1",
        estimate=intent.get("estimate"),
        inputs={
            "input_uris": list(intent.get("input_uris") or []),
            "sealed_inputs": intent.get("sealed_inputs"),
        },
        outputs={
            "intent_id": intent["intent_id"],
            "output_prefix": intent.get("output_prefix"),
            "client_output_prefix": intent.get("client_output_prefix")
            or intent.get("output_prefix"),
            "outputs_sealed": bool(intent.get("outputs_sealed")),
        },
    )
    adopted = {"time": now, "intent_id": intent["intent_id"], "intent_created": intent["created"]}
    return {**made, **records.upstream_fields(job), "adopted": adopted}


def adopt(intent: dict, job: dict, deployment: Deployment, *, now: datetime) -> str:
    job_id = records.id_of(job["name"])
    record = record_of(intent, job, deployment, now=now)
    written = records.create_new(record)
    intents.created(intent["intent_id"], record if written else records.get(job_id) or record)
    budgets.committed(job_id=job_id, estimate=intent.get("estimate"))
    if not written:
        logs.info("intent completed: its job has a record", intent_id=intent["intent_id"])
        return COMPLETED
    waited = int((now - intent["created"]).total_seconds())
    logs.warning(
        "vertex job without a record adopted from its intent",
        job_id=job_id,
        intent_id=intent["intent_id"],
        owner_key_id=intent["owner_key_id"],
        state=record["state"],
        seconds_after_create=waited,
    )
    alerts.send_job_alert(
        record,
        "adopted",
        note=(
            f"Vertex accepted this job but the gateway stopped before recording it; it was "
            f"adopted from its create's intent {intent['intent_id']} {waited}s later and is "
            "costed from its output files like any job"
        ),
    )
    return ADOPTED


def abandon(intent: dict) -> str:
    intents.abandoned(intent["intent_id"])
    budgets.release(estimate=intent.get("estimate"))
    logs.warning(
        "intent abandoned: Vertex has no job for it",
        intent_id=intent["intent_id"],
        owner_key_id=intent.get("owner_key_id"),
    )
    return ABANDONED
