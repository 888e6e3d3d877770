"""The price catalog and the pricing of one output row, in nano-dollars.

The catalog is `shared/cost/prices.json` (the bundled default, with every entry's sources and
what is inferred) overlaid by the operator's catalog (`shared/cost/catalog.py`: models added or
replaced at run time, versioned). Its layout and rules are written in the file itself
(`rules`); the code below applies them, each pinned by tests/cost/test_pricing*.py:
- Rates are USD per 1M tokens; a rate of R is R * 1000 nano-dollars per token.
- A model's `prices` is a list of dated periods; the period in force at `at` (the row's
  processed_time, UTC) prices the row. Within a period, tiers by the row's promptTokenCount:
  the first tier whose `max_prompt_tokens` is null or >= the prompt prices the whole row.
- Batch = online x batch_discount (0.5) unless the period gives a batch rate.
- Cached tokens are part of promptTokenCount and billed at the cached rate in batch and online
  alike: the cache discount takes precedence over the batch discount, they do not stack.
- Audio tokens at the audio rate only where the model prices audio apart; the IMAGE part of
  the output at `image_output` where the model has it; thinking tokens as output;
  toolUsePromptTokenCount as input.
- Embedding models: `embedding_input` per token (the IMAGE / AUDIO / VIDEO parts at their own
  rate where listed), or `character_input` per billable character (`"billing": "characters"`).
- `regional_uplift` multiplies every rate when the job's location is not `global`.
- Per-deployment overrides (LiteLLM fields, USD per token) take precedence over the catalog,
  for a model in it or not: fields without `_above_200k_tokens` replace the base tier (<= 200k,
  or the only tier), the `_above_200k_tokens` ones the long-context tier; a batch rate left
  unset is derived from the overridden online rate. Overrides are global-endpoint rates: the
  model's uplift still applies, unless `regional_endpoint_uplift_multiplier` overrides it.

Rounding: costs are computed exactly, in integer sub-units of 10**-6 nano-dollar (`SUBUNITS`
per nano-dollar; a Decimal of sub-units for rates finer than that), summed exactly, and rounded
half-up to whole nano-dollars once per sum (`round_subunits`): two rows of 0.5 nano-dollar cost
1, not 2 x round(0.5). `row_nanos` rounds one row alone (pre-flight estimates).
"""

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Context, Decimal

from shared.core import times
from shared.cost import catalog

NANOS_PER_USD = 10**9
# nano-dollars per token for a rate of 1 USD per 1M tokens.
_NANOS_PER_TOKEN_PER_RATE = Decimal(1000)
_USD_PER_TOKEN_TO_RATE = Decimal(10**6)
# Exact integer arithmetic in units of 10**-6 nano-dollar when every rate allows it.
SUBUNITS = 10**6
_SUBUNITS = SUBUNITS
# Sums of exact Decimal costs stay exact: far more digits than any file can need.
EXACT = Context(prec=120)
GLOBAL = "global"

RATE_KEYS = catalog.RATE_KEYS
# Keys the batch discount applies to (cached rates are the online ones: no stacking).
BATCH_KEYS = tuple(k for k in RATE_KEYS if not k.startswith("cached_"))

# LiteLLM override field -> (tier: "base" | "long", mode: "online" | "batch", rate key)
OVERRIDE_TARGETS = {
    "input_cost_per_token": ("base", "online", "input"),
    "output_cost_per_token": ("base", "online", "output"),
    "input_cost_per_token_batches": ("base", "batch", "input"),
    "output_cost_per_token_batches": ("base", "batch", "output"),
    "cache_read_input_token_cost": ("base", "online", "cached_input"),
    "input_cost_per_audio_token": ("base", "online", "audio_input"),
    "output_cost_per_image_token": ("base", "online", "image_output"),
    "input_cost_per_token_above_200k_tokens": ("long", "online", "input"),
    "output_cost_per_token_above_200k_tokens": ("long", "online", "output"),
    "cache_read_input_token_cost_above_200k_tokens": ("long", "online", "cached_input"),
    "input_cost_per_character": ("base", "online", "character_input"),
}
UPLIFT_OVERRIDE = "regional_endpoint_uplift_multiplier"

