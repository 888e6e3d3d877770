"""Gateway API keys: random, shown once, stored only as SHA-256 hashes.

A key is looked up by the hash of what the caller sent (a point read), so the stored hash
is never compared against caller input byte by byte; the master key, which lives only in
the environment, is compared with `hmac.compare_digest`.
"""

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from shared.core import clients, gcs_paths, times
from shared.core.config import settings
from shared.core.errors import ApiError, invalid_argument, not_found, unauthenticated

COLLECTION = "keys"
KEY_PREFIX = "vbg-"
BUDGET_PERIODS = ("day", "month", "none")
# Naming rules (stated in the README): checked when a key or team is created or changed,
# because names end up in labels, logs and (encoded, shared/core/docids.py) document ids.
ALIAS_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,62}")
ALIAS_RULE = "1-63 ASCII letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
TEAM_PATTERN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9 ._-]{0,61}[A-Za-z0-9])?")
TEAM_RULE = (
    "1-63 ASCII letters, digits, spaces, '.', '_' or '-', starting and ending with a letter "
    "or digit"
)
BUDGET_PATTERN = re.compile(r"[0-9]{1,12}(\.[0-9]{1,9})?")
BUDGET_RULE = 'a decimal string of USD such as "250" or "0.5" (at most 9 decimals)'
# A key record is one Firestore document (1 MiB at most): each of its lists is bounded.
MAX_LIST_ITEMS = 100
MAX_LIST_CHARS = 64 * 1024


def check_team(team, field: str = "team") -> str:
    if not isinstance(team, str) or not TEAM_PATTERN.fullmatch(team):
        raise invalid_argument(
            f"`{field}` {str(team)[:80]!r} is invalid: {TEAM_RULE}.", field=field
        )
    return team


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_of(digest: str) -> str:
    return digest[:16]


@dataclass(frozen=True)
class Caller:
    """Who is calling and what they may do, as read from their key record."""

    key_id: str
    alias: str
    team: str = ""
    is_master: bool = False
    team_admin: bool = False
    models: tuple[str, ...] = ()
    input_prefixes: tuple[str, ...] = ()
    output_prefixes: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    budget_usd: Decimal | None = None
    budget_period: str = "none"

    def may_use_model(self, model_name: str) -> bool:
        return self.is_master or not self.models or model_name in self.models

    def may_see(self, job: dict) -> bool:
        if self.is_master:
            return True
        if job.get("owner_key_id") == self.key_id:
            return True
        return self.team_admin and bool(self.team) and job.get("team") == self.team


MASTER = "master"


def master_caller() -> Caller:
    return Caller(key_id=MASTER, alias=MASTER, is_master=True)


def caller_from_record(record: dict) -> Caller:
    budget = record.get("budget_usd")
    return Caller(
        key_id=record["id"],
        alias=record.get("alias", ""),
        team=record.get("team") or "",
        team_admin=bool(record.get("team_admin")),
        models=tuple(record.get("models") or ()),
        input_prefixes=tuple(record.get("input_prefixes") or ()),
        output_prefixes=tuple(record.get("output_prefixes") or ()),
        labels=dict(record.get("labels") or {}),
        budget_usd=Decimal(budget) if budget not in (None, "") else None,
        budget_period=record.get("budget_period") or "none",
    )


# Key records are cached per instance for a few seconds: a Firestore read per request is
# most of the gateway's added latency. A revocation takes effect at once on the instance
# that served it and within CACHE_SECONDS everywhere else.
CACHE_SECONDS = 10.0
_cache: dict[str, tuple[float, dict | None]] = {}


def _cached_record(digest: str) -> dict | None:
    now = time.monotonic()
    hit = _cache.get(digest)
    if hit and now - hit[0] < CACHE_SECONDS:
        return hit[1]
    snapshot = clients.firestore().collection(COLLECTION).document(digest).get()
    record = snapshot.to_dict() if snapshot.exists else None
    if record is not None:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[digest] = (now, record)
    return record


def forget_cached() -> None:
    _cache.clear()


