"""The catalog in force: the bundled prices overlaid by the operator's versioned catalog.

Why: Google changes prices and ships models between releases of the gateway. An operator
adds or replaces models at run time (imported from LiteLLM's map or the Cloud Billing
Catalog, applied after a diff) without a release.

Where (Firestore, `VBG_PRICE_CATALOG=firestore`; with `bundled`, the default, only the
package data is used and nothing is read):
- `price_catalogs/{version}`: one immutable document per operator version: `version`,
  `created`, `author`, `note`, `origin` (where the prices came from), `base` (the bundled
  version it was made against), `models` (name -> a full catalog entry: the operator layer
  as a whole, not a delta) and `previous` (the version it replaced).
- `price_catalogs/current`: `{version, updated}`, the pointer; `apply` moves it in a
  transaction, so two imports racing make two versions, one after the other.

The catalog in force is read at most once per `CACHE_SECONDS` per process: a new version
reaches every function within a minute. Its version string (`bundled-...` or
`bundled-...+op-...`) is named on every cost record; a closed book is never re-priced by a
new version, only by an explicit, recorded reprice.
"""

import copy
import functools
import json
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from shared.core import clients, logs
from shared.core.config import settings

COLLECTION = "price_catalogs"
POINTER = "current"
CACHE_SECONDS = 60.0
FIRESTORE = "firestore"
MAX_MODELS = 500


# The rate keys a tier may carry (USD per 1M units); shared/cost/pricing.py applies them.
RATE_KEYS = (
    "input",
    "audio_input",
    "output",
    "image_output",
    "cached_input",
    "cached_audio_input",
    "embedding_input",
    "image_embedding_input",
    "audio_embedding_input",
    "video_embedding_input",
    "character_input",
)
TOKENS, CHARACTERS = "tokens", "characters"


@functools.cache
def bundled() -> dict:
    """The bundled catalog, read once from the package data."""
    text = Path(__file__).with_name("prices.json").read_text(encoding="utf-8")
    return json.loads(text)


class CatalogError(ValueError):
    """An operator catalog that cannot be used; the message says which entry and why."""


@dataclass(frozen=True)
class Catalog:
    version: str
    table: dict
    operator_version: str | None = None


def _bundled() -> Catalog:
    table = bundled()
    return Catalog(version=table["version"], table=table)


def overlay(base: dict, models: dict, operator_version: str) -> Catalog:
    """The bundled table with the operator's models added or replacing the bundled ones."""
    table = dict(base)
    table["models"] = {**base["models"], **models}
    merged_version = f"{base['version']}+{operator_version}"
    table["version"] = merged_version
    return Catalog(version=merged_version, table=table, operator_version=operator_version)


_lock = threading.Lock()
_cached: tuple[float, Catalog] | None = None


def _read_operator() -> Catalog:
    db = clients.firestore()
    pointer = db.collection(COLLECTION).document(POINTER).get()
    if not pointer.exists:
        return _bundled()
    version = (pointer.to_dict() or {}).get("version")
    if not version:
        return _bundled()
    layer = db.collection(COLLECTION).document(version).get()
    if not layer.exists:
        raise CatalogError(f"the operator catalog pointer names {version!r}, which is missing")
    models = (layer.to_dict() or {}).get("models") or {}
    validate_models(models)
    return overlay(bundled(), models, version)


def current() -> Catalog:
    """The catalog in force (bundled, or bundled + operator, cached `CACHE_SECONDS`).

    A failed read keeps the last good catalog and logs it; with none yet, it raises: prices
    are never silently the wrong ones.
    """
    global _cached
    if settings().price_catalog != FIRESTORE:
        return _bundled()
    now = time.monotonic()
    with _lock:
        if _cached is not None and now - _cached[0] < CACHE_SECONDS:
            return _cached[1]
    try:
        found = _read_operator()
    except Exception as exc:
        with _lock:
            if _cached is not None:
                logs.error("operator price catalog unreadable", error=repr(exc))
                return _cached[1]
        raise
    with _lock:
        _cached = (now, found)
    return found


def forget() -> None:
    """Drop the cached catalog (tests; the route that applies a version, in its process)."""
    global _cached
    with _lock:
        _cached = None


# --- validation ---------------------------------------------------------------------------

KINDS = ("gemini", "embedding")


def _rate_block(block, where: str) -> None:
    if not isinstance(block, dict):
        raise CatalogError(f"{where} must be an object of rates")
    for key, value in block.items():
        if key not in RATE_KEYS:
            raise CatalogError(f"{where}: unknown rate {key!r}; known: {', '.join(RATE_KEYS)}")
        try:
            rate = Decimal(str(value))
        except InvalidOperation:
            raise CatalogError(f"{where}.{key} must be a decimal string, got {value!r}") from None
        if not rate.is_finite() or rate < 0 or rate > 10**6:
            raise CatalogError(f"{where}.{key} must be between 0 and 1000000 USD per 1M")


