"""Webhook endpoints of the calling key (`/v1/gateway/webhooks`): register, list, rotate the
secret, delete, read the delivery log, replay. The work is in `shared/openai/webhooks.py`."""

import time

from shared.api.audit import audit
from shared.api.http import Reply, Request
from shared.core.errors import invalid_argument
from shared.openai import webhooks

DEFAULT_PAGE = 20


def create(request: Request) -> Reply:
    started = time.monotonic()
    view, secret = webhooks.create_endpoint(request.key_holder, request.json_body())
    audit(request, outcome=200, started=started, action="webhook.create")
    return Reply(200, {**view, "secret": secret})


def list_endpoints(request: Request) -> Reply:
    return Reply(200, {"webhooks": webhooks.list_endpoints(request.key_holder)})


def get(request: Request, endpoint_id: str) -> Reply:
    return Reply(200, webhooks.public_view(webhooks.get_endpoint(request.key_holder, endpoint_id)))


def delete(request: Request, endpoint_id: str) -> Reply:
    started = time.monotonic()
    reply = webhooks.delete_endpoint(request.key_holder, endpoint_id)
    audit(request, outcome=200, started=started, action="webhook.delete")
    return Reply(200, reply)


def rotate(request: Request, endpoint_id: str) -> Reply:
    started = time.monotonic()
    request.json_body(allow_empty=True)
    view, secret = webhooks.rotate_secret(request.key_holder, endpoint_id)
    audit(request, outcome=200, started=started, action="webhook.rotate")
    return Reply(200, {**view, "secret": secret})


def deliveries(request: Request, endpoint_id: str) -> Reply:
    raw = request.args.get("limit", "")
    if raw and (not raw.isdigit() or not 1 <= int(raw) <= webhooks.MAX_PAGE):
        raise invalid_argument(
            f"`limit` must be an integer from 1 to {webhooks.MAX_PAGE}.", field="limit"
        )
    page = webhooks.list_deliveries(
        request.key_holder,
        endpoint_id,
        limit=int(raw) if raw else DEFAULT_PAGE,
        after=request.args.get("after") or None,
    )
    return Reply(200, page)


def replay(request: Request, endpoint_id: str, delivery_id: str) -> Reply:
    started = time.monotonic()
    request.json_body(allow_empty=True)
    reply = webhooks.replay(request.key_holder, endpoint_id, delivery_id)
    audit(request, outcome=200, started=started, action="webhook.replay")
    return Reply(200, reply)
