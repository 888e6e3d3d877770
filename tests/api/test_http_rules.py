"""The dispatcher's own rules, on a one-route table: the body limit (also for a body sent
without a Content-Length) and who the handler is told the caller is."""

import io

import pytest

from shared.api import http
from shared.api.http import Reply, Request, dispatch, route
from shared.core.errors import ApiError


def public_route(seen: list, limit: int = 10):
    def handler(request):
        seen.append(request)
        return Reply(200, {"ok": True})

    return route("POST", "x", handler, auth="none", name="test.x", max_body=lambda: limit)


def request(body: bytes, headers: dict | None = None) -> Request:
    return Request(
        method="POST", path="/x", args={}, headers=headers or {}, source=io.BytesIO(body)
    )


def test_a_body_at_the_limit_passes_and_one_byte_more_is_413():
    seen = []
    assert dispatch(request(b"x" * 10), public_route(seen), {}).status == 200
    with pytest.raises(ApiError) as raised:
        dispatch(request(b"x" * 11), public_route(seen), {})
    assert raised.value.code == 413
    assert raised.value.message == "The request body is over its limit of 10 bytes."
    assert len(seen) == 1


def test_a_public_route_without_a_key_has_no_caller():
    seen = []
    dispatch(request(b"{}"), public_route(seen), {})
    assert seen[0].caller is None and seen[0].route == "test.x"


def test_a_public_route_with_a_bad_key_still_answers_without_a_caller(gcp):
    seen = []
    dispatch(request(b"{}", {"x-goog-api-key": "not-a-key"}), public_route(seen), {})
    assert seen[0].caller is None


def test_a_master_route_refuses_a_key_naming_why(monkeypatch):
    from shared.core import keys

    monkeypatch.setattr(keys, "authenticate", lambda presented: keys.Caller("k" * 16, "alice"))
    master_only = route("GET", "m", lambda request: Reply(), auth="master", name="test.m")
    with pytest.raises(ApiError) as raised:
        dispatch(request(b"", {"x-goog-api-key": "k"}), master_only, {})
    assert (raised.value.code, raised.value.message) == (403, "This route needs the master key.")


def test_a_path_served_for_other_methods_is_405_naming_them():
    table = [
        route("GET", "x", lambda request: Reply(), name="x.get"),
        route("DELETE", "x", lambda request: Reply(), name="x.delete"),
    ]
    with pytest.raises(ApiError) as raised:
        http._match(table, "PUT", "/x")
    assert raised.value.code == 405
    assert raised.value.message == "Method PUT is not allowed on /x; use DELETE, GET."
