"""Prices from elsewhere, as catalog entries: LiteLLM's price map and Google's Cloud Billing
Catalog. An import is a proposal: `diff` shows what would change against the catalog in force,
and only an explicit apply (shared/cost/catalog.py `apply`) makes it a new operator version.

LiteLLM (https://github.com/BerriAI/litellm/blob/main/model_prices_and_context_window.json):
one object per model, USD per token. The entries read are Google's Gemini and embedding models
served by Vertex (`litellm_provider` starting with `vertex_ai`; a `vertex_ai/` prefix is
dropped). Fields: input_cost_per_token (embedding models: embedding_input),
output_cost_per_token, cache_read_input_token_cost, input_cost_per_audio_token,
output_cost_per_image_token, input_cost_per_character, their `_batches` forms (the batch
rates), their `_above_200k_tokens` forms (a second tier above 200,000 prompt tokens),
regional_endpoint_uplift_multiplier, max_output_tokens, deprecation_date (read as the
retirement date: inferred), source. Other fields (priority, flex, per-second media, search)
do not price batch rows and are ignored.

Cloud Billing Catalog (`services.skus.list` of the Vertex AI service,
https://docs.cloud.google.com/billing/docs/reference/rest/v1/services.skus): each SKU has
`description`, `category`, `serviceRegions` and `pricingInfo[].pricingExpression` with
`usageUnit`, `baseUnit`, `baseUnitConversionFactor` and `tieredRates[].unitPrice {currencyCode,
units, nanos}`. The price of one base unit is unitPrice / baseUnitConversionFactor; a token or
character SKU's base unit is a count, so x 10**6 is the catalog's per-1M rate. Which SKU prices
what is read from its description (the grammar is inferred, Google documents none): `Gemini
<version> <variant>` names the model (gemini-<version>-<variant>, lower case, spaces as
hyphens), then `Input` / `Output`, `Text` / `Image` / `Audio` / `Video`, `Cached` (a cache
read), `Batch` (a batch rate), `Long` or `>200K` (the long-context tier). Only USD prices of
SKUs offered in `global` are read: a regional price is the global one with the model's uplift.
A SKU the grammar does not read is listed as skipped, never guessed.
"""

import re
from datetime import date
from decimal import Decimal, InvalidOperation

from shared.cost import catalog

LITELLM_URL = "https://github.com/BerriAI/litellm/blob/main/model_prices_and_context_window.json"
BILLING_URL = "https://docs.cloud.google.com/billing/docs/reference/rest/v1/services.skus"
LONG_THRESHOLD = 200_000
PER_MILLION = Decimal(10**6)
MODEL_NAME = re.compile(r"[a-z0-9][a-z0-9.\-]{0,127}")
GOOGLE_MODEL = re.compile(r"^(gemini|text-embedding|text-multilingual-embedding)")

# LiteLLM field -> rate key (USD per token in LiteLLM; per 1M in the catalog).
_LITELLM_RATES = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cached_input",
    "input_cost_per_audio_token": "audio_input",
    "output_cost_per_image_token": "image_output",
    "input_cost_per_character": "character_input",
}


class ImportError_(ValueError):
    """A document that cannot be imported; the message says which entry and why."""


def _per_million(value, where: str) -> str:
    try:
        rate = Decimal(str(value)) * PER_MILLION
    except InvalidOperation:
        raise ImportError_(f"{where}: {value!r} is not a number") from None
    if not rate.is_finite() or rate < 0:
        raise ImportError_(f"{where}: {value!r} is not a non-negative price")
    return format(rate.normalize(), "f")


def _tier(entry: dict, suffix: str, embedding: bool, where: str) -> tuple[dict, dict]:
    online: dict[str, str] = {}
    batch: dict[str, str] = {}
    for field, key in _LITELLM_RATES.items():
        if embedding and key not in ("input", "character_input"):
            continue  # an embedding model bills its input only
        if embedding and key == "input":
            key = "embedding_input"
        for name, block in ((field + suffix, online), (field + "_batches" + suffix, batch)):
            if name in entry and entry[name] is not None:
                block[key] = _per_million(entry[name], f"{where}.{name}")
    return online, batch


