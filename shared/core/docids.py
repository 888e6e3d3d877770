"""Firestore document ids from text a caller may control (team names, subjects, alert ids).

Firestore refuses ids containing `/`, `.` and `..`, and reserves `__.*__`; an id from user
text must never reach it raw. `doc_id` keeps text that is already a valid, unambiguous id
(so existing documents keep their ids) and replaces anything else by `~` + its sha256:
`~` starts no kept id, so an encoded id never collides with a kept one.
"""

import hashlib
import re

MAX_KEPT_BYTES = 500
_RESERVED = re.compile(r"__.*__", re.DOTALL)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def doc_id(text: str) -> str:
    raw = text.encode("utf-8", "surrogatepass")
    kept = (
        text
        and "/" not in text
        and text not in (".", "..")
        and not text.startswith("~")
        and not _RESERVED.fullmatch(text)
        and not _CONTROL.search(text)
        and len(raw) <= MAX_KEPT_BYTES
    )
    if kept:
        try:
            raw.decode("utf-8")
            return text
        except UnicodeDecodeError:
            pass
    return "~" + hashlib.sha256(raw).hexdigest()
