"""The Vertex-native batchPredictionJobs routes: auth, tenancy and routing, then Vertex.

Successful upstream responses are returned as Vertex's own bytes, so that new Vertex
fields reach callers; upstream errors pass through unchanged too. The handlers take the
path's project and location and ignore them: a job runs where its model's deployment says
(shared/core/routing.py), and a job id names one job whatever path it is asked under.
"""

import base64
import json
import re
import time
from datetime import UTC, datetime

from shared.api.audit import audit
from shared.api.http import Reply, Request
from shared.core import json_text, logs, times, vertex
from shared.core.config import model_list_or_error
from shared.core.errors import ApiError, invalid_argument, not_found
from shared.core.keys import Caller
from shared.core.labels import OWNER_LABEL, TEAM_LABEL, label_value
from shared.jobs import create_request, events, idempotency, records, sealed_outputs, submit

JOB_ID = re.compile(r"[0-9]{1,20}")
OPERATION_NAME = re.compile(r"projects/[^/]+/locations/[^/]+/operations/[0-9]{1,20}")
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
PAGE_SIZE = re.compile(r"[0-9]{1,9}")
MAX_PAGES_PER_LOCATION = 20
# What a list page reads of each job record, a field mask (decoding whole records was half a
# page's CPU, bench/bench_load.py): who may see it, what sealed outputs show, what `observe`
# compares.
LIST_FIELDS = (
    "owner_key_id",  # Caller.may_see
    "team",
    "deleted",
    *records.OBSERVED_FIELDS,
    *sealed_outputs.SHOWN_FIELDS,
)


def _upstream_reply(upstream: vertex.Upstream) -> Reply:
    return Reply(upstream.status, upstream.content, {"Content-Type": upstream.content_type})


def _alt_params(request: Request) -> dict:
    return {"$alt": request.args["$alt"]} if "$alt" in request.args else {}


def _visible_job(request: Request, job_id: str) -> dict:
    if not JOB_ID.fullmatch(job_id):
        raise invalid_argument(
            f"Job id {job_id!r} is malformed: batch prediction job ids are numeric."
        )
    record = records.get(job_id)
    if not record or record.get("deleted") or not request.key_holder.may_see(record):
        raise not_found(f"BatchPredictionJob {job_id} does not exist or is not yours.")
    return record


# --- create --------------------------------------------------------------------------------


