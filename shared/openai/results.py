"""Vertex batch output rows -> OpenAI Batch API output and error lines.

Pure logic, no I/O: `Translator` takes the rows of a job's prediction files in any order
and gives, for each input request, exactly one line: an output line (`response.body` a
`chat.completion` or an embeddings `list`) or an error line. Every row is transformed on
its own: a row that cannot be read or matched is logged by the caller and its request gets
an error line, never a half-written file.

Matching a row to its request: the `custom_id` (and, for embeddings, `input_index`) sibling
keys Vertex echoes from the input line (`translation`); the rows of an embeddings
request with several texts are held until all are in, then become one line; for a row
without them (a failed row of a Vertex that echoes only
`request`), the fingerprint of the echoed request among the input's requests not yet seen.
Error lines use only the codes OpenAI documents for them (`BatchRequestOutputError.code`:
`batch_expired`, `batch_cancelled`, `request_timeout`; OpenAI's OpenAPI description, as
generated at https://docs.rs/crate/openai-client-base/0.8.1/source/docs/
BatchRequestOutputError.md): a request with no row because the job expired or was cancelled
first gets `batch_expired` / `batch_cancelled`; a row Vertex failed for a deadline gets
`request_timeout`; anything else (a failed row, a failed job, a request Vertex returned no
row for) is a `response` with the status and an `error` body whose `code` is null, as
OpenAI writes a request that ran and failed.

Mapping (chat): the text parts of each candidate (thought parts left out) -> `content`;
`functionCall` parts -> `tool_calls`; `finishReason` -> `finish_reason` (`FINISH_REASONS`;
`tool_calls` when the model called a function); usage: `prompt_tokens` = prompt + tool-use
prompt tokens, `completion_tokens` = candidates + thoughts tokens,
`completion_tokens_details.reasoning_tokens` = thoughts, `prompt_tokens_details.cached_tokens`
= cached content tokens. A failed row -> an error line whose `response.status_code` is
inferred from Vertex's message (`status_code_of`).
"""

import base64
import hashlib
import json
import struct
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from shared.core import json_text, times
from shared.openai import responses
from shared.openai.translation import CUSTOM_ID, EMBEDDINGS, ENCODING, INPUT_INDEX, RESPONSES

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "MODEL_ARMOR": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
# Vertex's row status messages start with the canonical code or its HTTP reason.
STATUS_HINTS = (
    (("RESOURCE_EXHAUSTED", "Resource exhausted", "429", "Quota"), 429),
    (("DEADLINE_EXCEEDED", "Deadline", "504"), 504),
    (("UNAVAILABLE", "Unavailable", "503"), 503),
    (("INTERNAL", "Internal", "500"), 500),
)
ENDED_CODES = {
    "JOB_STATE_EXPIRED": (
        "batch_expired",
        "This request could not be executed before the completion window expired.",
    ),
    "JOB_STATE_CANCELLED": ("batch_cancelled", "The batch was cancelled before this request ran."),
}
TIMEOUT_CODE = "request_timeout"
UNREADABLE = "Vertex AI returned a response the gateway cannot read."
JOB_FAILED = "The batch failed before this request ran."
NO_ROW = "Vertex AI returned no result for this request."


def fingerprint(request) -> str:
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def request_fingerprint(vertex_line: dict) -> str:
    """What identifies a Vertex input line when its row lost the custom_id."""
    if "request" in vertex_line:
        return fingerprint(vertex_line["request"])
    siblings = (CUSTOM_ID, ENCODING, INPUT_INDEX)
    return fingerprint({k: v for k, v in vertex_line.items() if k not in siblings})


def line_id(batch_id: str, custom_id: str) -> str:
    return "batch_req_" + hashlib.sha256(f"{batch_id}\0{custom_id}".encode()).hexdigest()[:32]


def status_code_of(message: str) -> int:
    for hints, code in STATUS_HINTS:
        if any(hint in message for hint in hints):
            return code
    return 400


def _error_type(code: int) -> str:
    if code == 429:
        return "rate_limit_error"
    return "server_error" if code >= 500 else "invalid_request_error"


def _unix(value, default: int) -> int:
    parsed = times.parse(value) if value else None
    return int(parsed.timestamp()) if parsed else default


def _int(value) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# --- successful rows -------------------------------------------------------------------------


