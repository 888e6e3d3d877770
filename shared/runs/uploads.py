"""Resumable upload sessions the gateway opens for a key's own input prefix.

A Cloud Function's request is capped at 32 MiB, and a key holder need not have Google
credentials: so the gateway opens a GCS resumable upload session for one new object inside
the key's input prefixes and returns its session URI; the client PUTs the bytes there in
chunks (`Content-Range`), straight to GCS. GCS treats the session URI as the credential of
that one upload (Cloud Storage, "Resumable uploads": the session URI "acts as an
authentication token", and a session expires a week after it is opened,
https://cloud.google.com/storage/docs/resumable-uploads; recalled from that page, the copy
searched here did not show the passage: to re-check). What a session can do is therefore
bounded here: one object, named by the gateway (`<prefix>uploads/<day>/<random>/<name>`,
the file name reduced to safe characters), created only if absent (`ifGenerationMatch=0`),
of the declared size when one is given. The object is the key's own input like any other:
a run or a job seals and checks it before anything runs.
"""

import re
import secrets
from datetime import UTC, datetime

from shared.core import clients, gcs_paths
from shared.core.errors import ApiError, invalid_argument
from shared.core.keys import Caller

SAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME = 200
MAX_SIZE = 5 * 1024**4  # GCS's largest object, 5 TiB


def object_name(name: str) -> str:
    cleaned = SAFE.sub("-", name.rsplit("/", 1)[-1]).strip(".-")[:MAX_NAME]
    return cleaned or "input.jsonl"


def _prefix(caller: Caller, prefix: str | None) -> str:
    if prefix is None:
        if not caller.input_prefixes:
            raise invalid_argument(
                "This key names no input prefix: pass `inputPrefix` (the master key must).",
                field="inputPrefix",
            )
        return caller.input_prefixes[0]
    if not isinstance(prefix, str):
        raise invalid_argument("`inputPrefix` must be a gs:// folder.", field="inputPrefix")
    gcs_paths.check_uri(prefix, "inputPrefix")
    folder = prefix.rstrip("/") + "/"
    if not caller.is_master and not (
        gcs_paths.under(folder, caller.input_prefixes) or folder in caller.input_prefixes
    ):
        allowed = ", ".join(caller.input_prefixes) or "none (ask an admin to add some)"
        raise ApiError(
            403, f"inputPrefix: {prefix} is outside this key's input prefixes. Allowed: {allowed}."
        )
    return folder


def open_session(caller: Caller, *, name, size=None, prefix=None) -> dict:
    """A resumable upload session for a new object under the key's input prefix."""
    if not isinstance(name, str) or not name.strip():
        raise invalid_argument("`name` is required: the file's name.", field="name")
    if size is not None and (
        not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_SIZE
    ):
        raise invalid_argument(f"`size` must be an integer of 0 to {MAX_SIZE} bytes.", field="size")
    folder = _prefix(caller, prefix)
    day = datetime.now(UTC).date().isoformat()
    uri = f"{folder}uploads/{day}/{secrets.token_hex(8)}/{object_name(name)}"
    gcs_paths.check_uri(uri, "name")
    bucket, _, path = uri.removeprefix("gs://").partition("/")
    blob = clients.storage().bucket(bucket).blob(path)
    session = blob.create_resumable_upload_session(
        content_type="application/jsonl", size=size, if_generation_match=0
    )
    return {"uri": uri, "sessionUri": session, "size": size}
