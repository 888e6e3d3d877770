"""The Vertex-native batchPredictionJobs routes: auth, tenancy and routing, then Vertex.

Successful upstream responses are returned as Vertex's own bytes, so that new Vertex
fields reach callers; upstream errors pass through unchanged too.
"""

import base64
import json
import re
import time

from shared.api.audit import audit
from shared.api.http import Reply, Request
from shared.core import vertex
from shared.core.config import model_list_or_error
from shared.core.errors import invalid_argument, not_found
from shared.core.labels import OWNER_LABEL, TEAM_LABEL, label_value
from shared.jobs import records, submit

JOB_ID = re.compile(r"^[0-9]{1,20}$")
OPERATION_NAME = re.compile(r"^projects/[^/]+/locations/[^/]+/operations/[0-9]{1,20}$")
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100


def _upstream_reply(upstream: vertex.Upstream) -> Reply:
    return Reply(upstream.status, upstream.content, {"Content-Type": upstream.content_type})


def _alt_params(request: Request) -> dict:
    return {"$alt": request.args["$alt"]} if "$alt" in request.args else {}


def _visible_job(request: Request, job_id: str) -> dict:
    if not JOB_ID.match(job_id):
        raise invalid_argument(
            f"Job id {job_id!r} is malformed: batch prediction job ids are numeric."
        )
    record = records.get(job_id)
    if not record or record.get("deleted") or not request.caller.may_see(record):
        raise not_found(f"BatchPredictionJob {job_id} does not exist or is not yours.")
    return record


# --- create --------------------------------------------------------------------------------


def create(request: Request, version: str, project: str, location: str) -> Reply:
    started = time.monotonic()
    submitted = submit.create_job(
        caller=request.caller,
        body=request.json_body(),
        api_version=version,
        params=_alt_params(request),
    )
    audit(
        request,
        outcome=submitted.upstream.status,
        started=started,
        job_id=submitted.record["job_id"] if submitted.record else None,
        model=submitted.deployment.model_name,
        deployment=submitted.deployment.label,
    )
    return _upstream_reply(submitted.upstream)


# --- get / cancel / delete -----------------------------------------------------------------


def get(request: Request, version: str, project: str, location: str, job_id: str) -> Reply:
    """Vertex's Get takes no `readMask` (List does): the gateway applies it to the reply."""
    record = _visible_job(request, job_id)
    path = vertex.job_path(version, record["name"])
    upstream = vertex.call(
        "GET", record["deployment"]["location"], path, params=_alt_params(request) or None
    )
    read_mask = request.args.get("readMask", "")
    if not read_mask or not upstream.ok:
        return _upstream_reply(upstream)
    return Reply(200, _masked(upstream.json(), read_mask))


def cancel(request: Request, version: str, project: str, location: str, job_id: str) -> Reply:
    started = time.monotonic()
    record = _visible_job(request, job_id)
    request.json_body(allow_empty=True)
    upstream = submit.cancel_job(record, api_version=version, params=_alt_params(request))
    audit(request, outcome=upstream.status, started=started, job_id=job_id, model=record["model"])
    return _upstream_reply(upstream)


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
        records.mark_deleted(job_id, _operation_name(upstream))
    audit(request, outcome=upstream.status, started=started, job_id=job_id, model=record["model"])
    return _upstream_reply(upstream)


def _operation_name(upstream: vertex.Upstream) -> str | None:
    try:
        name = upstream.json().get("name")
    except (ValueError, AttributeError):
        return None
    return name if isinstance(name, str) and OPERATION_NAME.match(name) else None


def get_operation(
    request: Request, version: str, project: str, location: str, operation_id: str
) -> Reply:
    """Poll a job's delete Operation, as the official clients do after a delete.

    Only Operations the gateway handed out at a delete are served, and only to keys that
    may see that job (others: 404, as for a job). The call goes to Vertex in the job's
    location, under the path prefix the client used (`v1`, `v1beta1`, or `ui`, which the
    official REST client uses to poll).
    """
    if not JOB_ID.match(operation_id):
        raise invalid_argument(
            f"Operation id {operation_id!r} is malformed: operation ids are numeric."
        )
    found = records.operation(operation_id)
    record = records.get(found["job_id"]) if found else None
    if not record or not request.caller.may_see(record):
        raise not_found(f"Operation {operation_id} does not exist or is not yours.")
    upstream = vertex.call(
        "GET",
        record["deployment"]["location"],
        f"{version}/{found['name']}",
        params=_alt_params(request) or None,
    )
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

    found = records.get_many([records.job_id_of(c[3]["name"]) for c in taken])
    visible = []
    for *_, job in taken:
        record = found.get(records.job_id_of(job["name"]))
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