def chat_usage(usage: dict) -> dict:
    prompt = _int(usage.get("promptTokenCount")) + _int(usage.get("toolUsePromptTokenCount"))
    thoughts = _int(usage.get("thoughtsTokenCount"))
    completion = _int(usage.get("candidatesTokenCount")) + thoughts
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {
            "cached_tokens": _int(usage.get("cachedContentTokenCount")),
            "audio_tokens": sum(
                _int(d.get("tokenCount"))
                for d in usage.get("promptTokensDetails") or []
                if isinstance(d, dict) and d.get("modality") == "AUDIO"
            ),
        },
        "completion_tokens_details": {
            "reasoning_tokens": thoughts,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _choice(candidate: dict, position: int, call_prefix: str) -> dict:
    parts = (candidate.get("content") or {}).get("parts") or []
    texts = [
        p["text"]
        for p in parts
        if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought")
    ]
    calls = [
        p["functionCall"]
        for p in parts
        if isinstance(p, dict) and isinstance(p.get("functionCall"), dict)
    ]
    message: dict = {
        "role": "assistant",
        "content": "".join(texts) if texts else None,
        "refusal": None,
        "annotations": [],
    }
    finish = FINISH_REASONS.get(candidate.get("finishReason") or "", "stop")
    if calls:
        message["tool_calls"] = [
            {
                "id": f"call_{call_prefix}_{position}_{index}",
                "type": "function",
                "function": {
                    "name": call.get("name", ""),
                    "arguments": json.dumps(call.get("args") or {}, ensure_ascii=False),
                },
            }
            for index, call in enumerate(calls)
        ]
        if finish == "stop":
            finish = "tool_calls"
    index = candidate.get("index")
    return {
        "index": index if isinstance(index, int) else position,
        "message": message,
        "logprobs": None,
        "finish_reason": finish,
    }


def chat_completion(row: dict, *, model: str, request_id: str, created: int) -> dict:
    response = row["response"]
    if not isinstance(response, dict):
        raise ValueError("`response` is not an object")
    candidates = [c for c in response.get("candidates") or [] if isinstance(c, dict)]
    choices = [_choice(c, i, request_id[:12]) for i, c in enumerate(candidates)]
    if not choices:
        reason = (response.get("promptFeedback") or {}).get("blockReason")
        choices = [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "refusal": f"The prompt was blocked ({reason})." if reason else None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "content_filter",
            }
        ]
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion",
        "created": _unix(response.get("createTime") or row.get("processed_time"), created),
        "model": model,
        "choices": choices,
        "usage": chat_usage(response.get("usageMetadata") or {}),
        "system_fingerprint": None,
        "service_tier": None,
    }


def _vector(values: list, encoding: str | None):
    floats = [float(v) for v in values]
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(floats)}f", *floats)).decode()
    return floats


def _embedding(row: dict) -> tuple[list, int]:
    """(values, tokens) of one gemini-embedding (`response.embedding`) or text-embedding
    (`predictions`) row."""
    if "predictions" in row:
        embeddings = (row["predictions"][0] or {}).get("embeddings") or {}
        return embeddings["values"], _int((embeddings.get("statistics") or {}).get("token_count"))
    response = row["response"]
    tokens = _int((response.get("usageMetadata") or {}).get("promptTokenCount"))
    return response["embedding"]["values"], tokens


def embedding_list(rows: list[dict], *, model: str) -> dict:
    """The rows of one embeddings request (one per text, in `input_index` order)."""
    data, tokens = [], 0
    for index, row in enumerate(rows):
        encoding = row.get(ENCODING) or (row.get("instance") or {}).get(ENCODING)
        values, count = _embedding(row)
        data.append({"object": "embedding", "index": index, "embedding": _vector(values, encoding)})
        tokens += count
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


# --- one file's worth of rows ----------------------------------------------------------------


@dataclass
class Totals:
    completed: int = 0
    failed: int = 0
    unmatched_rows: int = 0
    duplicate_rows: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    def usage(self) -> dict:
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.input_tokens + self.output_tokens,
        }


