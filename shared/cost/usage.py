"""Streaming parser of Vertex batch prediction files: rows, tokens and exact cost.

Memory stays flat whatever the file size: the input is a stream of large chunks, lines are
found in place (the partial last line is carried to the next chunk), and only a chunk's
complete lines are held at a time. A row longer than `max_line_bytes` (two chunks) is not
held: `_LongRow` reads it as it streams past, keeping only the row's own members.

json.loads of every line is the reference semantics (`_full_row`); msgspec reaches it faster,
held to it by tests/cost/test_usage_fast.py on valid, adversarial and corrupt lines: a
chunk's lines are decoded in one call into structs holding only `status`,
`response.usageMetadata` (counts typed as non-negative integers, modality details raw),
`response.modelVersion` and `predictions`. msgspec still validates every byte, so a line is
accepted only if it is JSON (it also rejects NaN and lone surrogates, which json.loads takes,
and counts of another type: those lines, like any it rejects, get json.loads). The chunk's
rows are then summed column by column in C (`_Parser.bulk`): no Python runs per common row;
failed, audio, long-context and other-model rows are found by the same column operations and
counted one by one.

Row formats:
- Gemini: `response.usageMetadata` (promptTokenCount includes cachedContentTokenCount;
  thoughtsTokenCount is output; toolUsePromptTokenCount is input; promptTokensDetails and
  cacheTokensDetails by modality), `response.modelVersion`.
- text-embedding-00x: `predictions[].embeddings.statistics.token_count`.
- gemini-embedding: `response.usageMetadata.promptTokenCount`.
- failed rows: a non-empty `status`; cost 0, message sampled.

Cost: rows are priced exactly in sub-units (shared/cost/pricing.py) and summed exactly; each
model's total in the file is rounded half-up to nano-dollars once, and the file's cost is the
sum of its models' costs. Chunking never changes the result.
"""

import json
import queue
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from itertools import compress
from operator import attrgetter
from pathlib import Path
from typing import Annotated, Any

import msgspec

from shared.cost import pricing

# A usage count above this is not believed (no model takes or writes a billion tokens in one
# row): the row is malformed, so a forged count can neither raise nor reach Firestore's int64.
MAX_ROW_TOKENS = 10**9
CHUNK_SIZE = 8 * 1024 * 1024
MAX_LINE_BYTES = 2 * CHUNK_SIZE
SAMPLE_LIMIT = 5
NO_PRICE = "model not in the price table"
NO_USAGE = "no usage in any known shape"
NO_TEXT = "no echoed instance content to count characters from"
SAMPLE_TEXT_CHARS = 200

_OPEN_BRACE, _CLOSE_BRACE = 0x7B, 0x7D
_Tokens = Annotated[int, msgspec.Meta(ge=0, le=MAX_ROW_TOKENS)]
_NO_DETAILS = msgspec.Raw(b"")


# gc=False: the decoded rows hold no cycles, and a chunk makes thousands of them; the
# cyclic collector need not track (and keep rescanning) them.
class _MUsage(msgspec.Struct, gc=False):
    """Counts as plain non-negative integers (anything else fails the decode: the line
    then takes the reference path); the modality details kept raw, searched in bulk."""

    promptTokenCount: _Tokens = 0
    cachedContentTokenCount: _Tokens = 0
    candidatesTokenCount: _Tokens = 0
    thoughtsTokenCount: _Tokens = 0
    toolUsePromptTokenCount: _Tokens = 0
    promptTokensDetails: msgspec.Raw = _NO_DETAILS
    cacheTokensDetails: msgspec.Raw = _NO_DETAILS
    candidatesTokensDetails: msgspec.Raw = _NO_DETAILS


class _MResponse(msgspec.Struct, gc=False):
    usageMetadata: _MUsage | None = None
    modelVersion: object = None


class _MRow(msgspec.Struct, gc=False):
    status: object = None
    response: _MResponse | None = None
    predictions: object = None
    processed_time: object = None


_DECODER = msgspec.json.Decoder(_MRow)
_EMPTY_RESPONSE = _MResponse()
_EMPTY_USAGE = _MUsage()

_STATUS = attrgetter("status")
_RESPONSE = attrgetter("response")
_PREDICTIONS = attrgetter("predictions")
_USAGE = attrgetter("usageMetadata")
_VERSION = attrgetter("modelVersion")
_PROMPT_TOKENS = attrgetter("promptTokenCount")
_CACHED_TOKENS = attrgetter("cachedContentTokenCount")
_CANDIDATES_TOKENS = attrgetter("candidatesTokenCount")
_THOUGHTS_TOKENS = attrgetter("thoughtsTokenCount")
_TOOL_USE_TOKENS = attrgetter("toolUsePromptTokenCount")
_PROMPT_DETAILS = attrgetter("promptTokensDetails")
_CACHE_DETAILS = attrgetter("cacheTokensDetails")
_CANDIDATE_DETAILS = attrgetter("candidatesTokensDetails")
_PROCESSED = attrgetter("processed_time")
_UTC_SUFFIXES = ("+00:00", "Z")


