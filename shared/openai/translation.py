"""OpenAI Batch API input lines -> Vertex batch input lines, one line at a time.

Pure logic, no I/O. Each OpenAI line (`{"custom_id", "method", "url", "body"}`) becomes one
Vertex line that carries the `custom_id` as a sibling key of the request: Vertex writes
output rows out of input order but echoes the input line's other keys, so the id comes
back exactly (a label would be squeezed to label rules). Anything a line asks for that the
gateway cannot carry to Gemini faithfully raises `LineError` naming the parameter, so the
batch is refused with the line number before any money is spent, as OpenAI validates.

Chat (`/v1/chat/completions`) -> a Gemini `GenerateContentRequest`:
- `system`/`developer` messages -> `systemInstruction`; `user` -> role `user`;
  `assistant` -> role `model` (text, and `tool_calls` as `functionCall` parts); `tool` ->
  a `functionResponse` part (the function named by the matching assistant tool call);
  consecutive `tool` messages are one turn, since Gemini wants every call of a step answered
  in the next turn. Transcripts Vertex takes as OpenAI does (`_function_call`): a call without
  arguments has no `args`, an open schema `{}` is `OPEN_SCHEMA`, empty `properties` and
  parameters are left out, the first call of a step carries `SKIPPED_SIGNATURE`.
- parts: `text`; `image_url` with a `data:` URL -> `inlineData`, a `gs://` URL ->
  `fileData` (mime type from the extension); `input_audio` -> `inlineData`.
- `max_completion_tokens` / `max_tokens` -> `maxOutputTokens`; `temperature`; `top_p` ->
  `topP`; `stop` -> `stopSequences`; `n` -> `candidateCount`; `seed`; `presence_penalty`,
  `frequency_penalty`; `response_format` `json_object` -> `responseMimeType`
  application/json, `json_schema` -> also `responseSchema` (see `gemini_schema`);
  `tools` -> `functionDeclarations`; `tool_choice` -> `functionCallingConfig`;
  `reasoning_effort` -> `thinkingConfig.thinkingBudget` (`THINKING_BUDGETS`).
- ignored (no Gemini meaning, harmless): `user`, `metadata`, `store`, `service_tier`,
  `parallel_tool_calls`, `stream_options`, `prompt_cache_key`, `safety_identifier`.
- refused: everything else (`logprobs`, `logit_bias`, `audio`, `prediction`, legacy
  `functions`, `stream: true`, ...).

Embeddings (`/v1/embeddings`): one Vertex line per text (`input` a string or a list of up to
2,048 strings), each with `input_index` beside the `custom_id`. gemini-embedding models:
`{"custom_id", "input_index", "request": {"content": {"parts": [{"text"}]},
"embed_content_config": {"output_dimensionality"}}}`; text-embedding models: the instance
`{"custom_id", "input_index", "content"}`. `encoding_format: base64` rides along as a sibling
key.
"""

import mimetypes
from dataclasses import dataclass

from shared.core import json_text
from shared.openai import responses
from shared.openai.lines import LineError

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
RESPONSES = "/v1/responses"
ENDPOINTS = (CHAT, RESPONSES, EMBEDDINGS)
CUSTOM_ID = "custom_id"
ENCODING = "encoding_format"  # sibling key: how the output file encodes this line's vector
INPUT_INDEX = "input_index"  # sibling key: which text of an embeddings request this line is
MAX_EMBEDDING_INPUTS = 2048  # OpenAI's texts per embeddings request
MAX_CUSTOM_ID_CHARS = 512

# reasoning_effort -> Gemini thinking budget (tokens). "none"/"minimal" turn thinking off
# where the model allows it (gemini-2.5-pro always thinks and fails such rows).
THINKING_BUDGETS = {"none": 0, "minimal": 0, "low": 1024, "medium": 8192, "high": 24576}

CHAT_IGNORED = frozenset(
    {
        "user",
        "metadata",
        "store",
        "service_tier",
        "parallel_tool_calls",
        "stream_options",
        "prompt_cache_key",
        "safety_identifier",
    }
)
CHAT_MAPPED = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "n",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "response_format",
        "tools",
        "tool_choice",
        "reasoning_effort",
        "stream",
        "modalities",
    }
)
EMBEDDING_FIELDS = frozenset({"model", "input", "dimensions", "encoding_format", "user"})
ENCODING_FORMATS = ("float", "base64")

