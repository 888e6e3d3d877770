"""The passthrough's HTTP plumbing: requests, replies, auth by route, the error envelope.

It knows no route: `serve()` takes the table (`shared/api/routes.py`) as an argument.
Anything that escapes a handler becomes a 500 envelope: callers never see a traceback or
an HTML page. Each route row says which error shape its callers expect (`ERROR_SHAPES`:
the Google envelope, or OpenAI's for the OpenAI Batch API door) and how large a body it
takes; a path no route matches answers in the Google envelope.
"""

import io
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from shared.core import keys, logs
from shared.core.config import settings
from shared.core.errors import ApiError, invalid_argument, openai_envelope

JSON = "application/json; charset=utf-8"
GOOGLE = "google"
OPENAI = "openai"
ERROR_SHAPES = (GOOGLE, OPENAI)
# The media types a JSON body may be sent as (parameters such as charset are ignored).
JSON_MEDIA_TYPES = ("application/json", "text/json", "application/merge-patch+json")


@dataclass
class Request:
    method: str
    path: str
    args: dict[str, str]
    headers: dict[str, str]
    body: bytes
    caller: keys.Caller | None = None
    route: str = ""
    errors: str = GOOGLE

    def json_body(self, *, allow_empty: bool = False) -> dict:
        """The body as a JSON object; a clear 400 for anything else."""
        if not self.body.strip():
            if allow_empty:
                return {}
            raise invalid_argument("The request body is empty; send a JSON object.")
        content_type = self.headers.get("content-type", "application/json")
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type not in JSON_MEDIA_TYPES:
            raise ApiError(
                415,
                f"Content-Type {content_type[:100]!r} is not supported; send application/json.",
            )
        try:
            value = json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise invalid_argument(f"The request body is not valid JSON: {exc}") from None
        except RecursionError:
            raise invalid_argument("The request body is nested too deeply.") from None
        if not isinstance(value, dict):
            raise invalid_argument("The request body must be a JSON object.")
        return value

    def multipart(self) -> tuple[dict[str, str], dict]:
        """A multipart/form-data body as (fields, files), parsed by werkzeug; files are
        werkzeug `FileStorage`s. A clear 400 for any other body."""
        from werkzeug.formparser import FormDataParser
        from werkzeug.http import parse_options_header

        mimetype, options = parse_options_header(self.headers.get("content-type", ""))
        if mimetype != "multipart/form-data" or not options.get("boundary"):
            raise invalid_argument(
                f"Content-Type {mimetype or 'none'!r} is not supported here; send "
                "multipart/form-data with a boundary."
            )
        parser = FormDataParser(max_content_length=len(self.body))
        try:
            _, form, files = parser.parse(io.BytesIO(self.body), mimetype, len(self.body), options)
        except ValueError as exc:
            raise invalid_argument(f"The multipart body cannot be read: {exc}") from None
        return form.to_dict(), files.to_dict()


@dataclass
class Reply:
    """`body`: bytes, JSON (a dict or list), or an iterator of bytes sent as it is produced
    (a streamed reply: its errors must all be found before the first chunk)."""

    status: int = 200
    body: bytes | dict | list | Iterator[bytes] = b"{}"
    headers: dict[str, str] = field(default_factory=dict)

    def content(self) -> bytes | Iterator[bytes]:
        if isinstance(self.body, bytes | Iterator):
            return self.body
        return json.dumps(self.body, default=str).encode()


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern
    handler: Callable
    auth: str  # "key": any valid key; "master": the master key; "none": public
    name: str
    errors: str = GOOGLE  # the error shape of every failure on this route (ERROR_SHAPES)
    max_body: Callable[[], int] | None = None  # the body limit; None: VBG_MAX_BODY_BYTES
    # What the OpenAPI document (shared/api/openapi.py) says of the route: JSON schemas of
    # the request body (None: no body) and its media type, the success reply and its media
    # type, and the query parameters.
    summary: str = ""
    body: dict | None = None
    reply: dict | None = None
    query: dict = field(default_factory=dict)
    media_type: str = "application/json"
    body_media_type: str = "application/json"

    def body_limit(self) -> int:
        return self.max_body() if self.max_body else settings().max_body_bytes


