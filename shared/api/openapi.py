"""`GET /v1/gateway/openapi.json`: an OpenAPI 3.1 document of every route, from the table.

Written from `shared/api/routes.py` alone (each row's path regex, auth, and its `body`,
`reply` and `query` schemas), so the document cannot drift from what is served: a route
without a reply schema is refused by `build()` (and by a test). Path regexes become path
templates: each named group is a path parameter with the group's regex as its `pattern`
(an alternation of plain words, such as `v1|v1beta1`, an enum).
"""

import json
import re

from shared.api import schemas

BODY_METHODS = ("POST", "PUT", "PATCH")
_GROUP_START = re.compile(r"\(\?P<(\w+)>")
_LITERAL = re.compile(r"(?:[\w\-/:~]|\\[.:/-])*")
_WORDS = re.compile(r"\w+(\|\w+)+")


class RouteUndocumented(ValueError):
    """A route lacks what the OpenAPI document needs."""


def path_template(regex: str) -> tuple[str, dict[str, str]]:
    """`v1/x/(?P<id>[^/]+)` -> (`/v1/x/{id}`, {"id": "[^/]+"})."""
    text = regex.removeprefix("^").removesuffix("$")
    out, params, pos = [], {}, 0
    while True:
        match = _GROUP_START.search(text, pos)
        literal = text[pos : match.start() if match else len(text)]
        if not _LITERAL.fullmatch(literal):
            raise RouteUndocumented(f"path regex {regex!r}: {literal!r} is not plain text")
        out.append(literal.replace("\\", ""))
        if not match:
            break
        depth, end = 1, match.end()
        while depth:
            if end >= len(text):
                raise RouteUndocumented(f"path regex {regex!r}: unbalanced group")
            char = text[end]
            if char == "\\":
                end += 2
                continue
            depth += {"(": 1, ")": -1}.get(char, 0)
            end += 1
        params[match[1]] = text[match.end() : end - 1]
        out.append("{" + match[1] + "}")
        pos = end
    template = "".join(out)
    return (template if template.startswith("/") else "/" + template), params


def _param_schema(pattern: str) -> dict:
    if _WORDS.fullmatch(pattern):
        return {"type": "string", "enum": pattern.split("|")}
    return {"type": "string", "pattern": f"^{pattern}$"}


def _operation(route) -> tuple[str, dict]:
    if route.reply is None:
        raise RouteUndocumented(f"route {route.name} has no reply schema")
    if route.method in BODY_METHODS and route.body is None:
        raise RouteUndocumented(f"route {route.name} ({route.method}) has no body schema")
    template, params = path_template(route.pattern.pattern.removeprefix("^/"))
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": _param_schema(pattern)}
        for name, pattern in params.items()
    ]
    parameters += [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in route.query.items()
    ]
    error = {"$ref": "#/components/schemas/GoogleError"}
    if route.errors == "openai":
        error = {"$ref": "#/components/schemas/OpenAIError"}
    operation = {
        "operationId": route.name,
        "summary": route.summary or route.name,
        "parameters": parameters,
        "responses": {
            "200": {
                "description": "success",
                "content": {route.media_type: {"schema": route.reply}},
            },
            "default": {
                "description": "an error",
                "content": {"application/json": {"schema": error}},
            },
        },
        "x-vbg-errors": route.errors,
        "x-vbg-auth": route.auth,
    }
    if route.body is not None and route.method in BODY_METHODS:
        operation["requestBody"] = {
            "required": route.method != "POST" or bool(route.body.get("required")),
            "content": {route.body_media_type: {"schema": route.body}},
        }
    if route.auth == "none":
        operation["security"] = []
    return template, operation


def build(routes) -> dict:
    paths: dict[str, dict] = {}
    for route in routes:
        template, operation = _operation(route)
        method = route.method.lower()
        if method in paths.setdefault(template, {}):
            raise RouteUndocumented(f"two routes for {route.method} {template}")
        paths[template][method] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Vertex Batch Gateway",
            "version": "1",
            "description": "Vertex AI batchPredictionJobs with gateway API keys, plus the "
            "gateway's own routes. Errors are the Google envelope unless a route says "
            "otherwise (x-vbg-errors).",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.COMPONENTS,
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-goog-api-key"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{"apiKey": []}, {"bearer": []}],
    }


_built: dict[int, bytes] = {}


def document_bytes(routes: list) -> bytes:
    """The document of a route table, built once per process."""
    key = id(routes)
    if key not in _built:
        _built[key] = json.dumps(build(routes), separators=(",", ":")).encode()
    return _built[key]
