"""`GET /v1/gateway/health`: is the gateway able to serve (config, Firestore)."""

import time

from shared.api.http import Reply, Request
from shared.core import clients, keys
from shared.core.config import ConfigError, model_list, settings


def health(request: Request) -> Reply:
    """Config loaded, Firestore reachable, deployments listed. 503 when a part is not.

    Public, so that load balancers and uptime checks need no key; the deployments (project
    ids), the config file's path and any config error are shown only to the master key.
    """
    report: dict = {"status": "ok"}
    try:
        models = model_list()
        report["config"] = {"status": "ok"}
        if request.caller and request.caller.is_master:
            report["config"]["path"] = settings().config_path
        report["models"] = models.model_names
        report["deploymentCount"] = len(models.deployments)
        if request.caller and request.caller.is_master:
            report["deployments"] = [d.describe() for d in models.deployments]
    except ConfigError as exc:
        report["status"] = "unavailable"
        report["config"] = {"status": "error"}
        if request.caller and request.caller.is_master:
            report["config"]["error"] = str(exc)
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
