"""Pure row logic of the Vertex simulator: known models, the usage rule, output rows.

No I/O here, so the cost and budget code (and their tests) can compute the exact figures the
simulator will write with `expected_usage(model, request)`.

The usage rule (deterministic; `h` = sha256 of the canonical JSON of the request):

The model set is the bundled price catalog's (shared/cost/prices.json): every Gemini and
embedding model Vertex serves, under any name the catalog resolves (versions, previews,
aliases); each family's usage is shaped by the catalog's facts.

Gemini (`request` = the `request` object of an input line):
- text tokens = ceil(characters of every `text` part in `contents` and `systemInstruction` / 4),
  at least 1. Each non-text part (`inlineData` / `fileData`) is 258 tokens of the modality
  of its mimeType (image/* IMAGE, audio/* AUDIO, video/* VIDEO, else DOCUMENT).
- `cachedContent` named in the request: the row fails with INVALID_ARGUMENT (explicit caching
  is not supported in batch prediction; `CACHED_CONTENT_ERROR`).
- implicit caching (models with `batch_implicit_cache`: 2.5 and 3.x): the prompt's prefix is
  everything but the last part of the last content (system instruction and earlier turns
  included); when its text reaches the model's minimum (2,048 tokens for 2.5, 4,096 for the
  later models: https://ai.google.dev/gemini-api/docs/caching) and the same prefix was already
  sent earlier in the same job (`JobCache`), the prefix's tokens rounded down to a multiple of
  256 are cached. The first occurrence is full price; `expected_usage` without a cache sees
  no hit.
- candidatesTokenCount = 10 + h % 90 text tokens, capped by generationConfig.maxOutputTokens;
  image-output models add one image of `IMAGE_TOKENS` tokens (1,290 for the Flash Image
  models, 1,120 for a 1K image of the others: the figures of Google's price notes, as
  restated at https://github.com/pydantic/genai-prices), reported in
  candidatesTokensDetails as IMAGE and answered as an inlineData part.
- thoughtsTokenCount (models that think by default, catalog `thinks_by_default`) = 50 +
  (h >> 8) % 200, capped by generationConfig.thinkingConfig.thinkingBudget when >= 0; a
  budget of 0 turns it off. The others think only when given a positive budget.
- totalTokenCount = prompt + candidates + thoughts.

text-embedding-00x / text-multilingual-embedding-002 (`request` = the input line, which
has `content`): token_count = ceil(len(content) / 4), at least 1; above 2048 it is cut to 2048
and `truncated` is true.

gemini-embedding-001 (`request` = the `request` object: `{"content": {"parts": [...]}}`):
promptTokenCount = ceil(characters of the text parts / 4), at least 1.
gemini-embedding-2 (multimodal): the text parts as above plus 258 tokens per inlineData /
fileData part, with promptTokensDetails by modality (TEXT, IMAGE, AUDIO, VIDEO, DOCUMENT) as
Gemini usage writes them (the row shape is inferred: Google's page shows the input only).

Output rows (one per non-blank input line, shuffled per job as Vertex returns them in any
order, see `shuffled`; other top-level keys of an input line such as `key` or `id` are kept,
also on failed rows):
- Gemini ok: `{...line, "status": "", "processed_time": "...+00:00", "response": {"candidates":
  [{"content": {"role": "model", "parts": [{"text": ...}]}, "finishReason": "STOP", ...}],
  "usageMetadata": <expected_usage>, "modelVersion", "createTime", "responseId"}}`
- gemini-embedding ok: `{...line, "status": "", "processed_time", "response": {"embedding":
  {"values": [8 floats]}, "usageMetadata": {"promptTokenCount", "totalTokenCount"}}}`
  (Vertex's Gemini-batch layout; the docs show the input `{"key", "request": {"content",
  "embed_content_config"}}` and bill by usageMetadata).
- text-embedding ok: `{"instance": <line>, "predictions": [{"embeddings": {"statistics":
  {"token_count": N, "truncated": false}, "values": [8 floats]}}], "status": ""}`
- failed (any model): `{...sibling keys, "request": <the request object>, "status": "Bad
  Request: {\"error\": {\"code\": 400, ...}}", "processed_time"}`; text-embedding:
  `{"instance": ..., "status"}` (see `failed_status`).
"""