def create(request: Request, version: str, project: str, location: str) -> Reply:  # noqa: ARG001 (see the module docstring)
    started = time.monotonic()
    submitted = submit.create_job(
        caller=request.key_holder,
        request=create_request.parse(
            request.json_body(), idempotency_key=_idempotency_key(request)
        ),
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
    if submitted.record and sealed_outputs.sealed(submitted.record) and submitted.upstream.ok:
        # The client sees the folder it asked for, as get and list show it.
        return Reply(200, sealed_outputs.present(submitted.upstream.json(), submitted.record))
    return _upstream_reply(submitted.upstream)


def _idempotency_key(request: Request) -> str | None:
    """`Idempotency-Key`, else the `requestId` query parameter (shared/jobs/idempotency.py)."""
    if "idempotency-key" in request.headers:
        return idempotency.check_key(request.headers["idempotency-key"], "Idempotency-Key")
    return idempotency.check_key(request.args.get("requestId"), "requestId")


# --- get / cancel / delete -----------------------------------------------------------------


def _observe(job_id: str, record: dict, job: dict):
    """What a GET learnt of the job is recorded when it is new (state, `outputInfo`,
    `completionStats`): a job deleted right after it ended still has its output folder and
    counts on record. A state that just became terminal starts publishing `job.ended`, so
    that the job is finished (priced, delivered, alerted) now rather than at the next sync
    tick; the caller settles the publish (`events.settle`) once its own work is done."""
    if "state" not in job:
        return None  # a readMask left the state out: nothing to compare
    try:
        transition = records.observe(job_id, record, job)
    except records.Contended as exc:
        # Recording lost a transaction race (the sync or another read is recording the
        # same): the caller still gets Vertex's answer, and the next sync records it.
        logs.warning("a read did not record the job; the sync will", job_id=job_id, error=repr(exc))
        return None
    if transition and transition["to"] in vertex.TERMINAL_STATES:
        return events.start_job_event("job.ended", job_id)
    return None


def _read(version: str, record: dict, params: dict | None) -> vertex.Upstream:
    path = vertex.job_path(version, record["name"])
    return vertex.call("GET", record["deployment"]["location"], path, params=params or None)


def get(request: Request, version: str, project: str, location: str, job_id: str) -> Reply:  # noqa: ARG001 (see the module docstring)
    """Vertex's Get takes no `readMask` (List does): the gateway applies it to the reply.

    Vertex's own bytes, unless the job's outputs are sealed (the client's folder is shown,
    see shared/jobs/sealed_outputs.py) or a readMask applies."""
    record = _visible_job(request, job_id)
    upstream = _read(version, record, _alt_params(request))
    if not upstream.ok:
        return _upstream_reply(upstream)
    job = upstream.json()
    events.settle(_observe(job_id, record, job))
    read_mask = request.args.get("readMask", "")
    if not read_mask and not sealed_outputs.sealed(record):
        return _upstream_reply(upstream)
    return Reply(200, _masked(sealed_outputs.shown(job, record), read_mask))


def cancel(request: Request, version: str, project: str, location: str, job_id: str) -> Reply:  # noqa: ARG001 (see the module docstring)
    started = time.monotonic()
    record = _visible_job(request, job_id)
    request.json_body(allow_empty=True)
    upstream = submit.cancel_job(record, api_version=version, params=_alt_params(request))
    audit(request, outcome=upstream.status, started=started, job_id=job_id, model=record["model"])
    return _upstream_reply(upstream)


def delete(request: Request, version: str, project: str, location: str, job_id: str) -> Reply:  # noqa: ARG001 (see the module docstring)
    """The job is read and recorded first (state, `outputInfo`, `completionStats`): once
    Vertex has deleted it, nothing else can tell where its outputs are or how many rows it
    ran. A read Vertex refuses (but 404) refuses the delete with Vertex's error."""
    started = time.monotonic()
    record = _visible_job(request, job_id)
    read = _read(version, record, None)
    if read.ok:
        events.settle(_observe(job_id, record, read.json()))
    elif read.status != 404:
        return _upstream_reply(read)
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
    return name if isinstance(name, str) and OPERATION_NAME.fullmatch(name) else None


def get_operation(
    request: Request,
    version: str,
    project: str,  # noqa: ARG001 (see the module docstring)
    location: str,  # noqa: ARG001
    operation_id: str,
) -> Reply:
    """Poll a job's delete Operation, as the official clients do after a delete.

    Only Operations the gateway handed out at a delete are served, and only to keys that
    may see that job (others: 404, as for a job). The call goes to Vertex in the job's
    location, under the path prefix the client used (`v1`, `v1beta1`, or `ui`, which the
    official REST client uses to poll).
    """
    if not JOB_ID.fullmatch(operation_id):
        raise invalid_argument(
            f"Operation id {operation_id!r} is malformed: operation ids are numeric."
        )
    found = records.operation(operation_id) or {}
    record = records.get(found["job_id"]) if found else None
    if not record or not request.key_holder.may_see(record):
        raise not_found(f"Operation {operation_id} does not exist or is not yours.")
    upstream = vertex.call(
        "GET",
        record["deployment"]["location"],
        f"{version}/{found['name']}",
        params=_alt_params(request) or None,
    )
    return _upstream_reply(upstream)


# --- list ----------------------------------------------------------------------------------


def _scope_filter(caller: Caller) -> str | None:
    """Vertex filters by the labels the gateway stamped: the caller's own jobs, or the
    team's for a team admin. The Firestore check below is the authority."""
    if caller.is_master:
        return None
    if caller.team_admin and caller.team:
        return f'labels.{TEAM_LABEL}="{label_value(caller.team)}"'
    return f'labels.{OWNER_LABEL}="{caller.key_id}"'


def _bad_token() -> ApiError:
    return invalid_argument(
        "`pageToken` is not a token this gateway issued: pass back a nextPageToken unchanged.",
        field="pageToken",
    )


def _decode_token(token: str, locations: list[str]) -> tuple[tuple | None, dict]:
    """(cursor, location -> Vertex page token or None) from a token this gateway issued;
    any other shape is a 400, never a 500."""
    if not token:
        return None, dict.fromkeys(locations, "")
    try:
        state = json_text.loads(base64.urlsafe_b64decode(token.encode("ascii") + b"==="))
    except (ValueError, UnicodeError, RecursionError):
        raise _bad_token() from None
    if not isinstance(state, dict) or set(state) != {"c", "l"}:
        raise _bad_token()
    cursor, pages = state["c"], state["l"]
    if not isinstance(pages, dict) or set(pages) != set(locations):
        raise _bad_token()
    if not all(v is None or isinstance(v, str) for v in pages.values()):
        raise _bad_token()
    if not (
        isinstance(cursor, list)
        and len(cursor) == 3
        and all(isinstance(v, str) for v in cursor)
        and times.parse(cursor[0])
        and cursor[1] in locations
    ):
        raise _bad_token()
    return _sort_key(cursor[0], cursor[1], cursor[2]), pages


def _encode_token(cursor: list[str], pages: dict) -> str:
    state = {"c": cursor, "l": pages}
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def _sort_key(create_time: str, location_key: str, name: str) -> tuple:
    """Newest first across locations: create time, then location, then the numeric id."""
    job_id = records.id_of(name)
    return (
        times.parse(create_time) or datetime.min.replace(tzinfo=UTC),
        location_key,
        int(job_id) if job_id.isdigit() else -1,
        name,
    )


def _page_size(request: Request) -> int:
    raw = request.args.get("pageSize", "")
    if not raw:
        return DEFAULT_PAGE_SIZE
    if not PAGE_SIZE.fullmatch(raw):
        raise invalid_argument(
            f"`pageSize` {raw[:40]!r} must be a non-negative integer.", field="pageSize"
        )
    size = int(raw)
    # As Vertex: 0 (or unset) means the default page size.
    return DEFAULT_PAGE_SIZE if size == 0 else min(size, MAX_PAGE_SIZE)


def list_jobs(request: Request, version: str, project: str, location: str) -> Reply:  # noqa: ARG001 (see the module docstring)
    """Merge the lists of every configured location, newest first.

    Paging is by a cursor: the token holds the sort key of the last job returned and, per
    location, the Vertex page to read from. Every page keeps only jobs strictly older than
    the cursor, so jobs created between pages (they are newer) cannot shift a page and
    repeat one, and a Vertex page is re-read until all of its jobs are older than the
    cursor. A job older than the last job read from a location that has more pages waits
    for that location's next page, so none is skipped. No state on the server; opaque to
    the client.
    """
    caller = request.key_holder
    page_size = _page_size(request)
    locations = _locations()
    cursor, pages = _decode_token(request.args.get("pageToken", ""), locations)
    read_mask = request.args.get("readMask", "")
    params = _list_params(request, page_size, read_mask)

    candidates: list[tuple[str, str, dict]] = []
    horizon = None
    read: dict[str, tuple[str, list, str]] = {}
    for location_key in locations:
        token = pages.get(location_key)
        if token is None:
            continue
        upstream, token, jobs, following = _read_location(
            version, location_key, params, token, cursor
        )
        if not upstream.ok:
            return _upstream_reply(upstream)
        read[location_key] = (token, jobs, following)
        candidates.extend((key, location_key, job) for key, job in jobs)
        if following and jobs:
            # Older jobs of this location are on pages not read yet: nothing older than
            # this page's last job may be returned before them.
            horizon = max(horizon, jobs[-1][0]) if horizon else jobs[-1][0]

    candidates.sort(key=lambda c: c[0], reverse=True)
    taken = [c for c in candidates if horizon is None or c[0] >= horizon][:page_size]
    next_pages = _next_pages(locations, read, taken)
    visible = _visible_page(caller, taken, read_mask)
    reply: dict = {"batchPredictionJobs": visible} if visible else {}
    if taken and any(v is not None for v in next_pages.values()):
        last = taken[-1]
        reply["nextPageToken"] = _encode_token(
            [last[2].get("createTime", ""), last[1], last[2].get("name", "")], next_pages
        )
    return Reply(200, reply)


def _list_params(request: Request, page_size: int, read_mask: str) -> dict:
    """Vertex's list parameters: the caller's scope and the client's filter, the page size,
    and a readMask that keeps what the merge sorts on."""
    filters = [
        f for f in (_scope_filter(request.key_holder), request.args.get("filter", "").strip()) if f
    ]
    params = {"pageSize": str(page_size), **_alt_params(request)}
    if filters:
        # OR binds tighter than AND in Vertex (AIP-160) filters: no parentheses needed.
        params["filter"] = " AND ".join(filters)
    if read_mask:
        fields = set(read_mask.split(","))
        params["readMask"] = ",".join(sorted(fields | {"name", "createTime"}))
    return params


def _read_location(
    version: str, location_key: str, params: dict, token: str, cursor
) -> tuple[vertex.Upstream, str, list, str]:
    """(the last upstream reply, the page token read, its jobs older than the cursor as
    (sort key, job), the next page's token): pages whose jobs were all returned already are
    skipped, up to MAX_PAGES_PER_LOCATION."""
    for _ in range(MAX_PAGES_PER_LOCATION):
        upstream = _list_page(version, location_key, params, token)
        if not upstream.ok:
            return upstream, token, [], ""
        page = upstream.json()
        jobs = []
        for job in page.get("batchPredictionJobs", []) or []:
            key = _sort_key(job.get("createTime", ""), location_key, job.get("name", ""))
            if cursor is None or key < cursor:
                jobs.append((key, job))
        following = page.get("nextPageToken") or ""
        if jobs or not following:
            break
        token = following  # every job of this page was returned already: go on
    return upstream, token, jobs, following


def _next_pages(locations: list[str], read: dict, taken: list) -> dict:
    """Per location, the Vertex page the next list page starts from (None: done)."""
    next_pages: dict = {}
    for location_key in locations:
        if location_key not in read:
            next_pages[location_key] = None
            continue
        token, jobs, following = read[location_key]
        left = len(jobs) - sum(1 for c in taken if c[1] == location_key)
        next_pages[location_key] = token if left else (following or None)
    return next_pages


def _visible_page(caller: Caller, taken: list, read_mask: str) -> list[dict]:
    """The taken jobs the caller may see, as shown to it; each one's state is recorded."""
    found = records.get_many([records.id_of(c[2]["name"]) for c in taken], fields=LIST_FIELDS)
    visible, publishing = [], []
    for *_, job in taken:
        job_id = records.id_of(job["name"])
        record = found.get(job_id)
        if record and not record.get("deleted") and caller.may_see(record):
            publishing.append(_observe(job_id, record, job))
            visible.append(_masked(sealed_outputs.shown(job, record), read_mask))
    for pending in publishing:  # in flight together: the page waits for one publish at most
        events.settle(pending)
    return visible


def _list_page(version: str, location_key: str, params: dict, token: str):
    loc_project, loc_location = location_key.split("/")
    upstream_params = dict(params)
    if token:
        upstream_params["pageToken"] = token
    return vertex.call(
        "GET",
        loc_location,
        f"{version}/projects/{loc_project}/locations/{loc_location}/batchPredictionJobs",
        params=upstream_params,
    )


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
