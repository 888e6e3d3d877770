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

It covers the text rows the simulator writes for the models below, and refuses (raises)
anything else rather than guess: audio tokens, embeddings, other models.
"""

import json
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

D = Decimal

# model -> tiers of (max prompt tokens or None, {input, cached, output} batch USD per 1M).
BATCH_RATES = {
    "gemini-2.5-flash": [(None, {"input": D("0.15"), "cached": D("0.03"), "output": D("1.25")})],
    "gemini-2.5-pro": [
        (200_000, {"input": D("0.625"), "cached": D("0.125"), "output": D("5")}),
        (None, {"input": D("1.25"), "cached": D("0.25"), "output": D("7.5")}),
    ],
}
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


def rates_for(model: str, prompt: int, overrides: dict | None = None) -> dict[str, Decimal]:
    """Batch USD per 1M tokens for one row; `overrides` are LiteLLM per-token batch rates."""
    for max_prompt, rates in BATCH_RATES[model]:
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


def row_usd(model: str, usage: dict, overrides: dict | None = None) -> Decimal:
    for detail in usage.get("promptTokensDetails") or []:
        if detail.get("modality") == "AUDIO" and detail.get("tokenCount"):
            raise NotImplementedError("the reference does not price audio tokens")
    prompt = usage.get("promptTokenCount", 0)
    cached = usage.get("cachedContentTokenCount", 0)
    fresh = prompt - cached + usage.get("toolUsePromptTokenCount", 0)
    output = usage.get("candidatesTokenCount", 0) + usage.get("thoughtsTokenCount", 0)
    rates = rates_for(model, prompt, overrides)
    return (
        fresh * rates["input"] + cached * rates["cached"] + output * rates["output"]
    ) / PER_MILLION


def expected_cost(data: bytes, model: str, overrides: dict | None = None) -> Expected:
    """The counts and cost of one predictions file (JSONL bytes) by the rules above."""
    if model not in BATCH_RATES:
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
        found.cost_usd_exact += row_usd(model, usage, overrides)
    return found


def usd(nanos: int) -> str:
    """Nano-dollars as the API writes USD: nine decimal places."""
    return f"{D(nanos) / NANOS_PER_USD:.9f}"
