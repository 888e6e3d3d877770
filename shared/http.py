"""The passthrough's HTTP layer: one route table, auth, body limits, and the error envelope.

Route modules register handlers with `@route(...)`; `handle()` is the whole HTTP function.
Anything that escapes a handler becomes a 500 envelope: callers never see a traceback or
an HTML page.
"""

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shared import logs
from shared.config import settings
from shared.errors import ApiError, invalid_argument

if TYPE_CHECKING:
    from shared.keys import Caller

JSON = "application/json; charset=utf-8"


@dataclass
class Request:
    method: str
    path: str
    args: dict[str, str]
    headers: dict[str, str]
    body: bytes
    caller: "Caller | None" = None
    route: str = ""

    def json_body(self, *, allow_empty: bool = False) -> dict:
        """The body as a JSON object; a clear 400 for anything else."""
        if not self.body.strip():
            if allow_empty:
                return {}
            raise invalid_argument("The request body is empty; send a JSON object.")
        content_type = self.headers.get("content-type", "application/json").lower()
        if "json" not in content_type:
            raise ApiError(
                415,
                f"Content-Type {content_type!r} is not supported; send application/json.",
            )
        try:
            value = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise invalid_argument(f"The request body is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise invalid_argument("The request body must be a JSON object.")
        return value


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict | list = b"{}"
    headers: dict[str, str] = field(default_factory=dict)

    def content(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, default=str).encode()


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern
    handler: Callable
    auth: str  # "key": any valid key; "master": the master key; "none": public
    name: str


ROUTES: list[Route] = []
VERSION = r"(?P<version>v1|v1beta1)"
JOBS = VERSION + r"/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/batchPredictionJobs"


def route(method: str, pattern: str, *, auth: str = "key", name: str | None = None):
    def register(handler):
        ROUTES.append(
            Route(method, re.compile(f"^/{pattern}$"), handler, auth, name or handler.__name__)
        )
        return handler

    return register


def _match(method: str, path: str) -> tuple[Route, dict[str, str]]:
    allowed = []
    for candidate in ROUTES:
        found = candidate.pattern.match(path)
        if found:
            if candidate.method == method:
                return candidate, found.groupdict()
            allowed.append(candidate.method)
    if allowed:
        raise ApiError(
            405, f"Method {method} is not allowed on {path}; use {', '.join(sorted(allowed))}."
        )
    raise ApiError(404, f"No such route: {method} {path}. See the README for the routes.")


def api_key(headers: dict[str, str]) -> str | None:
    """`x-goog-api-key` wins: SDKs such as google-genai also send their own Google token."""
    key = headers.get("x-goog-api-key", "").strip()
    if key:
        return key
    authorization = headers.get("authorization", "").strip()
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


_routes_loaded = False


def _load_routes() -> None:
    """Import the route modules once; importing one registers its handlers.

    A flag, not `if not ROUTES`: another module may import one route module early, and the
    table must still get all of them.
    """
    global _routes_loaded
    if _routes_loaded:
        return
    from shared import admin, budget_routes, passthrough, spend  # noqa: F401

    _routes_loaded = True


def dispatch(request: Request) -> Reply:
    from shared import keys

    _load_routes()
    matched, params = _match(request.method, request.path)
    if len(request.body) > settings().max_body_bytes:
        raise ApiError(
            413,
            f"The request body is {len(request.body)} bytes; the limit is "
            f"{settings().max_body_bytes} bytes.",
        )
    caller = None
    if matched.auth != "none":
        caller = keys.authenticate(api_key(request.headers))
        if matched.auth == "master" and not caller.is_master:
            raise ApiError(403, "This route needs the master key.")
    elif api_key(request.headers):
        try:
            caller = keys.authenticate(api_key(request.headers))
        except ApiError:
            caller = None
    request.caller = caller
    request.route = matched.name
    return matched.handler(request, **params)


def handle(flask_request) -> tuple[bytes, int, dict[str, str]]:
    """The `passthrough` function: a Flask request in, (body, status, headers) out."""
    started = time.monotonic()
    limit = settings().max_body_bytes
    if (flask_request.content_length or 0) > limit:
        error = ApiError(
            413, f"The request body is {flask_request.content_length} bytes; the limit is {limit}."
        )
        return error.body(), error.code, {"Content-Type": JSON}
    request = Request(
        method=flask_request.method,
        path=flask_request.path,
        args=flask_request.args.to_dict(),
        headers={k.lower(): v for k, v in flask_request.headers.items()},
        body=flask_request.get_data(cache=False) or b"",
    )
    try:
        reply = dispatch(request)
    except ApiError as error:
        reply = Reply(error.code, error.body())
    except Exception as exc:
        logs.error(
            "unhandled error in passthrough",
            route=request.route,
            method=request.method,
            path=request.path,
            error=repr(exc),
            exc_info=_traceback(),
        )
        error = ApiError(500, "Internal error in the gateway; it has been logged.")
        reply = Reply(500, error.body())
    headers = {"Content-Type": JSON, **reply.headers}
    logs.debug(
        "request",
        method=request.method,
        path=request.path,
        status=reply.status,
        latency_ms=round((time.monotonic() - started) * 1000, 2),
    )
    return reply.content(), reply.status, headers


def _traceback() -> str:
    import traceback

    return traceback.format_exc()