def litellm_entry(name: str, entry: dict, *, as_of: str) -> dict | None:
    """One LiteLLM map entry as a catalog entry, or None when it does not price batch rows."""
    where = f"litellm[{name!r}]"
    embedding = entry.get("mode") == "embedding"
    online, batch = _tier(entry, "", embedding, where)
    if not online and not batch:
        return None
    base: dict[str, object] = {"max_prompt_tokens": None, "online": online}
    if batch:
        base["batch"] = batch
    tiers = [base]
    long_online, long_batch = _tier(entry, "_above_200k_tokens", embedding, where)
    if long_online or long_batch:
        base["max_prompt_tokens"] = LONG_THRESHOLD
        long: dict[str, object] = {"max_prompt_tokens": None, "online": {**online, **long_online}}
        if long_batch:
            long["batch"] = long_batch
        tiers.append(long)
    found: dict = {
        "kind": "embedding" if embedding else "gemini",
        "family": _family(name, embedding),
        "aliases": [],
        "facts": {
            "thinks_by_default": True if entry.get("output_cost_per_reasoning_token") else None,
            "max_output_tokens": entry.get("max_output_tokens")
            if type(entry.get("max_output_tokens")) is int
            and 0 < entry["max_output_tokens"] <= 10**7
            else None,
            "retires": _iso_day(entry.get("deprecation_date")),
        },
        "prices": [{"from": None, "tiers": tiers}],
        "sources": ["litellm"],
        "as_of": as_of,
        "inferred": [
            "imported from LiteLLM's map: deprecation_date read as the retirement date, "
            "thinks_by_default from output_cost_per_reasoning_token"
        ],
    }
    if "character_input" in online:
        found["billing"] = catalog.CHARACTERS
    uplift = entry.get("regional_endpoint_uplift_multiplier")
    if uplift is not None:
        _per_million(uplift, f"{where}.regional_endpoint_uplift_multiplier")
        found["regional_uplift"] = str(Decimal(str(uplift)))
    if isinstance(entry.get("source"), str):
        found["source_page"] = entry["source"][:300]
    return found


def _family(name: str, embedding: bool) -> str:
    if name.startswith(("text-embedding", "text-multilingual-embedding")):
        return "text-embedding"
    return "gemini-embedding" if embedding else "gemini"


def _iso_day(value) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        return None


def from_litellm(document, *, as_of: str, only: set[str] | None = None) -> dict:
    """The Vertex Gemini and embedding entries of a LiteLLM map, as catalog entries."""
    if not isinstance(document, dict):
        raise ImportError_("a LiteLLM price map is a JSON object of models")
    out: dict = {}
    for key, entry in document.items():
        if not isinstance(key, str) or not isinstance(entry, dict):
            continue
        provider = str(entry.get("litellm_provider", ""))
        if not provider.startswith("vertex_ai"):
            continue
        name = key.removeprefix("vertex_ai/")
        if not MODEL_NAME.fullmatch(name) or not GOOGLE_MODEL.match(name):
            continue
        if only and name not in only:
            continue
        found = litellm_entry(name, entry, as_of=as_of)
        if found is not None:
            out[name] = found
    return out


# --- Cloud Billing Catalog ---------------------------------------------------------------

# Words that end a SKU description's model name and say what the SKU prices.
_SKU_WORDS = frozenset(
    [
        "input",
        "output",
        "batch",
        "cached",
        "cache",
        "long",
        "context",
        "text",
        "image",
        "images",
        "audio",
        "video",
        "tokens",
        "token",
        "characters",
        "predictions",
        ">200k",
        "-",
        "for",
    ]
)


def _decimal(value) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _sku_price(sku: dict) -> Decimal | None:
    """USD of one base unit (a token or a character), from the first paid tier; None for a
    SKU priced otherwise or written in a shape the published schema does not have."""
    infos = sku.get("pricingInfo")
    for info in infos if isinstance(infos, list) else ():
        expression = info.get("pricingExpression") if isinstance(info, dict) else None
        if not isinstance(expression, dict):
            continue
        factor = _decimal(expression.get("baseUnitConversionFactor", 1))
        rates = expression.get("tieredRates")
        if factor is None or factor <= 0 or not isinstance(rates, list):
            continue
        for rate in rates:
            price = rate.get("unitPrice") if isinstance(rate, dict) else None
            if not isinstance(price, dict) or price.get("currencyCode", "USD") != "USD":
                return None
            units = _decimal(price.get("units") or 0)
            nanos = _decimal(price.get("nanos") or 0)
            if units is None or nanos is None:
                return None
            amount = units + nanos / (10**9)
            if amount > 0:
                return amount / factor
    return None


def _sku_target(description: str) -> tuple[str, str, str, str] | None:
    """(model, mode online|batch, tier base|long, rate key) read from a SKU description."""
    words = description.lower().replace("(", " ").replace(")", " ").split()
    if len(words) < 3 or words[0] != "gemini" or not words[1][:1].isdigit():
        return None
    variant = []
    for word in words[2:]:
        if word in _SKU_WORDS:
            break
        variant.append(word)
    rest = set(words[2 + len(variant) :])
    if not variant or not rest & {"input", "output"}:
        return None
    model = "-".join(["gemini", words[1], *variant])
    mode = "batch" if "batch" in rest else "online"
    tier = "long" if rest & {"long", ">200k"} else "base"
    if "output" in rest:
        key = "image_output" if rest & {"image", "images"} else "output"
    elif rest & {"cached", "cache"}:
        key = "cached_audio_input" if "audio" in rest else "cached_input"
        mode = "online"  # the cache rate is one rate: the discounts do not stack
    else:
        key = "audio_input" if "audio" in rest else "input"
    return model, mode, tier, key