import base64
import hashlib
import json
import math
import random
import re
import struct
from datetime import UTC, datetime
from http import HTTPStatus

from shared.cost import pricing
from shared.cost.estimate import EMBEDDING_MAX_TOKENS, content_parts

_CATALOG = pricing.bundled()["models"]
GEMINI_MODELS = tuple(name for name, entry in _CATALOG.items() if entry["kind"] == "gemini")
TEXT_EMBEDDING_MODELS = tuple(
    name for name, entry in _CATALOG.items() if entry.get("family") == "text-embedding"
)
GEMINI_EMBEDDING_MODELS = tuple(
    name for name, entry in _CATALOG.items() if entry.get("family") == "gemini-embedding"
)
IMAGE_MODELS = tuple(
    name
    for name, entry in _CATALOG.items()
    if any("image_output" in t["online"] for p in entry["prices"] for t in p["tiers"])
)
IMAGE_TOKENS = {"gemini-2.5-flash-image": 1290, "gemini-3.1-flash-lite-image": 1290}
DEFAULT_IMAGE_TOKENS = 1120
# A 1x1 PNG: the answer's image part (its bytes are not what is billed; the tokens are).
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
    "AAAABJRU5ErkJggg=="
)

_VERSIONED = re.compile(r"(?P<base>[a-z0-9.\-]+?)(?P<version>-\d{3})?")
NON_TEXT_PART_TOKENS = 256 + 2
IMPLICIT_CACHE_MIN_PREFIX = 2048
IMPLICIT_CACHE_MIN_PREFIX_3 = 4096
# The row's status reads `Bad Request: {"error": {"code": 400, "message": <this>, ...}}`.
CACHED_CONTENT_ERROR = (
    "Request contains cachedContent: the model does not support cached content with batch "
    "prediction."
)
EMBEDDING_DIMENSIONS = 8


class JobCache:
    """The prompt prefixes a job has sent so far: implicit caching hits only on a repeat."""

    def __init__(self):
        self.seen: set[str] = set()


class RowError(ValueError):
    """An input line the model cannot answer: it becomes a failed row, never a failed job."""


def catalog_name(model: str) -> str | None:
    """The catalog's name of a model as a create names it (versions, previews, aliases)."""
    return pricing.try_resolve(model)


def model_family(model: str) -> str | None:
    """`gemini`, `text-embedding`, `gemini-embedding` or None for a model the simulator lacks."""
    name = catalog_name(model)
    if name in TEXT_EMBEDDING_MODELS:
        return "text-embedding"
    if name in GEMINI_EMBEDDING_MODELS:
        return "gemini-embedding"
    if name in GEMINI_MODELS:
        return "gemini"
    return None


def _base(model: str) -> str:
    return catalog_name(model) or model


def model_version(model: str) -> str:
    """The `modelVersion` a response names: a versioned name as asked, 2.0 models as `-001`,
    the others by their catalog name (an alias or a dated preview answers as the model)."""
    match = _VERSIONED.fullmatch(model)
    if match and match["version"]:
        return model
    base = _base(model)
    return f"{base}-001" if base.startswith("gemini-2.0") else base


def request_hash(request) -> int:
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return int.from_bytes(hashlib.sha256(canonical.encode()).digest()[:8], "big")


def _modality(mime_type: str) -> str:
    kind = (mime_type or "").split("/", 1)[0].lower()
    return {"image": "IMAGE", "audio": "AUDIO", "video": "VIDEO"}.get(kind, "DOCUMENT")


def _prompt_modalities(request: dict) -> dict[str, int]:
    chars = 0
    other: dict[str, int] = {}
    contents = request.get("contents")
    if isinstance(contents, dict):
        contents = [contents]
    for content in [*(contents or []), request.get("systemInstruction") or {}]:
        for part in content_parts(content):
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str):
                chars += len(part["text"])
            else:
                blob = part.get("inlineData") or part.get("fileData") or {}
                mime = blob.get("mimeType", "") if isinstance(blob, dict) else ""
                modality = _modality(mime)
                other[modality] = other.get(modality, 0) + NON_TEXT_PART_TOKENS
    return {"TEXT": max(1, math.ceil(chars / 4)), **other}


