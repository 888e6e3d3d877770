"""Key administration routes (master key): create, list, get, update, revoke."""

import time

from shared.api.audit import audit
from shared.api.http import Reply, Request
from shared.core import keys


def create_key(request: Request) -> Reply:
    started = time.monotonic()
    plaintext, record = keys.create_key(request.json_body())
    audit(request, outcome=200, started=started, subject_key_id=record["id"], action="create")
    return Reply(200, {**keys.public_view(record), "key": plaintext})


def list_keys(request: Request) -> Reply:
    include_revoked = request.args.get("showRevoked", "").lower() in ("1", "true", "yes")
    return Reply(200, {"keys": [keys.public_view(r) for r in keys.list_keys(include_revoked)]})


def get_key(request: Request, key_id: str) -> Reply:  # noqa: ARG001 (a handler takes its route's parameters)
    return Reply(200, keys.public_view(keys.get_key(key_id)))


def update_key(request: Request, key_id: str) -> Reply:
    started = time.monotonic()
    record = keys.update_key(key_id, request.json_body())
    audit(request, outcome=200, started=started, subject_key_id=key_id, action="update")
    return Reply(200, keys.public_view(record))


def revoke_key(request: Request, key_id: str) -> Reply:
    started = time.monotonic()
    record = keys.revoke_key(key_id)
    audit(request, outcome=200, started=started, subject_key_id=key_id, action="revoke")
    return Reply(200, keys.public_view(record))