def _day(value) -> object:
    """The UTC day of a row's processed_time, as a sortable key (None when it has none): the
    date's text when the time is written in UTC, else the parsed date."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    if value.endswith(_UTC_SUFFIXES):
        return value[:10]
    day = pricing.as_date(value)
    return day.isoformat() if day else None


class ObjectGone(FileNotFoundError):
    """The prediction object no longer exists (or that generation is gone): permanent."""


class _Malformed(Exception):
    """The line is not a usable row."""


@dataclass
class ModelUsage:
    rows: int = 0
    succeeded: int = 0
    failed: int = 0
    malformed: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    candidates_tokens: int = 0
    thoughts_tokens: int = 0
    tool_use_prompt_tokens: int = 0
    audio_prompt_tokens: int = 0
    embedding_tokens: int = 0
    cost_nanos: int = 0
    unpriced_rows: int = 0
    no_usage_rows: int = 0
    embedding_characters: int = 0

    def counters(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(ModelUsage)}


# The counters, listed once (ModelUsage's fields, in order): the cost record, the cost view,
# `vbg cost --json` and the alerts take them, or a part of them, from here.
COUNTER_FIELDS = tuple(f.name for f in fields(ModelUsage))
TOKEN_FIELDS = tuple(name for name in COUNTER_FIELDS if name.endswith("_tokens"))


@dataclass
class FileUsage(ModelUsage):
    """The usage and cost of one prediction file (or any stream of rows).

    `unpriced_rows`: succeeded rows with usage whose model is not in the price table (neither
    the job's model nor the row's modelVersion is known); costed 0 and sampled, never silent.
    `no_usage_rows`: succeeded rows without usage in any known shape (or, for a
    character-billed model, without the echoed text); costed 0 and sampled in
    `unpriced_samples` with the reason, never silent.
    `embedding_characters`: billable characters of character-billed embedding rows.
    """

    by_model: dict[str, ModelUsage] = field(default_factory=dict)
    failed_samples: list[dict] = field(default_factory=list)
    malformed_samples: list[dict] = field(default_factory=list)
    unpriced_samples: list[dict] = field(default_factory=list)
    # The price catalog version the file was priced with (named on its cost record).
    catalog_version: str = ""

    @property
    def cost_usd(self) -> str:
        return pricing.nanos_to_usd(self.cost_nanos)

    def to_dict(self) -> dict:
        out: dict[str, object] = {**self.counters()}
        out["cost_usd"] = self.cost_usd
        out["by_model"] = {
            name: {**usage.counters(), "cost_usd": pricing.nanos_to_usd(usage.cost_nanos)}
            for name, usage in sorted(self.by_model.items())
        }
        out["failed_samples"] = [dict(s) for s in self.failed_samples]
        out["malformed_samples"] = [dict(s) for s in self.malformed_samples]
        out["unpriced_samples"] = [dict(s) for s in self.unpriced_samples]
        return out

    def models(self) -> list[str]:
        return sorted(self.by_model)


@dataclass(frozen=True)
class _Row:
    status: object = None
    usage: object = None
    model_version: object = None
    token_counts: tuple = ()
    characters: int | None = None
    shape: str | None = None
    day: object = None


def _statistics_count(holder) -> object:
    """`statistics.token_count` (or `tokenCount`) of an embedding object, None when absent."""
    if not isinstance(holder, dict):
        return None
    stats = holder.get("statistics")
    if isinstance(stats, dict):
        for key in ("token_count", "tokenCount"):
            if key in stats:
                return stats[key]
    return holder.get("tokenCount")


def _instance_characters(instance) -> int | None:
    """Billable characters of a text-embedding instance (`content`, plus `title` when given);
    None when the row does not echo a text `content`."""
    if not isinstance(instance, dict) or not isinstance(instance.get("content"), str):
        return None
    title = instance.get("title")
    chars = pricing.billable_characters(instance["content"])
    if isinstance(title, str):
        chars += pricing.billable_characters(title)
    return chars


def _full_row(line: bytes) -> _Row:
    """The reference reading of a line: json.loads of all of it.

    Usage shapes: Gemini `response.usageMetadata`; gemini-embedding either the same or a
    `tokenCount` statistic (`response.embedding.statistics.tokenCount`,
    `response.embeddings[].statistics...`, `response.embedding.tokenCount`); text-embedding
    `predictions[].embeddings.statistics.token_count` with the `instance` echoed.
    """
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise _Malformed(f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise _Malformed("not a JSON object")
    status = obj.get("status")
    if status:
        return _Row(status=status)
    response = obj.get("response")
    usage = model_version = None
    counts: list = []
    if isinstance(response, dict):
        usage = response.get("usageMetadata")
        model_version = response.get("modelVersion")
        if usage is None:
            embeddings = response.get("embeddings")
            holders = [response.get("embedding")]
            holders += embeddings if isinstance(embeddings, list) else [embeddings]
            counts = [c for c in map(_statistics_count, holders) if c is not None]
            if not counts and "tokenCount" in response:
                counts = [response["tokenCount"]]
    predictions = obj.get("predictions")
    characters = None
    if isinstance(predictions, list):
        for prediction in predictions:
            if isinstance(prediction, dict):
                count = _statistics_count(prediction.get("embeddings"))
                if count is not None:
                    counts.append(count)
        characters = _instance_characters(obj.get("instance"))
    shape = None
    if isinstance(predictions, list) and (counts or characters is not None):
        shape = pricing.CHARACTERS
    elif isinstance(response, dict) and ("embedding" in response or "embeddings" in response):
        shape = pricing.TOKENS
    return _Row(
        status=status,
        usage=usage,
        model_version=model_version,
        token_counts=tuple(counts),
        characters=characters,
        shape=shape,
        day=_day(obj.get("processed_time")),
    )


def _one_value_per_line(data: bytes, pos: int, end: int, values: int) -> bool:
    """Whether data[pos:end] (ending with a newline) holds `values` JSON values one per line.

    msgspec's decode_lines reads a stream of values, not lines. `}` newline `{` occurs in JSON
    only between two values (a string holds no raw newline, and values inside a container are
    comma-separated), so when every newline sits so, each separates two values, and as many
    values as lines means one value per line.
    """
    if data[pos] != _OPEN_BRACE or data[end - 2] != _CLOSE_BRACE:
        return False
    find = data.find
    lines = 0
    cut = find(b"\n", pos, end)
    last = end - 1
    while cut >= 0:
        lines += 1
        if cut != last and (data[cut - 1] != _CLOSE_BRACE or data[cut + 1] != _OPEN_BRACE):
            return False
        cut = find(b"\n", cut + 1, end)
    return lines == values


def _special_details(usage) -> bool:
    """Modality details that may hold audio (an escape may spell AUDIO)."""
    for raw in (usage.promptTokensDetails, usage.cacheTokensDetails):
        data = bytes(raw)
        if b"AUDIO" in data or b"\\" in data:
            return True
    return False


def _image_details(usage) -> bool:
    """Output details that may hold image tokens (an escape may spell IMAGE)."""
    data = bytes(usage.candidatesTokensDetails)
    return b"IMAGE" in data or b"\\" in data


def _raw_value(raw):
    return msgspec.json.decode(raw) if len(raw) else None


def _struct_row(row) -> _Row:
    """A row decoded by msgspec as the reference reading would give it (no predictions)."""
    if row.status:
        return _Row(status=row.status)
    response = row.response
    if response is None:
        return _Row(status=row.status)
    usage = response.usageMetadata
    if usage is not None:
        usage = {
            "promptTokenCount": usage.promptTokenCount,
            "cachedContentTokenCount": usage.cachedContentTokenCount,
            "candidatesTokenCount": usage.candidatesTokenCount,
            "thoughtsTokenCount": usage.thoughtsTokenCount,
            "toolUsePromptTokenCount": usage.toolUsePromptTokenCount,
            "promptTokensDetails": _raw_value(usage.promptTokensDetails),
            "cacheTokensDetails": _raw_value(usage.cacheTokensDetails),
            "candidatesTokensDetails": _raw_value(usage.candidatesTokensDetails),
        }
    return _Row(
        status=row.status,
        usage=usage,
        model_version=response.modelVersion,
        day=_day(row.processed_time),
    )


def _line_of(data: bytes, starts, index: int) -> bytes:
    """The index-th row's line: `starts` is where each line begins, or where the first does."""
    if isinstance(starts, int):
        return _nth_line(data, starts, index)
    return data[starts[index] : data.find(b"\n", starts[index])]