# JSON Schema keywords with a Vertex `Schema` counterpart (same name unless mapped).
SCHEMA_KEYWORDS = {
    "type": "type",
    "format": "format",
    "title": "title",
    "description": "description",
    "nullable": "nullable",
    "default": "default",
    "items": "items",
    "minItems": "minItems",
    "maxItems": "maxItems",
    "enum": "enum",
    "properties": "properties",
    "propertyOrdering": "propertyOrdering",
    "required": "required",
    "minProperties": "minProperties",
    "maxProperties": "maxProperties",
    "minimum": "minimum",
    "maximum": "maximum",
    "minLength": "minLength",
    "maxLength": "maxLength",
    "pattern": "pattern",
    "example": "example",
    "anyOf": "anyOf",
    "oneOf": "anyOf",
}
# Annotations with no effect on what Gemini may produce, dropped.
SCHEMA_DROPPED = frozenset({"$schema", "$id", "$comment", "additionalProperties", "strict"})
SCHEMA_TYPES = ("string", "number", "integer", "boolean", "array", "object")
MAX_SCHEMA_DEPTH = 32
# An open JSON Schema (`{}`: any value) as a Vertex `Schema`: `type` is optional there
# (https://cloud.google.com/php/docs/reference/cloud-ai-platform/0.31.0/V1.Schema) and
# google-genai's own `Schema.from_json_schema(api_option="VERTEX_AI")` (2.34.0) turns `{}` into
# an untyped Schema; `nullable` keeps null allowed, as `{}` does, and keeps the object
# non-empty, which Vertex's batch import requires (`input_rules`). That Vertex reads an
# untyped, nullable Schema as "any value" is inferred from those two.
OPEN_SCHEMA = {"nullable": True}
# Gemini 3 refuses (400) a current turn whose first function call of a step lacks a thought
# signature (https://docs.cloud.google.com/vertex-ai/generative-ai/docs/thought-signatures);
# an OpenAI transcript has none. Google's thought-signature pages give this value for history
# the model did not produce (recalled from those pages: the stored copy searched for this
# work was cut before that section, so an inference to re-check).
SKIPPED_SIGNATURE = "skip_thought_signature_validator"


@dataclass(frozen=True)
class Line:
    custom_id: str
    model: str
    body: dict


def family(model: str) -> str:
    """`gemini`, `gemini-embedding` or `text-embedding`: the row layout a model uses."""
    name = model.rsplit("/", 1)[-1]
    if name.startswith("gemini-embedding"):
        return "gemini-embedding"
    if name.startswith(("text-embedding", "text-multilingual-embedding")):
        return "text-embedding"
    return "gemini"


def is_embedding(model: str) -> bool:
    return family(model) != "gemini"


def parse_line(raw: str, endpoint: str) -> Line:
    """The envelope of one input line, checked: `custom_id`, `method`, `url`, `body.model`."""
    try:
        line = json_text.loads(raw)
    except json_text.LoneSurrogate as exc:
        raise LineError(f"The line's {exc}.", param=exc.where, code="invalid_json") from None
    except ValueError as exc:
        raise LineError(f"The line is not valid JSON: {exc}.", code="invalid_json") from None
    if not isinstance(line, dict):
        raise LineError("The line must be a JSON object.", code="invalid_json")
    unknown = sorted(set(line) - {"custom_id", "method", "url", "body"})
    if unknown:
        raise LineError(f"Unknown fields in the line: {', '.join(unknown)}.", param=unknown[0])
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise LineError("`custom_id` is required: a non-empty string.", param="custom_id")
    if len(custom_id) > MAX_CUSTOM_ID_CHARS:
        raise LineError(
            f"`custom_id` is longer than {MAX_CUSTOM_ID_CHARS} characters.", param="custom_id"
        )
    if line.get("method") != "POST":
        raise LineError("`method` must be POST.", param="method", code="invalid_method")
    if line.get("url") != endpoint:
        raise LineError(
            f"`url` {line.get('url')!r} does not match the batch's endpoint {endpoint!r}.",
            param="url",
            code="mismatched_url",
        )
    body = line.get("body")
    if not isinstance(body, dict):
        raise LineError("`body` must be a JSON object.", param="body")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise LineError("`body.model` is required.", param="body.model", code="missing_model")
    return Line(custom_id, model, body)


