"""`vbg cost` on files under tmp_path: exact --json fields, the table, and user errors."""

import json
import subprocess
import sys

import pytest

from shared.cli.main import main

FIELDS = {
    "model",
    "rows",
    "succeeded",
    "failed",
    "malformed",
    "prompt_tokens",
    "cached_tokens",
    "candidates_tokens",
    "thoughts_tokens",
    "tool_use_prompt_tokens",
    "audio_prompt_tokens",
    "embedding_tokens",
    "embedding_characters",
    "unpriced_rows",
    "no_usage_rows",
    "cost_usd",
}


def row(
    model_version="gemini-3.5-flash-lite-001", prompt=10000, cached=4096, out=200, thoughts=300
):
    usage = {
        "promptTokenCount": prompt,
        "cachedContentTokenCount": cached,
        "candidatesTokenCount": out,
        "thoughtsTokenCount": thoughts,
    }
    return json.dumps(
        {
            "status": "",
            "request": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
            "response": {"usageMetadata": usage, "modelVersion": model_version},
        }
    )


@pytest.fixture
def predictions(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text(row() + "\n" + json.dumps({"status": "Bad Request"}) + "\nnot json\n")
    return path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_has_exactly_the_documented_fields(capsys, predictions):
    code, out, err = run(
        capsys, "cost", str(predictions), "--model", "gemini-3.5-flash-lite", "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert set(report) == FIELDS
    assert report == {
        "model": "gemini-3.5-flash-lite",
        "rows": 3,
        "succeeded": 1,
        "failed": 1,
        "malformed": 1,
        "prompt_tokens": 10000,
        "cached_tokens": 4096,
        "candidates_tokens": 200,
        "thoughts_tokens": 300,
        "tool_use_prompt_tokens": 0,
        "audio_prompt_tokens": 0,
        "embedding_tokens": 0,
        "embedding_characters": 0,
        "unpriced_rows": 0,
        "no_usage_rows": 0,
        "cost_usd": "0.001633480",
    }
    assert err == ""


def test_json_prints_tool_use_and_audio_tokens(capsys, tmp_path):
    """Issue #24 item 6: the report once left out two of the parser's counters."""
    usage = {
        "promptTokenCount": 1000,
        "toolUsePromptTokenCount": 40,
        "candidatesTokenCount": 10,
        "promptTokensDetails": [
            {"modality": "TEXT", "tokenCount": 400},
            {"modality": "AUDIO", "tokenCount": 600},
        ],
    }
    response = {"usageMetadata": usage, "modelVersion": "gemini-2.5-flash-001"}
    path = tmp_path / "audio.jsonl"
    path.write_text(json.dumps({"status": "", "response": response}) + "\n")
    code, out, err = run(capsys, "cost", str(path), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert (report["tool_use_prompt_tokens"], report["audio_prompt_tokens"]) == (40, 600)
    assert (report["prompt_tokens"], report["candidates_tokens"]) == (1000, 10)


def test_model_from_rows_and_by_model_when_mixed(capsys, tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        row() + "\n" + row("gemini-2.0-flash-001", prompt=100, cached=0, out=10, thoughts=0) + "\n"
    )
    code, out, _ = run(capsys, "cost", str(path), "--json")
    assert code == 0
    report = json.loads(out)
    assert set(report) == FIELDS | {"by_model"}
    assert report["model"] is None
    assert report["by_model"]["gemini-2.0-flash"]["cost_usd"] == "0.000010500"
    assert report["by_model"]["gemini-3.5-flash-lite"]["cost_usd"] == "0.001633480"
    assert report["cost_usd"] == "0.001643980"


def test_single_model_from_rows(capsys, predictions):
    code, out, _ = run(capsys, "cost", str(predictions), "--json")
    assert code == 0
    assert json.loads(out)["model"] == "gemini-3.5-flash-lite"


def test_online_rates(capsys, predictions):
    code, out, _ = run(capsys, "cost", str(predictions), "--json", "--online")
    assert code == 0
    assert json.loads(out)["cost_usd"] == "0.003144080"  # 5904*300 + 4096*30 + 500*2500


def test_readable_table(capsys, predictions):
    code, out, _ = run(capsys, "cost", str(predictions))
    assert code == 0
    assert "$0.001633480 USD" in out
    assert "failed      line 2: Bad Request" in out
    assert "malformed   line 3" in out


def test_unknown_model_is_an_error_naming_the_known_ones(capsys, predictions):
    code, out, err = run(capsys, "cost", str(predictions), "--model", "gpt-5")
    assert code == 2 and out == ""
    assert "unknown model 'gpt-5'" in err and "gemini-3.1-pro-preview" in err
    assert "Traceback" not in err


def test_rows_of_an_unknown_model_are_counted_and_warned_strict_fails(capsys, tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(row("mystery-1") + "\n" + row() + "\n" + json.dumps({"status": ""}) + "\n")
    code, out, err = run(capsys, "cost", str(path), "--json")
    assert code == 0
    report = json.loads(out)
    assert (report["unpriced_rows"], report["no_usage_rows"]) == (1, 1)
    assert report["cost_usd"] == "0.001633480"  # only the gemini-3.5-flash-lite row is priced
    assert "warning" in err and "mystery-1" in err and "1 row(s) carry no usage" in err
    code, out, err = run(capsys, "cost", str(path), "--json", "--strict")
    assert code == 2 and json.loads(out)["unpriced_rows"] == 1
    assert "mystery-1" in err
    clean = tmp_path / "clean.jsonl"
    clean.write_text(row() + "\n")
    code, _, err = run(capsys, "cost", str(clean), "--json", "--strict")
    assert (code, err) == (0, "")


def test_cjk_text_embedding_file_priced_per_character(capsys, tmp_path):
    rows = [
        {
            "instance": {"content": "東京 タワーの高さは。", "title": "東京"},
            "predictions": [{"embeddings": {"statistics": {"token_count": 8}, "values": [0.1]}}],
            "status": "",
        }
    ]
    path = tmp_path / "emb.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    code, out, err = run(capsys, "cost", str(path), "--model", "text-embedding-005", "--json")
    assert code == 0, err
    report = json.loads(out)
    # "東京タワーの高さは。" 10 code points + title "東京" 2 = 12, at 20 nanos each (batch).
    assert (report["embedding_characters"], report["embedding_tokens"]) == (12, 8)
    assert report["cost_usd"] == "0.000000240"


def test_missing_file_and_bad_uri(capsys, tmp_path):
    code, _, err = run(capsys, "cost", str(tmp_path / "nope.jsonl"))
    assert code == 2 and "no such file" in err
    code, _, err = run(capsys, "cost", "gs://bucket-only")
    assert code == 2 and "gs://bucket/object" in err


def test_console_script_runs_as_a_process(predictions):
    proc = subprocess.run(
        [sys.executable, "-m", "shared.cli", "cost", str(predictions), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["cost_usd"] == "0.001633480"


def test_no_command_prints_help(capsys):
    code, _, err = run(capsys)
    assert code == 2 and "cost" in err


def test_location_prices_with_the_regional_uplift(capsys, tmp_path):
    # The first complaint: `vbg cost --model gemini-3.5-flash` knows the model now.
    path = tmp_path / "predictions.jsonl"
    path.write_text(row("gemini-3.5-flash", prompt=1000, cached=0, out=100, thoughts=0) + "\n")
    # batch 0.75 / 4.50 per 1M: 1000 x 750 + 100 x 4500 = 1,200,000 nano-dollars
    assert main(["cost", str(path), "--model", "gemini-3.5-flash", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cost_usd"] == "0.001200000"
    assert (
        main(["cost", str(path), "--model", "gemini-3.5-flash", "--json", "--location", "us"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["cost_usd"] == "0.001320000"
    assert main(["cost", str(path), "--json", "--location", "global"]) == 0
    assert json.loads(capsys.readouterr().out)["cost_usd"] == "0.001200000"