def _prefix(request: dict) -> tuple[str, int]:
    """The prompt's cacheable prefix (all but the last part of the last content) as a key,
    and its text tokens."""
    contents = request.get("contents")
    if isinstance(contents, dict):
        contents = [contents]
    contents = list(contents or [])
    last = contents.pop() if contents else {}
    parts = content_parts(last)[:-1]
    prefix = {
        "systemInstruction": request.get("systemInstruction"),
        "contents": [*contents, {"parts": parts}],
    }
    chars = _text_chars(request.get("systemInstruction")) + sum(
        _text_chars(content) for content in prefix["contents"]
    )
    return json.dumps(prefix, sort_keys=True, ensure_ascii=False), math.ceil(chars / 4)


def _gemini_usage(model: str, request: dict, cache: JobCache | None = None) -> dict:
    base = _base(model)
    facts = pricing.facts(base)
    h = request_hash(request)
    modalities = _prompt_modalities(request)
    prompt = sum(modalities.values())
    cached = 0
    if _CATALOG[base]["facts"].get("batch_implicit_cache"):
        minimum = (
            IMPLICIT_CACHE_MIN_PREFIX
            if base.startswith("gemini-2.5")
            else IMPLICIT_CACHE_MIN_PREFIX_3
        )
        key, prefix_tokens = _prefix(request)
        if prefix_tokens >= minimum and cache is not None:
            if key in cache.seen:
                cached = min(prefix_tokens, prompt) // 256 * 256
            cache.seen.add(key)

    config = request.get("generationConfig") or {}
    candidates = 10 + h % 90
    max_output = config.get("maxOutputTokens")
    if isinstance(max_output, int) and max_output > 0:
        candidates = min(candidates, max_output)

    thoughts = 0
    budget = (config.get("thinkingConfig") or {}).get("thinkingBudget")
    if facts.thinks_by_default:
        thinks = budget is None or budget != 0
    else:
        thinks = isinstance(budget, int) and not isinstance(budget, bool) and budget > 0
    if thinks:
        thoughts = 50 + (h >> 8) % 200
        if isinstance(budget, int) and budget > 0:
            thoughts = min(thoughts, budget)

    output_details = [{"modality": "TEXT", "tokenCount": candidates}]
    if base in IMAGE_MODELS:
        image = IMAGE_TOKENS.get(base, DEFAULT_IMAGE_TOKENS)
        output_details.append({"modality": "IMAGE", "tokenCount": image})
        candidates += image
    usage = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + thoughts,
        "promptTokensDetails": [
            {"modality": name, "tokenCount": count} for name, count in modalities.items()
        ],
        "candidatesTokensDetails": output_details,
    }
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    if cached:
        usage["cachedContentTokenCount"] = cached
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    return usage


def _text_chars(content) -> int:
    return sum(
        len(part["text"])
        for part in content_parts(content)
        if isinstance(part, dict) and isinstance(part.get("text"), str)
    )


def expected_usage(model: str, request: dict, cache: JobCache | None = None) -> dict:
    """The usage the simulator reports for one well-formed row (see the module docstring);
    pass the job's `JobCache` to see implicit cache hits of repeated prefixes.

    Gemini: the `usageMetadata` dict. text-embedding: `{"token_count": N, "truncated": b}`.
    gemini-embedding: `{"promptTokenCount": N, "totalTokenCount": N}`.
    """
    family = model_family(model)
    if family == "gemini":
        return _gemini_usage(model, request, cache)
    if family == "text-embedding":
        tokens = max(1, math.ceil(len(request.get("content", "")) / 4))
        return {
            "token_count": min(tokens, EMBEDDING_MAX_TOKENS),
            "truncated": tokens > EMBEDDING_MAX_TOKENS,
        }
    if family == "gemini-embedding":
        tokens = max(1, math.ceil(_text_chars(request.get("content")) / 4))
        if _base(model) == "gemini-embedding-001":
            return {"promptTokenCount": tokens, "totalTokenCount": tokens}
        modalities = {"TEXT": tokens}
        for part in content_parts(request.get("content")):
            if isinstance(part, dict) and not isinstance(part.get("text"), str):
                blob = part.get("inlineData") or part.get("fileData") or {}
                mime = blob.get("mimeType", "") if isinstance(blob, dict) else ""
                modality = _modality(mime)
                modalities[modality] = modalities.get(modality, 0) + NON_TEXT_PART_TOKENS
        total = sum(modalities.values())
        details = [{"modality": name, "tokenCount": count} for name, count in modalities.items()]
        return {"promptTokenCount": total, "totalTokenCount": total, "promptTokensDetails": details}
    raise ValueError(f"unknown model {model!r}")


