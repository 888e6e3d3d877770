"""`/v1/responses` lines (#26 item 6): a Responses request is the chat request it means, and
a chat completion comes back as a `response` object the SDK's own type reads."""

import json

import pytest
from openai.types.responses import Response

from shared.openai import responses
from shared.openai.translation import CHAT, RESPONSES, LineError, parse_line, vertex_lines

MODEL = "gemini-3.5-flash-lite"
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def translated(endpoint: str, body: dict) -> dict:
    raw = json.dumps({"custom_id": "r", "method": "POST", "url": endpoint, "body": body})
    return vertex_lines(parse_line(raw, endpoint), endpoint, MODEL)[0]["request"]


def test_a_responses_request_becomes_what_the_same_chat_request_becomes():
    """Every mapped field at once; the oracle is the chat translation of the chat request
    written out by hand (its own tests hold it to Gemini)."""
    responses_body = {
        "model": MODEL,
        "instructions": "Answer in JSON.",
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
            {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{}"},
            {
                "type": "function_call",
                "call_id": "c2",
                "name": "weather",
                "arguments": '{"city": "Lyon"}',
            },
            {"type": "function_call_output", "call_id": "c1", "output": "18C"},
            {"type": "function_call_output", "call_id": "c2", "output": "20C"},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"role": "assistant", "content": [{"type": "output_text", "text": "Both mild."}]},
            {"role": "user", "content": "And tomorrow?"},
        ],
        "tools": [{"type": "function", "name": "weather", "parameters": WEATHER, "strict": True}],
        "tool_choice": {"type": "function", "name": "weather"},
        "text": {"format": {"type": "json_schema", "name": "city", "schema": SCHEMA}},
        "reasoning": {"effort": "low", "summary": "auto"},
        "max_output_tokens": 300,
        "temperature": 0.2,
        "metadata": {"a": "b"},
        "store": False,
    }
    chat_body = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Answer in JSON."},
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": "{}"},
                    },
                    {
                        "id": "c2",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Lyon"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "18C"},
            {"role": "tool", "tool_call_id": "c2", "content": "20C"},
            {"role": "assistant", "content": "Both mild."},
            {"role": "user", "content": "And tomorrow?"},
        ],
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": WEATHER}}],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "city", "schema": SCHEMA},
        },
        "reasoning_effort": "low",
        "max_completion_tokens": 300,
        "temperature": 0.2,
    }
    assert translated(RESPONSES, responses_body) == translated(CHAT, chat_body)


def test_a_string_input_is_one_user_message():
    request = translated(RESPONSES, {"model": MODEL, "input": "Hello"})
    assert request == {"contents": [{"role": "user", "parts": [{"text": "Hello"}]}]}


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"background": True}, "background"),
        ({"tools": [{"type": "web_search"}]}, "tools[0]"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0]",
        ),
        ({"input": [{"type": "computer_call"}]}, "input[0].type"),
        ({"input": []}, "input"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"text": {"format": {"type": "grammar"}}}, "text.format"),
        ({"reasoning": {"effort": "low", "budget": 3}}, "reasoning"),
    ],
)
def test_what_cannot_be_translated_is_refused_naming_the_field(fields, param):
    body = {"model": MODEL, "input": "hi", **fields}
    with pytest.raises(LineError) as refused:
        translated(RESPONSES, body)
    assert refused.value.param == param


def completion(content, tool_calls=None, finish="stop") -> dict:
    return {
        "id": "chatcmpl-x",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "tool_calls": tool_calls},
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": 11,
            "completion_tokens": 7,
            "total_tokens": 18,
            "prompt_tokens_details": {"cached_tokens": 3},
            "completion_tokens_details": {"reasoning_tokens": 2},
        },
    }


def test_a_completion_comes_back_as_a_response_the_sdk_reads():
    body = responses.response_body(completion("Paris."), request_id="abc")
    parsed = Response.model_validate(body)
    assert parsed.output_text == "Paris." and parsed.status == "completed"
    assert parsed.usage.input_tokens == 11 and parsed.usage.output_tokens == 7
    assert parsed.usage.input_tokens_details.cached_tokens == 3
    assert parsed.usage.output_tokens_details.reasoning_tokens == 2
    assert parsed.usage.total_tokens == 18


def test_tool_calls_come_back_as_function_call_items():
    calls = [
        {
            "id": "c9",
            "type": "function",
            "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
        }
    ]
    parsed = Response.model_validate(
        responses.response_body(completion(None, calls, "tool_calls"), request_id="abc")
    )
    [item] = parsed.output
    assert (item.type, item.call_id, item.name, item.arguments) == (
        "function_call",
        "c9",
        "weather",
        '{"city": "Oslo"}',
    )


def test_a_cut_off_answer_is_incomplete():
    parsed = Response.model_validate(
        responses.response_body(completion("Par", finish="length"), request_id="abc")
    )
    assert parsed.status == "incomplete"
    assert parsed.incomplete_details.reason == "max_output_tokens"


def test_a_function_output_may_be_text_parts():
    def body(output) -> dict:
        items = [
            {"role": "user", "content": "time?"},
            {"type": "function_call", "call_id": "c", "name": "now", "arguments": ""},
            {"type": "function_call_output", "call_id": "c", "output": output},
        ]
        return {"model": MODEL, "input": items}

    parts = [{"type": "input_text", "text": "no"}, {"type": "input_text", "text": "on"}]
    assert translated(RESPONSES, body(parts)) == translated(RESPONSES, body("noon"))
    with pytest.raises(LineError) as refused:
        translated(RESPONSES, body([{"type": "input_image", "image_url": "data:,"}]))
    assert refused.value.param == "input[2].output"
