"""Pre-flight cost estimates of a batch job, from its input files, before Vertex sees it.

Method
------
1. The input objects are listed (a `*` in `gcsSource.uris` is expanded by listing the prefix
   before the wildcard and matching with fnmatch, as Vertex does) and their sizes summed.
2. `read` (total size up to `VBG_ESTIMATE_READ_LIMIT_BYTES`, default 64 MiB): every line is
   read (ranged downloads of 8 MiB, lines split here, memory flat) and each row priced on
   its own, so long-context tiers apply per row as they will on the bill:
   - input tokens = ceil(characters of every text part of `contents` and
     `systemInstruction` / 4), plus 258 per non-text part (Google's figure for an image of
     up to 384 px; larger images, audio and video cost more). Google documents "a token is
     about 4 characters; 100 tokens are about 60-80 English words" for Gemini models. The
     low and high bounds use 5 and 2 characters per token (dense English / code and most
     other languages; CJK text, ~1 char/token, can exceed the high bound).
   - output tokens per row: expected = min(maxOutputTokens, 64) answer tokens plus, for
     models that think by default (2.5 Pro / Flash, or any model given a positive
     `thinkingBudget`), min(thinkingBudget, 160) thinking tokens; low = min(maxOutputTokens,
     10) and no thinking; high = maxOutputTokens, else the model's output limit (for 2.5
     models maxOutputTokens bounds answer plus thinking).
   - embeddings: input only (text-embedding-00x: billed per character, so the exact billable
     characters of `content` and `title` at every level, the tokens, cut at 2048, as a
     statistic; gemini-embedding: `request.content.parts[].text`).
3. `size` (larger inputs): the first 1 MiB of the first object is read and estimated as
   above; its per-byte figures are scaled to the total size. If the sample holds no whole
   row, fixed ratios measured on typical rows are used (text is 85% of a row's bytes, rows
   of 2 KiB), see `FALLBACK_*`.

Error
-----
- Input tokens: on the simulator (whose rule is chars/4 per row) the `read` method is exact.
  On real Vertex, English prose lands within about +-15% of chars/4; code, JSON and most
  non-English text take more tokens per character (up to 2x, the high bound); implicit or
  explicit cache hits make the bill lower than the estimate (never assumed).
- Output tokens dominate the cost of short prompts on models priced 8x higher for output,
  and no estimator can know them before the model answers: the defaults (64 answer + 160
  thinking tokens) fit short structured answers; long-form generation can be several times
  more. The low/high range brackets the truth whenever maxOutputTokens is set (high is then
  a real ceiling); without it high uses the model's 65k (8k for 2.0) limit and is loose.
- `size`: as above, plus the sample's representativeness (a file sorted by length can be
  off by the ratio between its head and its average row).

Money is integer nano-dollars; the public view shows decimal strings of USD.
"""

import fnmatch
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from shared.core import clients, logs
from shared.core.config import settings
from shared.core.errors import ApiError, invalid_argument
from shared.cost import pricing

CHARS_PER_TOKEN = 4
CHARS_PER_TOKEN_LOW = 5
CHARS_PER_TOKEN_HIGH = 2
NON_TEXT_PART_TOKENS = 258
EXPECTED_ANSWER_TOKENS = 64
EXPECTED_THINKING_TOKENS = 160
LOW_ANSWER_TOKENS = 10
EMBEDDING_MAX_TOKENS = 2048
READ_CHUNK_BYTES = 8 * 1024 * 1024
SAMPLE_BYTES = 1024 * 1024
FALLBACK_TEXT_FRACTION = 0.85
FALLBACK_ROW_BYTES = 2048
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


def _parts(content) -> list:
    if not isinstance(content, dict):
        return []
    parts = content.get("parts", [])
    if isinstance(parts, dict):
        return [parts]
    return parts if isinstance(parts, list) else []


def _text_and_media(contents) -> tuple[int, int]:
    chars = media = 0
    for content in contents:
        for part in _parts(content):
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str):
                chars += len(part["text"])
            elif "inlineData" in part or "fileData" in part:
                media += 1
    return chars, media


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
    """Estimates rows of one model, priced with that model's (deployment's) batch rates."""

    def __init__(self, model: str, overrides=None, location: str | None = None):
        self.model = model
        # The job's location: the regional uplift, as its rows will be billed.
        self.pricing = pricing.pricing(model, overrides, batch=True, location=location)
        self.embedding = self.pricing.kind == "embedding"
        self.text_embedding = model.startswith(("text-embedding", "text-multilingual"))
        self.thinks, self.output_limit = model_output(pricing.resolve_model(model))

    def add_line(self, tally: Tally, line: bytes) -> None:
        """One line without its newline (counted as one byte)."""
        tally.line_bytes += len(line) + 1
        if not line.strip():
            return
        try:
            row = json.loads(line)
        except ValueError:
            tally.malformed += 1
            return
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
            request = row.get("request") if isinstance(row.get("request"), dict) else row
            chars, _ = _text_and_media([request.get("content")])
        tally.text_chars += chars
        for level, per_token in zip(
            LEVELS, (CHARS_PER_TOKEN_LOW, CHARS_PER_TOKEN, CHARS_PER_TOKEN_HIGH), strict=True
        ):
            tokens = _tokens(chars, per_token)
            if self.text_embedding:
                tokens = min(tokens, EMBEDDING_MAX_TOKENS)
            self._add(tally, level, pricing.RowTokens(embedding=tokens, characters=billable))

    def _add_gemini(self, tally: Tally, row: dict) -> None:
        request = row.get("request") if isinstance(row.get("request"), dict) else row
        contents = request.get("contents")
        if isinstance(contents, dict):
            contents = [contents]
        if not isinstance(contents, list):
            contents = []
        chars, media = _text_and_media([*contents, request.get("systemInstruction")])
        tally.text_chars += chars
        tally.media_parts += media
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
        for level in LEVELS:
            prompt = _tokens(chars, per_token[level]) + media * NON_TEXT_PART_TOKENS
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


