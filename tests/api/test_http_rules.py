"""The dispatcher's own rules, on a one-route table: the body limit (also for a body sent
without a Content-Length) and who the handler is told the caller is."""

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.api import http
from shared.api.http import Reply, Request, dispatch, route
from shared.core import json_text, keys
from shared.core.errors import ApiError
from tests.strategies import client_text


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


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | client_text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(client_text(max_size=8), children, max_size=4)
    ),
    max_leaves=15,
)
BODIES = st.one_of(
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    JSON_VALUES.map(
        lambda value: json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    ),
    st.integers(1, 5000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
    st.binary(max_size=64),
)


@settings(max_examples=300, deadline=None)
@given(body=BODIES, cut=st.integers(16, 4096))
def test_a_json_body_is_a_text_only_object_or_a_400(body, cut):
    """Issue #22 item 14, as a property: whatever the bytes (lone surrogates escaped or raw,
    deep nesting), sent whole or in pieces, the body is an object whose strings are all text,
    or a 400 in the envelope; never another exception."""
    request = Request(method="POST", path="/x", args={}, headers={})
    request.body = http.BodyStream(Chunks(body, cut), limit=1 << 20).read()
    assert request.body == body
    try:
        value = request.json_body()
    except ApiError as error:
        assert error.code == 400
        return
    assert isinstance(value, dict) and json_text.lone_surrogate(value) is None


class Chunks(io.RawIOBase):
    """A body that arrives `cut` bytes at a time (as a chunked one may)."""

    def __init__(self, data: bytes, cut: int):
        self.data, self.cut = data, max(cut, 1)

    def read(self, size: int = -1) -> bytes:
        piece, self.data = self.data[: min(size, self.cut)], self.data[min(size, self.cut) :]
        return piece


def test_a_body_the_server_cannot_read_is_a_400_and_is_not_read_on():
    class Broken(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise OSError("chunk size 'zz' is not hex")

    seen = []
    broken = Request(method="POST", path="/x", args={}, headers={}, source=Broken())
    with pytest.raises(ApiError) as raised:
        dispatch(broken, public_route(seen), {})
    assert raised.value.code == 400 and seen == []
    assert raised.value.message == (
        "The request body cannot be read: OSError(\"chunk size 'zz' is not hex\")"
    )
    assert http._left_unread(Broken()) is True
    assert http._left_unread(io.BytesIO(b"x" * http.DRAIN_BYTES)) is False
    assert http._left_unread(io.BytesIO(b"x" * (http.DRAIN_BYTES + 1))) is True


def test_the_key_holder_of_a_request_without_a_key_is_a_401():
    """Handlers of keyed routes read `request.key_holder`; dispatch authenticates first, so
    only a public route's handler could ask it of an anonymous request."""
    anonymous = Request(method="GET", path="/x", args={}, headers={})
    with pytest.raises(ApiError) as refused:
        _ = anonymous.key_holder
    assert (refused.value.code, refused.value.status) == (401, "UNAUTHENTICATED")
    keyed = Request(method="GET", path="/x", args={}, headers={}, caller=keys.master_caller())
    assert keyed.key_holder is keyed.caller
