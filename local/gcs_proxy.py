"""A front for the GCS emulator that behaves like real GCS where reads are concerned.

gcp-storage-emulator answers every request at once, from memory, and ignores `generation`
on downloads. This proxy adds what the ranged-read bench and tests need:
- `latency` seconds before each answer (GCS's time to first byte, ~30 ms);
- `stream_bytes_per_second` per response (one GCS stream runs at ~100 MB/s);
- generation-pinned media reads: a download naming `generation=G` gets the bytes of G if
  the proxy has seen G (it keeps the last `keep_versions` generations it served, like a
  versioned bucket), `404` if G is neither kept nor live; a download without
  `generation` gets the live bytes;
- rewrites (server-side copies) as GCS answers them: `404` when `sourceGeneration` is not
  the live generation, `412` when `ifGenerationMatch=0` and the target exists, and in
  `rewrite_calls` calls (GCS splits a large copy: each call but the last answers
  `done: false` with a `rewriteToken`, and a continuation must repeat the first call's
  parameters, else `400`);
- `403` for any request naming a bucket in `forbidden_buckets` (a service account that
  lacks a role on it);
- optionally, the time bytes take to move: `upload_bytes_per_second` per upload request
  (a function writing an object), and `rewrite_bytes_per_second` for a rewrite whose bytes
  move (GCS copies across locations or storage classes; within one it copies metadata and
  answers at once: leave it None), in calls of at most `rewrite_bytes_per_call` bytes, each
  but the last answering `done: false` with a token. These rates are a model, not GCS's
  figures (GCS documents that a rewrite may take several calls, not how fast bytes move).
Everything else (metadata, uploads, listing) is passed through unchanged.

    with GcsProxy(emulator_url, latency=0.03, stream_bytes_per_second=100e6) as proxy:
        os.environ["STORAGE_EMULATOR_HOST"] = proxy.url
"""

import json
import re
import threading
import time
import uuid
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

import requests

_MEDIA = re.compile(r"/download/storage/v1/b/([^/]+)/o/(.+)")
_REWRITE = re.compile(r"/storage/v1/b/([^/]+)/o/(.+)/rewriteTo/b/([^/]+)/o/(.+)")
_BUCKET = re.compile(r"/b/([^/?]+)")
_RANGE = re.compile(r"\s*bytes=(\d+)-(\d*)\s*")
_SLICE = 256 * 1024
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}


class GcsProxy:
    def __init__(
        self,
        upstream: str,
        *,
        latency: float = 0.0,
        stream_bytes_per_second: float | None = None,
        keep_versions: int = 4,
        rewrite_calls: int = 1,
        forbidden_buckets: tuple[str, ...] = (),
        upload_bytes_per_second: float | None = None,
        rewrite_bytes_per_second: float | None = None,
        rewrite_bytes_per_call: int = 256 * 1024 * 1024,
    ):
        self.upstream = upstream.rstrip("/")
        self.latency = latency
        self.rate = stream_bytes_per_second
        self.keep_versions = keep_versions
        self.rewrite_calls = rewrite_calls
        self.forbidden_buckets = set(forbidden_buckets)
        self.upload_rate = upload_bytes_per_second
        self.rewrite_rate = rewrite_bytes_per_second
        self.rewrite_per_call = rewrite_bytes_per_call
        self.requests = 0
        self.rewrites = 0  # rewrite calls answered (continuations included)
        # rewriteToken -> (the first call's parameters, object size, calls left)
        self._pending_rewrites: dict[str, tuple[dict, str, int]] = {}
        self._versions: OrderedDict[tuple[str, str, str], bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "GcsProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
        return self._local.session

    def _metadata(self, bucket: str, name: str) -> dict | None:
        response = self._session().get(
            f"{self.upstream}/storage/v1/b/{bucket}/o/{quote(name, safe='')}", timeout=30
        )
        return response.json() if response.ok else None

    def _live_generation(self, bucket: str, name: str) -> str | None:
        found = self._metadata(bucket, name)
        return str(found.get("generation")) if found else None

    def _bytes_of(self, bucket: str, name: str, generation: str | None) -> tuple[str, bytes] | None:
        """(generation, bytes) of that generation (None: the live one), or None when gone."""
        live = self._live_generation(bucket, name)
        wanted = generation or live
        key = (bucket, name, str(wanted))
        with self._lock:
            if key in self._versions:
                self._versions.move_to_end(key)
                return str(wanted), self._versions[key]
        if wanted is None or wanted != live:
            return None
        response = self._session().get(
            f"{self.upstream}/download/storage/v1/b/{bucket}/o/{quote(name, safe='')}",
            params={"alt": "media"},
            timeout=300,
        )
        if not response.ok:
            return None
        with self._lock:
            self._versions[key] = response.content
            while len(self._versions) > self.keep_versions:
                self._versions.popitem(last=False)
        return str(wanted), response.content

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_Handler,), {"proxy": self})