def scan_sample(head: bytes, estimator: RowEstimator) -> Tally:
    """Only the whole lines of the head of a file (the last, cut line is dropped)."""
    cut = head.rfind(b"\n")
    return scan([head[: cut + 1]] if cut >= 0 else [], estimator)


def scale(sample: Tally, total_bytes: int) -> Tally:
    """A sample's per-byte figures applied to the whole input."""
    if sample.rows and sample.line_bytes:

        def grow(value: int) -> int:
            return (value * total_bytes + sample.line_bytes // 2) // sample.line_bytes

        return Tally(
            rows=grow(sample.rows),
            malformed=grow(sample.malformed),
            text_chars=grow(sample.text_chars),
            media_parts=grow(sample.media_parts),
            line_bytes=total_bytes,
            input_tokens={k: grow(v) for k, v in sample.input_tokens.items()},
            output_tokens={k: grow(v) for k, v in sample.output_tokens.items()},
            cost_nanos={k: grow(v) for k, v in sample.cost_nanos.items()},
        )
    return Tally(line_bytes=total_bytes)


def from_size(total_bytes: int, estimator: RowEstimator) -> Tally:
    """No whole row to sample: typical-row ratios, rows of FALLBACK_ROW_BYTES."""
    rows = max(1, round(total_bytes / FALLBACK_ROW_BYTES)) if total_bytes else 0
    chars_per_row = int(FALLBACK_ROW_BYTES * FALLBACK_TEXT_FRACTION)
    row = {"request": {"contents": [{"role": "user", "parts": [{"text": "x" * chars_per_row}]}]}}
    if estimator.text_embedding:
        row = {"content": "x" * chars_per_row}
    elif estimator.embedding:
        row = {"request": {"content": {"parts": [{"text": "x" * chars_per_row}]}}}
    one = scan([json.dumps(row).encode()], estimator)
    return scale(one, one.line_bytes * rows) if rows else Tally()


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


def estimate_inputs(
    objects: list[InputObject], estimator: RowEstimator, read_limit: int
) -> tuple[str, Tally, int]:
    """(method, totals, bytes read)."""
    total = sum(o.size for o in objects)
    if total <= read_limit:
        tally = Tally()
        for obj in objects:
            scan(read_chunks(obj), estimator, tally)
        return "read", tally, total
    head = b"".join(read_chunks(objects[0], SAMPLE_BYTES)) if objects else b""
    sample = scan_sample(head, estimator)
    if sample.rows:
        return "size", scale(sample, total), len(head)
    return "size", from_size(total, estimator), len(head)


def estimate_request(
    deployment, *, uris: list[str] | None = None, objects: list[InputObject] | None = None
) -> dict:
    """The estimate record of a create's inputs for one deployment (stored on the job).

    `objects` (sealed inputs, already listed) are priced as given, without listing again."""
    import time

    started = time.monotonic()
    try:
        estimator = RowEstimator(
            deployment.model, pricing.overrides_for(deployment), deployment.location
        )
    except pricing.UnknownModelError as exc:
        raise ApiError(
            500, f"gateway misconfigured: no price for {deployment.model!r} ({exc})"
        ) from None
    if objects is None:
        objects = list_inputs(uris or [])
    method, tally, read = estimate_inputs(objects, estimator, settings().estimate_read_limit_bytes)
    record = {
        "model": deployment.model_name,
        "priced_as": estimator.pricing.model,
        "method": method,
        "input_files": len(objects),
        "input_bytes": sum(o.size for o in objects),
        "bytes_read": read,
        "rows": tally.rows,
        "malformed_rows": tally.malformed,
        "text_chars": tally.text_chars,
        "input_tokens": dict(tally.input_tokens),
        "output_tokens": dict(tally.output_tokens),
        "cost_nanos": dict(tally.cost_nanos),
    }
    logs.info(
        "estimate",
        model=deployment.model_name,
        method=method,
        input_files=len(objects),
        input_bytes=record["input_bytes"],
        rows=tally.rows,
        expected_nanos=tally.cost_nanos["expected"],
        latency_ms=round((time.monotonic() - started) * 1000, 1),
    )
    return record


def public_view(record: dict | None) -> dict | None:
    """An estimate record as the API shows it: camelCase, money as USD strings."""
    if not record:
        return None
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
    view = {"estimate": public_view(record), "estimateErrorPct": None}
    if record and not record.get("error") and job.get("cost_final"):
        actual = int((job.get("cost") or {}).get("cost_nanos", 0))
        view["estimateErrorPct"] = error_pct(int(record["cost_nanos"]["expected"]), actual)
    return view
