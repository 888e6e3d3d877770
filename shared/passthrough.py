"""The Vertex-native batchPredictionJobs routes: auth, tenancy and routing, then Vertex.

Successful upstream responses are returned as Vertex's own bytes, so that new Vertex
fields reach callers; upstream errors pass through unchanged too.
"""

import base64
import json
import re
import time

from shared import events, jobs, logs, routing, vertex
from shared.config import model_list_or_error
from shared.errors import ApiError, invalid_argument, not_found
from shared.http import JOBS, Reply, Request, route
from shared.labels import OWNER_LABEL, TEAM_LABEL, label_value, validate_labels

JOB_ID = re.compile(r"^[0-9]{1,20}$")
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100


def _upstream_reply(upstream: vertex.Upstream) -> Reply:
    return Reply(upstream.status, upstream.content, {"Content-Type": upstream.content_type})


def _alt_params(request: Request) -> dict:
    return {"$alt": request.args["$alt"]} if "$alt" in request.args else {}


def audit(request: Request, *, outcome: int, started: float, **fields) -> None:
    """One entry per state-changing call: who, what, where, how it went. Never the key."""
    caller = request.caller
    logs.info(
        "audit",
        audit=True,
        route=request.route,
        method=request.method,
        key_id=caller.key_id if caller else None,
        key_alias=caller.alias if caller else None,
        team=caller.team if caller else None,
        outcome=outcome,
        latency_ms=round((time.monotonic() - started) * 1000, 2),
        **fields,
    )


def _visible_job(request: Request, job_id: str) -> dict:
    if not JOB_ID.match(job_id):
        raise invalid_argument(
            f"Job id {job_id!r} is malformed: batch prediction job ids are numeric."
        )
    record = jobs.get(job_id)
    if not record or record.get("deleted") or not request.caller.may_see(record):
        raise not_found(f"BatchPredictionJob {job_id} does not exist or is not yours.")
    return record


# --- create --------------------------------------------------------------------------------


def _under(uri: str, prefixes) -> bool:
    return any(uri.startswith(prefix) for prefix in prefixes)


def check_buckets(caller, body: dict) -> tuple[list[str], str]:
    input_config = body.get("inputConfig") or {}
    output_config = body.get("outputConfig") or {}
    if not isinstance(input_config, dict) or not isinstance(output_config, dict):
        raise invalid_argument("`inputConfig` and `outputConfig` must be objects.")
    if "bigquerySource" in input_config or "bigqueryDestination" in output_config:
        raise invalid_argument(
            "The gateway supports GCS input and output only (its cost tracking reads the "
            "output files): use inputConfig.gcsSource and outputConfig.gcsDestination."
        )
    uris = (input_config.get("gcsSource") or {}).get("uris")
    if isinstance(uris, str):
        uris = [uris]
    if not uris or not isinstance(uris, list) or not all(isinstance(u, str) for u in uris):
        raise invalid_argument(
            "`inputConfig.gcsSource.uris` is required: a list of gs:// URIs.",
            field="inputConfig.gcsSource.uris",
        )
    prefix = (output_config.get("gcsDestination") or {}).get("outputUriPrefix")
    if not isinstance(prefix, str) or not prefix.startswith("gs://"):
        raise invalid_argument(
            "`outputConfig.gcsDestination.outputUriPrefix` is required: a gs:// prefix.",
            field="outputConfig.gcsDestination.outputUriPrefix",
        )
    if caller.is_master:
        return uris, prefix
    for uri in uris:
        if not _under(uri, caller.input_prefixes):
            allowed = ", ".join(caller.input_prefixes) or "none (ask an admin to add some)"
            raise ApiError(
                403,
                f"inputConfig.gcsSource.uris: {uri} is outside this key's input prefixes. "
                f"Allowed: {allowed}.",
            )
    if not _under(prefix if prefix.endswith("/") else prefix + "/", caller.output_prefixes):
        allowed = ", ".join(caller.output_prefixes) or "none (ask an admin to add some)"
        raise ApiError(
            403,
            f"outputConfig.gcsDestination.outputUriPrefix: {prefix} is outside this key's "
            f"output prefixes. Allowed: {allowed}.",
        )
    return uris, prefix


