"""Every route of the `passthrough` function, in one table read top to bottom.

The first row whose pattern matches the path and whose method matches serves the request;
a path that matches with another method is a 405. `auth` is "key" (any valid key),
"master" (the master key) or "none" (public). `errors` is the error shape of the route
(`http.GOOGLE`, the default, or `http.OPENAI`); `max_body` a larger body limit.

Each row also says what `GET /v1/gateway/openapi.json` publishes of it (shared/api/openapi.py):
`body` and `reply` (JSON schemas, shared/api/schemas.py) and `query` (parameter schemas); the
fuzz tests hold each route to its declared error shape. A row without a reply schema (or a
POST/PUT/PATCH without a body schema) fails `tests/api/test_openapi.py`.
"""

from collections.abc import Iterator

from shared.api import (
    budget_routes,
    console,
    health,
    http,
    job_routes,
    key_admin,
    openai_routes,
    openapi,
    passthrough,
    price_routes,
    run_routes,
    spend_routes,
    webhook_routes,
)
from shared.api import schemas as s
from shared.api.http import OPENAI, Reply, Request, route

VERSION = r"(?P<version>v1|v1beta1)"
JOBS = VERSION + r"/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/batchPredictionJobs"
JOB = JOBS + r"/(?P<job_id>[^/:]+)"
# The official REST clients poll an Operation under /ui/ (aiplatform's first http rule).
OPERATION = (
    r"(?P<version>v1|v1beta1|ui)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/operations/(?P<operation_id>[^/:]+)"
)
KEYS = r"v1/gateway/keys"
KEY = KEYS + r"/(?P<key_id>[^/:]+)"
TEAM = r"v1/gateway/teams/(?P<team>[^/:]{1,63})"
GATEWAY_JOB = r"v1/gateway/jobs/(?P<job_id>[^/:]+)"
JOB_COST = GATEWAY_JOB + r"/cost"
FILES = r"v1/files"
FILE = FILES + r"/(?P<file_id>[^/:]+)"
BATCHES = r"v1/batches"
BATCH = BATCHES + r"/(?P<batch_id>[^/:]+)"
WEBHOOKS = r"v1/gateway/webhooks"
WEBHOOK = WEBHOOKS + r"/(?P<endpoint_id>[^/:]+)"
DELIVERIES = WEBHOOK + r"/deliveries"
UPLOADS = r"v1/uploads"
UPLOAD = UPLOADS + r"/(?P<upload_id>[^/:]+)"
RUNS = r"v1/gateway/runs"
RUN = RUNS + r"/(?P<run_id>[^/:]+)"
PRICES = r"v1/gateway/prices"
PRICE = PRICES + r"/(?P<model>[A-Za-z0-9][A-Za-z0-9.\-@]{0,127})"


def openapi_document(request: Request) -> Reply:  # noqa: ARG001 (a handler takes its route's parameters)
    """The OpenAPI 3.1 document of this very table (public: clients generate SDKs from it)."""
    return Reply(200, openapi.document_bytes(ROUTES))


