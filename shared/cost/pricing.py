"""The price table (shared/cost/prices.json) and the pricing of one output row, in nano-dollars.

Rules (DESIGN.md "Cost"), each pinned by tests/cost/test_pricing.py:
- Rates in the table are USD per 1M tokens; a rate of R is R * 1000 nano-dollars per token.
- Batch = online x batch_discount (0.5) unless the table (or an override) gives a batch rate.
- Cached tokens are part of promptTokenCount and billed at the cached rate in batch and online
  alike: the cache discount takes precedence over the batch discount, they do not stack.
- Audio tokens are billed at the audio rate only where the table prices audio apart.
- toolUsePromptTokenCount is input; thoughtsTokenCount is output.
- The long-context tier is chosen per row by that row's promptTokenCount.
- Character-billed models (text-embedding-00x, text-multilingual-embedding-002; `"billing":
  "characters"` in the table) are priced per billable character of the input (`character_input`,
  USD per 1M characters), not per token: `billable_characters` counts UTF-8 code points that are
  not whitespace. Token-billed embedding models (gemini-embedding-001) use `embedding_input`.
- Per-deployment overrides (LiteLLM fields, USD per token) take precedence over the table:
  fields without `_above_200k_tokens` replace the base tier (<= 200k, or the only tier), the
  `_above_200k_tokens` ones the long-context tier. A batch rate left unset is derived from the
  overridden online rate, never taken from the table beside an overridden online rate.

Rounding: costs are computed exactly, in integer sub-units of 10**-6 nano-dollar (`SUBUNITS`
per nano-dollar; a Decimal of sub-units for overrides finer than that), summed exactly, and
rounded half-up to whole nano-dollars once per sum: a file's cost is rounded once per model
(`round_subunits`), so two rows of 0.5 nano-dollar cost 1, not 2 x round(0.5). It never depends
on how a file is chunked. `row_nanos` rounds one row alone (pre-flight estimates).
"""

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal
from pathlib import Path

NANOS_PER_USD = 10**9
# nano-dollars per token for a rate of 1 USD per 1M tokens.
_NANOS_PER_TOKEN_PER_RATE = Decimal(1000)
_USD_PER_TOKEN_TO_RATE = Decimal(10**6)
# Exact integer arithmetic in units of 10**-6 nano-dollar when every rate allows it.
SUBUNITS = 10**6
_SUBUNITS = SUBUNITS
# Sums of exact Decimal costs stay exact: far more digits than any file can need.
EXACT = Context(prec=120)

RATE_KEYS = (
    "input",
    "audio_input",
    "output",
    "cached_input",
    "cached_audio_input",
    "embedding_input",
    "character_input",
)
BATCH_KEYS = ("input", "audio_input", "output", "embedding_input", "character_input")

# LiteLLM override field -> (tier: "base" | "long", mode: "online" | "batch", rate key)
OVERRIDE_TARGETS = {
    "input_cost_per_token": ("base", "online", "input"),
    "output_cost_per_token": ("base", "online", "output"),
    "input_cost_per_token_batches": ("base", "batch", "input"),
    "output_cost_per_token_batches": ("base", "batch", "output"),
    "cache_read_input_token_cost": ("base", "online", "cached_input"),
    "input_cost_per_audio_token": ("base", "online", "audio_input"),
    "input_cost_per_token_above_200k_tokens": ("long", "online", "input"),
    "output_cost_per_token_above_200k_tokens": ("long", "online", "output"),
    "input_cost_per_character": ("base", "online", "character_input"),
}

_VERSION_SUFFIX = re.compile(r"-\d{3}$")
TOKENS, CHARACTERS = "tokens", "characters"


def billable_characters(text: str) -> int:
    """Characters as Vertex bills them: UTF-8 code points, whitespace not counted."""
    return len("".join(text.split()))


class UnknownModelError(ValueError):
    """A model the price table does not know; the message names the ones it does."""

    def __init__(self, name: str):
        self.model = name
        super().__init__(f"unknown model {name!r}; known models: {', '.join(known_models())}")


@functools.cache
def table() -> dict:
    """The raw price table, read once from the package data."""
    text = Path(__file__).with_name("prices.json").read_text(encoding="utf-8")
    return json.loads(text)


def known_models() -> list[str]:
    return sorted(table()["models"])


def _candidates(name: str) -> list[str]:
    text = name.strip()
    if "/" in text:
        text = text.rsplit("/", 1)[1]
    text = text.split("@", 1)[0]
    out = [text]
    unversioned = _VERSION_SUFFIX.sub("", text)
    if unversioned != text:
        out.append(unversioned)
    return out


