"""What the price catalog says, as the API and `vbg prices` show it (USD per 1M units as
decimal strings, the location's uplift and the day's period applied)."""

from decimal import Decimal

from shared.core.errors import invalid_argument, not_found
from shared.cost import catalog, importers, pricing


def _usd_per_million(rate_nanos_per_unit: Decimal | None) -> str | None:
    """Nano-dollars per unit as USD per 1M units (a decimal string)."""
    if rate_nanos_per_unit is None:
        return None
    value = rate_nanos_per_unit / Decimal(1000)
    return format(value.normalize(), "f")


def _rates_view(model: str, *, batch: bool, location: str | None, at) -> list[dict]:
    """The effective rates of a model's tiers (USD per 1M), location and period applied."""
    priced = pricing.pricing(model, batch=batch, location=location, at=at)
    out = []
    for tier in priced.tiers:
        rates = tier.rates
        if priced.billing == pricing.CHARACTERS:
            fields: dict[str, Decimal | None] = {"characterInput": rates.character_input}
        elif priced.kind == "embedding":
            fields = {
                "embeddingInput": rates.embedding_input,
                "imageEmbeddingInput": rates.image_embedding_input,
                "audioEmbeddingInput": rates.audio_embedding_input,
                "videoEmbeddingInput": rates.video_embedding_input,
            }
        else:
            fields = {
                "input": rates.input,
                "output": rates.output,
                "cachedInput": rates.cached_input,
                "audioInput": rates.audio_input,
                "cachedAudioInput": rates.cached_audio_input,
                "imageOutput": rates.image_output,
            }
        shown: dict[str, object] = {"maxPromptTokens": tier.max_prompt_tokens}
        shown |= {k: _usd_per_million(v) for k, v in fields.items()}
        out.append({k: v for k, v in shown.items() if v is not None or k == "maxPromptTokens"})
    return out


def _day(value) -> str | None:
    if value in (None, ""):
        return None
    if pricing.as_date(value) is None:
        raise invalid_argument("`at` must be a date (YYYY-MM-DD) or an RFC 3339 time.", field="at")
    return value


def _location(value) -> str:
    value = value or pricing.GLOBAL
    if not importers.MODEL_NAME.fullmatch(value) or len(value) > 63:
        raise invalid_argument("`location` is global, us, eu or a region.", field="location")
    return value


def catalog_view(at=None) -> dict:
    """Every model of the catalog in force, its batch rates on a day, retirement, sources."""
    at = _day(at)
    current = catalog.current()
    models = []
    for name in pricing.known_models():
        known = pricing.facts(name)
        entry = current.table["models"][name]
        models.append(
            {
                "model": name,
                "kind": known.kind,
                "family": known.family,
                "retires": known.retires.isoformat() if known.retires else None,
                "successor": known.successor,
                "regionalUplift": entry.get("regional_uplift", "1"),
                "batch": _rates_view(name, batch=True, location=None, at=at),
                "sources": list(entry.get("sources") or ()),
                "asOf": entry.get("as_of"),
            }
        )
    return {
        "catalogVersion": current.version,
        "operatorVersion": current.operator_version,
        "models": models,
        "history": catalog.history(),
    }


def model_view(model: str, at=None, location=None) -> dict:
    """One model: the rates in force (batch and online, at a location and day) and sources;
    404 for a model the catalog lacks."""
    at = _day(at)
    location = _location(location)
    if pricing.try_resolve(model) is None:
        raise not_found(
            f"Model {model!r} is not in the price catalog ({pricing.version()}); known: "
            f"{', '.join(pricing.known_models())}."
        )
    described = pricing.describe(model, at=at)
    name = described["model"]
    return {
        "model": name,
        "catalogVersion": described["catalog_version"],
        "on": described["on"],
        "location": location,
        "periodFrom": described["in_force"].get("from"),
        "batch": _rates_view(name, batch=True, location=location, at=at),
        "online": _rates_view(name, batch=False, location=location, at=at),
        "regionalUplift": described.get("regional_uplift", "1"),
        "facts": described.get("facts") or {},
        "aliases": described.get("aliases") or [],
        "prices": described.get("prices") or [],
        "sources": described["sources_detail"],
        "inferred": described.get("inferred") or [],
        "notes": described.get("notes"),
        "asOf": described.get("as_of"),
    }