def validate_entry(name: str, entry) -> None:
    """One catalog entry, checked as strictly as the bundled ones are written."""
    where = f"models[{name!r}]"
    if not isinstance(name, str) or not name or len(name) > 128 or "/" in name:
        raise CatalogError(f"{where}: a model name is a plain id of at most 128 characters")
    if not isinstance(entry, dict):
        raise CatalogError(f"{where} must be an object")
    if entry.get("kind") not in KINDS:
        raise CatalogError(f"{where}.kind must be one of {', '.join(KINDS)}")
    if entry.get("billing", TOKENS) not in (TOKENS, CHARACTERS):
        raise CatalogError(f"{where}.billing must be tokens or characters")
    periods = entry.get("prices")
    if not isinstance(periods, list) or not periods or len(periods) > 20:
        raise CatalogError(f"{where}.prices must be a list of 1 to 20 periods")
    previous = None
    for index, period in enumerate(periods):
        pw = f"{where}.prices[{index}]"
        if not isinstance(period, dict):
            raise CatalogError(f"{pw} must be an object")
        previous = _period_start(period.get("from"), pw, index, previous)
        _validate_tiers(period.get("tiers"), pw)
    uplift = entry.get("regional_uplift")
    if uplift is not None:
        _rate_block({"input": uplift}, f"{where}.regional_uplift")
    if not entry.get("sources"):
        raise CatalogError(f"{where}.sources must name where the prices come from")


def _period_start(start, pw: str, index: int, previous: date | None) -> date | None:
    """A period's first day: later than the one before; null only for the first period."""
    if start is None:
        if index:
            raise CatalogError(f"{pw}.from may be null only for the first period")
        return previous
    try:
        day = datetime.strptime(start, "%Y-%m-%d").date()
    except (TypeError, ValueError):
        raise CatalogError(f"{pw}.from must be YYYY-MM-DD or null") from None
    if previous is not None and day <= previous:
        raise CatalogError(f"{pw}.from must be later than the period before")
    return day


def _validate_tiers(tiers, pw: str) -> None:
    """1 to 4 tiers, each bounded by a positive max_prompt_tokens but the last (null)."""
    if not isinstance(tiers, list) or not tiers or len(tiers) > 4:
        raise CatalogError(f"{pw}.tiers must be a list of 1 to 4 tiers")
    for number, tier in enumerate(tiers):
        tw = f"{pw}.tiers[{number}]"
        if not isinstance(tier, dict):
            raise CatalogError(f"{tw} must be an object")
        limit = tier.get("max_prompt_tokens")
        last = number == len(tiers) - 1
        if last and limit is not None:
            raise CatalogError(f"{tw}: the last tier has max_prompt_tokens null")
        if not last and (type(limit) is not int or limit <= 0):
            raise CatalogError(f"{tw}.max_prompt_tokens must be a positive integer")
        _rate_block(tier.get("online"), f"{tw}.online")
        if "batch" in tier:
            _rate_block(tier["batch"], f"{tw}.batch")


def validate_models(models) -> None:
    if not isinstance(models, dict) or len(models) > MAX_MODELS:
        raise CatalogError(f"models must be an object of at most {MAX_MODELS} entries")
    for name, entry in models.items():
        validate_entry(name, entry)


# --- applying a version -------------------------------------------------------------------


def new_version() -> str:
    return f"op-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def apply(models: dict, *, author: str, note: str, origin: str) -> str:
    """A new operator version: the current layer with `models` added or replaced; returns it.

    Never rewrites a cost record: books already written keep the version they name.
    """
    if settings().price_catalog != FIRESTORE:
        raise CatalogError(
            "the operator catalog lives in Firestore: set VBG_PRICE_CATALOG=firestore"
        )
    validate_models(models)
    from google.cloud import firestore as firestore_module

    db = clients.firestore()
    pointer_ref = db.collection(COLLECTION).document(POINTER)
    version = new_version()

    @firestore_module.transactional
    def move(transaction) -> None:
        pointer = pointer_ref.get(transaction=transaction)
        previous = (pointer.to_dict() or {}).get("version") if pointer.exists else None
        layer: dict = {}
        if previous:
            doc = db.collection(COLLECTION).document(previous).get(transaction=transaction)
            layer = copy.deepcopy((doc.to_dict() or {}).get("models") or {})
        layer.update(models)
        validate_models(layer)
        transaction.create(
            db.collection(COLLECTION).document(version),
            {
                "version": version,
                "created": datetime.now(UTC),
                "author": author,
                "note": note[:500],
                "origin": origin[:500],
                "base": bundled()["version"],
                "previous": previous,
                "changed": sorted(models),
                "models": layer,
            },
        )
        transaction.set(pointer_ref, {"version": version, "updated": datetime.now(UTC)})

    move(db.transaction())
    logs.info("price catalog applied", version=version, models=sorted(models), author=author)
    forget()
    return version


def history(limit: int = 20) -> list[dict]:
    """The operator versions, newest first (without their models)."""
    if settings().price_catalog != FIRESTORE:
        return []
    from google.cloud import firestore as firestore_module

    query = (
        clients.firestore()
        .collection(COLLECTION)
        .order_by("created", direction=firestore_module.Query.DESCENDING)
        .limit(limit)
    )
    out = []
    for doc in query.stream():
        data = doc.to_dict() or {}
        data.pop("models", None)
        out.append(data)
    return out
