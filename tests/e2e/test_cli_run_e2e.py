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


def test_run_500_rows_returns_500_answers_in_input_order(stack, tmp_path):
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
        "gemini-3.5-flash-lite",
        "--yes",
        "--out",
        str(out),
        "--label",
        "project=cli",
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

    headers = {"x-goog-api-key": key}
    job_url = f"{stack['gateway_url']}/v1/gateway/jobs/{summary['jobId']}"
    cost = requests.get(f"{job_url}/cost", headers=headers, timeout=30).json()
    assert cost["costFinal"] and summary["costFinal"]
    assert summary["costUsd"] == cost["costUsd"]
    # An independent price: `vbg cost` over the answers file it wrote.
    offline = vbg("cost", str(out), "--model", "gemini-3.5-flash-lite", "--json", check=True)
    assert json.loads(offline.stdout)["cost_usd"] == cost["costUsd"]
    assert Decimal(cost["costUsd"]) > 0

    listed = user(stack, key, "jobs", "list", "--json")
    assert [j["jobId"] for j in json.loads(listed.stdout)] == [summary["jobId"]]
    got = json.loads(user(stack, key, "jobs", "get", summary["jobId"], "--json").stdout)
    assert got["labels"]["project"] == "cli" and got["rows"]["succeeded"] == 500

    spend = json.loads(user(stack, key, "spend", "--group-by", "model", "--json").stdout)
    assert spend["totals"]["costUsd"] == cost["costUsd"]
    assert [g["model"] for g in spend["groups"]] == ["gemini-3.5-flash-lite"]
    exported = user(stack, key, "spend", "--group-by", "model", "--csv").stdout
    [row] = list(csv.DictReader(io.StringIO(exported)))  # one day, one model
    assert row["model"] == "gemini-3.5-flash-lite" and row["costUsd"] == cost["costUsd"]
    [budget] = json.loads(user(stack, key, "budget", "--json").stdout)
    assert budget["limitUsd"] == "10.000000000"
    assert budget["spentUsd"] == cost["costUsd"]

    table = user(stack, key, "jobs", "list")
    assert table.returncode == 0 and summary["jobId"] in table.stdout


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
