"""Realistic agent transcripts with tools, as OpenAI's Chat Completions takes them (#26 item 1)."""

import json

MODEL = "gemini-3.5-flash-lite"
CHAT = "/v1/chat/completions"

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "The current time (no arguments).",
            "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
        },
    },
    {"type": "function", "function": {"name": "list_files"}},
    {"type": "function", "function": {"name": "ping", "parameters": {}}},
    {
        "type": "function",
        "function": {
            "name": "store",
            "description": "Store any JSON value under a key.",
            "parameters": {
                "type": "object",
                "properties": {
                    "key": {"type": "string"},
                    "value": {},
                    "options": {"type": "object"},
                },
                "required": ["key", "value"],
            },
        },
    },
]


def call(call_id: str, name: str, arguments: str) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


# A realistic agent loop: a parallel step (no-argument calls, one with "" and one with "{}"),
# its two results, a second step with arguments holding an empty object, its result, the
# answer, then a new user question in the same conversation.
TRANSCRIPT = [
    {"role": "system", "content": "You are a file agent."},
    {"role": "user", "content": "What time is it, and what files are there?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [call("c1", "get_time", ""), call("c2", "list_files", "{}")],
    },
    {"role": "tool", "tool_call_id": "c1", "content": "12:00"},
    {"role": "tool", "tool_call_id": "c2", "content": [{"type": "text", "text": "a.txt b.txt"}]},
    {
        "role": "assistant",
        "content": "Storing the listing.",
        "tool_calls": [
            call("c3", "store", json.dumps({"key": "ls", "value": ["a.txt"], "options": {}}))
        ],
    },
    {"role": "tool", "tool_call_id": "c3", "content": "ok"},
    {"role": "assistant", "content": "It is 12:00; files: a.txt, b.txt."},
    {"role": "user", "content": "Ping the server."},
    {"role": "assistant", "tool_calls": [call("c4", "ping", "{}")]},
    {"role": "tool", "tool_call_id": "c4", "content": "pong"},
]


def line(messages=TRANSCRIPT, tools=TOOLS, custom_id="t-1") -> dict:
    body = {"model": MODEL, "messages": messages, "tools": tools}
    return {"custom_id": custom_id, "method": "POST", "url": CHAT, "body": body}