def embedding_values(request, dimensions: int = EMBEDDING_DIMENSIONS) -> list[float]:
    """Short deterministic unit-range floats: a real vector's shape, not its size."""
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).digest()
    return [
        round(struct.unpack(">h", digest[i * 2 : i * 2 + 2])[0] / 32768, 6)
        for i in range(dimensions)
    ]


def processed_time(now: datetime) -> str:
    """As Vertex writes it in rows: milliseconds and a +00:00 offset."""
    return now.astimezone(UTC).isoformat(timespec="milliseconds")


def rfc3339(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check_gemini(request, model: str) -> None:
    if not isinstance(request, dict):
        raise RowError("Invalid request: `request` must be a JSON object (GenerateContentRequest).")
    contents = request.get("contents")
    if not contents or not isinstance(contents, (list, dict)):
        raise RowError("Invalid request: `contents` is required and must not be empty.")
    if isinstance(contents, list):
        _check_function_turns(contents, gemini_3=_base(model).startswith("gemini-3"))


def _listed_parts(content) -> list:
    parts = content.get("parts") if isinstance(content, dict) else None
    return parts if isinstance(parts, list) else []


def _parts_with(content, key: str) -> list[dict]:
    return [p for p in _listed_parts(content) if isinstance(p, dict) and key in p]


def _check_function_turns(contents: list, *, gemini_3: bool) -> None:
    """Two rules of Gemini's function calling a transcript must keep (a row fails with 400):
    - the turn after a model turn with function calls answers every call at once: "Please
      ensure that the number of function response parts is equal to the number of function
      call parts of the function call turn." (Gemini's 400, as reported in
      https://github.com/google-gemini/gemini-cli/issues/4217);
    - Gemini 3: in the current turn (after the last user content that is not only function
      responses) the first function call of each model step carries a `thoughtSignature`
      (https://docs.cloud.google.com/vertex-ai/generative-ai/docs/thought-signatures; the
      message's wording is as reported by users, not from Google's pages).
    """
    for index, content in enumerate(contents[:-1]):
        calls = _parts_with(content, "functionCall")
        following = contents[index + 1]
        answers = _parts_with(following, "functionResponse")
        if calls and answers and len(answers) != len(calls):
            raise RowError(
                "Please ensure that the number of function response parts is equal to the "
                "number of function call parts of the function call turn."
            )
    if not gemini_3:
        return
    start = 0
    for index, content in enumerate(contents):
        answers = _parts_with(content, "functionResponse")
        if (
            isinstance(content, dict)
            and content.get("role") == "user"
            and len(answers) < len(_listed_parts(content))
        ):
            start = index
    for index, content in enumerate(contents[start:], start=start):
        calls = _parts_with(content, "functionCall")
        if calls and not calls[0].get("thoughtSignature"):
            call = calls[0]["functionCall"]
            name = call.get("name") if isinstance(call, dict) else None
            raise RowError(
                f"Unable to submit request because function call `{name}` in the "
                f"{index + 1}. content block is missing a `thought_signature`."
            )


def _gemini_row(
    model: str, line: dict, fail: str | None, now: datetime, cache: JobCache | None
) -> dict:
    request = line.get("request")
    _check_gemini(request, model)
    if request.get("cachedContent"):
        raise RowError(CACHED_CONTENT_ERROR)
    if fail:
        raise RowError(fail)
    usage = _gemini_usage(model, request, cache)
    h = request_hash(request)
    text = f"Simulated answer {h:016x} from {_base(model)}."
    parts: list[dict] = [{"text": text}]
    if _base(model) in IMAGE_MODELS:
        parts.append({"inlineData": {"mimeType": "image/png", "data": PNG}})
    response = {
        "candidates": [
            {
                "content": {"role": "model", "parts": parts},
                "finishReason": "STOP",
                "avgLogprobs": -0.1,
            }
        ],
        "usageMetadata": usage,
        "modelVersion": model_version(model),
        "createTime": rfc3339(now),
        "responseId": base64.urlsafe_b64encode(h.to_bytes(8, "big")).decode().rstrip("="),
    }
    return {**line, "status": "", "processed_time": processed_time(now), "response": response}


def _gemini_embedding_row(model: str, line: dict, fail: str | None, now: datetime) -> dict:
    request = line.get("request")
    if not isinstance(request, dict) or not (
        _text_chars(request.get("content"))
        or (_base(model) != "gemini-embedding-001" and content_parts(request.get("content")))
    ):
        raise RowError("Invalid request: `request.content.parts[].text` is required.")
    if fail:
        raise RowError(fail)
    usage = expected_usage(model, request)
    config = request.get("embed_content_config") or request.get("embedContentConfig") or {}
    dims = config.get("output_dimensionality") or config.get("outputDimensionality")
    values = embedding_values(request, min(int(dims or EMBEDDING_DIMENSIONS), EMBEDDING_DIMENSIONS))
    response = {"embedding": {"values": values}, "usageMetadata": usage}
    return {**line, "status": "", "processed_time": processed_time(now), "response": response}


def _text_embedding_row(model: str, line: dict, fail: str | None) -> dict:
    if not isinstance(line.get("content"), str) or not line["content"]:
        raise RowError("Invalid instance: a non-empty string `content` is required.")
    if fail:
        raise RowError(fail)
    stats = expected_usage(model, line)
    prediction = {"embeddings": {"statistics": stats, "values": embedding_values(line)}}
    return {"instance": line, "predictions": [prediction], "status": ""}


def output_row(
    model: str,
    raw_line: str,
    now: datetime,
    fail: str | None = None,
    cache: JobCache | None = None,
) -> tuple[dict, bool]:
    """One output row for one input line, and whether it succeeded.

    `fail` forces a failed row with that message (fault injection, as a 500). A failed row
    keeps the input (`request` and its sibling keys, or `instance` for text-embedding), has
    a non-empty `status` (see `failed_status`) and no response/predictions. Lines that are
    not JSON objects never get here on the simulator: they fail the whole job at import
    (shared/jobs/input_rules.py); the fallback below only keeps this function total.
    """
    family = model_family(model)
    code = 400
    try:
        line = json.loads(raw_line)
    except ValueError as exc:
        line = None
        error = f"Invalid JSON in input line: {exc}"
    else:
        error = None
        if not isinstance(line, dict):
            error = "Invalid input line: expected a JSON object."
    if error is None:
        try:
            if family == "gemini":
                return _gemini_row(model, line, fail, now, cache), True
            if family == "gemini-embedding":
                return _gemini_embedding_row(model, line, fail, now), True
            return _text_embedding_row(model, line, fail), True
        except RowError as exc:
            error = str(exc)
            code = 500 if fail and error == fail else 400
    return failed_row(family, line, raw_line, failed_status(error, code), now), False


def failed_status(message: str, code: int = 400) -> str:
    """A failed row's `status` as Vertex writes it: `Bad Request: {"error": {...}}`.

    The shape is documented for Gemini batch (a failed example row reads `Bad Request:
    {"error": {"code": 400, "message": "Please use a valid role: user, model.", "status":
    "INVALID_ARGUMENT"}}`); other codes and the text-embedding rows use it by inference.
    """
    status = {400: "INVALID_ARGUMENT", 500: "INTERNAL"}.get(code, "UNKNOWN")
    error = {"error": {"code": code, "message": message, "status": status}}
    return f"{HTTPStatus(code).phrase}: {json.dumps(error, ensure_ascii=False)}"


def failed_row(family, line, raw_line: str, status: str, now: datetime) -> dict:
    """The input echoed back: `request` with its sibling keys (`key`, `custom_id`, ...)."""
    if family == "text-embedding":
        return {"instance": line if line is not None else raw_line, "status": status}
    if isinstance(line, dict):
        siblings = {k: v for k, v in line.items() if k != "request"}
        request = line.get("request", line)
    else:
        siblings, request = {}, raw_line
    return {**siblings, "request": request, "status": status, "processed_time": processed_time(now)}


def shuffled(rows: list, seed: str) -> list:
    """Rows in the order Vertex writes them: any order (a capture read 3, 2, 1, 5, 4).

    Deterministic per job (`seed` = the job id) so a test can reproduce a file.
    """
    order = list(rows)
    random.Random(seed).shuffle(order)
    return order