def _nth_line(data: bytes, pos: int, index: int) -> bytes:
    for _ in range(index):
        pos = data.find(b"\n", pos) + 1
    return data[pos : data.find(b"\n", pos)]


# --- rows of any length -------------------------------------------------------------------

# The members a row is priced from, by depth: the row's own, then its response's own.
_ROW_MEMBERS = frozenset({"status", "response", "predictions", "instance"})
_RESPONSE_MEMBERS = frozenset(
    {"usageMetadata", "modelVersion", "embedding", "embeddings", "tokenCount"}
)
# A member read in full from a long row is at most this long (Vertex writes them in KiB); an
# echoed `instance` beyond it is dropped (a character-billed row then has no text, unpriced),
# any other makes the row malformed. The reduced row as a whole is bounded the same way.
MEMBER_BYTES = 1024 * 1024
REDUCED_BYTES = 4 * MEMBER_BYTES
KEY_BYTES = 256
MAX_DEPTH = 1000  # json.loads, the reference reading, refuses deeper nesting
_HEAD_BYTES = SAMPLE_TEXT_CHARS * 4  # of a long row, kept for its malformed sample

_STRUCT, _COPY, _SKIP = range(3)
_KEY, _EMIT, _DROP = range(1, 4)
_OPENERS, _CLOSERS = b"{[", b"}]"
_QUOTE, _ESCAPE = 0x22, 0x5C
# Around the row: what bytes.strip() takes off a line, as `_Parser.line` does.
_LINE_WS_RUN = re.compile(rb"[ \t\r\n\x0b\x0c]*")
# Inside a value read or skipped whole: runs without brackets, and whole strings.
_RUN = re.compile(rb'(?:[^"\[\]{}]++|"[^"\\]*+(?:\\[\s\S][^"\\]*+)*+")*+')
_STRING_REST = re.compile(rb'[^"\\]*+(?:\\[\s\S][^"\\]*+)*+')
_JSON_WS = re.compile(rb"[ \t\r\n]*")
_SCALAR = re.compile(rb'[^ \t\r\n,:\[\]{}"]+')


