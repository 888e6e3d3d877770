"""Bodies as they arrive (issue #22 items 9 and 10), on `passthrough` served by
functions-framework as in production (`tests/api/served.py`), its worker's memory measured.

- The key is checked before the body is read: an anonymous POST is answered while its body is
  still being sent, whatever its size, chunked or not.
- Every body is counted as it streams: a chunked body (no Content-Length) past its route's
  limit is a 413 once it passes it, not after it has been read whole.
- `/v1/files` streams the upload to GCS and `/v1/batches` translates the file line by line into
  GCS: the worker's peak memory under concurrent 30 MB uploads is measured (VmHWM).
"""

import http.client
import json
import select
import socket
import threading
import time
import uuid
from urllib.parse import urlsplit

import pytest
import requests

from local.vertex_sim import SimulatorThread
from shared.core import clients
from tests.api.served import serve_passthrough
from tests.support import DEFAULT_MODEL_LIST, MASTER_KEY

MiB = 1024 * 1024
BODY_LIMIT = 1 * MiB  # VBG_MAX_BODY_BYTES of the served gateway


@pytest.fixture(scope="module")
def served(gcp_module, tmp_path_factory):
    staging = f"staging-{uuid.uuid4().hex[:12]}"
    clients.storage().create_bucket(staging)
    for topic in ("batch-job-events", "batch-job-alerts"):
        clients.publisher().create_topic(name=clients.topic_path(topic))
    with SimulatorThread(speed=60) as sim:
        gateway = serve_passthrough(
            gcp_module,
            tmp_path_factory.mktemp("served"),
            DEFAULT_MODEL_LIST,
            staging,
            extra_env={"VBG_MAX_BODY_BYTES": str(BODY_LIMIT), "VBG_VERTEX_ENDPOINT": sim.url},
        )
        yield gateway
        gateway.server.stop()