def vertex_lines(line: Line, endpoint: str, model: str) -> list[dict]:
    """The Vertex input lines of a checked OpenAI line, for deployment model `model`: one
    for a chat request, one per text for an embeddings request (`input_index` beside it)."""
    if endpoint in (CHAT, RESPONSES):
        if is_embedding(model):
            raise LineError(f"Model {line.model!r} is an embedding model; use /v1/embeddings.")
        body = responses.chat_body(line.body) if endpoint == RESPONSES else line.body
        return [{CUSTOM_ID: line.custom_id, "request": chat_request(body)}]
    if not is_embedding(model):
        raise LineError(
            f"Model {line.model!r} is not an embedding model; use /v1/chat/completions."
        )
    lines = []
    for index, instance in enumerate(embedding_instances(line.body, family(model))):
        vertex = {CUSTOM_ID: line.custom_id, INPUT_INDEX: index, **instance}
        if line.body.get("encoding_format") == "base64":
            vertex[ENCODING] = "base64"
        lines.append(vertex)
    return lines


# --- chat ------------------------------------------------------------------------------------


def _number(body: dict, name: str, low: float, high: float) -> float | int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise LineError(f"`{name}` must be a number from {low} to {high}.", param=name)
    return value


def _integer(body: dict, name: str, low: int, high: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise LineError(f"`{name}` must be an integer of at least {low}.", param=name)
    if high is not None and value > high:
        raise LineError(f"`{name}` must be at most {high}.", param=name)
    return value


def chat_request(body: dict) -> dict:
    """An OpenAI chat completion request body -> a Gemini `GenerateContentRequest`."""
    unknown = sorted(set(body) - CHAT_MAPPED - CHAT_IGNORED)
    if unknown:
        raise LineError(
            f"`{unknown[0]}` is not supported by this gateway's Gemini batches.",
            param=unknown[0],
            code="unsupported_parameter",
        )
    if body.get("stream"):
        raise LineError("`stream` is not supported in a batch.", param="stream")
    modalities = body.get("modalities")
    if modalities is not None and modalities != ["text"]:
        raise LineError("Only the `text` modality is supported.", param="modalities")
    contents, system = _messages(body.get("messages"))
    request: dict = {"contents": contents}
    if system:
        request["systemInstruction"] = {"parts": system}
    config = _generation_config(body)
    if config:
        request["generationConfig"] = config
    tools = _tools(body.get("tools"))
    if tools:
        request["tools"] = tools
    tool_config = _tool_config(body.get("tool_choice"), tools)
    if tool_config:
        request["toolConfig"] = tool_config
    return request


def _generation_config(body: dict) -> dict:
    config: dict = {}
    max_tokens = _integer(body, "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = _integer(body, "max_tokens", 1)
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    for name, key, low, high in (
        ("temperature", "temperature", 0, 2),
        ("top_p", "topP", 0, 1),
        ("presence_penalty", "presencePenalty", -2, 2),
        ("frequency_penalty", "frequencyPenalty", -2, 2),
    ):
        value = _number(body, name, low, high)
        if value is not None:
            config[key] = value
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop) or len(stop) > 4:
            raise LineError("`stop` must be a string or a list of up to 4 strings.", param="stop")
        if stop:
            config["stopSequences"] = stop
    n = _integer(body, "n", 1, 8)
    if n is not None and n != 1:
        config["candidateCount"] = n
    seed = _integer(body, "seed", -(2**31), 2**31 - 1)
    if seed is not None:
        config["seed"] = seed
    config.update(_response_format(body.get("response_format")))
    effort = body.get("reasoning_effort")
    if effort is not None:
        if effort not in THINKING_BUDGETS:
            raise LineError(
                f"`reasoning_effort` must be one of {', '.join(THINKING_BUDGETS)}.",
                param="reasoning_effort",
            )
        config["thinkingConfig"] = {"thinkingBudget": THINKING_BUDGETS[effort]}
    return config


def _response_format(value) -> dict:
    if value is None:
        return {}
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            raise LineError(
                "`response_format.json_schema.schema` must be a JSON Schema object.",
                param="response_format.json_schema.schema",
            )
        return {
            "responseMimeType": "application/json",
            "responseSchema": gemini_schema(
                spec["schema"], param="response_format.json_schema.schema"
            ),
        }
    raise LineError(
        "`response_format.type` must be text, json_object or json_schema.",
        param="response_format",
    )


# --- messages --------------------------------------------------------------------------------


def _messages(messages) -> tuple[list[dict], list[dict]]:
    if not isinstance(messages, list) or not messages:
        raise LineError("`messages` must be a non-empty list.", param="messages")
    contents: list[dict] = []
    system: list[dict] = []
    tool_names: dict[str, str] = {}
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise LineError(f"`{where}` must be an object.", param=where)
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_parts(message.get("content"), where))
        elif role == "user":
            parts = _user_parts(message.get("content"), where)
            contents.append({"role": "user", "parts": parts})
        elif role == "assistant":
            parts = _assistant_parts(message, where, tool_names)
            contents.append({"role": "model", "parts": parts})
        elif role == "tool":
            part = _tool_result(message, where, tool_names)
            if index and messages[index - 1].get("role") == "tool":
                contents[-1]["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part]})
        else:
            raise LineError(
                f"`{where}.role` {role!r} is not supported: use system, developer, user, "
                "assistant or tool.",
                param=f"{where}.role",
            )
    if not contents:
        raise LineError("`messages` needs at least one user message.", param="messages")
    return contents, system


def _text_parts(content, where: str) -> list[dict]:
    if isinstance(content, str):
        return [{"text": content}]
    if isinstance(content, list):
        parts = []
        for index, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise LineError(
                    f"`{where}.content[{index}]` must be a text part here.",
                    param=f"{where}.content",
                )
            parts.append({"text": _string(part.get("text"), f"{where}.content[{index}].text")})
        return parts
    raise LineError(f"`{where}.content` must be a string or a list of parts.", param=where)


def _string(value, where: str) -> str:
    if not isinstance(value, str):
        raise LineError(f"`{where}` must be a string.", param=where)
    return value


def _user_parts(content, where: str) -> list[dict]:
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list) or not content:
        raise LineError(
            f"`{where}.content` must be a string or a non-empty list of parts.", param=where
        )
    parts: list[dict] = []
    for index, part in enumerate(content):
        at = f"{where}.content[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"text": _string(part.get("text"), f"{at}.text")})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            parts.append(_media_part(_string(url, f"{at}.image_url.url"), f"{at}.image_url.url"))
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            fmt = audio.get("format") if isinstance(audio, dict) else None
            if fmt not in ("wav", "mp3"):
                raise LineError(f"`{at}.input_audio.format` must be wav or mp3.", param=at)
            data = _string(audio.get("data"), f"{at}.input_audio.data")
            parts.append({"inlineData": {"mimeType": f"audio/{fmt}", "data": data}})
        else:
            raise LineError(
                f"`{at}.type` {kind!r} is not supported: use text, image_url or input_audio.",
                param=at,
            )
    return parts