@functools.lru_cache(maxsize=1024)
def try_resolve(name: str | None) -> str | None:
    """The table's base name for a model name as Vertex or a user writes it, or None.

    Accepts `gemini-2.5-flash`, `gemini-2.0-flash-001`, `gemini-2.5-flash@default`,
    `publishers/google/models/X`, full resource names and `vertex_ai/X`.
    """
    if not name or not isinstance(name, str):
        return None
    models = table()["models"]
    for candidate in _candidates(name):
        if candidate in models:
            return candidate
    return None


@functools.cache
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
    if not names or any(models[n]["tiers"] != models[names[0]]["tiers"] for n in names):
        return None
    return names[0]


def resolve_model(name: str) -> str:
    resolved = try_resolve(name)
    if resolved is None:
        raise UnknownModelError(name)
    return resolved


@dataclass(frozen=True)
class Rates:
    """Effective nano-dollars per token for one tier in one mode (online or batch)."""

    input: Decimal
    output: Decimal
    cached_input: Decimal
    audio_input: Decimal | None = None
    cached_audio_input: Decimal | None = None
    embedding_input: Decimal = Decimal(0)
    character_input: Decimal = Decimal(0)


@dataclass(frozen=True)
class Tier:
    max_prompt_tokens: int | None
    rates: Rates
    subunit_rates: tuple[int, ...] | None


@dataclass(slots=True)
class RowTokens:
    """One row's usage as the price rules need it."""

    prompt: int = 0
    cached: int = 0
    candidates: int = 0
    thoughts: int = 0
    tool_use: int = 0
    audio: int = 0
    cached_audio: int = 0
    embedding: int = 0
    characters: int = 0