@pytest.fixture(scope="module")
def key(served):
    reply = requests.post(
        served.url + "/v1/gateway/keys",
        json={"alias": "uploader"},
        headers={"Authorization": f"Bearer {MASTER_KEY}"},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()["key"]


def chunked_post(
    url: str, path: str, headers: dict, chunks, length: int | None = None
) -> tuple[int, dict, int]:
    """POST `chunks` as a chunked body (or, given its `length`, as a plain one), stopping as
    soon as the server answers: (status, JSON body, bytes sent by then)."""
    where = urlsplit(url)
    sock = socket.create_connection((where.hostname, where.port), timeout=60)
    framing = "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}"
    head = [f"POST {path} HTTP/1.1", f"Host: {where.netloc}", framing]
    head += [f"{name}: {value}" for name, value in headers.items()]
    sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
    sent = 0
    try:
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break
            sock.sendall(chunk if length else b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        else:
            if length is None:
                sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = json.loads(response.read())
    sock.close()
    return response.status, body, sent


def filler(total: int, size: int = 256 * 1024):
    chunk = b"x" * size
    for _ in range(total // size):
        yield chunk


@pytest.mark.parametrize("length", [None, 150 * MiB], ids=["chunked", "content-length"])
def test_an_anonymous_body_is_refused_before_it_is_read(served, length):
    served.reset_peak()
    before = served.rss()
    size = length or 256 * MiB
    status, body, sent = chunked_post(served.url, "/v1/files", {}, filler(size), length)
    grew = served.peak() - before
    figures = {"framing": length and "content-length", "sent": sent, "peak_growth": grew}
    print(json.dumps({"anonymous": {"status": status, **figures}}))
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    assert sent < 64 * MiB, f"the answer came after {sent} bytes"
    assert grew < 16 * MiB


def test_a_chunked_body_past_its_limit_is_refused_as_it_passes_it(served, key):
    served.reset_peak()
    before = served.rss()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    status, body, sent = chunked_post(served.url, "/v1/batches", headers, filler(64 * MiB))
    grew = served.peak() - before
    print(json.dumps({"keyed_chunked": {"status": status, "sent": sent, "peak_growth": grew}}))
    assert status == 413
    assert body["error"]["message"] == f"The request body is over its limit of {BODY_LIMIT} bytes."
    assert sent < 32 * MiB and grew < 16 * MiB


def test_a_chunked_body_within_its_limit_is_read(served, key):
    headers = {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}
    body = json.dumps({"alias": "chunky", "team": "t" * 40}).encode()
    status, created, _ = chunked_post(served.url, "/v1/gateway/keys", headers, [body[:7], body[7:]])
    assert status == 200 and (created["alias"], created["team"]) == ("chunky", "t" * 40)


UPLOAD_LINES = 31_000  # of 1,000 bytes: a 31 MB file (OpenAI's limit: 50,000 requests, 200 MB)


def request_line(n: int) -> bytes:
    line = {
        "custom_id": f"r{n:06d}",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gemini-3.5-flash-lite", "messages": [{"role": "user", "content": ""}]},
    }
    text = json.dumps(line)
    return (
        text.replace('"content": ""', '"content": "' + "q" * (999 - len(text)) + '"') + "\n"
    ).encode()


class Upload:
    """A multipart/form-data body made as it is sent (the test holds no file either); with a
    length (Content-Length) or without (chunked)."""

    BOUNDARY = "vbg-upload-boundary"

    def __init__(self, lines: int):
        self.lines = lines
        self.head = (
            f'--{self.BOUNDARY}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\n'
            f'batch\r\n--{self.BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            'filename="big.jsonl"\r\nContent-Type: application/jsonl\r\n\r\n'
        ).encode()
        self.tail = f"\r\n--{self.BOUNDARY}--\r\n".encode()

    @property
    def file_bytes(self) -> int:
        return sum(len(request_line(n)) for n in range(self.lines))

    def __len__(self) -> int:
        return len(self.head) + self.file_bytes + len(self.tail)

    def __iter__(self):
        yield self.head
        batch = []
        for n in range(self.lines):
            batch.append(request_line(n))
            if len(batch) == 256:
                yield b"".join(batch)
                batch = []
        yield b"".join(batch)
        yield self.tail


def upload(served, key, chunked: bool) -> requests.Response:
    body = Upload(UPLOAD_LINES)
    return requests.post(
        served.url + "/v1/files",
        data=iter(body) if chunked else body,
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": f"multipart/form-data; boundary={Upload.BOUNDARY}",
        },
        timeout=300,
    )


def test_concurrent_uploads_stream_to_gcs_in_bounded_memory(served, key):
    """8 uploads of 31 MB at once, half chunked: the worker's peak grows by a small part of
    what it received (it held 3-4x each upload before: +850 MB here)."""
    served.reset_peak()
    before = served.rss()
    replies: list = [None] * 8

    def send(n: int) -> None:
        replies[n] = upload(served, key, chunked=n % 2 == 1)

    started = time.monotonic()
    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    grew = served.peak() - before
    size = Upload(UPLOAD_LINES).file_bytes
    seconds = round(time.monotonic() - started, 1)
    print(
        json.dumps({"uploads": {"count": 8, "file_bytes": size, "peak_growth": grew, "s": seconds}})
    )
    for reply in replies:
        assert reply.status_code == 200, reply.text
        assert (reply.json()["bytes"], reply.json()["purpose"]) == (size, "batch")
    file_id = replies[1].json()["id"]
    stored = requests.get(
        f"{served.url}/v1/files/{file_id}/content",
        headers={"Authorization": f"Bearer {key}"},
        timeout=120,
    ).content
    assert stored == b"".join(request_line(n) for n in range(UPLOAD_LINES))
    # Each upload holds a resumable-upload piece (2 MiB) and its copies, not its file.
    assert grew < 8 * 16 * MiB


def test_a_batch_is_translated_line_by_line_in_bounded_memory(served, key):
    """The create of a batch over a 31 MB file: read, translated and written line by line
    (the worker's peak grew by 90-157 MB before)."""
    file_id = upload(served, key, chunked=False).json()["id"]
    served.reset_peak()
    before = served.rss()
    started = time.monotonic()
    reply = requests.post(
        served.url + "/v1/batches",
        json={
            "input_file_id": file_id,
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
        },
        headers={"Authorization": f"Bearer {key}"},
        timeout=300,
    )
    grew = served.peak() - before
    size = Upload(UPLOAD_LINES).file_bytes
    seconds = round(time.monotonic() - started, 1)
    print(json.dumps({"batch_create": {"file_bytes": size, "peak_growth": grew, "s": seconds}}))
    assert reply.status_code == 200, reply.text
    assert reply.json()["request_counts"]["total"] == UPLOAD_LINES
    # Most of what is left is the create path's (sealing, the estimate's reads), not the file.
    assert grew < 2 * size


@pytest.mark.parametrize(
    "framing",
    [b"zz\r\nabc\r\n0\r\n\r\n", b"3\r\nabcXY0\r\n\r\n", b"3;\x01\r\nabc\r\n0\r\n\r\n"],
    ids=["chunk size", "chunk terminator", "chunk extension"],
)
def test_a_body_the_server_cannot_unframe_is_a_400(served, framing):
    """A neighbour of item 9: the server's parser raises while the body is read (a bad chunk
    size, terminator or extension), and that escaped as a 500."""
    where = urlsplit(served.url)
    with socket.create_connection((where.hostname, where.port), timeout=30) as sock:
        head = (
            f"POST /v1/gateway/keys HTTP/1.1\r\nHost: {where.netloc}\r\n"
            f"Authorization: Bearer {MASTER_KEY}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        sock.sendall(head.encode() + framing)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = json.loads(response.read())
    assert response.status == 400, body
    assert body["error"]["message"].startswith("The request body cannot be read")