def _media_part(url: str, where: str) -> dict:
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        mime, _, encoding = header.partition(";")
        if not comma or encoding != "base64" or not mime or not data:
            raise LineError(
                f"`{where}` must be a base64 data URL (data:<mime>;base64,<data>).", param=where
            )
        return {"inlineData": {"mimeType": mime, "data": data}}
    if url.startswith("gs://"):
        guessed, _ = mimetypes.guess_type(url)
        if not guessed:
            raise LineError(
                f"`{where}`: cannot tell the media type of {url!r} from its extension.",
                param=where,
            )
        return {"fileData": {"mimeType": guessed, "fileUri": url}}
    raise LineError(
        f"`{where}` must be a data: URL or a gs:// URI (Vertex batches cannot fetch http URLs).",
        param=where,
    )


def _assistant_parts(message: dict, where: str, tool_names: dict[str, str]) -> list[dict]:
    parts: list[dict] = []
    content = message.get("content")
    if content is not None and content != "":
        parts.extend(_text_parts(content, where))
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise LineError(f"`{where}.tool_calls` must be a list.", param=f"{where}.tool_calls")
    for index, call in enumerate(calls):
        at = f"{where}.tool_calls[{index}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or call.get("type", "function") != "function":
            raise LineError(f"`{at}` must be a function tool call.", param=at)
        name = _string(function.get("name"), f"{at}.function.name")
        try:
            args = json_text.loads(function.get("arguments") or "{}")
        except (TypeError, ValueError):
            raise LineError(
                f"`{at}.function.arguments` must be a JSON object string.", param=at
            ) from None
        if not isinstance(args, dict):
            raise LineError(f"`{at}.function.arguments` must encode a JSON object.", param=at)
        if isinstance(call.get("id"), str):
            tool_names[call["id"]] = name
        parts.append(_function_call(name, args, first=index == 0))
    if not parts:
        raise LineError(f"`{where}` has neither content nor tool_calls.", param=where)
    return parts