def route(
    method: str,
    pattern: str,
    handler: Callable,
    *,
    auth: str = "key",
    name: str,
    errors: str = GOOGLE,
    max_body: Callable[[], int] | None = None,
    summary: str = "",
    body: dict | None = None,
    reply: dict | None = None,
    query: dict | None = None,
    media_type: str = "application/json",
    body_media_type: str = "application/json",
) -> Route:
    """One row of the route table; `pattern` is a regex of the path without its leading /."""
    if errors not in ERROR_SHAPES:
        raise ValueError(f"route {name}: unknown error shape {errors!r}")
    return Route(
        method,
        re.compile(f"^/{pattern}$"),
        handler,
        auth,
        name,
        errors,
        max_body,
        summary=summary,
        body=body,
        reply=reply,
        query=dict(query or {}),
        media_type=media_type,
        body_media_type=body_media_type,
    )


def error_reply(error: ApiError, shape: str) -> Reply:
    body = openai_envelope(error) if shape == OPENAI else error.envelope()
    return Reply(error.code, body)


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


def _shape_for(routes: list[Route], path: str) -> str:
    """The error shape of the routes serving `path` (a 405 answers in their shape too)."""
    for candidate in routes:
        if candidate.pattern.match(path):
            return candidate.errors
    # No route matches (an id of the wrong shape, say): the door whose paths it starts with.
    for candidate in routes:
        literal = re.split(
            r"[(\\\[.*+?{]", candidate.pattern.pattern.removeprefix("^"), maxsplit=1
        )[0]
        if literal.count("/") > 2 and path.startswith(literal):
            return candidate.errors
    return GOOGLE


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


def _too_large(size: int, limit: int) -> ApiError:
    return ApiError(413, f"The request body is {size} bytes; the limit is {limit} bytes.")


def dispatch(request: Request, matched: Route, params: dict[str, str]) -> Reply:
    if len(request.body) > matched.body_limit():
        raise _too_large(len(request.body), matched.body_limit())
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


def serve(
    flask_request, routes: list[Route]
) -> tuple[bytes | Iterator[bytes], int, dict[str, str]]:
    """A Flask request in, (body, status, headers) out. The route is matched before the
    body is read, so its size limit and error shape hold for every failure."""
    started = time.monotonic()
    request = Request(
        method=flask_request.method,
        path=flask_request.path,
        args=flask_request.args.to_dict(),
        headers={k.lower(): v for k, v in flask_request.headers.items()},
        body=b"",
    )
    request.errors = _shape_for(routes, request.path)
    try:
        matched, params = _match(routes, request.method, request.path)
        if (flask_request.content_length or 0) > matched.body_limit():
            raise _too_large(flask_request.content_length, matched.body_limit())
        request.body = flask_request.get_data(cache=False) or b""
        reply = dispatch(request, matched, params)
    except ApiError as error:
        reply = error_reply(error, request.errors)
    except Exception as exc:
        logs.error(
            "unhandled error in passthrough",
            route=request.route,
            method=request.method,
            path=request.path,
            error=repr(exc),
            exc_info=_traceback(),
        )
        reply = error_reply(
            ApiError(500, "Internal error in the gateway; it has been logged."), request.errors
        )
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


def framework_error(
    code: int, description: str, path: str, routes: list[Route]
) -> tuple[bytes, int, dict[str, str]]:
    """An error raised by the web framework itself (routing, size limits), in the error
    shape of the routes of `path`."""
    message = {
        404: "No such route. See GET /v1/gateway/openapi.json for the routes.",
        405: "Method not allowed on this path.",
    }.get(code, str(description)[:300])
    reply = error_reply(ApiError(code, message), _shape_for(routes, path))
    return reply.content(), code, {"Content-Type": JSON}
