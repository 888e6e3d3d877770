"""Pre-flight cost estimates of a batch job, from its input files, before Vertex sees it.

Method
------
1. The input objects are listed (a `*` in `gcsSource.uris` is expanded by listing the prefix
   before the wildcard and matching with fnmatch, as Vertex does) and their sizes summed.
2. Every line is read (ranged downloads of 8 MiB, lines split here, memory flat; at create
   this is the one pass of `shared/jobs/input_pass.py`, over the sealed copies) and each
   row priced on its own, so long-context tiers apply per row as they will on the bill. No
   sample is scaled to the size: the key holder writes the input.
   - input tokens = ceil(characters of every text part of `contents` and
     `systemInstruction` / 4), plus each media part's tokens by kind and size
     (`shared/cost/media_tokens.py`: images by their dimensions, video and audio by their
     duration, PDFs by their pages). Google documents "a token is about 4 characters; 100
     tokens are about 60-80 English words" for Gemini models. The low and high bounds use
     5 and 2 characters per token (dense English / code and most other languages; CJK
     text, ~1 char/token, can exceed the high bound) and the media rules' own bounds.
   - output tokens per row: expected = min(maxOutputTokens, 64) answer tokens plus, for
     models that think by default (2.5 Pro / Flash, or any model given a positive
     `thinkingBudget`), min(thinkingBudget, 160) thinking tokens; low = min(maxOutputTokens,
     10) and no thinking; high = maxOutputTokens, else the model's output limit (for 2.5
     models maxOutputTokens bounds answer plus thinking).
   - embeddings: input only (text-embedding-00x: billed per character, so the exact billable
     characters of `content` and `title` at every level, the tokens, cut at 2048, as a
     statistic; gemini-embedding: `request.content.parts[].text`).

Error
-----
- Input tokens: on the simulator (whose rule is chars/4 per row) the estimate is exact. On
  real Vertex, English prose lands within about +-15% of chars/4; code, JSON and most
  non-English text take more tokens per character (up to 2x, the high bound); implicit or
  explicit cache hits make the bill lower than the estimate (never assumed). Media whose
  size or header cannot be read fall back to the bounds in `media_tokens`.
- Output tokens dominate the cost of short prompts on models priced 8x higher for output,
  and no estimator can know them before the model answers: the defaults (64 answer + 160
  thinking tokens) fit short structured answers; long-form generation can be several times
  more. The low/high range brackets the truth whenever maxOutputTokens is set (high is then
  a real ceiling); without it high uses the model's 65k (8k for 2.0) limit and is loose.

Money is integer nano-dollars; the public view shows decimal strings of USD.
"""

import fnmatch
import functools
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from shared.core import clients, json_text, logs
from shared.core.errors import ApiError, invalid_argument
from shared.cost import media_tokens, pricing

CHARS_PER_TOKEN = 4
CHARS_PER_TOKEN_LOW = 5
CHARS_PER_TOKEN_HIGH = 2
EXPECTED_ANSWER_TOKENS = 64
EXPECTED_THINKING_TOKENS = 160
LOW_ANSWER_TOKENS = 10
EMBEDDING_MAX_TOKENS = 2048
READ_CHUNK_BYTES = 8 * 1024 * 1024
# A typical row: 2 KiB, of which 85% is text (measured on typical rows when the estimate
# still scaled samples): 1,740 characters.
TYPICAL_ROW_CHARS = int(2048 * 0.85)
# A model the catalog does not describe: assume it thinks and writes up to 65,536 tokens
# (the high bound stays a bound).
DEFAULT_MODEL_OUTPUT = (True, 65536)
LEVELS = ("low", "expected", "high")


def model_output(model: str) -> tuple[bool, int]:
    """(thinks by default, output token limit) from the price catalog's facts."""
    try:
        known = pricing.facts(model)
    except pricing.UnknownModelError:
        return DEFAULT_MODEL_OUTPUT
    return known.thinks_by_default, known.max_output_tokens or DEFAULT_MODEL_OUTPUT[1]


# --- one row ------------------------------------------------------------------------------


def content_parts(content) -> list:
    """The parts of a Gemini content, a lone part object taken as one (the simulator reads
    requests with this too)."""
    if not isinstance(content, dict):
        return []
    parts = content.get("parts", [])
    if isinstance(parts, dict):
        return [parts]
    return parts if isinstance(parts, list) else []


def _text_and_media(contents, media) -> tuple[int, int, list[int]]:
    """(text characters, media parts, media tokens at each level)."""
    chars = parts = 0
    tokens = [0, 0, 0]
    for content in contents:
        for part in content_parts(content):
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str):
                chars += len(part["text"])
                continue
            found = media(part)
            if found is not None:
                parts += 1
                tokens = [total + add for total, add in zip(tokens, found, strict=True)]
    return chars, parts, tokens


