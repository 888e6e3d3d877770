"""Vertex label rules, and the labels the gateway stamps on every job it creates."""

import re

from shared.core.errors import invalid_argument

MAX_LABELS = 64
KEY_PATTERN = re.compile(r"[\w-]{1,63}")
RESERVED_PREFIX = "vbg-"
OWNER_LABEL = "vbg-key"
TEAM_LABEL = "vbg-team"
INTENT_LABEL = "vbg-intent"  # the gateway's id of the create (intents/{id}), set before Vertex
RETRY_LABEL = "vbg-retry-of"  # on a retry job: the id of the job whose rows it retries
RUN_LABEL = "vbg-run"  # on a run's piece: the run's id (opaque to jobs: shared/runs/)


def _lower_word(text: str) -> bool:
    return text == text.lower()


def validate_labels(labels: dict, *, field_name: str = "labels", allow_reserved: bool = False):
    """Vertex's rules: <= 64 labels; keys 1-63 chars starting with a lowercase letter;
    keys and values of lowercase letters, digits, '_' and '-' (international letters too);
    values at most 63 chars."""
    if len(labels) > MAX_LABELS:
        raise invalid_argument(f"At most {MAX_LABELS} labels are allowed.", field=field_name)
    for key, value in labels.items():
        where = f"{field_name}.{key}"
        if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key) or not key[0].isalpha():
            raise invalid_argument(
                f"Label key {key!r} is invalid: 1-63 characters, starting with a lowercase "
                "letter, then lowercase letters, digits, '_' or '-'.",
                field=where,
            )
        if not _lower_word(key):
            raise invalid_argument(f"Label key {key!r} must be lowercase.", field=where)
        if not allow_reserved and key.startswith(RESERVED_PREFIX):
            raise invalid_argument(
                f"Label key {key!r} is reserved: the gateway sets labels starting with "
                f"{RESERVED_PREFIX!r} itself.",
                field=where,
            )
        if not isinstance(value, str) or len(value) > 63 or not re.fullmatch(r"[\w-]*", value):
            raise invalid_argument(
                f"Label value {value!r} for {key!r} is invalid: at most 63 lowercase "
                "letters, digits, '_' or '-'.",
                field=where,
            )
        if not _lower_word(value):
            raise invalid_argument(f"Label value {value!r} must be lowercase.", field=where)
    return dict(labels)


def label_value(text: str) -> str:
    """Squeeze free text (a team name) into a valid label value."""
    value = re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")
    return value[:63]
