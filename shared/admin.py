"""Gateway routes for administrators and operators: keys (master key) and health (public)."""

import time

from shared import clients, keys
from shared.config import ConfigError, model_list, settings
from shared.http import Reply, Request, route
from shared.passthrough import audit

KEYS = r"v1/gateway/keys"
KEY = KEYS + r"/(?P<key_id>[^/:]+)"


@route("POST", KEYS, auth="master", name="keys.create")
def create_key(request: Request) -> Reply:
    started = time.monotonic()
    plaintext, record = keys.create_key(request.json_body())
    audit(request, outcome=200, started=started, subject_key_id=record["id"], action="create")
    return Reply(200, {**keys.public_view(record), "key": plaintext})


@route("GET", KEYS, auth="master", name="keys.list")
def list_keys(request: Request) -> Reply:
    include_revoked = request.args.get("showRevoked", "").lower() in ("1", "true", "yes")
    return Reply(200, {"keys": [keys.public_view(r) for r in keys.list_keys(include_revoked)]})


@route("GET", KEY, auth="master", name="keys.get")
def get_key(request: Request, key_id: str) -> Reply:
    return Reply(200, keys.public_view(keys.get_key(key_id)))


@route("PATCH", KEY, auth="master", name="keys.update")
def update_key(request: Request, key_id: str) -> Reply:
    started = time.monotonic()
    record = keys.update_key(key_id, request.json_body())
    audit(request, outcome=200, started=started, subject_key_id=key_id, action="update")
    return Reply(200, keys.public_view(record))


@route("POST", KEY + r":revoke", auth="master", name="keys.revoke")
def revoke_key(request: Request, key_id: str) -> Reply:
    started = time.monotonic()
    record = keys.revoke_key(key_id)
    audit(request, outcome=200, started=started, subject_key_id=key_id, action="revoke")
    return Reply(200, keys.public_view(record))


@route("GET", r"v1/gateway/health", auth="none", name="health")
def health(request: Request) -> Reply:
    """Config loaded, Firestore reachable, deployments listed. 503 when a part is not.

    Public, so that load balancers and uptime checks need no key; the deployments (project
    ids) are listed only to the master key, others see their count.
    """
    report: dict = {"status": "ok"}
    try:
        models = model_list()
        report["config"] = {"status": "ok", "path": settings().config_path}
        report["models"] = models.model_names
        report["deploymentCount"] = len(models.deployments)
        if request.caller and request.caller.is_master:
            report["deployments"] = [d.describe() for d in models.deployments]
    except ConfigError as exc:
        report["status"] = "unavailable"
        report["config"] = {"status": "error", "error": str(exc)}
    try:
        started = time.monotonic()
        clients.firestore().collection(keys.COLLECTION).document("_health").get(timeout=5)
        report["firestore"] = {
            "status": "ok",
            "latencyMs": round((time.monotonic() - started) * 1000, 1),
        }
    except Exception as exc:
        report["status"] = "unavailable"
        report["firestore"] = {"status": "error", "error": type(exc).__name__}
    return Reply(200 if report["status"] == "ok" else 503, report)