def authenticate(presented: str | None) -> Caller:
    if not presented:
        raise unauthenticated(
            "No gateway API key: send it as `x-goog-api-key: <key>` or "
            "`Authorization: Bearer <key>`."
        )
    master = settings().master_key
    if master and hmac.compare_digest(presented.encode(), master.encode()):
        return master_caller()
    digest = hash_key(presented)
    record = _cached_record(digest)
    if not record or not hmac.compare_digest(record.get("hash", ""), digest):
        raise unauthenticated("The gateway API key is not valid.")
    if record.get("revoked"):
        raise unauthenticated("The gateway API key has been revoked.")
    return caller_from_record(record)


# --- administration ------------------------------------------------------------------------


def _string_list(body: dict, name: str) -> list[str]:
    """A list field of a key: strings, each once (in the order given), bounded."""
    value = body.get(name, [])
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise invalid_argument(f"`{name}` must be a list of non-empty strings.", field=name)
    return _bounded(name, value)


def _bounded(name: str, values: list[str]) -> list[str]:
    unique = list(dict.fromkeys(values))
    if len(unique) > MAX_LIST_ITEMS or sum(len(v) for v in unique) > MAX_LIST_CHARS:
        raise invalid_argument(
            f"`{name}` holds {len(unique)} distinct entries; at most {MAX_LIST_ITEMS} (and "
            f"{MAX_LIST_CHARS} characters in all) are allowed.",
            field=name,
        )
    return unique


def _prefixes(body: dict, name: str) -> list[str]:
    prefixes = _string_list(body, name)
    for prefix in prefixes:
        why = gcs_paths.problem(prefix)
        if why or any(c in prefix for c in "*?[#"):
            raise invalid_argument(
                f"`{name}` entry {prefix!r} is not a gs://bucket/path prefix"
                + (f": {why}." if why else ": no wildcards."),
                field=name,
            )
    # A prefix is a folder: gs://b/team must not also grant gs://b/team-other/.
    return _bounded(name, [p if p.endswith("/") else p + "/" for p in prefixes])


def _labels(body: dict) -> dict[str, str]:
    from shared.core.labels import validate_labels

    value = body.get("labels") or {}
    if not isinstance(value, dict):
        raise invalid_argument("`labels` must be an object of string values.", field="labels")
    return validate_labels(value, field_name="labels")


def budget_fields(body: dict, current: dict) -> tuple[str | None, str]:
    """`budgetUsd` and `budgetPeriod` of a key or team body, validated, as stored.

    A budget without a period is monthly; `none` with a budget means all time; no budget
    means no limit.
    """
    budget = body.get("budgetUsd", current.get("budget_usd"))
    default_period = current.get("budget_period") or ("month" if budget is not None else "none")
    period = body.get("budgetPeriod", default_period)
    if budget is not None:
        budget = _budget_amount(budget)
    if period not in BUDGET_PERIODS:
        raise invalid_argument(
            f"`budgetPeriod` must be one of {', '.join(BUDGET_PERIODS)}.", field="budgetPeriod"
        )
    return budget, period