def _round_half_up(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def _subunits(rates: Rates) -> tuple[int, ...] | None:
    values = []
    for value in (
        rates.input,
        rates.output,
        rates.cached_input,
        rates.audio_input if rates.audio_input is not None else rates.input,
        rates.cached_audio_input if rates.cached_audio_input is not None else rates.cached_input,
        rates.character_input if rates.character_input else rates.embedding_input,
    ):
        scaled = value * _SUBUNITS
        if scaled != scaled.to_integral_value():
            return None
        values.append(int(scaled))
    return tuple(values)


@dataclass(frozen=True)
class ModelPricing:
    """The effective pricing of one model in one mode, overrides applied."""

    model: str
    kind: str
    batch: bool
    tiers: tuple[Tier, ...]
    batch_implicit_cache: bool
    billing: str = TOKENS

    def tier_for(self, prompt_tokens: int) -> Tier:
        for tier in self.tiers:
            if tier.max_prompt_tokens is None or prompt_tokens <= tier.max_prompt_tokens:
                return tier
        return self.tiers[-1]

    def _unit_rate(self, rates: Rates) -> Decimal:
        """The embedding rate per billed unit: a character or a token."""
        return rates.character_input if self.billing == CHARACTERS else rates.embedding_input

    def row_nanos(self, tokens: RowTokens) -> int:
        """One row's cost in nano-dollars, rounded half-up on its own."""
        return round_subunits(self.row_subunits(tokens))

    def row_subunits(self, tokens: RowTokens) -> int | Decimal:
        """One row's exact cost in sub-units (see the module docstring), not rounded."""
        tier = self.tier_for(tokens.prompt)
        rates = tier.rates
        if self.billing == CHARACTERS:
            quantities = (0, 0, 0, 0, 0, max(tokens.characters, 0))
        elif self.kind == "embedding":
            quantities = (0, 0, 0, 0, 0, tokens.embedding or tokens.prompt)
        else:
            prompt = max(tokens.prompt, 0)
            cached = min(max(tokens.cached, 0), prompt)
            if rates.audio_input is not None:
                audio = min(max(tokens.audio, 0), prompt)
                cached_audio = min(max(tokens.cached_audio, 0), cached, audio)
                audio_fresh = audio - cached_audio
            else:
                cached_audio = audio_fresh = 0
            text_fresh = max(prompt - cached - audio_fresh, 0)
            quantities = (
                text_fresh + max(tokens.tool_use, 0),
                max(tokens.candidates, 0) + max(tokens.thoughts, 0),
                cached - cached_audio,
                audio_fresh,
                cached_audio,
                0,
            )
        subunit_rates = tier.subunit_rates
        if subunit_rates is not None:
            r0, r1, r2, r3, r4, r5 = subunit_rates
            q0, q1, q2, q3, q4, q5 = quantities
            return q0 * r0 + q1 * r1 + q2 * r2 + q3 * r3 + q4 * r4 + q5 * r5
        exact = EXACT.multiply(
            EXACT.add(
                EXACT.add(
                    EXACT.add(
                        EXACT.multiply(quantities[0], rates.input),
                        EXACT.multiply(quantities[1], rates.output),
                    ),
                    EXACT.add(
                        EXACT.multiply(quantities[2], rates.cached_input),
                        EXACT.multiply(
                            quantities[3],
                            rates.audio_input if rates.audio_input is not None else 0,
                        ),
                    ),
                ),
                EXACT.add(
                    EXACT.multiply(
                        quantities[4],
                        rates.cached_audio_input
                        if rates.cached_audio_input is not None
                        else rates.cached_input,
                    ),
                    EXACT.multiply(
                        quantities[5],
                        rates.character_input
                        if self.billing == CHARACTERS
                        else rates.embedding_input,
                    ),
                ),
            ),
            _SUBUNITS,
        )
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


def _effective_tiers(model: str, overrides: Mapping[str, Decimal] | None) -> list[dict]:
    """Per tier: {"max": n|None, "online": {...}, "batch": {...}} in USD per 1M tokens."""
    entry = table()["models"][model]
    tiers = [
        {
            "max": tier.get("max_prompt_tokens"),
            "online": _decimal_block(tier.get("online")),
            "batch": _decimal_block(tier.get("batch")),
        }
        for tier in entry["tiers"]
    ]
    if not overrides:
        return tiers
    threshold = int(table()["long_context_threshold_tokens"])
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
        if where == "long" and len(tiers) == 1:
            continue
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


def _rates(online: dict, batch_block: dict, batch: bool) -> Rates:
    discount = Decimal(table()["batch_discount"])

    def rate(key: str) -> Decimal | None:
        if key not in online and not (batch and key in batch_block):
            return None
        if batch and key in BATCH_KEYS:
            value = batch_block.get(key, online.get(key, Decimal(0)) * discount)
        else:
            value = online[key]
        return value * _NANOS_PER_TOKEN_PER_RATE

    input_rate = rate("input") or Decimal(0)
    cached = rate("cached_input")
    return Rates(
        input=input_rate,
        output=rate("output") or Decimal(0),
        cached_input=cached if cached is not None else input_rate,
        audio_input=rate("audio_input"),
        cached_audio_input=rate("cached_audio_input"),
        embedding_input=rate("embedding_input") or Decimal(0),
        character_input=rate("character_input") or Decimal(0),
    )


def _freeze(overrides: Mapping[str, Decimal] | None) -> tuple:
    if not overrides:
        return ()
    return tuple(sorted((k, str(v)) for k, v in overrides.items() if k in OVERRIDE_TARGETS))


@functools.lru_cache(maxsize=256)
def _pricing(model: str, frozen: tuple, batch: bool) -> ModelPricing:
    entry = table()["models"][model]
    overrides = {k: Decimal(v) for k, v in frozen}
    tiers = []
    for tier in _effective_tiers(model, overrides):
        rates = _rates(tier["online"], tier["batch"], batch)
        tiers.append(Tier(tier["max"], rates, _subunits(rates)))
    return ModelPricing(
        model=model,
        kind=entry["kind"],
        batch=batch,
        tiers=tuple(tiers),
        batch_implicit_cache=bool(entry.get("batch_implicit_cache", False)),
        billing=entry.get("billing", TOKENS),
    )


def pricing(
    model: str, overrides: Mapping[str, Decimal] | None = None, *, batch: bool = True
) -> ModelPricing:
    """The effective pricing of a model (any accepted spelling); UnknownModelError if unknown."""
    return _pricing(resolve_model(model), _freeze(overrides), batch)


def row_cost_nanos(
    model: str,
    tokens: RowTokens,
    overrides: Mapping[str, Decimal] | None = None,
    *,
    batch: bool = True,
) -> int:
    return pricing(model, overrides, batch=batch).row_nanos(tokens)


def nanos_to_usd(nanos: int) -> str:
    """Exact decimal string of USD with nine places, as the edges show money."""
    sign = "-" if nanos < 0 else ""
    whole, frac = divmod(abs(int(nanos)), NANOS_PER_USD)
    return f"{sign}{whole}.{frac:09d}"


def overrides_for(deployment) -> dict[str, Decimal]:
    """The price overrides of a shared.config.Deployment as a mapping."""
    return dict(getattr(deployment, "price_overrides", ()) or ())


def describe(model: str) -> dict:
    """The table entry of a model with its source and date (for CLIs and the spend API)."""
    name = resolve_model(model)
    entry = dict(table()["models"][name])
    return {"model": name, **entry}


__all__ = [
    "NANOS_PER_USD",
    "SUBUNITS",
    "ModelPricing",
    "Rates",
    "RowTokens",
    "UnknownModelError",
    "billable_characters",
    "describe",
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
]
