"""The passthrough's HTTP plumbing: requests, replies, auth by route, the error envelope.

It knows no route: `serve()` takes the table (`shared/api/routes.py`) as an argument.
Anything that escapes a handler becomes a 500 envelope: callers never see a traceback or
an HTML page. Each route row says which error shape its callers expect (`ERROR_SHAPES`:
the Google envelope, or OpenAI's for the OpenAI Batch API door) and how large a body it
takes; a path no route matches answers in the Google envelope.

The caller's key is checked before a byte of the body is read, and every body is counted as
it arrives (`BodyStream`): a body sent in chunks has no Content-Length to refuse it by, so
the limit holds at the byte that passes it. A route that takes large bodies (`streamed=True`)
reads them as a stream (`Request.multipart`), never whole.
"""

import io
import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from shared.core import json_text, keys, logs
from shared.core.config import settings
from shared.core.errors import ApiError, invalid_argument, openai_envelope, unauthenticated

JSON = "application/json; charset=utf-8"
GOOGLE = "google"
OPENAI = "openai"
ERROR_SHAPES = (GOOGLE, OPENAI)
# The media types a JSON body may be sent as (parameters such as charset are ignored).
JSON_MEDIA_TYPES = ("application/json", "text/json", "application/merge-patch+json")


READ_BYTES = 64 * 1024
DRAIN_BYTES = 1024 * 1024  # what is read and dropped of a body the reply did not need
MAX_FIELD_BYTES = 64 * 1024  # a multipart form field that is not a file


class BodyStream:
    """A request body as it arrives, counted against its route's limit: a 413 as soon as it
    passes it, whether or not a Content-Length announced the size."""

    def __init__(self, source: BinaryIO, limit: int):
        self._source = source
        self.limit = limit
        self.seen = 0

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            return b"".join(self.chunks())
        data = _read(self._source, size)
        self.seen += len(data)
        if self.seen > self.limit:
            raise ApiError(413, f"The request body is over its limit of {self.limit} bytes.")
        return data

    def chunks(self, size: int = READ_BYTES) -> Iterator[bytes]:
        while data := self.read(size):
            yield data


def _read(source: BinaryIO, size: int) -> bytes:
    """Up to `size` bytes of a body. What the server's parser raises while it reads (a bad
    chunk size or terminator, a client gone before the end) is the client's: a 400."""
    try:
        return source.read(size)
    except Exception as exc:  # gunicorn's ParseException, werkzeug's ClientDisconnected, OSError
        raise invalid_argument(f"The request body cannot be read: {exc!r}"[:300]) from None