@dataclass
class Translator:
    """Rows in (any order, any number of files), OpenAI lines out; `finish()` at the end.

    `requests` is the input: (custom_id, fingerprint) per Vertex line in input order; an
    embeddings request with several texts has one entry per text (`input_index` 0, 1, ...).
    `emit(kind, line)` receives one line per custom_id, kind "output" or "error", as soon as
    all its rows are in (rows of one request are held until then).
    """

    batch_id: str
    model: str
    endpoint: str
    requests: list[tuple[str, str]]
    created: int
    emit: Callable[[str, dict], None]
    totals: Totals = field(default_factory=Totals)
    problems: list[str] = field(default_factory=list)

    def __post_init__(self):
        self._parts: dict[str, int] = defaultdict(int)
        self._keys: list[tuple[str, int, str]] = []
        for custom_id, mark in self.requests:
            self._keys.append((custom_id, self._parts[custom_id], mark))
            self._parts[custom_id] += 1
        self._held: dict[str, dict[int, dict]] = defaultdict(dict)
        self._done: set[str] = set()
        self._deferred: list[dict] = []

    def row(self, raw: bytes | str) -> None:
        """One output row (a line of a predictions file)."""
        try:
            row = json_text.loads(raw, surrogates=True)
        except ValueError as exc:
            self._problem(f"unreadable row: {exc}")
            return
        if not isinstance(row, dict):
            self._problem("row is not a JSON object")
            return
        echoed = row["instance"] if isinstance(row.get("instance"), dict) else row
        custom_id = echoed.get(CUSTOM_ID)
        if custom_id is None:
            self._deferred.append(row)
            return
        index = echoed.get(INPUT_INDEX, 0)
        self._take(custom_id, index if isinstance(index, int) else -1, row)

    def finish(self, job_state: str | None) -> Totals:
        """Match the rows that lost their custom_id, then close every request still open."""
        waiting: dict[str, list[tuple[str, int]]] = defaultdict(list)
        for custom_id, index, mark in self._keys:
            if custom_id not in self._done and index not in self._held.get(custom_id, {}):
                waiting[mark].append((custom_id, index))
        for row in self._deferred:
            echoed = row.get("request", row.get("instance"))
            candidates = waiting.get(fingerprint(echoed)) if echoed is not None else None
            if not candidates:
                self.totals.unmatched_rows += 1
                self._problem("row without custom_id matches no request")
                continue
            self._take(*candidates.pop(0), row)
        ended = ENDED_CODES.get(job_state or "")
        for custom_id in self._parts:
            if custom_id not in self._done:
                self._done.add(custom_id)
                self._held.pop(custom_id, None)
                if ended:
                    self._error_line(custom_id, *ended)
                else:
                    message = JOB_FAILED if job_state == "JOB_STATE_FAILED" else NO_ROW
                    self._failed(custom_id, self._request_id(custom_id, {}), message, status=500)
        return self.totals

    def _error_line(self, custom_id: str, code: str, message: str) -> None:
        self.totals.failed += 1
        self.emit(
            "error",
            {
                "id": line_id(self.batch_id, custom_id),
                "custom_id": custom_id,
                "response": None,
                "error": {"code": code, "message": message},
            },
        )

    def _problem(self, text: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(text)

    def _take(self, custom_id, index: int, row: dict) -> None:
        parts = self._parts.get(custom_id) if isinstance(custom_id, str) else None
        if not parts or not 0 <= index < parts:
            self.totals.unmatched_rows += 1
            self._problem(f"row names an unknown request {str(custom_id)[:80]!r} #{index}")
            return
        held = self._held[custom_id]
        if custom_id in self._done or index in held:
            self.totals.duplicate_rows += 1
            return
        held[index] = row
        if len(held) == parts:
            self._done.add(custom_id)
            self._close(custom_id, [held[i] for i in range(parts)])
            del self._held[custom_id]

    def _close(self, custom_id: str, rows: list[dict]) -> None:
        request_id = self._request_id(custom_id, rows[0])
        failed = next((r for r in rows if r.get("status")), None)
        if failed is not None:
            self._failed(custom_id, request_id, str(failed["status"]))
            return
        try:
            if self.endpoint == EMBEDDINGS:
                body = embedding_list(rows, model=self.model)
            else:
                body = chat_completion(
                    rows[0], model=self.model, request_id=request_id, created=self.created
                )
                if self.endpoint == RESPONSES:
                    body = responses.response_body(body, request_id=request_id)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            self._problem(f"row of {custom_id[:80]!r} has no readable response: {exc!r}")
            self._failed(custom_id, request_id, UNREADABLE)
            return
        self._count(body)
        self.totals.completed += 1
        self.emit(
            "output",
            {
                "id": line_id(self.batch_id, custom_id),
                "custom_id": custom_id,
                "response": {"status_code": 200, "request_id": request_id, "body": body},
                "error": None,
            },
        )

    def _request_id(self, custom_id: str, row: dict) -> str:
        response_id = (
            (row.get("response") or {}).get("responseId")
            if isinstance(row.get("response"), dict)
            else None
        )
        if isinstance(response_id, str) and response_id:
            return response_id
        return hashlib.sha256(f"{self.batch_id}\0{custom_id}\0req".encode()).hexdigest()[:32]

    def _failed(
        self, custom_id: str, request_id: str, message: str, status: int | None = None
    ) -> None:
        code = status or status_code_of(message)
        if code == 504:
            self._error_line(custom_id, TIMEOUT_CODE, message)
            return
        self.totals.failed += 1
        self.emit(
            "error",
            {
                "id": line_id(self.batch_id, custom_id),
                "custom_id": custom_id,
                "response": {
                    "status_code": code,
                    "request_id": request_id,
                    "body": {
                        "error": {
                            "message": message,
                            "type": _error_type(code),
                            "param": None,
                            "code": None,
                        }
                    },
                },
                "error": None,
            },
        )

    def _count(self, body: dict) -> None:
        usage = body.get("usage") or {}
        if "input_tokens" in usage:  # a Response's names
            self.totals.input_tokens += usage["input_tokens"]
            self.totals.output_tokens += usage.get("output_tokens", 0)
            self.totals.cached_tokens += usage["input_tokens_details"]["cached_tokens"]
            self.totals.reasoning_tokens += usage["output_tokens_details"]["reasoning_tokens"]
            return
        self.totals.input_tokens += usage.get("prompt_tokens", 0)
        self.totals.output_tokens += usage.get("completion_tokens", 0)
        self.totals.cached_tokens += (usage.get("prompt_tokens_details") or {}).get(
            "cached_tokens", 0
        )
        self.totals.reasoning_tokens += (usage.get("completion_tokens_details") or {}).get(
            "reasoning_tokens", 0
        )
