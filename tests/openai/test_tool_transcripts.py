"""Agent transcripts with tools (#26 item 1): what OpenAI accepts becomes what Vertex takes.

Judged by Vertex's own rules, not by the translation: every translated line passes the batch
importer's rules (`input_rules.InputCheck`: an empty object anywhere fails the whole job) and
parses as a `GenerateContentRequest` with the official `google-cloud-aiplatform` types; the
Gemini rules a transcript must keep (every call answered in one turn, Gemini 3's thought
signature) are the simulator's (`local/sim_rows.py`), which runs each line as a row.
"""

import json
from datetime import UTC, datetime

import pytest
from google.cloud import aiplatform_v1

from local.sim_rows import output_row
from shared.jobs.input_rules import InputCheck
from shared.openai.translation import CHAT, LineError, chat_request, parse_line, vertex_lines
from tests.openai.transcripts import MODEL, TOOLS, TRANSCRIPT, call, line

NOW = datetime(2026, 1, 2, tzinfo=UTC)


def translated(openai_line: dict) -> list[dict]:
    return vertex_lines(parse_line(json.dumps(openai_line), CHAT), CHAT, MODEL)


def importer_problems(vertex: list[dict]) -> list[str]:
    check = InputCheck()
    check.start_file("in.jsonl")
    check.feed("".join(json.dumps(v) + "\n" for v in vertex).encode())
    check.end_file()
    return [p.reason for p in check.problems]


def test_a_tool_transcript_passes_vertex_import_and_runs_as_a_row():
    vertex = translated(line())
    assert importer_problems(vertex) == []
    aiplatform_v1.GenerateContentRequest.from_json(json.dumps(vertex[0]["request"]))
    row, ok = output_row(MODEL, json.dumps(vertex[0]), NOW)
    assert ok, row.get("status")


def test_calls_without_arguments_carry_no_args():
    contents = chat_request({"model": MODEL, "messages": TRANSCRIPT})["contents"]
    first_step = contents[1]["parts"]
    assert [p["functionCall"] for p in first_step] == [
        {"name": "get_time"},
        {"name": "list_files"},
    ]


def test_an_empty_object_inside_arguments_is_dropped():
    contents = chat_request({"model": MODEL, "messages": TRANSCRIPT})["contents"]
    store = contents[3]["parts"][1]["functionCall"]
    assert store == {"name": "store", "args": {"key": "ls", "value": ["a.txt"]}}
    nested = [call("x", "store", json.dumps({"key": "k", "value": [{}, {"a": {}}, 1]}))]
    messages = [{"role": "user", "content": "go"}, {"role": "assistant", "tool_calls": nested}]
    args = chat_request({"model": MODEL, "messages": messages})["contents"][1]["parts"][0]
    assert args["functionCall"]["args"] == {"key": "k", "value": [None, None, 1]}


def test_parallel_results_are_one_turn_answering_every_call():
    contents = chat_request({"model": MODEL, "messages": TRANSCRIPT})["contents"]
    roles = [c["role"] for c in contents]
    assert roles == ["user", "model", "user", "model", "user", "model", "user", "model", "user"]
    answers = contents[2]["parts"]
    assert [a["functionResponse"]["name"] for a in answers] == ["get_time", "list_files"]
    assert answers[1]["functionResponse"]["response"] == {"content": "a.txt b.txt"}


def test_the_first_call_of_each_step_carries_the_documented_signature():
    contents = chat_request({"model": MODEL, "messages": TRANSCRIPT})["contents"]
    signatures = [
        [p.get("thoughtSignature") for p in c["parts"] if "functionCall" in p]
        for c in contents
        if c["role"] == "model"
    ]
    skip = "skip_thought_signature_validator"
    assert signatures == [[skip, None], [skip], [], [skip]]


def test_open_and_empty_schemas():
    tools = chat_request({"model": MODEL, "messages": TRANSCRIPT, "tools": TOOLS})["tools"]
    declarations = tools[0]["functionDeclarations"]
    assert declarations[:3] == [
        {"name": "get_time", "description": "The current time (no arguments)."},
        {"name": "list_files"},
        {"name": "ping"},
    ]
    assert declarations[3]["parameters"] == {
        "type": "OBJECT",
        "properties": {
            "key": {"type": "STRING"},
            "value": {"nullable": True},
            "options": {"type": "OBJECT"},
        },
        "required": ["key", "value"],
    }


def test_the_old_translation_would_have_failed_the_import():
    """The rule the fix keeps: an empty object anywhere is an import failure."""
    part = {"functionCall": {"name": "get_time", "args": {}}}
    vertex = [{"custom_id": "x", "request": {"contents": [{"role": "model", "parts": [part]}]}}]
    assert importer_problems(vertex) == [
        "`request.contents[].parts[].functionCall.args` is an empty object {}"
    ]


@pytest.mark.parametrize("arguments", ["[]", '"x"', "{", "null"])
def test_arguments_that_are_not_an_object_are_still_refused(arguments):
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "tool_calls": [call("x", "f", arguments)]},
    ]
    with pytest.raises(LineError):
        chat_request({"model": MODEL, "messages": messages})
