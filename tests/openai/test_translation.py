"""OpenAI batch input lines -> Vertex lines, field by field (pure logic, no processes)."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.openai.translation import (
    LineError,
    chat_request,
    embedding_instances,
    family,
    gemini_schema,
    parse_line,
    vertex_lines,
)
from tests.strategies import client_text

CHAT = "/v1/chat/completions"
USER = [{"role": "user", "content": "hi"}]


def chat(**body) -> dict:
    return chat_request({"model": "gemini-2.5-flash", "messages": USER, **body})


def refused(call, *args, **kwargs) -> LineError:
    with pytest.raises(LineError) as caught:
        call(*args, **kwargs)
    return caught.value


def keys_anywhere(value) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_anywhere(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_anywhere(v)}
    return set()


# --- the line envelope -----------------------------------------------------------------------


def line(**fields) -> str:
    base = {"custom_id": "a", "method": "POST", "url": CHAT, "body": {"model": "m", "messages": []}}
    return json.dumps({**base, **fields})


def test_parse_line_reads_the_envelope():
    parsed = parse_line(line(custom_id="Row 1/ÉTÉ"), CHAT)
    assert (parsed.custom_id, parsed.model) == ("Row 1/ÉTÉ", "m")


@pytest.mark.parametrize(
    ("raw", "param", "code"),
    [
        ("{not json", None, "invalid_json"),
        ("[1, 2]", None, "invalid_json"),
        (line(custom_id=""), "custom_id", "invalid_request"),
        (line(custom_id=7), "custom_id", "invalid_request"),
        (line(custom_id="x" * 513), "custom_id", "invalid_request"),
        (line(method="GET"), "method", "invalid_method"),
        (line(url="/v1/embeddings"), "url", "mismatched_url"),
        (line(body=[]), "body", "invalid_request"),
        (line(body={"messages": []}), "body.model", "missing_model"),
        (line(extra=1), "extra", "invalid_request"),
    ],
)
def test_parse_line_refuses_a_bad_envelope(raw, param, code):
    error = refused(parse_line, raw, CHAT)
    assert (error.param, error.code) == (param, code)


# --- messages --------------------------------------------------------------------------------


def test_roles_become_system_instruction_user_and_model_contents():
    request = chat_request(
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
                {"role": "user", "content": "Bonjour"},
                {"role": "assistant", "content": "Salut"},
                {"role": "user", "content": [{"type": "text", "text": "Encore"}]},
            ],
        }
    )
    assert request == {
        "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Use French."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Bonjour"}]},
            {"role": "model", "parts": [{"text": "Salut"}]},
            {"role": "user", "parts": [{"text": "Encore"}]},
        ],
    }


def test_image_and_audio_parts():
    content = [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "gs://bucket/photos/cat.jpg"}},
        {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
    ]
    request = chat_request({"model": "m", "messages": [{"role": "user", "content": content}]})
    assert request["contents"][0]["parts"] == [
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://bucket/photos/cat.jpg"}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
    ]


@pytest.mark.parametrize(
    "url",
    ["https://example.com/cat.png", "data:image/png,notbase64", "gs://bucket/no-extension"],
)
def test_images_vertex_cannot_fetch_are_refused(url):
    messages = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}]
    error = refused(chat_request, {"model": "m", "messages": messages})
    assert error.param == "messages[0].content[0].image_url.url"


def test_tool_calls_and_tool_results_become_function_parts():
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
    ]
    request = chat_request({"model": "m", "messages": messages})
    assert request["contents"][1:] == [
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "weather", "args": {"city": "Paris"}},
                    "thoughtSignature": "skip_thought_signature_validator",
                }
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "weather", "response": {"content": "18C and sunny"}}}
            ],
        },
    ]


def test_a_tool_result_for_no_call_is_refused():
    messages = [
        {"role": "user", "content": "x"},
        {"role": "tool", "tool_call_id": "nope", "content": "y"},
    ]
    assert (
        refused(chat_request, {"model": "m", "messages": messages}).param
        == "messages[1].tool_call_id"
    )


@pytest.mark.parametrize(
    "messages",
    [[], "hi", [{"role": "system", "content": "only a system prompt"}], [{"role": "robot"}]],
)
def test_messages_without_a_conversation_are_refused(messages):
    refused(chat_request, {"model": "m", "messages": messages})


# --- generation config -----------------------------------------------------------------------


def test_sampling_fields_map_to_generation_config():
    request = chat(
        max_tokens=100,
        temperature=0.7,
        top_p=0.9,
        stop="END",
        n=2,
        seed=42,
        presence_penalty=0.5,
        frequency_penalty=-0.5,
    )
    assert request["generationConfig"] == {
        "maxOutputTokens": 100,
        "temperature": 0.7,
        "topP": 0.9,
        "stopSequences": ["END"],
        "candidateCount": 2,
        "seed": 42,
        "presencePenalty": 0.5,
        "frequencyPenalty": -0.5,
    }


def test_max_completion_tokens_wins_over_max_tokens_and_n_1_is_the_default():
    config = chat(max_tokens=10, max_completion_tokens=20, n=1)["generationConfig"]
    assert config == {"maxOutputTokens": 20}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("temperature", 3),
        ("temperature", "hot"),
        ("top_p", 1.5),
        ("max_tokens", 0),
        ("max_tokens", True),
        ("n", 9),
        ("stop", ["a", "b", "c", "d", "e"]),
        ("reasoning_effort", "extreme"),
    ],
)
def test_out_of_range_values_are_refused_naming_the_field(field, value):
    assert refused(chat, **{field: value}).param == field


@pytest.mark.parametrize(
    ("effort", "budget"),
    [("none", 0), ("minimal", 0), ("low", 1024), ("medium", 8192), ("high", 24576)],
)
def test_reasoning_effort_sets_the_thinking_budget(effort, budget):
    config = chat(reasoning_effort=effort)["generationConfig"]
    assert config == {"thinkingConfig": {"thinkingBudget": budget}}


def test_ignored_fields_leave_no_trace_and_unknown_ones_are_refused():
    assert chat(user="u1", metadata={"a": "b"}, store=False, parallel_tool_calls=True) == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}]
    }
    for field, value in (("logprobs", True), ("logit_bias", {"1": 1}), ("functions", [])):
        error = refused(chat, **{field: value})
        assert (error.param, error.code) == (field, "unsupported_parameter")
    assert refused(chat, stream=True).param == "stream"


def test_response_format_json_object_and_text():
    assert chat(response_format={"type": "json_object"})["generationConfig"] == {
        "responseMimeType": "application/json"
    }
    assert "generationConfig" not in chat(response_format={"type": "text"})
    assert refused(chat, response_format={"type": "yaml"}).param == "response_format"


def test_json_schema_becomes_a_response_schema_without_dollar_keys():
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "city": {"$ref": "#/$defs/City"},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
            "note": {"type": ["string", "null"]},
            "kind": {"const": "place"},
            "size": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        },
        "required": ["city"],
        "additionalProperties": False,
        "$defs": {"City": {"type": "object", "properties": {"name": {"type": "string"}}}},
    }
    config = chat(
        response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    )["generationConfig"]
    assert config == {
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "OBJECT",
            "properties": {
                "city": {"type": "OBJECT", "properties": {"name": {"type": "STRING"}}},
                "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "maxItems": 3},
                "note": {"type": "STRING", "nullable": True},
                "kind": {"enum": ["place"]},
                "size": {"type": "INTEGER", "nullable": True},
            },
            "required": ["city"],
        },
    }
    assert not any(k.startswith("$") for k in keys_anywhere(config))


@pytest.mark.parametrize(
    "schema",
    [
        {
            "$ref": "#/$defs/Node",
            "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
        },
        {"$ref": "https://example.com/schema.json"},
        {"type": "object", "patternProperties": {"^x": {"type": "string"}}},
        {"type": ["string", "integer"]},
        {"type": "null"},
    ],
)
def test_schemas_gemini_cannot_hold_are_refused(schema):
    error = refused(gemini_schema, schema, param="p")
    assert error.param.startswith("p")


def test_tools_and_tool_choice():
    tools = [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Weather for a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                    "additionalProperties": False,
                },
                "strict": True,
            },
        },
        {
            "type": "function",
            "function": {"name": "now", "parameters": {"type": "object", "properties": {}}},
        },
    ]
    request = chat(tools=tools, tool_choice={"type": "function", "function": {"name": "weather"}})
    assert request["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "weather",
                    "description": "Weather for a city",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {"city": {"type": "STRING"}},
                        "required": ["city"],
                    },
                },
                {"name": "now"},
            ]
        }
    ]
    assert request["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}
    }
    for choice, mode in (("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")):
        assert chat(tools=tools, tool_choice=choice)["toolConfig"] == {
            "functionCallingConfig": {"mode": mode}
        }
    assert (
        refused(
            chat, tools=tools, tool_choice={"type": "function", "function": {"name": "x"}}
        ).param
        == "tool_choice"
    )
    assert refused(chat, tools=[{"type": "web_search"}]).param == "tools[0]"


# --- endpoints and models --------------------------------------------------------------------


def test_family_of_deployment_models():
    assert family("gemini-2.5-flash") == "gemini"
    assert family("gemini-embedding-001") == "gemini-embedding"
    assert family("text-embedding-005") == "text-embedding"
    assert family("text-multilingual-embedding-002") == "text-embedding"


def test_vertex_lines_keep_the_custom_id_beside_the_request():
    parsed = parse_line(
        json.dumps(
            {
                "custom_id": "Q 1",
                "method": "POST",
                "url": CHAT,
                "body": {"model": "m", "messages": USER},
            }
        ),
        CHAT,
    )
    assert vertex_lines(parsed, CHAT, "gemini-2.5-flash") == [
        {
            "custom_id": "Q 1",
            "request": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        }
    ]
    assert "embedding model" in refused(vertex_lines, parsed, CHAT, "text-embedding-005").message


def embeddings_line(body: dict):
    raw = {"custom_id": "e1", "method": "POST", "url": "/v1/embeddings", "body": body}
    return parse_line(json.dumps(raw), "/v1/embeddings")


def test_each_text_of_an_embeddings_request_is_one_vertex_line():
    body = {"model": "e", "input": ["one", "two"], "dimensions": 4, "encoding_format": "base64"}
    assert vertex_lines(embeddings_line(body), "/v1/embeddings", "gemini-embedding-001") == [
        {
            "custom_id": "e1",
            "input_index": index,
            "request": {
                "content": {"parts": [{"text": text}]},
                "embed_content_config": {"output_dimensionality": 4},
            },
            "encoding_format": "base64",
        }
        for index, text in enumerate(["one", "two"])
    ]
    plain = embeddings_line({"model": "e", "input": "the text"})
    assert vertex_lines(plain, "/v1/embeddings", "text-embedding-005") == [
        {"custom_id": "e1", "input_index": 0, "content": "the text"}
    ]
    assert "not an embedding model" in (
        refused(vertex_lines, plain, "/v1/embeddings", "gemini-2.5-flash").message
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": []}, "input"),
        ({"input": ["a", ""]}, "input"),
        ({"input": ["a"] * 2049}, "input"),
        ({"input": [1, 2, 3]}, "input"),
        ({"input": ""}, "input"),
        ({"input": "a", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "a", "extra": 1}, "extra"),
    ],
)
def test_embedding_bodies_the_gateway_cannot_send_are_refused(body, param):
    assert refused(embedding_instances, {"model": "e", **body}, "gemini-embedding").param == param


def test_text_embedding_models_take_no_dimensions():
    error = refused(
        embedding_instances, {"model": "e", "input": "a", "dimensions": 8}, "text-embedding"
    )
    assert error.param == "dimensions"


@settings(max_examples=300, deadline=None)
@given(
    content=client_text(max_size=20),
    custom_id=client_text(max_size=8),
    ascii_only=st.booleans(),
)
def test_any_line_text_is_a_line_or_a_line_error(content, custom_id, ascii_only):
    """Issue #22 items 11 and 14 as a property: whatever text a line holds (lone surrogates,
    line separators), parsing and translating it gives a line whose strings are all text,
    or a LineError; never another exception."""
    from shared.core import json_text
    from shared.openai.translation import LineError, vertex_lines

    body = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": content}]}
    line = {"custom_id": custom_id, "method": "POST", "url": CHAT, "body": body}
    lone = json_text.lone_surrogate(line) is not None
    # A lone surrogate has no UTF-8 form: a file holds its escape.
    raw = json.dumps(line, ensure_ascii=ascii_only or lone)
    try:
        parsed = parse_line(raw, CHAT)
        translated = vertex_lines(parsed, CHAT, "gemini-2.5-flash")
    except LineError:
        return
    assert not lone  # a line holding one is refused
    assert json_text.lone_surrogate(translated) is None and parsed.custom_id == custom_id
