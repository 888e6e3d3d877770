"""`/v1/responses` in batches (#26 item 6): a Responses API request becomes the Chat
Completions request it means (then Gemini's, through `translation.chat_request`), and the
chat completion that comes back becomes a `response` object. Pure logic, no I/O.

Request (OpenAI's `ResponseCreateParams`, openai-python src/openai/types/responses/):
- `instructions` -> a system message first; `input` a string -> one user message, or items:
  messages (`user`, `system`, `developer`, `assistant`; `input_text`, `input_image` with a
  `data:` or `gs://` URL, an assistant's `output_text`), `function_call` (consecutive ones
  are one assistant turn of parallel calls) and `function_call_output` (a tool message; its
  `output` a string or `input_text` parts);
  `reasoning` items are dropped (Gemini cannot read OpenAI's reasoning state).
- `tools` of type `function` (`name`, `description`, `parameters`) and `tool_choice`;
  `text.format` `json_schema` (its `schema`) or `json_object`; `reasoning.effort`;
  `max_output_tokens`; `temperature`, `top_p`.
- ignored, as in chat: `metadata`, `store`, `user`, `parallel_tool_calls`, `service_tier`,
  `prompt_cache_key`, `safety_identifier`, `truncation`, `reasoning.summary`,
  `text.verbosity`; refused with the line number: anything else (`previous_response_id`,
  `conversation`, `background`, `prompt`, `stream`, built-in tools, `input_file`, ...).

Result: the chat completion's first choice -> `output` items (`message` with `output_text`,
`function_call` per tool call), `status` `completed` or `incomplete` (`max_output_tokens`,
`content_filter`), `usage` as `input_tokens`, `output_tokens` and their details. The echo
fields a Response carries (`tools`, `tool_choice`, `instructions`, ...) are not kept from the
request: `tools` reads [], `tool_choice` "auto".
"""

from shared.openai.lines import LineError

IGNORED = frozenset(
    {
        "metadata",
        "store",
        "user",
        "parallel_tool_calls",
        "service_tier",
        "prompt_cache_key",
        "safety_identifier",
        "truncation",
    }
)
MAPPED = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "text",
        "reasoning",
        "max_output_tokens",
        "temperature",
        "top_p",
        "stream",
    }
)
MESSAGE_ROLES = ("user", "system", "developer", "assistant")
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def chat_body(body: dict) -> dict:
    """A Responses request body -> the Chat Completions body it means."""
    unknown = sorted(set(body) - MAPPED - IGNORED)
    if unknown:
        raise LineError(
            f"`{unknown[0]}` is not supported by this gateway's Gemini batches.",
            param=unknown[0],
            code="unsupported_parameter",
        )
    chat: dict = {"model": body["model"], "messages": _messages(body)}
    for name in ("temperature", "top_p", "stream"):
        if name in body:
            chat[name] = body[name]
    if body.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = body["max_output_tokens"]
    if body.get("tools") is not None:
        chat["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(body["tool_choice"])
    chat.update(_text(body.get("text")))
    reasoning = body.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict) or set(reasoning) - {"effort", "summary"}:
            raise LineError("`reasoning` takes `effort` (and `summary`).", param="reasoning")
        if reasoning.get("effort") is not None:
            chat["reasoning_effort"] = reasoning["effort"]
    return chat


def _messages(body: dict) -> list[dict]:
    messages: list[dict] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise LineError("`instructions` must be a string.", param="instructions")
        messages.append({"role": "system", "content": instructions})
    items = body.get("input")
    if isinstance(items, str):
        return [*messages, {"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise LineError("`input` must be a string or a non-empty list of items.", param="input")
    for index, item in enumerate(items):
        where = f"input[{index}]"
        if not isinstance(item, dict):
            raise LineError(f"`{where}` must be an object.", param=where)
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(item, where))
        elif kind == "function_call":
            call = {
                "id": _string(item.get("call_id"), f"{where}.call_id"),
                "type": "function",
                "function": {
                    "name": _string(item.get("name"), f"{where}.name"),
                    "arguments": item.get("arguments") or "",
                },
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and _joins(items, index):
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = _output_text(item.get("output"), f"{where}.output")
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": _string(item.get("call_id"), f"{where}.call_id"),
                    "content": output,
                }
            )
        elif kind == "reasoning":
            continue
        else:
            raise LineError(
                f"`{where}.type` {kind!r} is not supported: use message, function_call or "
                "function_call_output.",
                param=f"{where}.type",
            )
    return messages


def _output_text(output, where: str) -> str:
    """A function call's output: a string, or a list of `input_text` parts (joined)."""
    if isinstance(output, str):
        return output
    if isinstance(output, list) and all(
        isinstance(p, dict) and p.get("type") == "input_text" and isinstance(p.get("text"), str)
        for p in output
    ):
        return "".join(p["text"] for p in output)
    raise LineError(f"`{where}` must be a string or a list of input_text parts.", param=where)