def _tokens(chars: int, per_token: int) -> int:
    return max(1, math.ceil(chars / per_token))


@dataclass
class Tally:
    """Running totals of a scan: rows, characters, tokens and cost at each level."""

    rows: int = 0
    malformed: int = 0
    text_chars: int = 0
    media_parts: int = 0
    line_bytes: int = 0
    input_tokens: dict = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))
    output_tokens: dict = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))
    cost_nanos: dict = field(default_factory=lambda: dict.fromkeys(LEVELS, 0))


class RowEstimator:
    """Estimates rows of one model, priced with that model's (deployment's) batch rates.

    `lookup(uri)`: a referenced object's (size, first bytes), or None (media_tokens)."""

    def __init__(self, model: str, overrides=None, location: str | None = None, lookup=None):
        self.model = model
        self.media = functools.partial(media_tokens.part_tokens, lookup=lookup)
        # The job's location: the regional uplift, as its rows will be billed.
        self.pricing = pricing.pricing(model, overrides, batch=True, location=location)
        self.embedding = self.pricing.kind == "embedding"
        self.text_embedding = model.startswith(("text-embedding", "text-multilingual"))
        self.thinks, self.output_limit = model_output(pricing.resolve_model(model))

    def add_line(self, tally: Tally, line: bytes) -> None:
        """One line without its newline (counted as one byte)."""
        if not line.strip():
            tally.line_bytes += len(line) + 1
            return
        try:
            row = json_text.loads(line, surrogates=True)
        except ValueError:
            row = None
        self.add_row(tally, row, len(line))

    def add_row(self, tally: Tally, row, size: int) -> None:
        """One parsed line of `size` bytes (not a JSON object: malformed)."""
        tally.line_bytes += size + 1
        if not isinstance(row, dict):
            tally.malformed += 1
            return
        tally.rows += 1
        if self.embedding:
            self._add_embedding(tally, row)
        else:
            self._add_gemini(tally, row)

    def _add(self, tally: Tally, level: str, tokens: pricing.RowTokens) -> None:
        tally.input_tokens[level] += tokens.prompt or tokens.embedding
        tally.output_tokens[level] += tokens.candidates + tokens.thoughts
        tally.cost_nanos[level] += self.pricing.row_nanos(tokens)

    def _add_embedding(self, tally: Tally, row: dict) -> None:
        billable = 0
        if self.text_embedding:
            text = row.get("content")
            chars = len(text) if isinstance(text, str) else 0
            for part in (text, row.get("title")):
                if isinstance(part, str):
                    billable += pricing.billable_characters(part)
        else:
            request = row["request"] if isinstance(row.get("request"), dict) else row
            chars, _, _ = _text_and_media([request.get("content")], self.media)
        tally.text_chars += chars
        for level, per_token in zip(
            LEVELS, (CHARS_PER_TOKEN_LOW, CHARS_PER_TOKEN, CHARS_PER_TOKEN_HIGH), strict=True
        ):
            tokens = _tokens(chars, per_token)
            if self.text_embedding:
                tokens = min(tokens, EMBEDDING_MAX_TOKENS)
            self._add(tally, level, pricing.RowTokens(embedding=tokens, characters=billable))

    def _add_gemini(self, tally: Tally, row: dict) -> None:
        request = row["request"] if isinstance(row.get("request"), dict) else row
        contents = request.get("contents")
        if isinstance(contents, dict):
            contents = [contents]
        if not isinstance(contents, list):
            contents = []
        chars, parts, media = _text_and_media(
            [*contents, request.get("systemInstruction")], self.media
        )
        tally.text_chars += chars
        tally.media_parts += parts
        config = request.get("generationConfig")
        config = config if isinstance(config, dict) else {}
        cap = config.get("maxOutputTokens")
        cap = cap if isinstance(cap, int) and cap > 0 else None
        thinking = config.get("thinkingConfig")
        budget = thinking.get("thinkingBudget") if isinstance(thinking, dict) else None
        budget = budget if isinstance(budget, int) else None
        thinks = (self.thinks and budget != 0) or (budget is not None and budget > 0)
        high = cap or self.output_limit
        answer = min(EXPECTED_ANSWER_TOKENS, high)
        thoughts = 0
        if thinks:
            thoughts = EXPECTED_THINKING_TOKENS
            if budget is not None and budget > 0:
                thoughts = min(thoughts, budget)
            thoughts = min(thoughts, high - answer)
        outputs = {
            "low": (min(LOW_ANSWER_TOKENS, high), 0),
            "expected": (answer, thoughts),
            "high": (high, 0),
        }
        per_token = {
            "low": CHARS_PER_TOKEN_LOW,
            "expected": CHARS_PER_TOKEN,
            "high": CHARS_PER_TOKEN_HIGH,
        }
        for level, media_level in zip(LEVELS, media, strict=True):
            prompt = _tokens(chars, per_token[level]) + media_level
            candidates, thought_tokens = outputs[level]
            self._add(
                tally,
                level,
                pricing.RowTokens(prompt=prompt, candidates=candidates, thoughts=thought_tokens),
            )


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Whole lines from byte chunks; a trailing partial line is yielded at the end."""
    rest = b""
    for chunk in chunks:
        if not chunk:
            continue
        data = rest + chunk
        lines = data.split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def scan(chunks: Iterable[bytes], estimator: RowEstimator, tally: Tally | None = None) -> Tally:
    """Count and price every row of a JSONL stream."""
    tally = tally or Tally()
    for line in iter_lines(chunks):
        estimator.add_line(tally, line)
    return tally


def typical_row(estimator: RowEstimator) -> Tally:
    """One typical row of the estimator's model (`TYPICAL_ROW_CHARS` of text): what the floor
    books for a missing row of a job without a usable estimate."""
    text = "x" * TYPICAL_ROW_CHARS
    row: dict = {"request": {"contents": [{"role": "user", "parts": [{"text": text}]}]}}
    if estimator.text_embedding:
        row = {"content": text}
    elif estimator.embedding:
        row = {"request": {"content": {"parts": [{"text": text}]}}}
    return scan([json.dumps(row).encode()], estimator)


# --- GCS ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputObject:
    bucket: str
    name: str
    size: int
    generation: int = 0

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.name}"


def _split(uri: str) -> tuple[str, str]:
    if not uri.startswith("gs://"):
        raise invalid_argument(
            f"inputConfig.gcsSource.uris: {uri!r} is not a gs:// URI.",
            field="inputConfig.gcsSource.uris",
        )
    bucket, _, path = uri.removeprefix("gs://").partition("/")
    return bucket, path


def _storage_error(uri: str, exc: Exception) -> ApiError:
    from google.api_core import exceptions

    if isinstance(exc, exceptions.NotFound):
        return invalid_argument(
            f"inputConfig.gcsSource.uris: {uri} does not exist.", field="inputConfig.gcsSource.uris"
        )
    if isinstance(exc, exceptions.Forbidden):
        return ApiError(
            403,
            f"The gateway cannot read {uri} to estimate the job's cost: grant its service "
            "account roles/storage.objectViewer on the input bucket.",
        )
    return ApiError(503, f"Reading {uri} to estimate the job's cost failed: {exc}")


def list_inputs(uris: list[str]) -> list[InputObject]:
    """Every object the URIs name, wildcards expanded; a URI matching nothing is a 400."""
    storage = clients.storage()
    found: list[InputObject] = []
    for uri in uris:
        bucket, path = _split(uri)
        try:
            if any(c in path for c in "*?["):
                prefix = re.split(r"[*?\[]", path, maxsplit=1)[0]
                matches = [
                    InputObject(bucket, blob.name, int(blob.size or 0), int(blob.generation or 0))
                    for blob in storage.list_blobs(bucket, prefix=prefix)
                    if fnmatch.fnmatchcase(blob.name, path)
                ]
                if not matches:
                    raise invalid_argument(
                        f"inputConfig.gcsSource.uris: {uri} matches no object.",
                        field="inputConfig.gcsSource.uris",
                    )
                found.extend(sorted(matches, key=lambda o: o.name))
            else:
                blob = storage.bucket(bucket).get_blob(path)
                if blob is None:
                    raise invalid_argument(
                        f"inputConfig.gcsSource.uris: {uri} does not exist.",
                        field="inputConfig.gcsSource.uris",
                    )
                found.append(
                    InputObject(bucket, path, int(blob.size or 0), int(blob.generation or 0))
                )
        except ApiError:
            raise
        except Exception as exc:
            raise _storage_error(uri, exc) from exc
    return found


def read_chunks(obj: InputObject, limit: int | None = None) -> Iterator[bytes]:
    """The object's bytes (or its first `limit`) in large ranged reads."""
    blob = clients.storage().bucket(obj.bucket).blob(obj.name)
    end = obj.size if limit is None else min(obj.size, limit)
    start = 0
    while start < end:
        stop = min(start + READ_CHUNK_BYTES, end)
        try:
            yield blob.download_as_bytes(start=start, end=stop - 1)
        except Exception as exc:
            raise _storage_error(obj.uri, exc) from exc
        start = stop


