"""An independent price reference for the cost tests: what a predictions file should cost.

It never imports `shared/`: the rates below are copied by hand from the numbers of
`shared/cost/prices.json` (batch rates, USD per 1M tokens), and the billing rules of DESIGN.md
"Cost" are written out plainly, one row at a time:

- fresh input = promptTokenCount - cachedContentTokenCount, plus toolUsePromptTokenCount,
  at the batch input rate;
- the cached part at the cached rate (the cache discount does not stack with the batch one);
- output = candidatesTokenCount + thoughtsTokenCount, at the batch output rate;
- the tier is chosen by the row's promptTokenCount (gemini-2.5-pro: <= 200,000 or above);
- a failed row (non-empty `status`) costs nothing;
- the file's cost is the exact sum of its rows, rounded half-up to a nano-dollar once.

- the job's location: a model marked `uplift` costs 10% more on every rate outside
  `global` (regional hosts and the us / eu multi-regions alike);
- a dated price: the rates in force on the UTC day of the row's `processed_time`;
- the IMAGE part of candidatesTokensDetails at the image-output rate (image models);
- gemini-embedding-2: promptTokenCount priced by the modality of promptTokensDetails.

It covers the text rows the simulator writes for the models below, and refuses (raises)
anything else rather than guess: audio tokens, character-billed embeddings, other models.
"""

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

D = Decimal

# model -> tiers of (max prompt tokens or None, {input, cached, output} batch USD per 1M).
BATCH_RATES = {
    "gemini-2.5-flash": [(None, {"input": D("0.15"), "cached": D("0.03"), "output": D("1.25")})],
    "gemini-2.5-pro": [
        (200_000, {"input": D("0.625"), "cached": D("0.125"), "output": D("5")}),
        (None, {"input": D("1.25"), "cached": D("0.25"), "output": D("7.5")}),
    ],
    # Google's 3.x rates (online / 2 in batch; cached reads keep the online rate).
    "gemini-3.1-pro-preview": [
        (200_000, {"input": D("1"), "cached": D("0.2"), "output": D("6")}),
        (None, {"input": D("2"), "cached": D("0.4"), "output": D("9")}),
    ],
    "gemini-3-flash-preview": [
        (None, {"input": D("0.25"), "cached": D("0.05"), "output": D("1.5")})
    ],
    "gemini-3.1-flash-lite": [
        (None, {"input": D("0.125"), "cached": D("0.025"), "output": D("0.75")})
    ],
    "gemini-3.5-flash": [(None, {"input": D("0.75"), "cached": D("0.15"), "output": D("4.5")})],
    "gemini-3.5-flash-lite": [
        (None, {"input": D("0.15"), "cached": D("0.03"), "output": D("1.25")})
    ],
    "gemini-3-pro-image": [
        (None, {"input": D("1"), "cached": D("1"), "output": D("6"), "image": D("60")})
    ],
    "gemini-3.1-flash-image": [
        (None, {"input": D("0.25"), "cached": D("0.25"), "output": D("1.5"), "image": D("30")})
    ],
}
# Introductory rates through 2026-12-31, the standard ones from 2027-01-01 (UTC day).
INTRO = [(None, {"input": D("0.375"), "cached": D("0.075"), "output": D("1.875")})]
STANDARD = [(None, {"input": D("0.75"), "cached": D("0.15"), "output": D("3.75")})]
DATED = {
    name: ("2027-01-01", INTRO, STANDARD)
    for name in ("gemini-3.6-flash", "gemini-3.7-flash", "gemini-3.8-flash")
}
# Models whose every rate is 10% higher outside the global endpoint.
UPLIFT = {
    "gemini-3.1-flash-lite",
    "gemini-3.5-flash",
    "gemini-3.5-flash-lite",
    "gemini-3.6-flash",
    "gemini-3.7-flash",
    "gemini-3.8-flash",
    "gemini-3-pro-image",
    "gemini-3.1-flash-image",
    "gemini-embedding-2",
}
# gemini-embedding-2 batch, USD per 1M tokens by modality (DOCUMENT as IMAGE).
EMBEDDING_2 = {"TEXT": D("0.1"), "IMAGE": D("0.225"), "AUDIO": D("3.25"), "VIDEO": D("6")}
NANOS_PER_USD = D(10**9)
PER_MILLION = D(10**6)


@dataclass
class Expected:
    rows: int = 0
    succeeded: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    candidates_tokens: int = 0
    thoughts_tokens: int = 0
    cost_usd_exact: Decimal = Decimal(0)

    @property
    def cost_nanos(self) -> int:
        nanos = self.cost_usd_exact * NANOS_PER_USD
        return int(nanos.to_integral_value(rounding=ROUND_HALF_UP))