_SUFFIXES = (
    re.compile(r"-\d{3}\Z"),  # stable versions: gemini-2.0-flash-001
    re.compile(r"-preview(?:-\d{2}-\d{2,4})?\Z"),  # previews, dated or not
    re.compile(r"-latest\Z"),
)
TOKENS, CHARACTERS = catalog.TOKENS, catalog.CHARACTERS


def billable_characters(text: str) -> int:
    """Characters as Vertex bills them: UTF-8 code points, whitespace not counted."""
    return len("".join(text.split()))


class UnknownModelError(ValueError):
    """A model the catalog does not know; the message names the ones it does."""

    def __init__(self, name: str):
        self.model = name
        super().__init__(f"unknown model {name!r}; known models: {', '.join(known_models())}")


bundled = catalog.bundled


def table() -> dict:
    """The catalog in force: the bundled one, overlaid by the operator's (short cache)."""
    return catalog.current().table


def version() -> str:
    """The version of the catalog in force (recorded on every cost record)."""
    return catalog.current().version


def known_models() -> list[str]:
    return sorted(table()["models"])


def _candidates(name: str) -> list[str]:
    text = name.strip()
    if "/" in text:
        text = text.rsplit("/", 1)[1]
    text = text.split("@", 1)[0]
    out = [text]
    for suffix in _SUFFIXES:
        stripped = suffix.sub("", text)
        if stripped != text and stripped not in out:
            out.append(stripped)
    return out


@functools.lru_cache(maxsize=64)
def _aliases(catalog_version: str) -> dict[str, str]:  # noqa: ARG001 (the cache key)
    models = table()["models"]
    return {alias: name for name, entry in models.items() for alias in entry.get("aliases", ())}


def try_resolve(name: str | None) -> str | None:
    """The catalog's name for a model as Vertex or a user writes it, or None.

    Accepts `gemini-2.5-flash`, a versioned `gemini-2.0-flash-001`, a dated preview
    (`gemini-2.5-flash-preview-09-2025`: the base model when the dated name is not in the
    catalog itself), an alias (`gemini-3.1-pro`), `X@default`, `publishers/google/models/X`,
    full resource names, `vertex_ai/X` and the `modelVersion` rows carry.
    """
    if not name or not isinstance(name, str):
        return None
    return _resolve(version(), name)


@functools.lru_cache(maxsize=2048)
def _resolve(catalog_version: str, name: str) -> str | None:
    models = table()["models"]
    aliases = _aliases(catalog_version)
    for candidate in _candidates(name):
        if candidate in models:
            return candidate
        if candidate in aliases:
            return aliases[candidate]
    return None


def resolve_model(name: str) -> str:
    resolved = try_resolve(name)
    if resolved is None:
        raise UnknownModelError(name)
    return resolved


def family_model(billing: str) -> str | None:
    """The model standing for every embedding model billed by `billing` (characters or
    tokens), when they all have one price (rows of these families do not name their model);
    None when their prices differ."""
    models = table()["models"]
    names = sorted(
        name
        for name, entry in models.items()
        if entry["kind"] == "embedding" and entry.get("billing", TOKENS) == billing
    )
    if not names or any(models[n]["prices"] != models[names[0]]["prices"] for n in names):
        return None
    return names[0]


# --- facts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """What the create path and the estimate need to know of a model besides its rates."""

    model: str
    kind: str
    family: str
    thinks_by_default: bool
    max_output_tokens: int | None
    released: date | None
    retires: date | None
    successor: str | None
    alternatives: tuple[str, ...]
    batch_locations: tuple[str, ...] | None

    def retired(self, on: date) -> bool:
        return self.retires is not None and on >= self.retires


def _day(value) -> date | None:
    return date.fromisoformat(value) if value else None