class _LongRow:
    """A row longer than the parser holds, read as it streams past: memory stays bounded.

    It writes the reduced row: the line itself at the row's top level and inside its
    `response` object, except that every other member's string or container value loses its
    contents (`""`, `{}`, `[]`, its key `""`); the members the row is priced from
    (`_ROW_MEMBERS`, `_RESPONSE_MEMBERS`) are kept whole. json.loads of the reduced row,
    the reference reading, then sees exactly the row's own `status` and
    `response.usageMetadata` (duplicates and escaped keys as json.loads resolves them):
    strings and nesting are followed byte by byte, so a `usageMetadata` inside the echoed
    request, or anywhere but the response's own members, is never read as the row's.
    What it does not check is the grammar inside the values it empties (numbers, literals,
    UTF-8 of the echoed request): a line broken only there is read from its own members.
    """

    def __init__(self, parts: list[bytes]):
        self.out = bytearray()
        self.head = bytearray()
        self.stack = bytearray()
        self.keys: list[str | None] = [None, None, None]
        self.mode = _STRUCT
        self.value_depth = 0
        self.value_start = 0
        self.value_key: str | None = None
        self.string = 0  # inside a string: _KEY, _EMIT or _DROP
        self.string_ends_value = False
        self.escape = False
        self.key = bytearray()
        self.error: str | None = None
        self.started = False
        for part in parts:
            self.feed(part, len(part))

    def feed(self, data: bytes, end: int) -> None:
        """Read data[:end], the next bytes of the line."""
        if len(self.head) < _HEAD_BYTES:
            self.head += data[: min(end, _HEAD_BYTES - len(self.head))]
        pos = 0
        while pos < end and self.error is None:
            if self.string:
                pos = self._string(data, pos, end)
            elif self.mode == _STRUCT:
                pos = self._struct(data, pos, end)
            else:
                pos = self._value(data, pos, end)

    def reduced(self) -> bytes | None:
        """The reduced row (None for a blank line); a row that cannot be read is _Malformed."""
        if self.error is None and self.started and (self.stack or self.string):
            self.error = "the row ends inside a value (cut short)"
        if self.error is not None:
            raise _Malformed(self.error)
        return bytes(self.out) if self.started else None

    def _fail(self, error: str, end: int) -> int:
        self.error = error
        return end

    def _emit(self, data: bytes | bytearray) -> None:
        self.out += data
        if len(self.out) > REDUCED_BYTES:
            self.error = f"the row's own members pass {REDUCED_BYTES} bytes"
        elif self.mode == _COPY and len(self.out) - self.value_start > MEMBER_BYTES:
            if self.value_key != "instance":
                self.error = f"member {self.value_key!r} longer than {MEMBER_BYTES} bytes"
                return
            del self.out[self.value_start + 1 :]  # keep the opening quote or bracket
            self.mode = _SKIP
            if self.string == _EMIT:
                self.string = _DROP

    def _string(self, data: bytes, pos: int, end: int) -> int:
        if self.escape:
            self.escape = False
            self._string_bytes(data[pos : pos + 1])
            return pos + 1
        stop = _STRING_REST.match(data, pos, end).end()  # type: ignore[union-attr]  # a run, empty or not
        self._string_bytes(data[pos:stop])
        if stop == end:
            return end
        if data[stop] == _ESCAPE:  # the line's next bytes continue the escape
            self._string_bytes(b"\\")
            self.escape = True
            return end
        self._string_end()
        return stop + 1

    def _string_bytes(self, text: bytes) -> None:
        if self.string == _EMIT:
            self._emit(text)
        elif self.string == _KEY and len(self.key) <= KEY_BYTES:
            self.key += text[: KEY_BYTES + 1]

    def _string_end(self) -> None:
        role, self.string = self.string, 0
        if role == _KEY:
            self._key_end()
            return
        if role == _EMIT or self.string_ends_value:
            self._emit(b'"')
        if self.string_ends_value:
            self.string_ends_value = False
            self.mode = _STRUCT

    def _key_end(self) -> None:
        name = None
        if len(self.key) <= KEY_BYTES:
            try:
                name = json.loads(b'"' + self.key + b'"')
            except ValueError:
                self.error = "a member name is not a JSON string"
                return
        wanted = _ROW_MEMBERS if len(self.stack) == 1 else _RESPONSE_MEMBERS
        if name not in wanted:
            name = None
        self.keys[len(self.stack)] = name
        self._emit(b'"' + self.key + b'"' if name is not None else b'""')

    def _struct(self, data: bytes, pos: int, end: int) -> int:
        """The row's top level and its response object: every token kept, values decided."""
        depth = len(self.stack)
        if not depth:  # before or after the row's object
            pos = _LINE_WS_RUN.match(data, pos, end).end()  # type: ignore[union-attr]  # a run, empty or not
            if pos == end:
                return end
            if self.started:
                return self._fail("extra data after the row", end)
            if data[pos] != _OPENERS[0]:
                return self._fail("not a JSON object", end)
            self.started = True
            self.stack.append(data[pos])
            self._emit(b"{")
            return pos + 1
        pos = _JSON_WS.match(data, pos, end).end()  # type: ignore[union-attr]  # a run, empty or not
        if pos == end:
            return end
        char = data[pos]
        if char in _CLOSERS:
            if self.stack[-1] != _OPENERS[_CLOSERS.index(char)]:
                return self._fail("mismatched brackets", end)
            self.stack.pop()
            self._emit(data[pos : pos + 1])
            return pos + 1
        if char in b",:":
            self._emit(data[pos : pos + 1])
            return pos + 1
        in_object = self.stack[-1] == _OPENERS[0]
        if char == _QUOTE and in_object and self.out[-1:] in (b"{", b","):
            self.string, self.key = _KEY, bytearray()
            return pos + 1
        if char != _QUOTE and char not in _OPENERS:
            scalar = _SCALAR.match(data, pos, end)
            if scalar is None:
                return self._fail("not JSON", end)
            self._emit(data[pos : scalar.end()])
            return scalar.end()
        key = self.keys[depth] if in_object else None
        if depth == 1 and key == "response" and char == _OPENERS[0]:
            self.stack.append(char)
            self.keys[2] = None
            self._emit(b"{")
            return pos + 1
        self.mode = _COPY if key is not None and key != "response" else _SKIP
        self.value_depth, self.value_start, self.value_key = depth, len(self.out), key
        self._emit(data[pos : pos + 1])
        if char == _QUOTE:
            self.string = _EMIT if self.mode == _COPY else _DROP
            self.string_ends_value = True
        else:
            self.stack.append(char)
        return pos + 1

    def _value(self, data: bytes, pos: int, end: int) -> int:
        """Inside a container value read whole (_COPY) or emptied (_SKIP)."""
        stop = _RUN.match(data, pos, end).end()  # type: ignore[union-attr]  # a run, empty or not
        if self.mode == _COPY and stop > pos:
            self._emit(data[pos:stop])
        if stop == end:
            return end
        char = data[stop]
        if char == _QUOTE:
            self.string = _EMIT if self.mode == _COPY else _DROP
            if self.mode == _COPY:
                self._emit(b'"')
            return stop + 1
        if char in _OPENERS:
            if len(self.stack) >= MAX_DEPTH:
                return self._fail(f"nested deeper than {MAX_DEPTH}", end)
            self.stack.append(char)
        else:
            if self.stack[-1] != _OPENERS[_CLOSERS.index(char)]:
                return self._fail("mismatched brackets", end)
            self.stack.pop()
        if self.mode == _COPY or len(self.stack) == self.value_depth:
            self._emit(data[stop : stop + 1])
        if len(self.stack) == self.value_depth:
            self.mode = _STRUCT
        return stop + 1


