"""gs:// URIs a key holder sends, and whether they lie under a key's prefixes.

A key's prefixes are folders (`gs://bucket/path/`) and a URI is under one when its text
starts with it. That is only sound when every reader sees the same name: so a URI whose path
holds a `.` or `..` segment, a percent-encoded byte (`%2e`), a backslash or a control
character is refused outright (GCS takes names literally, but other tools normalise or
decode them), as is a bucket name GCS would not accept (bucket names are lowercase). The
path is judged as written and in its NFKC form too: a tool that folds compatibility
characters reads U+2025 (two-dot leader) as `..` and U+FF0F (fullwidth solidus) as `/`.
"""

import re
import unicodedata

from shared.core.errors import invalid_argument

BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{0,221}")
PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")
CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


def problem(uri: str) -> str | None:
    """Why `uri` is not a plain gs:// URI, or None."""
    if not isinstance(uri, str) or not uri.startswith("gs://"):
        return "it is not a gs:// URI"
    bucket, _, path = uri.removeprefix("gs://").partition("/")
    if not BUCKET.fullmatch(bucket) or ".." in bucket:
        return f"{bucket!r} is not a bucket name (lowercase letters, digits, '-', '_', '.')"
    folded = unicodedata.normalize("NFKC", path)
    if CONTROL.search(uri) or CONTROL.search(folded):
        return "it holds a control character or a backslash"
    if PERCENT_ESCAPE.search(path) or PERCENT_ESCAPE.search(folded):
        return "it holds a percent-encoded byte; write the name as it is"
    # NFKC leaves ASCII as it is, so a `.` or `..` segment as written is one in `folded` too.
    if any(segment in (".", "..") for segment in folded.split("/")):
        return "it holds a '.' or '..' segment"
    return None


def check_uri(uri: str, field: str) -> None:
    why = problem(uri)
    if why:
        raise invalid_argument(f"`{field}`: {uri!r} is refused: {why}.", field=field)


def under(uri: str, prefixes) -> bool:
    """True when `uri` is a plain gs:// URI inside one of the folder `prefixes`."""
    if problem(uri):
        return False
    return any(prefix.endswith("/") and uri.startswith(prefix) for prefix in prefixes)