# --- the estimate of a create body ----------------------------------------------------------


def estimator_for(deployment, lookup=None) -> RowEstimator:
    """The deployment's estimator; `pricing.UnknownModelError` when its model has no price."""
    return RowEstimator(
        deployment.model, pricing.overrides_for(deployment), deployment.location, lookup
    )


def unpriced_error(deployment, exc: Exception) -> ApiError:
    """A budgeted create on a model without a price: the budget cannot be held, so it is
    refused (400 FAILED_PRECONDITION) with what to do."""
    from shared.cost import readiness

    return ApiError(
        400,
        f"This key has a budget, and {readiness.unpriced_message(deployment.model)} Until "
        f"then its budget cannot be held: use a priced model ({deployment.model_name!r} runs "
        f"{deployment.model}). ({exc})",
        status="FAILED_PRECONDITION",
    )


def record_of(deployment, estimator: RowEstimator, objects, tally: Tally, started: float) -> dict:
    """The estimate record stored on the job (every byte read: `method` is `read`)."""
    import time

    record = {
        "model": deployment.model_name,
        "priced_as": estimator.pricing.model,
        "method": "read",
        "input_files": len(objects),
        "input_bytes": sum(o.size for o in objects),
        "bytes_read": sum(o.size for o in objects),
        "rows": tally.rows,
        "malformed_rows": tally.malformed,
        "text_chars": tally.text_chars,
        "media_parts": tally.media_parts,
        "input_tokens": dict(tally.input_tokens),
        "output_tokens": dict(tally.output_tokens),
        "cost_nanos": dict(tally.cost_nanos),
    }
    logs.info(
        "estimate",
        model=deployment.model_name,
        input_files=len(objects),
        input_bytes=record["input_bytes"],
        rows=tally.rows,
        expected_nanos=tally.cost_nanos["expected"],
        latency_ms=round((time.monotonic() - started) * 1000, 1),
    )
    return record