def _stamped_labels(caller, body: dict) -> dict:
    labels = body.get("labels") or {}
    if not isinstance(labels, dict):
        raise invalid_argument("`labels` must be an object of strings.", field="labels")
    validate_labels(labels)
    stamped = {**caller.labels, **labels, OWNER_LABEL: caller.key_id}
    if caller.team:
        stamped[TEAM_LABEL] = label_value(caller.team)
    return validate_labels(stamped, allow_reserved=True)


@route("POST", JOBS, name="jobs.create")
def create(request: Request, version: str, project: str, location: str) -> Reply:
    started = time.monotonic()
    caller = request.caller
    body = request.json_body()
    deployments = routing.resolve(body.get("model"), model_list_or_error(), caller.models)
    check_buckets(caller, body)
    body["labels"] = _stamped_labels(caller, body)

    from shared import budgets

    estimate = budgets.admit(caller=caller, deployment=deployments[0], body=body)
    upstream = None
    for deployment in deployments:
        body["model"] = f"publishers/google/models/{deployment.model}"
        upstream = vertex.create_job(
            deployment, json.dumps(body).encode(), version=version, params=_alt_params(request)
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
        audit(
            request,
            outcome=upstream.status,
            started=started,
            model=deployment.model_name,
            deployment=deployment.label,
        )
        return _upstream_reply(upstream)

    job = upstream.json()
    record = jobs.new_record(
        upstream_job=job,
        request_body=body,
        caller=caller,
        deployment=deployment,
        public_model=deployment.model_name,
        api_version=version,
        estimate=estimate,
    )
    pending = events.start_job_event("job.created", record["job_id"])
    jobs.record_created(record)
    budgets.committed(caller=caller, job_id=record["job_id"], estimate=estimate)
    events.settle(pending)
    audit(
        request,
        outcome=upstream.status,
        started=started,
        job_id=record["job_id"],
        model=deployment.model_name,
        deployment=deployment.label,
    )
    return _upstream_reply(upstream)


# --- get / cancel / delete -----------------------------------------------------------------


@route("GET", JOBS + r"/(?P<job_id>[^/:]+)", name="jobs.get")
def get(request: Request, version: str, project: str, location: str, job_id: str) -> Reply:
    record = _visible_job(request, job_id)
    path = vertex.job_path(version, record["name"])
    params = {**_alt_params(request)}
    if "readMask" in request.args:
        params["readMask"] = request.args["readMask"]
    upstream = vertex.call("GET", record["deployment"]["location"], path, params=params or None)
    return _upstream_reply(upstream)


@route("POST", JOBS + r"/(?P<job_id>[^/:]+):cancel", name="jobs.cancel")
def cancel(request: Request, version: str, project: str, location: str, job_id: str) -> Reply:
    started = time.monotonic()
    record = _visible_job(request, job_id)
    request.json_body(allow_empty=True)
    upstream = vertex.call(
        "POST",
        record["deployment"]["location"],
        vertex.job_path(version, record["name"]) + ":cancel",
        params=_alt_params(request) or None,
        body=b"{}",
    )
    if upstream.ok:
        events.publish_job_event("job.cancel_requested", job_id)
    audit(request, outcome=upstream.status, started=started, job_id=job_id, model=record["model"])
    return _upstream_reply(upstream)


@route("DELETE", JOBS + r"/(?P<job_id>[^/:]+)", name="jobs.delete")
def delete(request: Request, version: str, project: str, location: str, job_id: str) -> Reply:
    started = time.monotonic()
    record = _visible_job(request, job_id)
    upstream = vertex.call(
        "DELETE",
        record["deployment"]["location"],
        vertex.job_path(version, record["name"]),
        params=_alt_params(request) or None,
    )
    if upstream.ok:
        # The record stays: it holds the job's cost, which outlives the job.
        jobs.mark(job_id, deleted=True)
    audit(request, outcome=upstream.status, started=started, job_id=job_id, model=record["model"])
    return _upstream_reply(upstream)


# --- list ----------------------------------------------------------------------------------


def _scope_filter(caller) -> str | None:
    """Vertex filters by the labels the gateway stamped: the caller's own jobs, or the
    team's for a team admin. The Firestore check below is the authority."""
    if caller.is_master:
        return None
    if caller.team_admin and caller.team:
        return f'labels.{TEAM_LABEL}="{label_value(caller.team)}"'
    return f'labels.{OWNER_LABEL}="{caller.key_id}"'


def _decode_token(token: str) -> dict:
    if not token:
        return {}
    try:
        state = json.loads(base64.urlsafe_b64decode(token.encode() + b"==="))
    except (ValueError, UnicodeDecodeError):
        raise invalid_argument("`pageToken` is not a token this gateway issued.") from None
    if not isinstance(state, dict):
        raise invalid_argument("`pageToken` is not a token this gateway issued.")
    return state


def _encode_token(state: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def _page_size(request: Request) -> int:
    raw = request.args.get("pageSize", "")
    if not raw:
        return DEFAULT_PAGE_SIZE
    if not raw.isdigit():
        raise invalid_argument("`pageSize` must be a positive integer.", field="pageSize")
    return max(1, min(int(raw), MAX_PAGE_SIZE))


@route("GET", JOBS, name="jobs.list")
def list_jobs(request: Request, version: str, project: str, location: str) -> Reply:
    """Merge the lists of every configured location, newest first.

    The page token holds, per location, Vertex's page token and how many jobs of that
    page were already returned: no state on the server, opaque to the client.
    """
    caller = request.caller
    page_size = _page_size(request)
    state = _decode_token(request.args.get("pageToken", ""))
    filters = [f for f in (_scope_filter(caller), request.args.get("filter", "").strip()) if f]
    # OR binds tighter than AND in Vertex (AIP-160) filters: no parentheses needed.
    upstream_filter = " AND ".join(filters)
    read_mask = request.args.get("readMask", "")
    params = {"pageSize": str(page_size), **_alt_params(request)}
    if upstream_filter:
        params["filter"] = upstream_filter
    if read_mask:
        fields = set(read_mask.split(","))
        params["readMask"] = ",".join(sorted(fields | {"name", "createTime"}))

    candidates = []
    for location_key in _locations():
        position = state.get(location_key, {"t": "", "s": 0})
        if position is None:
            continue
        upstream_params = dict(params)
        if position["t"]:
            upstream_params["pageToken"] = position["t"]
        loc_project, loc_location = location_key.split("/")
        upstream = vertex.call(
            "GET",
            loc_location,
            f"{version}/projects/{loc_project}/locations/{loc_location}/batchPredictionJobs",
            params=upstream_params,
        )
        if not upstream.ok:
            return _upstream_reply(upstream)
        page = upstream.json()
        found = page.get("batchPredictionJobs", [])[position["s"] :]
        candidates.extend(
            (job.get("createTime", ""), location_key, index, job) for index, job in enumerate(found)
        )
        state[location_key] = {
            "t": position["t"],
            "s": position["s"],
            "n": page.get("nextPageToken", ""),
            "len": len(page.get("batchPredictionJobs", [])),
        }

    candidates.sort(key=lambda c: (c[0], c[1]), reverse=True)
    taken = candidates[:page_size]
    next_state = {}
    for location_key, position in state.items():
        if position is None:
            next_state[location_key] = None
            continue
        used = position["s"] + sum(1 for c in taken if c[1] == location_key)
        if used < position["len"]:
            next_state[location_key] = {"t": position["t"], "s": used}
        elif position["n"]:
            next_state[location_key] = {"t": position["n"], "s": 0}
        else:
            next_state[location_key] = None

    records = jobs.get_many([jobs.job_id_of(c[3]["name"]) for c in taken])
    visible = []
    for *_, job in taken:
        record = records.get(jobs.job_id_of(job["name"]))
        if record and not record.get("deleted") and caller.may_see(record):
            visible.append(_masked(job, read_mask))
    reply: dict = {"batchPredictionJobs": visible} if visible else {}
    if any(v is not None for v in next_state.values()):
        reply["nextPageToken"] = _encode_token(next_state)
    return Reply(200, reply)


def _camel(path: str) -> str:
    head, *rest = path.strip().split(".")[0].split("_")
    return head + "".join(word.title() for word in rest)


def _masked(job: dict, read_mask: str) -> dict:
    """The top-level fields a readMask names (REST sends camelCase; snake_case works too)."""
    if not read_mask:
        return job
    fields = {_camel(f) for f in read_mask.split(",") if f.strip()}
    return {k: v for k, v in job.items() if k in fields}


def _locations() -> list[str]:
    return [f"{p}/{loc}" for p, loc in model_list_or_error().locations()]
