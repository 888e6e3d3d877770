"""Property tests (hypothesis): a URI the prefix check admits is under the prefix however it
is read: literally, percent-decoded, with dot segments resolved, or case-folded."""

import posixpath
import unicodedata
from urllib.parse import unquote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core import gcs_paths
from shared.core.errors import ApiError
from shared.core.keys import _prefixes
from tests.strategies import client_text

PREFIXES = ("gs://bucket-a/team/ana/", "gs://bucket-b/x/")
SEGMENTS = st.one_of(
    st.sampled_from(
        [
            "team",
            "ana",
            "x",
            "ANA",
            "Team",
            ".",
            "..",
            "...",
            "%2e",
            "%2E%2e",
            "%2f",
            "\uff41\uff4e\uff41",
            "\u2024",
            "\u2025",
            "ana\u0307",
            "",
            "a b",
            "\\..",
            "*",
            "in.jsonl",
            "%",
            "%zz",
        ]
    ),
    client_text(max_size=6),
)
BUCKETS = st.sampled_from(["bucket-a", "bucket-b", "BUCKET-A", "bucket-a.", "bucket-\uff41", "b"])


@st.composite
def uris(draw) -> str:
    bucket = draw(BUCKETS)
    path = "/".join(draw(st.lists(SEGMENTS, min_size=0, max_size=6)))
    return f"gs://{bucket}/{path}"


READERS = (
    lambda text: text,
    unquote,
    lambda text: unicodedata.normalize("NFKC", unquote(text)),
)


def resolved(text: str, read) -> str:
    """`text` as a tool that decodes with `read` and resolves dot segments would see it."""
    bucket, _, path = read(text).removeprefix("gs://").partition("/")
    tail = "/" if path.endswith("/") else ""
    return f"gs://{bucket}/" + posixpath.normpath("/" + path).strip("/") + tail


@settings(max_examples=2000, deadline=None)
@given(uri=uris(), prefix=st.sampled_from(PREFIXES) | uris().map(lambda u: u.rstrip("/") + "/"))
def test_an_admitted_uri_is_under_its_prefix_however_both_are_read(uri, prefix):
    if gcs_paths.under(uri, [prefix]):
        assert uri.startswith(prefix)
        for read in READERS:
            assert resolved(uri, read).startswith(resolved(prefix, read)), (uri, prefix)


@pytest.mark.parametrize(
    "prefix",
    ["gs://bucket-a/team/../x/", "gs://bucket-a/%2e%2e/", "gs://BUCKET/x/", "gs://b/x/*/"],
)
def test_a_prefix_with_escapes_is_refused_when_a_key_is_made(prefix):
    with pytest.raises(ApiError) as error:
        _prefixes({"inputPrefixes": [prefix]}, "inputPrefixes")
    assert error.value.code == 400


@pytest.mark.parametrize(
    "uri",
    [
        "gs://bucket-a/team/ana/../bob/x.jsonl",
        "gs://bucket-a/team/ana/%2e%2e/bob/x.jsonl",
        "gs://bucket-a/team/ana/./x.jsonl",
        "gs://BUCKET-A/team/ana/x.jsonl",
        "gs://bucket-a/team/ana\\..\\x",
        # Compatibility characters a tool folds (NFKC) into a dot segment, a slash, a
        # backslash or a percent escape: two-dot leader, one-dot leader, fullwidth forms.
        "gs://bucket-a/team/ana/\u2025/bob/x.jsonl",
        "gs://bucket-a/team/ana/\u2024/x.jsonl",
        "gs://bucket-a/team/ana/\uff0e\uff0e\uff0fbob/x.jsonl",
        "gs://bucket-a/team/ana/\uff3c..\uff3cx",
        "gs://bucket-a/team/ana/\uff05\uff12\uff45\uff05\uff12\uff45/bob/x.jsonl",
    ],
)
def test_known_escapes_are_refused(uri):
    assert not gcs_paths.under(uri, PREFIXES)


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("s3://b/x", "it is not a gs:// URI"),
        (7, "it is not a gs:// URI"),
        ("gs://a..b/x", "'a..b' is not a bucket name (lowercase letters, digits, '-', '_', '.')"),
        ("gs://Bkt/x", "'Bkt' is not a bucket name (lowercase letters, digits, '-', '_', '.')"),
        ("gs://b/a\\b", "it holds a control character or a backslash"),
        ("gs://b/a\nb", "it holds a control character or a backslash"),
        ("gs://b/a%2Fb", "it holds a percent-encoded byte; write the name as it is"),
        ("gs://b/a/./c", "it holds a '.' or '..' segment"),
        ("gs://b/a/..", "it holds a '.' or '..' segment"),
        ("gs://b/a/\u2025/c", "it holds a '.' or '..' segment"),
        ("gs://b/a/..c/d.", None),
    ],
)
def test_each_refusal_says_why(uri, why):
    assert gcs_paths.problem(uri) == why