ROUTES = [
    # Vertex-native batchPredictionJobs (/v1 and /v1beta1), as Vertex serves them.
    route(
        "POST",
        JOBS,
        passthrough.create,
        name="jobs.create",
        summary="Create a batch prediction job (inputs sealed, budget checked)",
        body=s.BATCH_JOB_CREATE,
        reply=s.ref("BatchPredictionJob"),
        query=s.CREATE_QUERY,
    ),
    route(
        "GET",
        JOBS,
        passthrough.list_jobs,
        name="jobs.list",
        summary="List the jobs the key may see, across every deployment",
        reply=s.BATCH_JOB_LIST,
        query={**s.LIST_QUERY, **s.ALT_QUERY},
    ),
    route(
        "GET",
        JOB,
        passthrough.get,
        name="jobs.get",
        reply=s.ref("BatchPredictionJob"),
        query={"readMask": s.STRING, **s.ALT_QUERY},
    ),
    route(
        "POST",
        JOB + r":cancel",
        passthrough.cancel,
        name="jobs.cancel",
        body=s.EMPTY,
        reply=s.EMPTY,
        query=s.ALT_QUERY,
    ),
    route(
        "DELETE",
        JOB,
        passthrough.delete,
        name="jobs.delete",
        reply=s.OPERATION,
        query=s.ALT_QUERY,
    ),
    route(
        "GET",
        OPERATION,
        passthrough.get_operation,
        name="operations.get",
        reply=s.OPERATION,
        query=s.ALT_QUERY,
    ),
    # Gateway: the caller's jobs as the gateway records them, retries.
    route("GET", r"v1/gateway/me", job_routes.me, name="me", reply=s.OPEN_OBJECT),
    route(
        "GET",
        r"v1/gateway/jobs",
        job_routes.list_jobs,
        name="gateway.jobs.list",
        reply=s.OPEN_OBJECT,
        query=s.GATEWAY_JOBS_QUERY,
    ),
    route("GET", GATEWAY_JOB, job_routes.get_job, name="gateway.jobs.get", reply=s.OPEN_OBJECT),
    route(
        "POST",
        GATEWAY_JOB + r":retryFailed",
        job_routes.retry_failed,
        name="jobs.retry",
        body=s.OPEN_OBJECT,
        reply=s.OPEN_OBJECT,
    ),
    # Gateway: runs (any size: split, queued, merged; shared/runs/) and upload sessions.
    route(
        "POST",
        RUNS,
        run_routes.create_run,
        name="runs.create",
        summary="Create a run: an input of any size split into jobs, queued and merged",
        body=s.RUN_CREATE,
        reply=s.RUN,
    ),
    route(
        "GET",
        RUNS,
        run_routes.list_runs,
        name="runs.list",
        reply=s.RUN_LIST,
        query=s.RUNS_QUERY,
    ),
    route("GET", RUN, run_routes.get_run, name="runs.get", reply=s.RUN),
    route("GET", RUN + r"/cost", run_routes.run_cost, name="runs.cost", reply=s.RUN_COST),
    route(
        "POST",
        RUN + r":cancel",
        run_routes.cancel_run,
        name="runs.cancel",
        body=s.OPEN_OBJECT,
        reply=s.RUN,
    ),
    route(
        "POST",
        RUN + r":retryFailed",
        run_routes.retry_run,
        name="runs.retry",
        body=s.OPEN_OBJECT,
        reply=s.RUN,
    ),
    route(
        "POST",
        r"v1/gateway/uploads",
        run_routes.open_upload,
        name="uploads.create",
        summary="Open a resumable GCS upload session for a new object in the key's input prefix",
        body=s.UPLOAD_CREATE,
        reply=s.UPLOAD,
    ),
    # Gateway: cost, spend, budgets, estimates.
    route("GET", JOB_COST, spend_routes.job_cost, name="jobs.cost", reply=s.JOB_COST),
    route(
        "GET",
        r"v1/gateway/spend",
        spend_routes.spend,
        name="spend",
        reply=s.SPEND,
        query=s.SPEND_QUERY,
    ),
    route(
        "GET",
        r"v1/gateway/spend/export",
        spend_routes.spend_export,
        name="spend.export",
        summary="Spend as CSV or JSONL, one row per day and group, streamed",
        reply={"type": "string"},
        query=s.SPEND_EXPORT_QUERY,
        media_type="text/csv",
    ),
    route(
        "GET",
        r"v1/gateway/spend/daily",
        spend_routes.spend_daily,
        name="spend.daily",
        reply=s.OPEN_OBJECT,
        query=s.SPEND_QUERY,
    ),
    route(
        "GET", r"v1/gateway/budget", budget_routes.own_budget, name="budget.self", reply=s.BUDGETS
    ),
    route(
        "POST",
        r"v1/gateway/estimate",
        budget_routes.estimate_route,
        name="estimate",
        body=s.BATCH_JOB_CREATE,
        reply=s.ESTIMATE,
    ),
    route(
        "PUT",
        TEAM,
        budget_routes.put_team,
        auth="master",
        name="teams.put",
        body=s.TEAM_BUDGET,
        reply=s.TEAM,
    ),
    route("GET", TEAM, budget_routes.get_team, auth="master", name="teams.get", reply=s.TEAM),
    # Gateway: key administration (master key), health and this API's description (public).
    route(
        "POST",
        KEYS,
        key_admin.create_key,
        auth="master",
        name="keys.create",
        body=s.KEY_CREATE,
        reply=s.ref("Key"),
    ),
    route(
        "GET",
        KEYS,
        key_admin.list_keys,
        auth="master",
        name="keys.list",
        reply=s.KEY_LIST,
        query={"showRevoked": s.BOOLEAN},
    ),
    route("GET", KEY, key_admin.get_key, auth="master", name="keys.get", reply=s.ref("Key")),
    route(
        "PATCH",
        KEY,
        key_admin.update_key,
        auth="master",
        name="keys.update",
        body=s.KEY_UPDATE,
        reply=s.ref("Key"),
    ),
    route(
        "POST",
        KEY + r":revoke",
        key_admin.revoke_key,
        auth="master",
        name="keys.revoke",
        body=s.EMPTY,
        reply=s.ref("Key"),
    ),
    # The price catalog (master key): in force, one model, imports applied after a diff.
    route(
        "GET",
        PRICES,
        price_routes.list_prices,
        auth="master",
        name="prices.list",
        reply=s.OPEN_OBJECT,
        query={"at": s.STRING},
    ),
    route(
        "POST",
        PRICES + r":import",
        price_routes.import_prices,
        auth="master",
        name="prices.import",
        body=s.PRICE_IMPORT,
        reply=s.OPEN_OBJECT,
        max_body=price_routes.import_limit,
    ),
    route(
        "POST",
        GATEWAY_JOB + r":reprice",
        price_routes.reprice_job,
        auth="master",
        name="jobs.reprice",
        body=s.REPRICE,
        reply=s.OPEN_OBJECT,
    ),
    route(
        "GET",
        PRICE,
        price_routes.get_price,
        auth="master",
        name="prices.get",
        reply=s.OPEN_OBJECT,
        query={"at": s.STRING, "location": s.STRING},
    ),
    route("GET", r"v1/gateway/health", health.health, auth="none", name="health", reply=s.HEALTH),
    route(
        "GET",
        r"v1/gateway/openapi\.json",
        openapi_document,
        auth="none",
        name="openapi",
        summary="This document",
        reply=s.OPENAPI,
    ),
    # The OpenAI Batch API (files + batches), in OpenAI's objects and error shape.
    route(
        "POST",
        FILES,
        openai_routes.create_file,
        name="openai.files.create",
        errors=OPENAI,
        max_body=openai_routes.upload_limit,
        streamed=True,
        body=s.OPENAI_FILE_UPLOAD,
        body_media_type="multipart/form-data",
        reply=s.OPENAI_OBJECT,
    ),
    route(
        "GET",
        FILES,
        openai_routes.list_files,
        name="openai.files.list",
        errors=OPENAI,
        reply=s.OPENAI_LIST,
        query=s.OPENAI_LIST_QUERY,
    ),
    route(
        "GET",
        FILE,
        openai_routes.get_file,
        name="openai.files.get",
        errors=OPENAI,
        reply=s.OPENAI_OBJECT,
    ),
    route(
        "GET",
        FILE + r"/content",
        openai_routes.file_content,
        name="openai.files.content",
        errors=OPENAI,
        reply={"type": "string", "format": "binary"},
        media_type="application/octet-stream",
    ),
    route(
        "DELETE",
        FILE,
        openai_routes.delete_file,
        name="openai.files.delete",
        errors=OPENAI,
        reply=s.OPENAI_OBJECT,
    ),
    route(
        "POST",
        BATCHES,
        openai_routes.create_batch,
        name="openai.batches.create",
        errors=OPENAI,
        body=s.OPENAI_BATCH_CREATE,
        reply=s.OPENAI_OBJECT,
    ),
    route(
        "GET",
        BATCHES,
        openai_routes.list_batches,
        name="openai.batches.list",
        errors=OPENAI,
        reply=s.OPENAI_LIST,
        query=s.OPENAI_LIST_QUERY,
    ),
    route(
        "GET",
        BATCH,
        openai_routes.get_batch,
        name="openai.batches.get",
        errors=OPENAI,
        reply=s.OPENAI_OBJECT,
    ),
    route(
        "POST",
        BATCH + r"/cancel",
        openai_routes.cancel_batch,
        name="openai.batches.cancel",
        errors=OPENAI,
        body=s.EMPTY,
        reply=s.OPENAI_OBJECT,
    ),
    route(
        "POST",
        UPLOADS,
        openai_routes.create_upload,
        name="openai.uploads.create",
        summary="Start an Upload: a file sent in Parts (past one request's size)",
        errors=OPENAI,
        body=s.OPENAI_UPLOAD_CREATE,
        reply=s.OPENAI_OBJECT,
    ),
    route(
        "POST",
        UPLOAD + r"/parts",
        openai_routes.add_upload_part,
        name="openai.uploads.parts",
        errors=OPENAI,
        max_body=openai_routes.part_limit,
        body=s.OPENAI_UPLOAD_PART,
        body_media_type="multipart/form-data",
        reply=s.OPENAI_OBJECT,
    ),
    route(
        "POST",
        UPLOAD + r"/complete",
        openai_routes.complete_upload,
        name="openai.uploads.complete",
        errors=OPENAI,
        body=s.OPENAI_UPLOAD_COMPLETE,
        reply=s.OPENAI_OBJECT,
    ),
    route(
        "POST",
        UPLOAD + r"/cancel",
        openai_routes.cancel_upload,
        name="openai.uploads.cancel",
        errors=OPENAI,
        body=s.EMPTY,
        reply=s.OPENAI_OBJECT,
    ),
    # Webhook endpoints of the calling key: signed terminal events of its jobs and batches.
    route(
        "POST",
        WEBHOOKS,
        webhook_routes.create,
        name="webhooks.create",
        summary="Register a webhook endpoint (its secret is shown once)",
        body=s.WEBHOOK_CREATE,
        reply=s.WEBHOOK,
    ),
    route(
        "GET",
        WEBHOOKS,
        webhook_routes.list_endpoints,
        name="webhooks.list",
        summary="The key's webhook endpoints",
        reply=s.WEBHOOK_LIST,
    ),
    route("GET", WEBHOOK, webhook_routes.get, name="webhooks.get", reply=s.WEBHOOK),
    route(
        "DELETE",
        WEBHOOK,
        webhook_routes.delete,
        name="webhooks.delete",
        reply=s.OPEN_OBJECT,
    ),
    route(
        "POST",
        WEBHOOK + r":rotateSecret",
        webhook_routes.rotate,
        name="webhooks.rotate",
        summary="A new secret (shown once); the old one also signs for 24 hours",
        body=s.EMPTY,
        reply=s.WEBHOOK,
    ),
    route(
        "GET",
        DELIVERIES,
        webhook_routes.deliveries,
        name="webhooks.deliveries",
        summary="The endpoint's delivery log, newest first",
        reply=s.WEBHOOK_DELIVERIES,
        query=s.WEBHOOK_DELIVERIES_QUERY,
    ),
    route(
        "POST",
        DELIVERIES + r"/(?P<delivery_id>[^/:]+):replay",
        webhook_routes.replay,
        name="webhooks.replay",
        summary="Send a delivery again now",
        body=s.EMPTY,
        reply=s.WEBHOOK_DELIVERY,
    ),
    # The web console: public static files; its data comes from the JSON routes above.
    route(
        "GET",
        r"ui",
        console.redirect,
        auth="none",
        name="console.root",
        reply={"type": "string"},
        media_type="text/plain",
    ),
    route(
        "GET",
        console.PATH,
        console.static,
        auth="none",
        name="console",
        reply={"type": "string"},
        media_type="text/html",
    ),
]


def framework_error(
    code: int, description: str, path: str
) -> tuple[bytes | Iterator[bytes], int, dict]:
    """What the web framework refuses before `handle` runs, in the path's error shape."""
    return http.framework_error(code, description, path, ROUTES)


def handle(flask_request) -> tuple[bytes | Iterator[bytes], int, dict[str, str]]:
    """The `passthrough` function: a Flask request in, (body, status, headers) out."""
    return http.serve(flask_request, ROUTES)
