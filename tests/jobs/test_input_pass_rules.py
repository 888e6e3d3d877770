"""The one pass's pure parts: line splitting with a bound, and which URIs a request names."""

import tracemalloc

import pytest

from shared.core.keys import Caller, master_caller
from shared.jobs import input_pass
from shared.jobs.input_pass import UriRule, bounded_lines, object_uri


def test_lines_split_across_chunks_and_an_over_long_line_is_never_held():
    chunks = [b'{"a"', b":1}\n\n", b"x" * 50, b"x" * 50 + b"\n{}", b""]
    assert list(bounded_lines(chunks, 64)) == [(b'{"a":1}', 7), (b"", 0), (None, 100), (b"{}", 2)]

    def huge():  # one 64 MiB line in 1 MiB chunks, then a short one
        for _ in range(64):
            yield b"y" * (1 << 20)
        yield b"\nok\n"

    tracemalloc.start()
    found = list(bounded_lines(huge(), 1 << 20))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert found == [(None, 64 << 20), (b"ok", 2)]
    assert peak < 8 << 20  # a few chunks, never the line


@pytest.mark.parametrize(
    ("value", "uri"),
    [
        ("gs://b/o", "gs://b/o"),
        (" GS://b/o", "gs://b/o"),
        ("https://storage.googleapis.com/b/o/p", "gs://b/o/p"),
        ("http://storage.cloud.google.com/b/o", "gs://b/o"),
        ("https://b.storage.googleapis.com/o", "gs://b/o"),
        ("https://example.com/b/o", None),
        ("data:image/png;base64,AAAA", None),
    ],
)
def test_object_uri_forms(value, uri):
    assert object_uri(value) == uri


def test_the_rule():
    key = Caller(key_id="k", alias="k", input_prefixes=("gs://b/in/",))
    rule = UriRule(key, "stage")
    assert rule.reason("gs://b/in/x.png") is None
    assert rule.reason("https://example.com/x.png") is None
    assert rule.reason("gs://b/input/x.png").startswith("outside this key's input prefixes")
    assert rule.reason("gs://b/in/../out/x").startswith("not a plain GCS object URI")
    assert rule.reason("gs://stage/x").startswith("the gateway's staging bucket")
    assert UriRule(master_caller(), "stage").reason("gs://anything/x") is None
    assert UriRule(master_caller(), "stage").reason("gs://stage/x")
    row = {"a": [{"fileUri": "gs://b/in/ok"}, {"imageUrl": "gs://c/no"}], "text": "gs://c/no"}
    [refusal] = rule.refusals(row, "f", 7)
    assert (refusal.field, refusal.line, refusal.uri) == ("a[1].imageUrl", 7, "gs://c/no")
    assert input_pass.MAX_REQUEST_BYTES == 20 * 1024 * 1024


def test_line_bounds_hold_at_the_limit_and_for_a_last_line_without_newline():
    assert list(bounded_lines([b"abcd\nabcde\n"], 4)) == [(b"abcd", 4), (None, 5)]
    assert list(bounded_lines([b"ab", b"cde"], 4)) == [(None, 5)]  # the last line, unended
    assert list(bounded_lines([b"ab", b"cd"], 4)) == [(b"abcd", 4)]
    assert list(bounded_lines([b"x\n", b""], 4)) == [(b"x", 1)]
    assert list(bounded_lines([], 4)) == []


@pytest.mark.parametrize(
    ("name", "checked"),
    [
        ("fileUri", True),
        ("gcsUri", True),
        ("image_url", True),
        ("URIS", True),
        ("urls", True),
        ("uri", True),
        ("text", False),
        ("uriPrefix", False),
        ("curious", False),
    ],
)
def test_which_fields_name_objects(name, checked):
    rule = UriRule(Caller(key_id="k", alias="k", input_prefixes=("gs://b/in/",)), "")
    found = rule.refusals({"x": {name: ["gs://c/no"]}}, "f", 1)
    assert bool(found) is checked
    if checked:
        assert found[0].field == f"x.{name}[0]"
        assert str(found[0]) == (
            f"f line 1: `x.{name}[0]` names gs://c/no: outside this key's input prefixes "
            "(allowed: gs://b/in/)"
        )


def test_a_key_without_prefixes_and_long_values():
    rule = UriRule(Caller(key_id="k", alias="k"), "")
    assert rule.reason("gs://b/x") == (
        "outside this key's input prefixes (allowed: none (ask an admin to add some))"
    )
    [refusal] = rule.refusals({"fileUri": "gs://b/" + "y" * 500}, "f", 2)
    assert len(refusal.uri) == 200
    assert rule.refusals({"fileUri": 7, "n": None}, "f", 2) == []
    assert rule.refusals({"uris": [["gs://b/x"]]}, "f", 3)[0].field == "uris[0][0]"
    assert object_uri("https://storage.googleapis.comevil/b/o") is None
    assert object_uri("https://other.example/storage.googleapis.com/b/o") is None


def test_idempotency_keys():
    from shared.core.errors import ApiError
    from shared.jobs import idempotency

    assert idempotency.check_key(None, "f") is None
    assert idempotency.check_key("a" * 255, "f") == "a" * 255
    assert idempotency.check_key("!~", "f") == "!~"
    for bad in ("", "a" * 256, "a b", "é", "a\n"):
        with pytest.raises(ApiError) as refused:
            idempotency.check_key(bad, "Idempotency-Key")
        assert refused.value.code == 400 and refused.value.param == "Idempotency-Key"