class _Handler(BaseHTTPRequestHandler):
    """One request to the proxy; `proxy` is set on the subclass each proxy serves with."""

    proxy: GcsProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, headers: dict, body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        view = memoryview(body)
        started = time.perf_counter()
        for offset in range(0, len(body), _SLICE):
            self.wfile.write(view[offset : offset + _SLICE])
            if self.proxy.rate:
                ahead = (offset + _SLICE) / self.proxy.rate - (time.perf_counter() - started)
                if ahead > 0:
                    time.sleep(ahead)

    def _media(self, bucket: str, name: str, query: dict) -> None:
        generation = (query.get("generation") or [None])[0]
        found = self.proxy._bytes_of(bucket, name, generation)
        if found is None:
            self._send(404, {"Content-Type": "application/json"}, b'{"error":{}}')
            return
        served, data = found
        plain = {"Content-Type": "application/octet-stream", "x-goog-generation": served}
        match = _RANGE.fullmatch(self.headers.get("Range") or "")
        if not match:
            self._send(200, plain, data)
            return
        start = int(match[1])
        end = min(len(data) - 1, int(match[2])) if match[2] else len(data) - 1
        headers = {**plain, "Content-Range": f"bytes {start}-{end}/{len(data)}"}
        self._send(206, headers, data[start : end + 1])

    def _error(self, status: int, message: str) -> None:
        body = json.dumps({"error": {"code": status, "message": message}}).encode()
        self._send(status, {"Content-Type": "application/json"}, body)

    def _rewrite(self, match: re.Match, query: dict) -> None:
        body = self._body()
        source, target = (match[1], unquote(match[2])), (match[3], unquote(match[4]))
        params = {k: v for k, v in query.items() if k != "rewriteToken"}
        token = (query.get("rewriteToken") or [None])[0]
        with self.proxy._lock:
            self.proxy.rewrites += 1
            pending = self.proxy._pending_rewrites.pop(token, None) if token else None
        if token is not None:
            if pending is None or pending[0] != params:
                self._error(400, "rewriteToken unknown or parameters changed")
                return
            _, size, left = pending
            left -= 1
            self._move(int(size), left)
        else:
            live = self.proxy._metadata(*source) or {}
            wanted = (params.get("sourceGeneration") or [live.get("generation")])[0]
            if not live or str(wanted) != str(live["generation"]):
                self._error(404, f"No such object: {source[0]}/{source[1]}#{wanted}")
                return
            exists = self.proxy._live_generation(*target) is not None
            if params.get("ifGenerationMatch") == ["0"] and exists:
                self._error(412, "At least one of the pre-conditions did not hold.")
                return
            size = str(live.get("size", "0"))
            calls = self.proxy.rewrite_calls
            if self.proxy.rewrite_rate:
                calls = max(calls, -(-int(size) // self.proxy.rewrite_per_call))
            left = calls - 1
            self._move(int(size), left)
        if left > 0:
            token = uuid.uuid4().hex
            with self.proxy._lock:
                self.proxy._pending_rewrites[token] = (params, size, left)
            answer = {"kind": "storage#rewriteResponse", "done": False, "objectSize": size}
            answer |= {"rewriteToken": token, "totalBytesRewritten": "0"}
            headers = {"Content-Type": "application/json"}
            self._send(200, headers, json.dumps(answer).encode())
            return
        self.path = urlsplit(self.path).path + "?" + urlencode(params, doseq=True)
        self._forward(body=body)

    def _move(self, size: int, left: int) -> None:
        """The time one rewrite call takes to move its share of the bytes."""
        if self.proxy.rewrite_rate and size:
            per_call = self.proxy.rewrite_per_call
            share = per_call if left > 0 else (size % per_call or per_call)
            time.sleep(min(share, size) / self.proxy.rewrite_rate)

    def _forward(self, body: bytes | None = None) -> None:
        body = self._body() if body is None else body
        if self.proxy.upload_rate and body and self.path.startswith("/upload/"):
            time.sleep(len(body) / self.proxy.upload_rate)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP | {"host"}}
        response = self.proxy._session().request(
            self.command,
            self.proxy.upstream + self.path,
            data=body or None,
            headers=headers,
            timeout=300,
            allow_redirects=False,
        )
        self._send(response.status_code, dict(response.headers), response.content)

    def _any(self) -> None:
        with self.proxy._lock:
            self.proxy.requests += 1
        if self.proxy.latency:
            time.sleep(self.proxy.latency)
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        media = _MEDIA.fullmatch(parts.path)
        rewrite = _REWRITE.fullmatch(parts.path)
        if self.proxy.forbidden_buckets & set(_BUCKET.findall(parts.path)):
            self._body()
            self._error(403, "The caller does not have storage.objects access.")
        elif self.command == "GET" and media and query.get("alt") == ["media"]:
            self._media(media[1], unquote(media[2]), query)
        elif self.command == "POST" and rewrite:
            self._rewrite(rewrite, query)
        else:
            self._forward()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any