# --- accounting ---------------------------------------------------------------------------


def _count(value) -> int:
    """A usage count as billed: an integer from 0 to MAX_ROW_TOKENS, else the row is malformed."""
    if type(value) is int and 0 <= value <= MAX_ROW_TOKENS:
        return value
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Malformed(f"token count {str(value)[:40]!r} is not an integer")
    raise _Malformed(
        f"token count {str(value)[:40]} is outside 0..{MAX_ROW_TOKENS} (not a plausible row)"
    )


def _modality_tokens(details, modality: str) -> int:
    if not isinstance(details, list):
        return 0
    total = 0
    for item in details:
        if isinstance(item, dict) and item.get("modality") == modality:
            total += _count(item.get("tokenCount"))
    return total


(
    _ROWS,
    _SUCCEEDED,
    _FAILED,
    _MALFORMED,
    _PROMPT,
    _CACHED,
    _CANDIDATES,
    _THOUGHTS,
    _TOOL_USE,
    _AUDIO,
    _EMBEDDING,
    _COST,
    _UNPRICED,
    _NO_USAGE,
    _CHARACTERS,
) = range(len(COUNTER_FIELDS))


class _Parser:
    """Counts per model in flat int lists (one update per row); totals are summed at the end."""

    def __init__(self, model, overrides, batch, location=None, at=None):
        self.overrides = overrides
        self.batch = batch
        self.location = location
        self.catalog_version = pricing.version()
        # The day a row without processed_time is priced at (the job's time; else today).
        self.default_day = (pricing.as_date(at) or pricing.today()).isoformat()
        self.job_model = pricing.try_resolve(model) if model else None
        self.raw_model = model
        self.counts: dict[str, list[int]] = {}
        self.malformed_rows = 0
        self.failed_samples: list[dict] = []
        self.malformed_samples: list[dict] = []
        self.unpriced_samples: list[dict] = []
        # model version as written -> (label, pricing or None)
        self._models: dict[object, tuple[str, pricing.ModelPricing | None]] = {}
        # label -> the part of its exact cost in Decimal sub-units (fractional overrides)
        self.decimal_cost: dict[str, Decimal | int] = {}

    def _model(self, version, day=None) -> tuple[str, pricing.ModelPricing | None]:
        """The label and pricing of a row's model on a day (its processed_time, UTC)."""
        if not isinstance(version, str):
            version = None
        key = (version, day or self.default_day)
        known = self._models.get(key)
        if known is None:
            text = version if isinstance(version, str) else None
            name = self.job_model or pricing.try_resolve(text)
            label = name or text or self.raw_model or "unknown"
            priced = (
                pricing.pricing(
                    name, self.overrides, batch=self.batch, location=self.location, at=key[1]
                )
                if name
                else None
            )
            known = (label, priced)
            if len(self._models) < 1024:
                self._models[key] = known
        return known

    def _embedding_model(self, billing: str) -> tuple[str, pricing.ModelPricing | None]:
        """An embedding row that names no model, in a file whose job model is unknown: its
        shape tells the family (text-embedding rows are billed per character, gemini-embedding
        per token); priced when every model of that family in the table has one price."""
        name = pricing.family_model(billing)
        if name is None:
            return self.raw_model or "unknown", None
        label = "text-embedding" if billing == pricing.CHARACTERS else "gemini-embedding"
        priced = pricing.pricing(name, self.overrides, batch=self.batch, location=self.location)
        return label, priced

    def _counts(self, label: str) -> list[int]:
        counts = self.counts.get(label)
        if counts is None:
            counts = self.counts[label] = [0] * len(COUNTER_FIELDS)
        return counts

    def malformed(self, lineno: int, error: str, line: bytes | bytearray) -> None:
        self.malformed_rows += 1
        if len(self.malformed_samples) < SAMPLE_LIMIT:
            text = line[: SAMPLE_TEXT_CHARS * 4].decode("utf-8", "replace")[:SAMPLE_TEXT_CHARS]
            self.malformed_samples.append({"line": lineno, "error": error, "text": text})

    def line(self, lineno: int, line: bytes) -> None:
        if line[:1] != b"{" or line[-1:] != b"}":
            line = line.strip()
            if not line:
                return
        try:
            self.account(lineno, _full_row(line))
        except _Malformed as exc:
            self.malformed(lineno, str(exc), line)

    def long_row(self, lineno: int, row: "_LongRow") -> None:
        """A row read as it streamed past (longer than the parser holds): its reduced row."""
        try:
            reduced = row.reduced()
            if reduced is not None:
                self.account(lineno, _full_row(reduced))
        except _Malformed as exc:
            self.malformed(lineno, str(exc), row.head)

    def lines(self, data: bytes, pos: int, end: int, lineno: int) -> int:
        """Every line of data[pos:end] (which ends with a newline); returns the last line number."""
        if pos >= end:
            return lineno
        handle = self.line
        for line in data[pos : end - 1].split(b"\n"):
            lineno += 1
            handle(lineno, line)
        return lineno

    def block(self, data: bytes, pos: int, end: int, lineno: int) -> int:
        """The lines of data[pos:end] decoded by msgspec (full validation, members skipped).

        msgspec agrees with json.loads on every line it accepts (it rejects NaN, lone
        surrogates and the like, which json.loads takes, and counts that are not plain
        non-negative integers): a line it rejects, or one with `predictions`, takes `line`,
        the reference path. The rows of a chunk are then counted in bulk (`bulk`).
        """
        if pos >= end:
            return lineno
        view = memoryview(data)
        try:
            decoded = _DECODER.decode_lines(view[pos:end])
        except Exception:
            decoded = None
        if (
            decoded is not None
            and _one_value_per_line(data, pos, end, len(decoded))
            and list(map(_PREDICTIONS, decoded)).count(None) == len(decoded)
        ):
            self.bulk(decoded, range(lineno + 1, lineno + 1 + len(decoded)), data, pos)
            return lineno + len(decoded)
        decode = _DECODER.decode
        find = data.find
        handle = self.line
        rows: list = []
        linenos: list[int] = []
        starts: list[int] = []
        while pos < end:
            start = pos
            cut = find(b"\n", start, end)
            pos = cut + 1
            lineno += 1
            try:
                row = decode(view[start:cut])
            except Exception:
                row = None
            if row is None or row.predictions is not None:
                if rows:
                    self.bulk(rows, linenos, data, starts)
                    rows, linenos, starts = [], [], []
                handle(lineno, data[start:cut])
                continue
            rows.append(row)
            linenos.append(lineno)
            starts.append(start)
        if rows:
            self.bulk(rows, linenos, data, starts)
        return lineno

    def bulk(self, rows: list, linenos, data: bytes, starts) -> None:  # noqa: C901 (the hot loop, kept whole for speed)
        """Count decoded rows (none with `predictions`) column by column, in C.

        The common rows (not failed, with a usage block, no audio details, of one model priced
        in integer sub-units and within its first tier) are summed per counter with `sum` over
        `map`, and priced once for them all; the others, found by the same column operations,
        go through `account` one by one, in line order. `starts` is where the rows' lines
        begin in `data` (a list), or where the first one does when they are consecutive.
        """
        n = len(rows)
        index = range(n)
        statuses = list(map(_STATUS, rows))
        special = set(compress(index, statuses))
        responses = list(map(_RESPONSE, rows))
        if None in responses:
            special.update(i for i in index if responses[i] is None)
            responses = [_EMPTY_RESPONSE if r is None else r for r in responses]
        usages = list(map(_USAGE, responses))
        if None in usages:
            special.update(i for i in index if usages[i] is None)
            usages = [_EMPTY_USAGE if u is None else u for u in usages]
        days = list(map(_day, map(_PROCESSED, rows)))
        day = days[n // 2]
        if days.count(day) != n:
            # Rows of other days may fall in another price period: one by one.
            special.update(i for i in index if days[i] != day)
        if self.job_model is not None:
            label, priced = self._model(None, day)
        else:
            versions = list(map(_VERSION, responses))
            version = versions[n // 2]
            if versions.count(version) != n:
                special.update(i for i in index if versions[i] != version)
            label, priced = self._model(version, day)
        tiers = priced.tiers if priced is not None and priced.kind != "embedding" else ()
        rates = tiers[0].subunit_rates if tiers else None
        if rates is None:
            special = set(index)
        else:
            prompts = list(map(_PROMPT_TOKENS, usages))
            limit = tiers[0].max_prompt_tokens
            if limit is not None and max(prompts) > limit:
                special.update(compress(index, map(limit.__lt__, prompts)))
            details = b"".join(map(_PROMPT_DETAILS, usages)) + b"".join(map(_CACHE_DETAILS, usages))
            if b"AUDIO" in details or b"\\" in details:
                special.update(i for i in index if _special_details(usages[i]))
            if rates[5] != rates[1]:  # an image-output rate: rows with image output apart
                output = b"".join(map(_CANDIDATE_DETAILS, usages))
                if b"IMAGE" in output or b"\\" in output:
                    special.update(i for i in index if _image_details(usages[i]))
        if rates is not None and len(special) < n:
            if special:
                keep = [True] * n
                for i in special:
                    keep[i] = False
                usages = list(compress(usages, keep))
                prompts = list(compress(prompts, keep))
            cached = list(map(_CACHED_TOKENS, usages))
            prompt_sum = sum(prompts)
            cached_billed = sum(map(min, cached, prompts))
            candidates = sum(map(_CANDIDATES_TOKENS, usages))
            thoughts = sum(map(_THOUGHTS_TOKENS, usages))
            tool_use = sum(map(_TOOL_USE_TOKENS, usages))
            counts = self._counts(label)
            counts[_ROWS] += len(usages)
            counts[_SUCCEEDED] += len(usages)
            counts[_PROMPT] += prompt_sum
            counts[_CACHED] += sum(cached)
            counts[_CANDIDATES] += candidates
            counts[_THOUGHTS] += thoughts
            counts[_TOOL_USE] += tool_use
            counts[_COST] += (
                (prompt_sum - cached_billed + tool_use) * rates[0]
                + (candidates + thoughts) * rates[1]
                + cached_billed * rates[2]
            )
        for i in sorted(special):
            row = rows[i]
            if not row.status and (
                row.response is None
                or row.response.usageMetadata is None
                or (self.job_model is None and row.response.modelVersion is None)
            ):
                # No Gemini usage block: an embedding shape (tokenCount statistic) or none;
                # the reference reading knows them all.
                self.line(linenos[i], _line_of(data, starts, i))
                continue
            try:
                self.account(linenos[i], _struct_row(row))
            except _Malformed:
                self.line(linenos[i], _line_of(data, starts, i))

    def account(self, lineno: int, row: _Row) -> None:
        if row.status:
            counts = self._counts(self.job_model or self.raw_model or "unknown")
            counts[_ROWS] += 1
            counts[_FAILED] += 1
            if len(self.failed_samples) < SAMPLE_LIMIT:
                status = row.status
                message = status if isinstance(status, str) else json.dumps(status)
                self.failed_samples.append({"line": lineno, "message": message[:1000]})
            return

        usage = row.usage
        label, priced = self._model(row.model_version, row.day)
        if priced is None and row.shape and self.job_model is None and row.model_version is None:
            label, priced = self._embedding_model(row.shape)
        if usage is not None:
            if not isinstance(usage, dict):
                raise _Malformed("usageMetadata is not an object")
            get = usage.get
            prompt = _count(get("promptTokenCount"))
            details = get("promptTokensDetails")
            if priced is not None and priced.kind == "embedding":
                tokens = pricing.RowTokens(
                    prompt=prompt,
                    embedding=prompt,
                    embedding_image=_modality_tokens(details, "IMAGE")
                    + _modality_tokens(details, "DOCUMENT"),
                    embedding_audio=_modality_tokens(details, "AUDIO"),
                    embedding_video=_modality_tokens(details, "VIDEO"),
                )
            else:
                cache_details = get("cacheTokensDetails")
                output_details = get("candidatesTokensDetails")
                tokens = pricing.RowTokens(
                    prompt=prompt,
                    cached=_count(get("cachedContentTokenCount")),
                    candidates=_count(get("candidatesTokenCount")),
                    thoughts=_count(get("thoughtsTokenCount")),
                    tool_use=_count(get("toolUsePromptTokenCount")),
                    audio=_modality_tokens(details, "AUDIO") if details else 0,
                    cached_audio=_modality_tokens(cache_details, "AUDIO") if cache_details else 0,
                    image_output=_modality_tokens(output_details, "IMAGE"),
                )
        elif row.token_counts:
            tokens = pricing.RowTokens(embedding=sum(_count(c) for c in row.token_counts))
        else:
            tokens = None
        by_characters = priced is not None and priced.billing == pricing.CHARACTERS
        if by_characters:
            if row.characters is None:
                tokens = None
            else:
                tokens = tokens or pricing.RowTokens()
                tokens.characters = _count(row.characters)

        counts = self._counts(label)
        counts[_ROWS] += 1
        counts[_SUCCEEDED] += 1
        if tokens is None:
            counts[_NO_USAGE] += 1
            self._unpriced_sample(lineno, row, NO_TEXT if by_characters else NO_USAGE)
            return
        if tokens.embedding or tokens.characters:
            counts[_EMBEDDING] += tokens.embedding
            counts[_CHARACTERS] += tokens.characters
        else:
            counts[_PROMPT] += tokens.prompt
            counts[_CACHED] += tokens.cached
            counts[_CANDIDATES] += tokens.candidates
            counts[_THOUGHTS] += tokens.thoughts
            counts[_TOOL_USE] += tokens.tool_use
            counts[_AUDIO] += tokens.audio
        if priced is None:
            counts[_UNPRICED] += 1
            self._unpriced_sample(lineno, row, NO_PRICE)
        else:
            cost = priced.row_subunits(tokens)
            if type(cost) is int:
                counts[_COST] += cost
            else:
                self.decimal_cost[label] = pricing.EXACT.add(self.decimal_cost.get(label, 0), cost)

    def _unpriced_sample(self, lineno: int, row: _Row, reason: str) -> None:
        if len(self.unpriced_samples) < SAMPLE_LIMIT:
            version = row.model_version if isinstance(row.model_version, str) else None
            self.unpriced_samples.append(
                {"line": lineno, "model": version or self.raw_model, "reason": reason}
            )

    def result(self) -> FileUsage:
        result = FileUsage(
            failed_samples=self.failed_samples,
            malformed_samples=self.malformed_samples,
            unpriced_samples=self.unpriced_samples,
            catalog_version=self.catalog_version,
        )
        for label, counts in self.counts.items():
            if not counts[_ROWS]:
                continue
            exact: int | Decimal = counts[_COST]
            if label in self.decimal_cost:
                exact = pricing.EXACT.add(exact, self.decimal_cost[label])
            counts[_COST] = pricing.round_subunits(exact)
            result.by_model[label] = ModelUsage(*counts)
            for name, value in zip(COUNTER_FIELDS, counts, strict=True):
                setattr(result, name, getattr(result, name) + value)
        result.rows += self.malformed_rows
        result.malformed += self.malformed_rows
        return result


def parse_predictions(
    chunks: Iterable[bytes],
    *,
    model: str | None = None,
    overrides: Mapping[str, Decimal] | None = None,
    batch: bool = True,
    location: str | None = None,
    at=None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> FileUsage:
    """Count and price every row of a predictions file given as a stream of byte chunks.

    `model` is the job's model: when known it prices every row; when None or not in the
    table, each row's `response.modelVersion` does. `location` is the job's (the regional
    uplift: None or `global`, none). Each row is priced by the catalog period in force on
    the UTC day of its `processed_time`; a row without one, on the day of `at` (the job's
    time; None: today). Never raises for bad rows: failed, malformed and unpriced rows are
    counted and sampled.
    """
    parser = _Parser(model, overrides, batch, location, at)
    handle = parser.line
    block = parser.block
    lineno = 0
    parts: list[bytes] = []
    pending = 0
    long: _LongRow | None = None
    for chunk in chunks:
        if not chunk:
            continue
        cut = chunk.find(b"\n")
        if cut < 0:
            if long is not None:
                long.feed(chunk, len(chunk))
                continue
            parts.append(chunk)
            pending += len(chunk)
            if pending > max_line_bytes:
                long, parts, pending = _LongRow(parts), [], 0
            continue
        if long is not None:
            long.feed(chunk, cut)
            lineno += 1
            parser.long_row(lineno, long)
            long = None
        elif parts:
            parts.append(chunk[:cut])
            lineno += 1
            handle(lineno, b"".join(parts))
            parts, pending = [], 0
        else:
            cut = -1
        last = chunk.rfind(b"\n") + 1
        lineno = block(chunk, cut + 1, last, lineno)
        tail = chunk[last:]
        if tail:
            parts.append(tail)
            pending = len(tail)
            if pending > max_line_bytes:
                long, parts, pending = _LongRow(parts), [], 0
    if long is not None:
        parser.long_row(lineno + 1, long)
    elif parts:
        handle(lineno + 1, b"".join(parts))
    return parser.result()


def read_file_chunks(path, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """The file in chunks, the next one read by a thread while the caller parses this one."""
    with Path(path).open("rb") as handle:
        yield from _read_ahead(lambda: handle.read(chunk_size))


def _read_ahead(read) -> Iterator[bytes]:
    """`read()` until it returns nothing, one call ahead of the consumer (reads release the
    GIL); an error in `read` is raised here, and closing the iterator stops the thread."""
    ready: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def run() -> None:
        try:
            while not stop.is_set():
                chunk = read()
                ready.put((chunk, None))
                if not chunk:
                    return
        except BaseException as exc:  # handed to the consumer
            ready.put((b"", exc))

    thread = threading.Thread(target=run, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            chunk, error = ready.get()
            if error is not None:
                raise error
            if not chunk:
                return
            yield chunk
    finally:
        stop.set()
        while thread.is_alive():
            try:
                ready.get_nowait()
            except queue.Empty:
                thread.join(0.01)


@dataclass(frozen=True)
class LiveBlob:
    """An object as found when a read starts: every range of the read names its generation."""

    bucket: str
    name: str
    generation: int | None
    size: int
    uri: str

    def pinned(self) -> Any:
        """A new Blob of that generation: a download rewrites its blob's properties from the
        response headers, so each reader (each thread) takes its own."""
        from shared.core import clients

        return clients.storage().bucket(self.bucket).blob(self.name, generation=self.generation)


def live_blob(bucket: str, name: str, generation: int | None) -> LiveBlob:
    """The object (the given generation, or the live one now); ObjectGone when missing."""
    from google.api_core import exceptions

    from shared.core import clients

    uri = f"gs://{bucket}/{name}" + (f"#{generation}" if generation else "")
    client = clients.storage()
    try:
        blob = client.bucket(bucket).get_blob(name, generation=generation)
    except exceptions.NotFound:
        blob = None
    if blob is None:
        raise ObjectGone(f"{uri} does not exist")
    if generation is not None and blob.generation is not None and blob.generation != generation:
        raise ObjectGone(f"{uri}: generation {generation} is gone (live: {blob.generation})")
    return LiveBlob(bucket, name, blob.generation, blob.size or 0, uri)


def read_gcs_chunks(
    bucket: str, name: str, generation: int | None = None, chunk_size: int = CHUNK_SIZE
) -> Iterator[bytes]:
    """The object's bytes in ranged downloads of `chunk_size`, all from one generation.

    The generation is pinned (the given one, or the live one when the read starts), so an
    overwrite during the read cannot mix two versions. A missing object raises ObjectGone.
    """
    from google.api_core import exceptions

    found = live_blob(bucket, name, generation)
    size, uri, pinned = found.size, found.uri, found.pinned()
    start = 0
    while start < size:
        end = min(start + chunk_size, size) - 1
        try:
            data = pinned.download_as_bytes(start=start, end=end, checksum=None)
        except exceptions.NotFound:
            raise ObjectGone(f"{uri} disappeared while being read") from None
        if not data:
            return
        yield data
        start += len(data)


def parse_uri(uri: str) -> tuple[str, str]:
    """`gs://bucket/object` -> (bucket, object)."""
    if not uri.startswith("gs://"):
        raise ValueError(f"not a gs:// URI: {uri!r}")
    bucket, _, name = uri[5:].partition("/")
    if not bucket or not name:
        raise ValueError(f"expected gs://bucket/object, got {uri!r}")
    return bucket, name


__all__ = [
    "COUNTER_FIELDS",
    "TOKEN_FIELDS",
    "FileUsage",
    "ModelUsage",
    "ObjectGone",
    "parse_predictions",
    "parse_uri",
    "read_file_chunks",
    "read_gcs_chunks",
]
