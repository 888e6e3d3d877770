"""The passthrough's HTTP plumbing: requests, replies, auth by route, the error envelope.

It knows no route: `serve()` takes the table (`shared/api/routes.py`) as an argument.
Anything that escapes a handler becomes a 500 envelope: callers never see a traceback or
an HTML page.
"""

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.core import keys, logs
from shared.core.config import settings
from shared.core.errors import ApiError, invalid_argument

JSON = "application/json; charset=utf-8"


@dataclass
class Request:
    method: str
    path: str
    args: dict[str, str]
    headers: dict[str, str]
    body: bytes
    caller: keys.Caller | None = None
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


def route(method: str, pattern: str, handler: Callable, *, auth: str = "key", name: str) -> Route:
    """One row of the route table; `pattern` is a regex of the path without its leading /."""
    return Route(method, re.compile(f"^/{pattern}$"), handler, auth, name)


def _match(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]]:
    allowed = []
    for candidate in routes:
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


def dispatch(request: Request, routes: list[Route]) -> Reply:
    matched, params = _match(routes, request.method, request.path)
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


def serve(flask_request, routes: list[Route]) -> tuple[bytes, int, dict[str, str]]:
    """A Flask request in, (body, status, headers) out."""
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
        reply = dispatch(request, routes)
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