def _function_call(name: str, args: dict, *, first: bool) -> dict:
    """A `functionCall` part Vertex's batch import and Gemini 3 both take.

    A call without arguments (`""`, `"{}"`) leaves `args` out (`FunctionCall.args` is optional:
    https://docs.cloud.google.com/ruby/docs/reference/google-cloud-ai_platform-v1/1.5.0/
    Google-Cloud-AIPlatform-V1-FunctionCall), and an empty object inside the arguments is
    dropped (a list item becomes null), since an empty object anywhere fails the whole job at
    import (`input_rules`). The first call of a model turn carries the signature Google
    documents for history the model did not produce (`SKIPPED_SIGNATURE`).
    """
    call: dict = {"name": name}
    args = _without_empty_objects(args)
    if args:
        call["args"] = args
    part: dict = {"functionCall": call}
    if first:
        part["thoughtSignature"] = SKIPPED_SIGNATURE
    return part


def _without_empty_objects(value):
    if isinstance(value, dict):
        kept = {k: _without_empty_objects(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v != {}}
    if isinstance(value, list):
        return [None if (item := _without_empty_objects(v)) == {} else item for v in value]
    return value


def _tool_result(message: dict, where: str, tool_names: dict[str, str]) -> dict:
    call_id = message.get("tool_call_id")
    if call_id not in tool_names:
        raise LineError(
            f"`{where}.tool_call_id` {call_id!r} names no earlier assistant tool call.",
            param=f"{where}.tool_call_id",
        )
    content = message.get("content")
    text = (
        content
        if isinstance(content, str)
        else "".join(p["text"] for p in _text_parts(content, where))
    )
    return {"functionResponse": {"name": tool_names[call_id], "response": {"content": text}}}


# --- tools -----------------------------------------------------------------------------------


def _tools(tools) -> list[dict]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise LineError("`tools` must be a list.", param="tools")
    declarations = []
    for index, tool in enumerate(tools):
        at = f"tools[{index}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise LineError(f"`{at}.type` must be function.", param=at)
        function = tool.get("function")
        if not isinstance(function, dict):
            raise LineError(f"`{at}.function` must be an object.", param=at)
        declaration: dict[str, object] = {
            "name": _string(function.get("name"), f"{at}.function.name")
        }
        if function.get("description") is not None:
            declaration["description"] = _string(
                function["description"], f"{at}.function.description"
            )
        parameters = function.get("parameters")
        if parameters is not None:
            if not isinstance(parameters, dict):
                raise LineError(f"`{at}.function.parameters` must be an object.", param=at)
            translated = gemini_schema(parameters, param=f"{at}.function.parameters")
            if translated.get("properties") or translated.get("type") not in ("OBJECT", None):
                declaration["parameters"] = translated
        declarations.append(declaration)
    return [{"functionDeclarations": declarations}] if declarations else []


def _tool_config(choice, tools: list[dict]) -> dict:
    if choice is None:
        return {}
    if not tools and choice != "none":
        raise LineError("`tool_choice` needs `tools`.", param="tool_choice")
    modes = {"none": "NONE", "auto": "AUTO", "required": "ANY"}
    if isinstance(choice, str) and choice in modes:
        return {"functionCallingConfig": {"mode": modes[choice]}}
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        known = {d["name"] for t in tools for d in t["functionDeclarations"]}
        if name not in known:
            raise LineError(
                f"`tool_choice.function.name` {name!r} is not one of the tools.",
                param="tool_choice",
            )
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    raise LineError(
        "`tool_choice` must be none, auto, required or a function choice.", param="tool_choice"
    )


# --- JSON Schema -> Vertex Schema ------------------------------------------------------------


def gemini_schema(schema: dict, *, param: str) -> dict:
    """A JSON Schema (as OpenAI takes it) -> a Vertex `Schema` (OpenAPI subset).

    Vertex's batch input refuses field names starting with `$`, and `Schema` has no JSON
    Schema references: local `$ref`s (`#/$defs/X`, `#/definitions/X`) are inlined, a
    recursive one is refused; `$schema`, `$id`, `$comment`, `additionalProperties` and
    `strict` are dropped; `type: [T, "null"]` -> `nullable`; `oneOf` -> `anyOf`; `const` ->
    a one-value `enum`; types are upper-cased. Other keywords are refused.
    """
    definitions = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    return _schema(schema, definitions, param, (), 0)


def _schema(node, definitions: dict, param: str, refs: tuple, depth: int) -> dict:  # noqa: C901 (one branch per JSON Schema keyword)
    if depth > MAX_SCHEMA_DEPTH:
        raise LineError(f"`{param}` nests deeper than {MAX_SCHEMA_DEPTH} levels.", param=param)
    if not isinstance(node, dict):
        raise LineError(f"`{param}` must be a JSON Schema object.", param=param)
    if "$ref" in node:
        ref = node["$ref"]
        name = ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None
        if not isinstance(ref, str) or not ref.startswith(("#/$defs/", "#/definitions/")):
            raise LineError(f"`{param}`: only local $ref to $defs are supported.", param=param)
        if name not in definitions:
            raise LineError(f"`{param}`: $ref {ref!r} names no definition.", param=param)
        if ref in refs:
            raise LineError(f"`{param}`: recursive $ref {ref!r} is not supported.", param=param)
        merged = {**definitions[name], **{k: v for k, v in node.items() if k != "$ref"}}
        return _schema(merged, definitions, param, (*refs, ref), depth + 1)
    out: dict = {}
    for key, value in node.items():
        if key in SCHEMA_DROPPED or key in ("$defs", "definitions"):
            continue
        if key == "const":
            out["enum"] = [value]
            continue
        target = SCHEMA_KEYWORDS.get(key)
        if target is None:
            raise LineError(
                f"`{param}`: JSON Schema keyword {key!r} is not supported by Gemini.",
                param=param,
            )
        if key == "type":
            out.update(_schema_type(value, param))
        elif key == "properties":
            if not isinstance(value, dict):
                raise LineError(f"`{param}.properties` must be an object.", param=param)
            if value:
                out["properties"] = {
                    name: _schema(sub, definitions, f"{param}.properties.{name}", refs, depth + 1)
                    for name, sub in value.items()
                }
        elif key == "items":
            out["items"] = _schema(value, definitions, f"{param}.items", refs, depth + 1)
        elif key in ("anyOf", "oneOf"):
            if not isinstance(value, list):
                raise LineError(f"`{param}.{key}` must be a list.", param=param)
            real = [
                _schema(sub, definitions, f"{param}.{key}[{i}]", refs, depth + 1)
                for i, sub in enumerate(value)
                if sub != {"type": "null"}
            ]
            if len(real) < len(value):
                out["nullable"] = True
            if len(real) == 1:
                out.update(real[0])
            else:
                out["anyOf"] = real
        else:
            out[target] = value
    return out or dict(OPEN_SCHEMA)


def _schema_type(value, param: str) -> dict:
    types = value if isinstance(value, list) else [value]
    nullable = "null" in types
    real = [t for t in types if t != "null"]
    if len(real) != 1 or real[0] not in SCHEMA_TYPES:
        raise LineError(
            f"`{param}.type` must be one of {', '.join(SCHEMA_TYPES)} (optionally with null).",
            param=param,
        )
    out: dict = {"type": real[0].upper()}
    if nullable:
        out["nullable"] = True
    return out


# --- embeddings ------------------------------------------------------------------------------


def embedding_instances(body: dict, model_family: str) -> list[dict]:
    """An OpenAI embeddings request body -> one Vertex payload per text (no custom_id)."""
    unknown = sorted(set(body) - EMBEDDING_FIELDS)
    if unknown:
        raise LineError(
            f"`{unknown[0]}` is not supported for embeddings.",
            param=unknown[0],
            code="unsupported_parameter",
        )
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if (
        not isinstance(texts, list)
        or not 1 <= len(texts) <= MAX_EMBEDDING_INPUTS
        or not all(isinstance(t, str) and t for t in texts)
    ):
        raise LineError(
            f"`input` must be a non-empty string or a list of 1 to {MAX_EMBEDDING_INPUTS} "
            "non-empty strings (token arrays are not supported).",
            param="input",
        )
    encoding = body.get("encoding_format", "float")
    if encoding not in ENCODING_FORMATS:
        raise LineError("`encoding_format` must be float or base64.", param="encoding_format")
    dimensions = _integer(body, "dimensions", 1)
    if model_family == "text-embedding":
        if dimensions is not None:
            raise LineError(
                "`dimensions` is not supported by text-embedding models in batch.",
                param="dimensions",
            )
        return [{"content": text} for text in texts]
    config = {"embed_content_config": {"output_dimensionality": dimensions}} if dimensions else {}
    return [{"request": {"content": {"parts": [{"text": text}]}, **config}} for text in texts]