def _budget_amount(value) -> str:
    """A budget as stored: a plain decimal string (no sign, exponent, `_` or non-ASCII
    digit, which Decimal would accept), or a JSON number that is one."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise invalid_argument(f"`budgetUsd` must be {BUDGET_RULE}.", field="budgetUsd")
    text = value if isinstance(value, str) else repr(value)
    if isinstance(value, float) and "e" in text.lower():
        text = format(Decimal(text), "f") if Decimal(text).is_finite() else text
    if not BUDGET_PATTERN.fullmatch(text):
        raise invalid_argument(
            f"`budgetUsd` {str(value)[:40]!r} is invalid: use {BUDGET_RULE}.", field="budgetUsd"
        )
    return str(Decimal(text))


def _fields(body: dict, current: dict) -> dict:
    """The stored fields for a create or update body (camelCase in, snake_case stored)."""
    unknown = set(body) - {
        "alias",
        "team",
        "models",
        "inputPrefixes",
        "outputPrefixes",
        "labels",
        "teamAdmin",
        "budgetUsd",
        "budgetPeriod",
    }
    if unknown:
        raise invalid_argument(f"Unknown field(s) {', '.join(sorted(unknown))}.")
    fields: dict[str, object] = {}
    if "alias" in body or not current:
        alias = body.get("alias")
        if not isinstance(alias, str) or not ALIAS_PATTERN.fullmatch(alias):
            raise invalid_argument(f"`alias` is required: {ALIAS_RULE}.", field="alias")
        fields["alias"] = alias
    if "team" in body:
        team = body["team"] or ""
        fields["team"] = check_team(team) if team else ""
    if "models" in body:
        from shared.core.config import model_list_or_error

        models = _string_list(body, "models")
        known = model_list_or_error().model_names
        unknown_models = [m for m in models if m not in known]
        if unknown_models:
            raise invalid_argument(
                f"Unknown model(s) {', '.join(unknown_models)}; known: {', '.join(known)}.",
                field="models",
            )
        fields["models"] = models
    if "inputPrefixes" in body:
        fields["input_prefixes"] = _prefixes(body, "inputPrefixes")
    if "outputPrefixes" in body:
        fields["output_prefixes"] = _prefixes(body, "outputPrefixes")
    if "labels" in body:
        fields["labels"] = _labels(body)
    if "teamAdmin" in body:
        if not isinstance(body["teamAdmin"], bool):
            raise invalid_argument("`teamAdmin` must be true or false.", field="teamAdmin")
        fields["team_admin"] = body["teamAdmin"]
    if "budgetUsd" in body or "budgetPeriod" in body or not current:
        fields["budget_usd"], fields["budget_period"] = budget_fields(body, current)
    return fields


def public_view(record: dict) -> dict:
    """A key as the admin API shows it: never the hash, never the key."""
    return {
        "id": record["id"],
        "alias": record.get("alias"),
        "team": record.get("team") or "",
        "models": record.get("models") or [],
        "inputPrefixes": record.get("input_prefixes") or [],
        "outputPrefixes": record.get("output_prefixes") or [],
        "labels": record.get("labels") or {},
        "teamAdmin": bool(record.get("team_admin")),
        "budgetUsd": record.get("budget_usd"),
        "budgetPeriod": record.get("budget_period") or "none",
        "createTime": times.iso(record.get("created")),
        "revokeTime": times.iso(record.get("revoked")),
    }


def create_key(body: dict) -> tuple[str, dict]:
    """Make a key; the plaintext is returned here once and never stored."""
    fields = _fields(body, {})
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    digest = hash_key(plaintext)
    record = {
        "hash": digest,
        "id": key_id_of(digest),
        "team": "",
        "models": [],
        "input_prefixes": [],
        "output_prefixes": [],
        "labels": {},
        "team_admin": False,
        **fields,
        "created": datetime.now(UTC),
        "revoked": None,
    }
    clients.firestore().collection(COLLECTION).document(digest).create(record)
    return plaintext, record


def _find(key_id: str):
    if not re.fullmatch(r"[0-9a-f]{16}", key_id):
        raise not_found(f"No key {key_id!r}: key ids are 16 hex characters.")
    from google.cloud.firestore_v1.base_query import FieldFilter

    query = (
        clients.firestore()
        .collection(COLLECTION)
        .where(filter=FieldFilter("id", "==", key_id))
        .limit(1)
    )
    for snapshot in query.stream():
        return snapshot
    raise not_found(f"No key {key_id!r}.")


def get_key(key_id: str) -> dict:
    return _find(key_id).to_dict()


def get_record(key_id: str) -> dict | None:
    try:
        return _find(key_id).to_dict()
    except ApiError:
        return None


def list_keys(include_revoked: bool = False) -> list[dict]:
    records = [s.to_dict() for s in clients.firestore().collection(COLLECTION).stream()]
    if not include_revoked:
        records = [r for r in records if not r.get("revoked")]
    return sorted(records, key=lambda r: r.get("created") or datetime.min.replace(tzinfo=UTC))


def update_key(key_id: str, body: dict) -> dict:
    snapshot = _find(key_id)
    record = snapshot.to_dict()
    if record.get("revoked"):
        raise ApiError(400, f"Key {key_id} is revoked; create a new one.", "FAILED_PRECONDITION")
    fields = _fields(body, record)
    if not fields:  # a body naming nothing to change changes nothing (Firestore refuses {})
        return record
    snapshot.reference.update(fields)
    _cache.pop(snapshot.id, None)
    return {**record, **fields}


def revoke_key(key_id: str) -> dict:
    snapshot = _find(key_id)
    record = snapshot.to_dict()
    if not record.get("revoked"):
        record["revoked"] = datetime.now(UTC)
        snapshot.reference.update({"revoked": record["revoked"]})
    _cache.pop(snapshot.id, None)
    return record