def facts(model: str) -> Facts:
    """The catalog's facts of a model (any accepted spelling); UnknownModelError if unknown."""
    name = resolve_model(model)
    entry = table()["models"][name]
    known = entry.get("facts") or {}
    locations = known.get("batch_locations")
    return Facts(
        model=name,
        kind=entry["kind"],
        family=entry.get("family", entry["kind"]),
        thinks_by_default=bool(known.get("thinks_by_default", False)),
        max_output_tokens=known.get("max_output_tokens"),
        released=_day(known.get("released")),
        retires=_day(known.get("retires")),
        successor=known.get("successor"),
        alternatives=tuple(known.get("alternatives") or ()),
        batch_locations=tuple(locations) if locations else None,
    )


def family_limits(family: str) -> dict | None:
    """A family's per-job limits (`rows`, `bytes`, `noun`) with their sources, or None."""
    found = table().get("families", {}).get(family)
    return dict(found) if found else None


# --- rates --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rates:
    """Effective nano-dollars per unit for one tier in one mode (online or batch)."""

    input: Decimal
    output: Decimal
    cached_input: Decimal
    audio_input: Decimal | None = None
    cached_audio_input: Decimal | None = None
    image_output: Decimal | None = None
    embedding_input: Decimal = Decimal(0)
    image_embedding_input: Decimal | None = None
    audio_embedding_input: Decimal | None = None
    video_embedding_input: Decimal | None = None
    character_input: Decimal = Decimal(0)


@dataclass(frozen=True)
class Tier:
    max_prompt_tokens: int | None
    rates: Rates
    subunit_rates: tuple[int, ...] | None


@dataclass(slots=True)
class RowTokens:
    """One row's usage as the price rules need it.

    `candidates` is the whole candidatesTokenCount; `image_output` the IMAGE part of it.
    `embedding` is the whole prompt of an embedding row; `embedding_image`, `_audio` and
    `_video` its parts by modality (the rest is text).
    """

    prompt: int = 0
    cached: int = 0
    candidates: int = 0
    thoughts: int = 0
    tool_use: int = 0
    audio: int = 0
    cached_audio: int = 0
    image_output: int = 0
    embedding: int = 0
    embedding_image: int = 0
    embedding_audio: int = 0
    embedding_video: int = 0
    characters: int = 0