def _joins(items: list, index: int) -> bool:
    """A function call joins the assistant turn just before it (its text, or the calls of
    the same step)."""
    previous = items[index - 1] if index else None
    return isinstance(previous, dict) and (
        previous.get("type") == "function_call"
        or (previous.get("type", "message") == "message" and previous.get("role") == "assistant")
    )


def _string(value, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise LineError(f"`{where}` must be a non-empty string.", param=where)
    return value


def _message(item: dict, where: str) -> dict:
    role = item.get("role")
    if role not in MESSAGE_ROLES:
        raise LineError(
            f"`{where}.role` must be one of {', '.join(MESSAGE_ROLES)}.", param=f"{where}.role"
        )
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise LineError(f"`{where}.content` must be a string or a list.", param=f"{where}.content")
    parts = [_part(part, f"{where}.content[{i}]", role) for i, part in enumerate(content)]
    if role == "assistant":
        return {"role": role, "content": "".join(p["text"] for p in parts)}
    return {"role": role, "content": parts}


def _part(part, where: str, role: str) -> dict:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind in ("input_text", "output_text") and isinstance(part.get("text"), str):
        if (kind == "output_text") != (role == "assistant"):
            raise LineError(f"`{where}.type` {kind!r} does not fit role {role!r}.", param=where)
        return {"type": "text", "text": part["text"]}
    if kind == "input_image" and role != "assistant":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise LineError(f"`{where}.image_url` must be a data: or gs:// URL.", param=where)
        return {"type": "image_url", "image_url": {"url": url}}
    raise LineError(
        f"`{where}` must be input_text or input_image (output_text for the assistant).",
        param=where,
    )


def _tools(tools) -> list[dict]:
    if not isinstance(tools, list):
        raise LineError("`tools` must be a list.", param="tools")
    out = []
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise LineError(
                f"`{where}`: only function tools run on Gemini batches (no built-in tools).",
                param=where,
            )
        function = {"name": _string(tool.get("name"), f"{where}.name")}
        for name in ("description", "parameters"):
            if tool.get(name) is not None:
                function[name] = tool[name]
        out.append({"type": "function", "function": function})
    return out


def _tool_choice(choice):
    if isinstance(choice, str):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    raise LineError(
        "`tool_choice` must be none, auto, required or a function choice.", param="tool_choice"
    )


def _text(text) -> dict:
    if text is None:
        return {}
    if not isinstance(text, dict) or set(text) - {"format", "verbosity"}:
        raise LineError("`text` takes `format` (and `verbosity`).", param="text")
    spec = text.get("format")
    if spec is None:
        return {}
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"response_format": {"type": "json_object"}}
    if kind == "json_schema":
        schema = {"name": spec.get("name") or "output", "schema": spec.get("schema")}
        return {"response_format": {"type": "json_schema", "json_schema": schema}}
    raise LineError("`text.format.type` must be text, json_object or json_schema.", "text.format")


# --- the result ------------------------------------------------------------------------------


def response_body(completion: dict, *, request_id: str) -> dict:
    """A chat completion (`results.chat_completion`) -> the Response object."""
    choice = completion["choices"][0]
    message = choice["message"]
    output: list[dict] = []
    if message.get("content"):
        output.append(
            {
                "type": "message",
                "id": f"msg_{request_id}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": message["content"], "annotations": []}],
            }
        )
    if message.get("refusal"):
        output.append(
            {
                "type": "message",
                "id": f"msg_{request_id}",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "refusal", "refusal": message["refusal"]}],
            }
        )
    for index, call in enumerate(message.get("tool_calls") or []):
        output.append(
            {
                "type": "function_call",
                "id": f"fc_{request_id}_{index}",
                "call_id": call["id"],
                "name": call["function"]["name"],
                "arguments": call["function"]["arguments"],
                "status": "completed",
            }
        )
    usage = completion.get("usage") or {}
    reason = INCOMPLETE.get(choice.get("finish_reason") or "")
    return {
        "id": f"resp_{request_id}",
        "object": "response",
        "created_at": completion["created"],
        "status": "incomplete" if reason else "completed",
        "completed_at": None if reason else completion["created"],
        "incomplete_details": {"reason": reason} if reason else None,
        "error": None,
        "model": completion["model"],
        "output": output,
        "instructions": None,
        "metadata": None,
        "parallel_tool_calls": True,
        "temperature": None,
        "top_p": None,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": usage.get("prompt_tokens", 0),
            "input_tokens_details": {
                "cached_tokens": (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0),
                "cache_write_tokens": 0,
            },
            "output_tokens": usage.get("completion_tokens", 0),
            "output_tokens_details": {
                "reasoning_tokens": (usage.get("completion_tokens_details") or {}).get(
                    "reasoning_tokens", 0
                ),
            },
            "total_tokens": usage.get("total_tokens", 0),
        },
    }