def sku_model(description: str) -> str | None:
    """The model a Cloud Billing SKU description names (`Gemini 2.5 Flash Batch Input Text`:
    gemini-2.5-flash), by the grammar above; None when it names none."""
    target = _sku_target(description)
    return target[0] if target else None


def from_billing_catalog(pages, *, as_of: str) -> tuple[dict, list[str]]:
    """Catalog entries from `services.skus.list` pages, and the descriptions skipped."""
    if isinstance(pages, dict):
        pages = [pages]
    if not isinstance(pages, list):
        raise ImportError_("billing catalog pages are a list of skus.list responses")
    rates: dict[str, dict] = {}
    skipped: list[str] = []
    for page in pages:
        skus = page.get("skus") if isinstance(page, dict) else None
        for sku in skus if isinstance(skus, list) else ():
            if not isinstance(sku, dict):
                continue
            description = str(sku.get("description", ""))[:200]
            regions = sku.get("serviceRegions")
            regions = regions if isinstance(regions, list) else []
            target = _sku_target(description)
            price = _sku_price(sku)
            if target is None or price is None or "global" not in regions:
                skipped.append(description)
                continue
            model, mode, tier, key = target
            if not MODEL_NAME.fullmatch(model):
                skipped.append(description)
                continue
            block = rates.setdefault(model, {}).setdefault(tier, {}).setdefault(mode, {})
            block[key] = format((price * PER_MILLION).normalize(), "f")
    out = {}
    for model, tiers in rates.items():
        base = tiers.get("base", {})
        if not base.get("online"):
            skipped.append(f"{model}: no online rate")
            continue
        built = [{"max_prompt_tokens": None, "online": base["online"]}]
        if base.get("batch"):
            built[0]["batch"] = base["batch"]
        if "long" in tiers:
            built[0]["max_prompt_tokens"] = LONG_THRESHOLD
            long = tiers["long"]
            built.append(
                {"max_prompt_tokens": None, "online": {**base["online"], **long.get("online", {})}}
            )
            if long.get("batch"):
                built[1]["batch"] = long["batch"]
        out[model] = {
            "kind": "gemini",
            "family": "gemini",
            "aliases": [],
            "facts": {},
            "prices": [{"from": None, "tiers": built}],
            "sources": ["billing_catalog"],
            "as_of": as_of,
            "inferred": ["SKU descriptions mapped to models and rates by the importer's grammar"],
        }
    return out, skipped


# --- proposals and diffs ------------------------------------------------------------------


def merge(current: dict | None, imported: dict, *, origin: str) -> dict:
    """An imported entry laid over the entry in force: prices replaced, the facts, aliases and
    sources the import does not carry kept, its origin named."""
    if current is None:
        merged = dict(imported)
    else:
        merged = {**current, "prices": imported["prices"], "as_of": imported["as_of"]}
        facts = dict(current.get("facts") or {})
        facts.update({k: v for k, v in (imported.get("facts") or {}).items() if v is not None})
        merged["facts"] = facts
        for key in ("regional_uplift", "billing"):
            if key in imported:
                merged[key] = imported[key]
        merged["inferred"] = [*(current.get("inferred") or ()), *(imported.get("inferred") or ())]
    merged["sources"] = [*dict.fromkeys([*(merged.get("sources") or ()), origin])]
    return merged


def _flat(entry: dict | None) -> dict[str, object]:
    """An entry's price-relevant fields as path -> value, for a readable diff."""
    if not entry:
        return {}
    out: dict[str, object] = {}
    for index, period in enumerate(entry.get("prices") or ()):
        out[f"prices[{index}].from"] = period.get("from")
        for number, tier in enumerate(period.get("tiers") or ()):
            head = f"prices[{index}].tiers[{number}]"
            out[f"{head}.max_prompt_tokens"] = tier.get("max_prompt_tokens")
            for mode in ("online", "batch"):
                for key, value in (tier.get(mode) or {}).items():
                    out[f"{head}.{mode}.{key}"] = value
    out["regional_uplift"] = entry.get("regional_uplift")
    for key, value in (entry.get("facts") or {}).items():
        out[f"facts.{key}"] = value
    return out


def diff(models_in_force: dict, proposed: dict) -> list[dict]:
    """Per proposed model: `added`, `changed` (with each field's old and new value) or
    `unchanged`, in name order."""
    out = []
    for name in sorted(proposed):
        old = _flat(models_in_force.get(name))
        new = _flat(proposed[name])
        changes = [
            {"field": key, "old": old.get(key), "new": new.get(key)}
            for key in sorted(set(old) | set(new))
            if old.get(key) != new.get(key)
        ]
        if name not in models_in_force:
            status = "added"
        elif changes:
            status = "changed"
        else:
            status = "unchanged"
        out.append({"model": name, "status": status, "changes": changes})
    return out


def proposal(models_in_force: dict, imported: dict, *, origin: str) -> dict:
    """The entries an apply would write: each import merged over the entry in force."""
    return {
        name: merge(models_in_force.get(name), entry, origin=origin)
        for name, entry in imported.items()
    }
