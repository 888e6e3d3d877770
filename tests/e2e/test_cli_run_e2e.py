"""`vbg run`, `vbg jobs`, `vbg spend` and `vbg budget` as a user runs them, on the stack."""

import csv
import io
import json
import uuid
from decimal import Decimal

import pytest
import requests

from tests.e2e.helpers import make_key, vbg

pytestmark = pytest.mark.e2e


def user(stack, key, *args):
    return vbg(*args, "--gateway", stack["gateway_url"], "--key", key, stack=stack)


def test_run_over_the_job_limit_returns_every_answer_in_input_order_with_one_cost(stack, tmp_path):
    """The stack's gemini-3.5-flash-lite-small-jobs deployment takes 100 requests a job
    (model_info.max_job_rows): 500 rows are five jobs, merged back in input order."""
    folder = f"run-{uuid.uuid4().hex[:8]}"
    key = make_key(stack, "runner", folder=folder, budgetUsd="10")
    # 500 rows, every tenth a repeat of an earlier one: identical requests map one to one.
    texts = [f"question {n // 10 if n % 10 == 0 else n}" for n in range(500)]
    lines = [{"request": {"contents": [{"role": "user", "parts": [{"text": t}]}]}} for t in texts]
    source = tmp_path / "questions.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "answers.jsonl"

    result = user(
        stack,
        key,
        "run",
        str(source),
        "--model",
        "gemini-3.5-flash-lite-small-jobs",
        "--yes",
        "--out",
        str(out),
        "--label",
        "project=cli",
        "--max-concurrent-jobs",
        "3",
        "--interval",
        "0.3",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    answers = [json.loads(row) for row in out.read_text().splitlines()]
    assert len(answers) == 500
    assert [a["request"] for a in answers] == [line["request"] for line in lines]
    assert all(a["status"] == "" and a["response"]["candidates"] for a in answers)
    assert summary["rows"] == summary["succeeded"] == 500 and summary["state"] == "SUCCEEDED"
    assert summary["pieces"] == 5 and len(summary["jobIds"]) == 5

    # One cost: the sum of the pieces' cost views, and of `vbg cost` over the merged files.
    headers = {"x-goog-api-key": key}
    piece_costs = []
    for job_id in summary["jobIds"]:
        job_url = f"{stack['gateway_url']}/v1/gateway/jobs/{job_id}"
        cost = requests.get(f"{job_url}/cost", headers=headers, timeout=30).json()
        assert cost["costFinal"]
        piece_costs.append(Decimal(cost["costUsd"]))
    assert summary["costFinal"] and Decimal(summary["costUsd"]) == sum(piece_costs) > 0
    assert [Decimal(c) for c in summary["pieceCostsUsd"]] == piece_costs
    run_url = f"{stack['gateway_url']}/v1/gateway/runs/{summary['runId']}"
    folder_uri = requests.get(run_url, headers=headers, timeout=30).json()["outputDirectory"]
    offline = Decimal(0)
    for index in range(5):
        merged = f"{folder_uri}results-{index:05d}-of-00005.jsonl"
        priced = vbg("cost", merged, "--model", "gemini-3.5-flash-lite", "--json", stack=stack)
        assert priced.returncode == 0, priced.stderr
        offline += Decimal(json.loads(priced.stdout)["cost_usd"])
    assert offline == Decimal(summary["costUsd"])

    listed = json.loads(user(stack, key, "jobs", "list", "--json").stdout)
    assert sorted(j["jobId"] for j in listed) == sorted(summary["jobIds"])
    got = json.loads(user(stack, key, "jobs", "get", summary["jobIds"][0], "--json").stdout)
    assert got["labels"]["project"] == "cli" and got["rows"]["succeeded"] == 100

    spend = json.loads(user(stack, key, "spend", "--group-by", "model", "--json").stdout)
    assert Decimal(spend["totals"]["costUsd"]) == Decimal(summary["costUsd"])
    exported = user(stack, key, "spend", "--group-by", "model", "--csv").stdout
    rows = list(csv.DictReader(io.StringIO(exported)))  # one day, the run's model
    assert sum(Decimal(r["costUsd"]) for r in rows) == Decimal(summary["costUsd"])
    [budget] = json.loads(user(stack, key, "budget", "--json").stdout)
    assert budget["limitUsd"] == "10.000000000"
    assert Decimal(budget["spentUsd"]) == Decimal(summary["costUsd"])


def test_run_without_yes_on_a_closed_stdin_creates_nothing(stack, tmp_path):
    folder = f"run-{uuid.uuid4().hex[:8]}"
    key = make_key(stack, "asker", folder=folder)
    source = tmp_path / "one.jsonl"
    source.write_text('{"request": {"contents": [{"parts": [{"text": "hi"}]}]}}\n')
    result = user(stack, key, "run", str(source), "--model", "gemini-3.5-flash-lite")
    assert result.returncode == 1
    assert "estimated cost" in result.stderr and "not created" in result.stderr
    assert json.loads(user(stack, key, "jobs", "list", "--json").stdout) == []


def test_cli_errors_are_one_line(stack, tmp_path, monkeypatch):
    monkeypatch.delenv("VBG_API_KEY", raising=False)
    key = make_key(stack, "erring", folder=f"err-{uuid.uuid4().hex[:8]}")
    source = tmp_path / "one.jsonl"
    source.write_text('{"request": {}}\n')
    unknown = user(stack, key, "run", str(source), "--model", "no-such-model", "--yes")
    assert unknown.returncode == 2 and "Traceback" not in unknown.stderr
    assert "no-such-model" in unknown.stderr
    missing = user(stack, key, "jobs", "get", "123")
    assert missing.returncode == 2 and "HTTP 404" in missing.stderr
    no_key = vbg("jobs", "list", "--gateway", stack["gateway_url"])
    assert no_key.returncode == 2 and "no API key" in no_key.stderr