def utc_day(processed_time) -> str | None:
    """The UTC day of an RFC 3339 time, by hand: the offset subtracted from the clock."""
    if not processed_time:
        return None
    text = processed_time.replace("Z", "+00:00")
    head, _, rest = text.partition(".")
    zone = rest[-6:] if rest else head[-6:]
    head = head[:19]
    moment = datetime.strptime(head + zone, "%Y-%m-%dT%H:%M:%S%z")
    return moment.astimezone(UTC).date().isoformat()


def rates_for(
    model: str, prompt: int, overrides: dict | None = None, *, day: str | None = None
) -> dict[str, Decimal]:
    """Batch USD per 1M tokens for one row; `overrides` are LiteLLM per-token batch rates."""
    if model in DATED:
        change, before, after = DATED[model]
        tiers = after if day is not None and day >= change else before
    else:
        tiers = BATCH_RATES[model]
    for max_prompt, rates in tiers:
        if max_prompt is None or prompt <= max_prompt:
            chosen = dict(rates)
            break
    for field, key in (
        ("input_cost_per_token_batches", "input"),
        ("output_cost_per_token_batches", "output"),
    ):
        if overrides and field in overrides:
            chosen[key] = D(str(overrides[field])) * PER_MILLION
    return chosen


def _modality(details, name: str) -> int:
    return sum(d.get("tokenCount", 0) for d in details or [] if d.get("modality") == name)


def row_usd(
    model: str,
    usage: dict,
    overrides: dict | None = None,
    *,
    location: str | None = None,
    day: str | None = None,
) -> Decimal:
    uplift = D("1.1") if model in UPLIFT and location not in (None, "global") else D(1)
    if model == "gemini-embedding-2":
        details = usage.get("promptTokensDetails") or []
        parts = {name: _modality(details, name) for name in ("IMAGE", "AUDIO", "VIDEO")}
        parts["IMAGE"] += _modality(details, "DOCUMENT")
        parts["TEXT"] = usage.get("promptTokenCount", 0) - sum(parts.values())
        total = sum(parts[name] * EMBEDDING_2[name] for name in parts)
        return total * uplift / PER_MILLION
    for detail in usage.get("promptTokensDetails") or []:
        if detail.get("modality") == "AUDIO" and detail.get("tokenCount"):
            raise NotImplementedError("the reference does not price audio tokens")
    prompt = usage.get("promptTokenCount", 0)
    cached = usage.get("cachedContentTokenCount", 0)
    fresh = prompt - cached + usage.get("toolUsePromptTokenCount", 0)
    rates = rates_for(model, prompt, overrides, day=day)
    image = _modality(usage.get("candidatesTokensDetails"), "IMAGE") if "image" in rates else 0
    output = usage.get("candidatesTokenCount", 0) - image + usage.get("thoughtsTokenCount", 0)
    total = (
        fresh * rates["input"]
        + cached * rates["cached"]
        + output * rates["output"]
        + image * rates.get("image", D(0))
    )
    return total * uplift / PER_MILLION


def expected_cost(
    data: bytes,
    model: str,
    overrides: dict | None = None,
    *,
    location: str | None = None,
    today: str = "2026-12-07",
) -> Expected:
    """The counts and cost of one predictions file (JSONL bytes) by the rules above; a row
    without processed_time is priced on `today`."""
    if model not in BATCH_RATES and model not in DATED and model != "gemini-embedding-2":
        raise NotImplementedError(f"the reference has no rates for {model}")
    found = Expected()
    for line in data.decode().split("\n"):
        if not line.strip():
            continue
        row = json.loads(line)
        found.rows += 1
        if row.get("status"):
            found.failed += 1
            continue
        found.succeeded += 1
        usage = row["response"]["usageMetadata"]
        found.prompt_tokens += usage.get("promptTokenCount", 0)
        found.cached_tokens += usage.get("cachedContentTokenCount", 0)
        found.candidates_tokens += usage.get("candidatesTokenCount", 0)
        found.thoughts_tokens += usage.get("thoughtsTokenCount", 0)
        day = utc_day(row.get("processed_time")) or today
        found.cost_usd_exact += row_usd(model, usage, overrides, location=location, day=day)
    return found


def usd(nanos: int) -> str:
    """Nano-dollars as the API writes USD: nine decimal places."""
    return f"{D(nanos) / NANOS_PER_USD:.9f}"