def estimate_request(
    deployment, *, uris: list[str] | None = None, objects: list[InputObject] | None = None
) -> dict:
    """The estimate of a create's inputs for one deployment, reading every line (the
    estimate route and the backfill of old jobs; a create estimates in its one pass).

    `objects` (already listed) are priced as given, without listing again."""
    import time

    started = time.monotonic()
    try:
        estimator = estimator_for(deployment)
    except pricing.UnknownModelError as exc:
        raise unpriced_error(deployment, exc) from None
    if objects is None:
        objects = list_inputs(uris or [])
    tally = Tally()
    for obj in objects:
        scan(read_chunks(obj), estimator, tally)
    return record_of(deployment, estimator, objects, tally, started)


def public_view(record: dict | None) -> dict | None:
    """A job's estimate as the API shows it; None for a job without one."""
    return record_view(record) if record else None


def record_view(record: dict) -> dict:
    """An estimate record as the API shows it: camelCase, money as USD strings."""
    if record.get("error"):
        return {"error": record["error"]}
    cost = record.get("cost_nanos") or {}
    return {
        "model": record.get("model"),
        "pricedAs": record.get("priced_as"),
        "method": record.get("method"),
        "inputFiles": record.get("input_files"),
        "inputBytes": record.get("input_bytes"),
        "bytesRead": record.get("bytes_read"),
        "rows": record.get("rows"),
        "malformedRows": record.get("malformed_rows"),
        "inputTokens": dict(record.get("input_tokens") or {}),
        "outputTokens": dict(record.get("output_tokens") or {}),
        "costUsd": {level: pricing.nanos_to_usd(cost.get(level, 0)) for level in LEVELS},
    }


def error_pct(expected_nanos: int, actual_nanos: int) -> str | None:
    """(expected - actual) / actual in percent, one decimal; positive = overestimate."""
    if not actual_nanos:
        return None
    tenths = round((expected_nanos - actual_nanos) * 1000 / actual_nanos)
    sign = "-" if tenths < 0 else ""
    return f"{sign}{abs(tenths) // 10}.{abs(tenths) % 10}"


def cost_view(job: dict) -> dict:
    """The estimate fields of a job's cost view (GET /v1/gateway/jobs/{id}/cost)."""
    record = job.get("estimate") or None
    view: dict[str, object] = {"estimate": public_view(record), "estimateErrorPct": None}
    if record and not record.get("error") and job.get("cost_final"):
        actual = int((job.get("cost") or {}).get("cost_nanos", 0))
        view["estimateErrorPct"] = error_pct(int(record["cost_nanos"]["expected"]), actual)
    return view
