"""The web console: static files from `shared/api/ui/`, served at `/ui/` by `passthrough`.

The page is public (it holds no data); everything it shows comes from the JSON routes, called
with the key the user typed, kept in sessionStorage and sent as `x-goog-api-key`. Only files
of the known types directly named under ui/ are served (no `..`, no hidden files, no
directory listing). `index.html` is revalidated on every load; other files are cached for
five minutes and revalidated by ETag. A strict Content-Security-Policy allows only this
origin: no CDN, no inline script, no external fonts.
"""

import functools
import hashlib
import re
from pathlib import Path

from shared.api.http import Reply, Request
from shared.core.errors import not_found

UI = Path(__file__).resolve().parent / "ui"
PATH = r"ui/(?P<file>.*)"
SAFE_PATH = re.compile(r"(?:[A-Za-z0-9_-][A-Za-z0-9_.-]*/)*[A-Za-z0-9_-][A-Za-z0-9_.-]*")
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".md": "text/plain; charset=utf-8",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@functools.cache
def _servable() -> frozenset[str]:
    """The files a request may name, listed once per process: the known types, plain names,
    inside ui/. Only these are ever read and cached, so the cache is bounded by the console's
    own files, whatever paths are asked for (any path was cached before, found or not)."""
    found = set()
    for path in UI.rglob("*"):
        relative = path.relative_to(UI).as_posix()
        if (
            path.suffix in CONTENT_TYPES
            and SAFE_PATH.fullmatch(relative)
            and UI in path.resolve().parents
            and path.is_file()
        ):
            found.add(relative)
    return frozenset(found)


@functools.cache
def _read(relative: str) -> tuple[bytes, str]:
    """(content, etag) of one servable file, read once per process."""
    content = (UI / relative).read_bytes()
    return content, '"' + hashlib.sha256(content).hexdigest()[:32] + '"'


def _load(relative: str) -> tuple[bytes, str] | None:
    return _read(relative) if relative in _servable() else None


def redirect(request: Request) -> Reply:  # noqa: ARG001 (a handler takes its route's parameters)
    return Reply(301, b"", {"Location": "ui/", "Content-Type": "text/plain; charset=utf-8"})


def static(request: Request, file: str) -> Reply:
    relative = file or "index.html"
    loaded = _load(relative)
    if loaded is None:
        raise not_found(f"The console has no file {file!r}.")
    content, etag = loaded
    headers = {
        **SECURITY_HEADERS,
        "Content-Type": CONTENT_TYPES[Path(relative).suffix],
        "ETag": etag,
        "Cache-Control": "no-cache" if relative.endswith(".html") else "public, max-age=300",
    }
    if request.headers.get("if-none-match") == etag:
        return Reply(304, b"", headers)
    return Reply(200, content, headers)
