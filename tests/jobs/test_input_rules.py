"""Vertex's whole-job import rules and job limits: the pure streaming check."""

import json

import pytest

from shared.jobs.input_rules import MAX_PROBLEMS, InputCheck
from shared.jobs.job_limits import JobLimits

GIB = 1 << 30


def gemini(text="hi", **extra) -> dict:
    return {"request": {"contents": [{"role": "user", "parts": [{"text": text}]}], **extra}}


def check(lines, chunk=7, **kwargs) -> InputCheck:
    """Feed the lines in small chunks, so lines straddle chunk boundaries."""
    data = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines).encode()
    found = InputCheck(**kwargs)
    found.start_file("gs://b/in.jsonl")
    for start in range(0, len(data), chunk):
        found.feed(data[start : start + chunk])
    found.end_file()
    return found


def nested(levels: int) -> dict:
    """A row whose deepest object is `levels` deep (the row itself is level 0)."""
    value: dict = {"leaf": 1}
    for _ in range(levels - 1):
        value = {"n": value}
    return {"top": value}


def test_a_good_input_has_no_problems_and_counts_rows():
    result = check([gemini("a"), "", gemini("b", generationConfig={"temperature": 0.5})])
    assert result.problems == [] and result.rows == 2


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ('{"request": {"contents": [', "not valid JSON"),
        ("[1, 2]", "not a JSON object"),
        ('"text"', "not a JSON object"),
        ("{}", "empty object"),
        ({"key": "a", "request": {"contents": [], "generationConfig": {}}}, "generationConfig"),
        (
            {"request": {"generationConfig": {"responseSchema": {"$defs": {"a": {"type": "x"}}}}}},
            "$defs",
        ),
        ({"my key": 1}, "'my key'"),
        ({"key": 5, **gemini()}, "`key` is a number here but a string on line 1"),
        ({"request": {"contents": {"role": "user"}}}, "`request.contents` is an object here"),
        ({"key": "b", "request": {"contents": [{"parts": [{"text": 3}]}]}}, "parts[].text"),
    ],
)
def test_each_rule_names_the_line_and_the_reason(bad, needle):
    result = check([{"key": "a", **gemini()}, bad])
    (problem,) = result.problems
    assert problem.line == 2 and problem.file == "gs://b/in.jsonl"
    assert needle in problem.reason
    assert str(problem).startswith("gs://b/in.jsonl line 2: ")


def test_types_within_one_array_must_agree():
    (problem,) = check([{"request": {"contents": [{"role": "user"}, "text"]}}]).problems
    assert "`request.contents[]` is a string here but an object on line 1" in problem.reason


def test_null_fits_any_type_and_int_and_float_are_one_type():
    lines = [{"a": 1, "b": None}, {"a": 2.5, "b": "x"}, {"a": None, "b": "y"}]
    assert check(lines).problems == []


def test_nesting_up_to_fifteen_levels_passes_sixteen_fails():
    assert check([nested(15)]).problems == []
    (problem,) = check([nested(16)]).problems
    assert "16 levels" in problem.reason
    # arrays add no level: 15 objects through arrays still pass
    through_arrays = {"a": [[{"b": [nested(13)]}]]}
    assert check([through_arrays]).problems == []
    through_arrays = {"a": [[{"b": [nested(14)]}]]}
    assert check([through_arrays]).problems != []


def test_only_the_first_problems_are_kept_but_every_row_is_counted():
    result = check(["nope"] * 20 + [gemini()])
    assert len(result.problems) == MAX_PROBLEMS
    assert [p.line for p in result.problems] == [1, 2, 3, 4, 5]
    assert result.rows == 21


def test_a_cut_last_line_of_a_partial_read_is_not_a_problem():
    data = (json.dumps(gemini()) + "\n" + json.dumps(gemini())[:10]).encode()
    partial = InputCheck()
    partial.start_file("gs://b/big.jsonl")
    partial.feed(data)
    partial.end_file(complete=False)
    assert partial.problems == [] and partial.rows == 1 and not partial.complete
    whole = InputCheck()
    whole.start_file("gs://b/big.jsonl")
    whole.feed(data)
    whole.end_file()
    assert [p.line for p in whole.problems] == [2]


def test_line_numbers_restart_per_file_and_conflicts_name_the_other_file():
    found = InputCheck()
    found.start_file("gs://b/a.jsonl")
    found.feed(b'{"key": "x"}\n')
    found.end_file()
    found.start_file("gs://b/b.jsonl")
    found.feed(b'{"key": "y"}\n{"key": 1}')
    found.end_file()
    (problem,) = found.problems
    assert (problem.file, problem.line) == ("gs://b/b.jsonl", 2)
    assert "gs://b/a.jsonl line 1" in problem.reason


def test_job_limits_as_the_importer_words_them():
    prompts = JobLimits(30_000, None, "prompts")
    embeddings = check([{"content": "x"}] * 30_001, chunk=1 << 20)
    (problem,) = embeddings.limit_problems(prompts, "text-embedding-005", 100)
    assert "30,001 prompts" in problem.reason and "30,000" in problem.reason
    at_limit = check([{"content": "x"}] * 30_000, chunk=1 << 20)
    assert at_limit.limit_problems(prompts, "text-embedding-005", 100) == []
    small = check([gemini()])
    gemini_limits = JobLimits(200_000, GIB)
    (too_big,) = small.limit_problems(gemini_limits, "gemini-3.5-flash", GIB + 1)
    assert f"{GIB + 1:,} bytes" in too_big.reason
    assert small.limit_problems(gemini_limits, "gemini-3.5-flash", GIB) == []
    assert small.limit_problems(JobLimits(None, None), "some-other-model", 10 * GIB) == []


def test_rows_are_not_judged_when_only_part_was_read():
    partial = InputCheck()
    partial.start_file("gs://b/big.jsonl")
    partial.feed(b'{"content": "x"}\n' * 30_001)
    partial.end_file(complete=False)
    assert partial.limit_problems(JobLimits(30_000, None), "text-embedding-005", 10) == []