@dataclass
class Request:
    method: str
    path: str
    args: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""  # read after the caller is known (`dispatch`), unless the route streams
    caller: keys.Caller | None = None
    route: str = ""
    errors: str = GOOGLE
    source: BinaryIO = field(default_factory=io.BytesIO)  # the body as the client sends it
    stream: BodyStream | None = None  # the counted body (`dispatch`)

    @property
    def key_holder(self) -> keys.Caller:
        """The caller of a route that needs a key (`dispatch` authenticated it before the
        handler runs); `caller` is None only on a public route asked without one."""
        if self.caller is None:
            raise unauthenticated("This route needs a gateway API key.")
        return self.caller

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
            value = json_text.loads(self.body)
        except json_text.LoneSurrogate as exc:
            raise invalid_argument(f"The request body's {exc}.", field=exc.where) from None
        except json_text.TooDeep:
            raise invalid_argument("The request body is nested too deeply.") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise invalid_argument(f"The request body is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise invalid_argument("The request body must be a JSON object.")
        return value

    def multipart(self, files: dict[str, Callable[[bytes], None]]) -> tuple[dict, dict]:
        """Read a multipart/form-data body as it arrives (werkzeug's sans-IO decoder): each
        chunk of a file part named in `files` goes to its sink, so no file is held whole;
        the other parts are text fields of at most MAX_FIELD_BYTES. Returns (fields, the
        filename of each file part seen). A clear 400 for any other body."""
        from werkzeug.exceptions import RequestEntityTooLarge
        from werkzeug.http import parse_options_header
        from werkzeug.sansio.multipart import (
            Data,
            Epilogue,
            Field,
            File,
            MultipartDecoder,
            NeedData,
        )

        mimetype, options = parse_options_header(self.headers.get("content-type", ""))
        if mimetype != "multipart/form-data" or not options.get("boundary"):
            raise invalid_argument(
                f"Content-Type {mimetype or 'none'!r} is not supported here; send "
                "multipart/form-data with a boundary."
            )
        stream = self.stream or BodyStream(io.BytesIO(self.body), len(self.body))
        # The decoder's buffer holds part headers whole, else at most a read and a boundary.
        buffer = MAX_FIELD_BYTES + READ_BYTES
        decoder = MultipartDecoder(options["boundary"].encode(), buffer, max_parts=16)
        values: dict[str, bytearray] = {}
        filenames: dict[str, str] = {}
        sink: Callable[[bytes], None] = _refuse_data
        try:
            while not isinstance(event := decoder.next_event(), Epilogue):
                if isinstance(event, NeedData):
                    decoder.receive_data(stream.read(READ_BYTES) or None)
                elif isinstance(event, (Field, File)) and (
                    event.name in values or event.name in filenames
                ):
                    raise invalid_argument(f"The form has two parts named {event.name!r}.")
                elif isinstance(event, File) and event.name in files:
                    filenames[event.name], sink = event.filename, files[event.name]
                elif isinstance(event, (Field, File)):
                    sink = _field_sink(event.name, values.setdefault(event.name, bytearray()))
                elif isinstance(event, Data):
                    sink(event.data)
        except RequestEntityTooLarge:
            raise invalid_argument(
                f"The multipart body has more than 16 parts, or part headers over "
                f"{MAX_FIELD_BYTES} bytes."
            ) from None
        except ValueError as exc:  # UnicodeDecodeError too
            raise invalid_argument(f"The multipart body cannot be read: {exc}") from None
        fields = {}
        for name, value in values.items():
            try:
                fields[name] = value.decode("utf-8")
            except UnicodeDecodeError:
                raise invalid_argument(f"The form field {name!r} is not UTF-8.") from None
        return fields, filenames


def _refuse_data(_data: bytes) -> None:
    raise invalid_argument("The multipart body has data outside any part.")


def _field_sink(name: str, value: bytearray) -> Callable[[bytes], None]:
    def add(data: bytes) -> None:
        value.extend(data)
        if len(value) > MAX_FIELD_BYTES:
            raise invalid_argument(f"The form field {name!r} passes {MAX_FIELD_BYTES} bytes.")

    return add


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
    streamed: bool = False  # the handler reads `request.stream`; the body is not read for it
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
    streamed: bool = False,
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
        streamed,
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
        found = candidate.pattern.fullmatch(path)
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
        if candidate.pattern.fullmatch(path):
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


def _caller(matched: Route, headers: dict[str, str]) -> keys.Caller | None:
    if matched.auth != "none":
        caller = keys.authenticate(api_key(headers))
        if matched.auth == "master" and not caller.is_master:
            raise ApiError(403, "This route needs the master key.")
        return caller
    if api_key(headers):
        try:
            return keys.authenticate(api_key(headers))
        except ApiError:
            return None
    return None


def dispatch(request: Request, matched: Route, params: dict[str, str]) -> Reply:
    """The caller first, then the body (counted as it is read), then the handler."""
    request.caller = _caller(matched, request.headers)
    request.route = matched.name
    stream = BodyStream(request.source, matched.body_limit())
    if matched.streamed:
        request.stream = stream
    else:
        request.body = stream.read()
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
        source=flask_request.stream,
    )
    request.errors = _shape_for(routes, request.path)
    try:
        matched, params = _match(routes, request.method, request.path)
        if (flask_request.content_length or 0) > matched.body_limit():
            raise _too_large(flask_request.content_length, matched.body_limit())
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
    content = reply.content()
    if isinstance(content, bytes) and _left_unread(request.source):
        # functions-framework reads a whole body the function left unread before it replies,
        # unless the reply streams: so a refused body is answered as a stream, and the server
        # closes the connection instead of taking the rest in.
        content = iter([content])
    logs.debug(
        "request",
        method=request.method,
        path=request.path,
        status=reply.status,
        latency_ms=round((time.monotonic() - started) * 1000, 2),
    )
    return content, reply.status, headers


def _left_unread(source: BinaryIO) -> bool:
    """Drop what is left of a body the reply did not need, up to DRAIN_BYTES (so that a small
    body keeps the connection usable); True when more is left even so, or it cannot be read."""
    try:
        drained = all(_read(source, READ_BYTES) for _ in range(DRAIN_BYTES // READ_BYTES))
        return drained and bool(_read(source, 1))
    except ApiError:
        return True


def _traceback() -> str:
    import traceback

    return traceback.format_exc()


def framework_error(
    code: int, description: str, path: str, routes: list[Route]
) -> tuple[bytes | Iterator[bytes], int, dict[str, str]]:
    """An error raised by the web framework itself (routing, size limits), in the error
    shape of the routes of `path`."""
    message = {
        404: "No such route. See GET /v1/gateway/openapi.json for the routes.",
        405: "Method not allowed on this path.",
    }.get(code, str(description)[:300])
    reply = error_reply(ApiError(code, message), _shape_for(routes, path))
    return reply.content(), code, {"Content-Type": JSON}
