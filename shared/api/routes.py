"""Every route of the `passthrough` function, in one table read top to bottom.

The first row whose pattern matches the path and whose method matches serves the request;
a path that matches with another method is a 405. `auth` is "key" (any valid key),
"master" (the master key) or "none" (public). `errors` is the error shape of the route
(`http.GOOGLE`, the default, or `http.OPENAI`); `max_body` a larger body limit.
"""

from shared.api import (
    budget_routes,
    console,
    health,
    http,
    job_routes,
    key_admin,
    openai_routes,
    passthrough,
    spend_routes,
)
from shared.api.http import OPENAI, route

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

ROUTES = [
    # Vertex-native batchPredictionJobs (/v1 and /v1beta1), as Vertex serves them.
    route("POST", JOBS, passthrough.create, name="jobs.create"),
    route("GET", JOBS, passthrough.list_jobs, name="jobs.list"),
    route("GET", JOB, passthrough.get, name="jobs.get"),
    route("POST", JOB + r":cancel", passthrough.cancel, name="jobs.cancel"),
    route("DELETE", JOB, passthrough.delete, name="jobs.delete"),
    route("GET", OPERATION, passthrough.get_operation, name="operations.get"),
    # Gateway: the caller's jobs as the gateway records them, retries.
    route("GET", r"v1/gateway/me", job_routes.me, name="me"),
    route("GET", r"v1/gateway/jobs", job_routes.list_jobs, name="gateway.jobs.list"),
    route("GET", GATEWAY_JOB, job_routes.get_job, name="gateway.jobs.get"),
    route("POST", GATEWAY_JOB + r":retryFailed", job_routes.retry_failed, name="jobs.retry"),
    # Gateway: cost, spend, budgets, estimates.
    route("GET", JOB_COST, spend_routes.job_cost, name="jobs.cost"),
    route("GET", r"v1/gateway/spend", spend_routes.spend, name="spend"),
    route("GET", r"v1/gateway/spend/daily", spend_routes.spend_daily, name="spend.daily"),
    route("GET", r"v1/gateway/budget", budget_routes.own_budget, name="budget.self"),
    route("POST", r"v1/gateway/estimate", budget_routes.estimate_route, name="estimate"),
    route("PUT", TEAM, budget_routes.put_team, auth="master", name="teams.put"),
    route("GET", TEAM, budget_routes.get_team, auth="master", name="teams.get"),
    # Gateway: key administration (master key) and health (public).
    route("POST", KEYS, key_admin.create_key, auth="master", name="keys.create"),
    route("GET", KEYS, key_admin.list_keys, auth="master", name="keys.list"),
    route("GET", KEY, key_admin.get_key, auth="master", name="keys.get"),
    route("PATCH", KEY, key_admin.update_key, auth="master", name="keys.update"),
    route("POST", KEY + r":revoke", key_admin.revoke_key, auth="master", name="keys.revoke"),
    route("GET", r"v1/gateway/health", health.health, auth="none", name="health"),
    # The OpenAI Batch API (files + batches), in OpenAI's objects and error shape.
    route(
        "POST",
        FILES,
        openai_routes.create_file,
        name="openai.files.create",
        errors=OPENAI,
        max_body=openai_routes.upload_limit,
    ),
    route("GET", FILES, openai_routes.list_files, name="openai.files.list", errors=OPENAI),
    route("GET", FILE, openai_routes.get_file, name="openai.files.get", errors=OPENAI),
    route(
        "GET",
        FILE + r"/content",
        openai_routes.file_content,
        name="openai.files.content",
        errors=OPENAI,
    ),
    route("DELETE", FILE, openai_routes.delete_file, name="openai.files.delete", errors=OPENAI),
    route("POST", BATCHES, openai_routes.create_batch, name="openai.batches.create", errors=OPENAI),
    route("GET", BATCHES, openai_routes.list_batches, name="openai.batches.list", errors=OPENAI),
    route("GET", BATCH, openai_routes.get_batch, name="openai.batches.get", errors=OPENAI),
    route(
        "POST",
        BATCH + r"/cancel",
        openai_routes.cancel_batch,
        name="openai.batches.cancel",
        errors=OPENAI,
    ),
    # The web console: public static files; its data comes from the JSON routes above.
    route("GET", r"ui", console.redirect, auth="none", name="console.root"),
    route("GET", console.PATH, console.static, auth="none", name="console"),
]


def handle(flask_request) -> tuple[bytes, int, dict[str, str]]:
    """The `passthrough` function: a Flask request in, (body, status, headers) out."""
    return http.serve(flask_request, ROUTES)