def _round_half_up(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def _vector(rates: Rates) -> tuple[Decimal, ...]:
    """The rates in the order of `_quantities`, with the fallbacks applied. The first three
    (input, output, cached) are what the parser's fast paths read (shared/cost/usage.py)."""
    return (
        rates.input,
        rates.output,
        rates.cached_input,
        rates.audio_input if rates.audio_input is not None else rates.input,
        rates.cached_audio_input if rates.cached_audio_input is not None else rates.cached_input,
        rates.image_output if rates.image_output is not None else rates.output,
        rates.embedding_input,
        _or(rates.image_embedding_input, rates.embedding_input),
        _or(rates.audio_embedding_input, rates.embedding_input),
        _or(rates.video_embedding_input, rates.embedding_input),
        rates.character_input,
    )


def _or(value: Decimal | None, fallback: Decimal) -> Decimal:
    return value if value is not None else fallback


def _subunits(rates: Rates) -> tuple[int, ...] | None:
    values = []
    for value in _vector(rates):
        scaled = value * _SUBUNITS
        if scaled != scaled.to_integral_value():
            return None
        values.append(int(scaled))
    return tuple(values)


def _part(value: int, whole: int) -> int:
    """A non-negative part of a whole, never more than the whole."""
    return min(max(value, 0), whole)


@dataclass(frozen=True)
class ModelPricing:
    """The effective pricing of one model in one mode, location and period, overrides applied."""

    model: str
    kind: str
    batch: bool
    tiers: tuple[Tier, ...]
    batch_implicit_cache: bool
    billing: str = TOKENS
    uplift: Decimal = Decimal(1)
    period_from: date | None = None
    catalog_version: str = ""

    def tier_for(self, prompt_tokens: int) -> Tier:
        for tier in self.tiers:
            if tier.max_prompt_tokens is None or prompt_tokens <= tier.max_prompt_tokens:
                return tier
        return self.tiers[-1]

    def row_nanos(self, tokens: RowTokens) -> int:
        """One row's cost in nano-dollars, rounded half-up on its own."""
        return round_subunits(self.row_subunits(tokens))

    def _quantities(self, tokens: RowTokens, rates: Rates) -> tuple[int, ...]:
        if self.billing == CHARACTERS:
            return (0,) * 10 + (max(tokens.characters, 0),)
        if self.kind == "embedding":
            whole = max(tokens.embedding or tokens.prompt, 0)
            image = _part(tokens.embedding_image, whole)
            audio = _part(tokens.embedding_audio, whole - image)
            video = _part(tokens.embedding_video, whole - image - audio)
            return (0,) * 6 + (whole - image - audio - video, image, audio, video, 0)
        prompt = max(tokens.prompt, 0)
        cached = _part(tokens.cached, prompt)
        if rates.audio_input is not None:
            audio = _part(tokens.audio, prompt)
            cached_audio = min(_part(tokens.cached_audio, cached), audio)
            audio_fresh = audio - cached_audio
        else:
            cached_audio = audio_fresh = 0
        candidates = max(tokens.candidates, 0)
        image = _part(tokens.image_output, candidates) if rates.image_output is not None else 0
        return (
            max(prompt - cached - audio_fresh, 0) + max(tokens.tool_use, 0),
            candidates - image + max(tokens.thoughts, 0),
            cached - cached_audio,
            audio_fresh,
            cached_audio,
            image,
            0,
            0,
            0,
            0,
            0,
        )

    def row_subunits(self, tokens: RowTokens) -> int | Decimal:
        """One row's exact cost in sub-units (see the module docstring), not rounded."""
        tier = self.tier_for(tokens.prompt)
        quantities = self._quantities(tokens, tier.rates)
        if tier.subunit_rates is not None:
            return sum(q * r for q, r in zip(quantities, tier.subunit_rates, strict=True))
        exact = Decimal(0)
        for quantity, rate in zip(quantities, _vector(tier.rates), strict=True):
            exact = EXACT.add(exact, EXACT.multiply(quantity, rate))
        exact = EXACT.multiply(exact, _SUBUNITS)
        return int(exact) if exact == exact.to_integral_value() else exact


def round_subunits(total: int | Decimal) -> int:
    """Exact sub-units to whole nano-dollars, half-up (away from zero at exactly one half)."""
    if type(total) is int:
        if total >= 0:
            return (total + _SUBUNITS // 2) // _SUBUNITS
        return -((-total + _SUBUNITS // 2) // _SUBUNITS)
    return _round_half_up(EXACT.divide(total, _SUBUNITS))


def _decimal_block(block: Mapping | None) -> dict[str, Decimal]:
    return {key: Decimal(str(value)) for key, value in (block or {}).items()}


def as_date(at) -> date | None:
    """A row's time as a UTC date: a datetime (naive = UTC), a date, an RFC 3339 string
    (Vertex's nanoseconds included); None for anything else."""
    if isinstance(at, date) and not isinstance(at, datetime):
        return at
    moment = times.parse(at)
    return moment.astimezone(UTC).date() if moment else None


def _period_index(periods: list, on: date) -> int:
    """The period in force on a day: the last one whose `from` is not after it."""
    chosen = 0
    for index, period in enumerate(periods):
        start = period.get("from")
        if start is None or date.fromisoformat(start) <= on:
            chosen = index
    return chosen


def _synthetic(model: str, overrides: Mapping[str, Decimal]) -> dict:
    """A catalog entry for a model the catalog lacks, priced by its overrides alone: one
    period, one tier, no rates of its own."""
    characters = "input_cost_per_character" in overrides
    embedding = characters or "embedding" in model
    entry: dict = {"kind": "embedding" if embedding else "gemini", "prices": [{"tiers": [{}]}]}
    if characters:
        entry["billing"] = CHARACTERS
    return entry


def _effective_tiers(entry: dict, period: dict, overrides: Mapping[str, Decimal]) -> list[dict]:
    """Per tier: {"max": n|None, "online": {...}, "batch": {...}} in USD per 1M units."""
    tiers = [
        {
            "max": tier.get("max_prompt_tokens"),
            "online": _decimal_block(tier.get("online")),
            "batch": _decimal_block(tier.get("batch")),
        }
        for tier in period["tiers"]
    ]
    if not overrides:
        return tiers
    threshold = int(bundled()["defaults"]["long_context_threshold_tokens"])
    embedding = entry["kind"] == "embedding"
    wanted_long = any(OVERRIDE_TARGETS.get(name, ("",))[0] == "long" for name in overrides)
    if wanted_long and len(tiers) == 1:
        base = tiers[0]
        tiers = [
            {"max": threshold, "online": dict(base["online"]), "batch": dict(base["batch"])},
            {"max": None, "online": dict(base["online"]), "batch": dict(base["batch"])},
        ]
    explicit_batch: list[set[str]] = [set() for _ in tiers]
    for name, value in overrides.items():
        target = OVERRIDE_TARGETS.get(name)
        if target is None:
            continue
        where, mode, key = target
        if embedding and key == "input":
            if entry.get("billing") == CHARACTERS:
                continue  # a per-token figure cannot price a per-character model
            key = "embedding_input"
        index = 0 if where == "base" else len(tiers) - 1
        rate = Decimal(str(value)) * _USD_PER_TOKEN_TO_RATE  # per token or per character
        tier = tiers[index]
        if mode == "batch":
            tier["batch"][key] = rate
            explicit_batch[index].add(key)
        else:
            tier["online"][key] = rate
            if key in BATCH_KEYS and key not in explicit_batch[index]:
                tier["batch"].pop(key, None)
    return tiers


def _rates(online: dict, batch_block: dict, batch: bool, uplift: Decimal) -> Rates:
    discount = Decimal(bundled()["defaults"]["batch_discount"])

    def rate(key: str) -> Decimal | None:
        if key not in online and not (batch and key in batch_block):
            return None
        if batch and key in BATCH_KEYS:
            value = batch_block.get(key, online.get(key, Decimal(0)) * discount)
        else:
            value = online[key]
        return value * uplift * _NANOS_PER_TOKEN_PER_RATE

    input_rate = rate("input") or Decimal(0)
    cached = rate("cached_input")
    embedding = rate("embedding_input") or Decimal(0)
    return Rates(
        input=input_rate,
        output=rate("output") or Decimal(0),
        cached_input=cached if cached is not None else input_rate,
        audio_input=rate("audio_input"),
        cached_audio_input=rate("cached_audio_input"),
        image_output=rate("image_output"),
        embedding_input=embedding,
        image_embedding_input=rate("image_embedding_input"),
        audio_embedding_input=rate("audio_embedding_input"),
        video_embedding_input=rate("video_embedding_input"),
        character_input=rate("character_input") or Decimal(0),
    )


def _freeze(overrides: Mapping[str, Decimal] | None) -> tuple:
    if not overrides:
        return ()
    known = (*OVERRIDE_TARGETS, UPLIFT_OVERRIDE)
    return tuple(sorted((k, str(v)) for k, v in overrides.items() if k in known))


def _uplift(entry: dict, overrides: Mapping[str, Decimal], location: str | None) -> Decimal:
    """The multiplier of a job's location: 1 on the global endpoint (or none named)."""
    if not location or location == GLOBAL:
        return Decimal(1)
    if UPLIFT_OVERRIDE in overrides:
        return Decimal(str(overrides[UPLIFT_OVERRIDE]))
    return Decimal(str(entry.get("regional_uplift", "1")))


@functools.lru_cache(maxsize=512)
def _pricing(
    catalog_version: str,
    model: str,
    frozen: tuple,
    batch: bool,
    location: str | None,
    on: date,
) -> ModelPricing:
    overrides = {k: Decimal(v) for k, v in frozen}
    entry = table()["models"].get(model) or _synthetic(model, overrides)
    periods = entry["prices"]
    period = periods[_period_index(periods, on)]
    uplift = _uplift(entry, overrides, location)
    tiers = []
    for tier in _effective_tiers(entry, period, overrides):
        rates = _rates(tier["online"], tier["batch"], batch, uplift)
        tiers.append(Tier(tier["max"], rates, _subunits(rates)))
    known = entry.get("facts") or {}
    return ModelPricing(
        model=model,
        kind=entry["kind"],
        batch=batch,
        tiers=tuple(tiers),
        batch_implicit_cache=bool(known.get("batch_implicit_cache", False)),
        billing=entry.get("billing", TOKENS),
        uplift=uplift,
        period_from=_day(period.get("from")),
        catalog_version=catalog_version,
    )


def cache_clear() -> None:
    """Forget every cached price and name (tests, and a new catalog version makes new keys)."""
    for cached in (_pricing, _resolve, _aliases):
        cached.cache_clear()


def today() -> date:
    return datetime.now(UTC).date()


def pricing(
    model: str,
    overrides: Mapping[str, Decimal] | None = None,
    *,
    batch: bool = True,
    location: str | None = None,
    at=None,
) -> ModelPricing:
    """The effective pricing of a model (any accepted spelling) for a job in `location` (None
    or `global`: no uplift) at time `at` (a row's processed_time; None: today, UTC).

    A model the catalog lacks is priced by its overrides alone; without any, UnknownModelError.
    """
    frozen = _freeze(overrides)
    name = try_resolve(model)
    if name is None:
        if not frozen:
            raise UnknownModelError(model)
        name = model.strip().rsplit("/", 1)[-1].split("@", 1)[0]
    return _pricing(version(), name, frozen, batch, location, as_date(at) or today())


def row_cost_nanos(
    model: str,
    tokens: RowTokens,
    overrides: Mapping[str, Decimal] | None = None,
    *,
    batch: bool = True,
    location: str | None = None,
    at=None,
) -> int:
    return pricing(model, overrides, batch=batch, location=location, at=at).row_nanos(tokens)


def nanos_to_usd(nanos: int) -> str:
    """Exact decimal string of USD with nine places, as the edges show money."""
    sign = "-" if nanos < 0 else ""
    whole, frac = divmod(abs(int(nanos)), NANOS_PER_USD)
    return f"{sign}{whole}.{frac:09d}"


def overrides_for(deployment) -> dict[str, Decimal]:
    """The price overrides of a shared.core.config.Deployment as a mapping."""
    return dict(getattr(deployment, "price_overrides", ()) or ())


def describe(model: str, *, at=None) -> dict:
    """The catalog entry of a model, the period in force and its sources (CLIs, the API)."""
    name = resolve_model(model)
    current = table()
    entry = current["models"][name]
    on = as_date(at) or today()
    periods = entry["prices"]
    in_force = periods[_period_index(periods, on)]
    sources = current.get("sources", {})
    return {
        "model": name,
        "catalog_version": version(),
        "on": on.isoformat(),
        "in_force": in_force,
        "sources_detail": {key: sources.get(key) for key in entry.get("sources", ())},
        **entry,
    }


__all__ = [
    "GLOBAL",
    "NANOS_PER_USD",
    "SUBUNITS",
    "Facts",
    "ModelPricing",
    "Rates",
    "RowTokens",
    "UnknownModelError",
    "as_date",
    "billable_characters",
    "bundled",
    "describe",
    "facts",
    "family_limits",
    "family_model",
    "known_models",
    "nanos_to_usd",
    "overrides_for",
    "pricing",
    "resolve_model",
    "round_subunits",
    "row_cost_nanos",
    "table",
    "try_resolve",
    "version",
]
