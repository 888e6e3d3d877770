"""The console's static files through the real `passthrough` HTTP layer: public, typed,
cached, and nothing outside shared/api/ui/ reachable."""

import hashlib
from pathlib import Path

import pytest

from tests.support import passthrough_client

UI = Path(__file__).resolve().parents[2] / "shared" / "api" / "ui"


@pytest.fixture
def client():
    return passthrough_client()


def test_index_needs_no_key_and_revalidates(client):
    reply = client.get("/ui/")
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "text/html; charset=utf-8"
    assert reply.headers["Cache-Control"] == "no-cache"
    assert reply.get_data() == (UI / "index.html").read_bytes()
    policy = reply.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert reply.headers["X-Content-Type-Options"] == "nosniff"


def test_bare_ui_redirects_to_the_directory(client):
    reply = client.get("/ui")
    assert reply.status_code == 301
    assert reply.headers["Location"].endswith("ui/")


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("app.css", "text/css; charset=utf-8"),
        ("vendor/chart.umd.min.js", "text/javascript; charset=utf-8"),
    ],
)
def test_assets_are_typed_cached_and_revalidated_by_etag(client, path, content_type):
    reply = client.get(f"/ui/{path}")
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == content_type
    assert reply.headers["Cache-Control"] == "public, max-age=300"
    body = (UI / path).read_bytes()
    assert reply.get_data() == body
    assert reply.headers["ETag"] == '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    again = client.get(f"/ui/{path}", headers={"If-None-Match": reply.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""


def test_vendored_chart_library_is_the_noted_version():
    notes = (UI / "vendor" / "README.md").read_text()
    digest = hashlib.sha256((UI / "vendor" / "chart.umd.min.js").read_bytes()).hexdigest()
    assert digest in notes
    assert "Chart.js v4.6.1" in (UI / "vendor" / "chart.umd.min.js").read_text()[:200]
    assert "4.6.1" in notes and (UI / "vendor" / "chart.js.LICENSE.md").is_file()


@pytest.mark.parametrize(
    "path",
    [
        "/ui/../api/console.py",
        "/ui/%2e%2e/console.py",
        "/ui/..%2fconsole.py",
        "/ui/vendor/",
        "/ui/.hidden",
        "/ui/nope.html",
        "/ui/index.html/",
        "/ui/app.py",
        "/ui//etc/passwd",
        "/ui/vendor/../../http.py",
    ],
)
def test_nothing_outside_the_ui_folder_is_served(client, path):
    reply = client.get(path)
    assert reply.status_code in (404, 308), path
    assert b"import " not in reply.get_data()
    if reply.status_code == 404:
        assert reply.get_json()["error"]["status"] == "NOT_FOUND"


def test_the_page_loads_nothing_from_another_origin():
    for name in ("index.html", "app.js", "app.css"):
        text = (UI / name).read_text()
        assert "http://" not in text and "https://" not in text, name


def test_memory_stays_flat_whatever_paths_are_asked_for(client):
    """Issue #22 item 7: every path asked for was cached, found or not (about 39 MB per
    10,000 distinct paths on a worker). Only the console's own files are cached now."""
    import gc
    import tracemalloc

    from shared.api import console

    def ask(first: int, count: int) -> None:
        for n in range(first, first + count):
            assert client.get(f"/ui/{n:05d}-{'x' * 200}.js").status_code == 404

    assert client.get("/ui/app.js").status_code == 200
    tracemalloc.start()
    ask(0, 150)  # fills the URL parsers' own bounded caches (urllib's urlsplit keeps 128)
    gc.collect()
    before = tracemalloc.get_traced_memory()[0]
    ask(150, 600)
    gc.collect()
    grew = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    print({"console_paths": 600, "path_bytes": 210, "memory_growth": grew})
    assert grew < 48 * 1024  # 600 cached paths of 210 bytes: 170 KB and more
    assert console._read.cache_info().currsize <= len(console._servable())


def test_a_name_too_long_for_the_file_system_is_404():
    """A neighbour of item 7: the path was resolved on disk first, and a name past the file
    system's 255 bytes raised (a 500); unknown names no longer reach the disk."""
    reply = passthrough_client().get(f"/ui/{'x' * 5000}.js")
    assert reply.status_code == 404 and reply.get_json()["error"]["status"] == "NOT_FOUND"
