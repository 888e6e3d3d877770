"""The README's first screen and the curl walk-through (docs/walkthrough.md), run as written
against the local stack."""

import json
import re
import subprocess
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def marked_section(path: Path, marker: str) -> str:
    text = path.read_text()
    return text.split(f"<!-- {marker}:start -->", 1)[1].split(f"<!-- {marker}:end -->")[0]


def readme_script() -> str:
    section = marked_section(ROOT / "docs" / "walkthrough.md", "readme-e2e")
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert len(blocks) >= 6, "the walk-through lost its code blocks"
    return "\n".join(blocks)


def json_objects(text: str) -> list[dict]:
    """Every top-level JSON object in the output: curl prints bodies without newlines."""
    decoder, found, position = json.JSONDecoder(), [], 0
    while (start := text.find("{", position)) != -1:
        try:
            value, position = decoder.raw_decode(text, start)
        except ValueError:
            position = start + 1
            continue
        found.append(value)
    return found


def test_readme_walkthrough_runs_as_written(stack, tmp_path):
    script = "set -euo pipefail\n" + readme_script() + '\necho "JOB=$JOB"\necho "JOB2=$JOB2"\n'
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin:/usr/local/bin",
            "HOME": str(tmp_path),
            "VBG_STACK_FILE": str(Path(stack["state_dir"]) / "stack.json"),
        },
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    job = re.search(r"^JOB=(\d+)$", out, flags=re.M)[1]
    assert re.search(r"^JOB2=\d+$", out, flags=re.M)

    objects = json_objects(out)
    created = next(o for o in objects if o.get("displayName") == "sky")
    assert created["labels"]["project"] == "sky"
    listed = next(o for o in objects if "batchPredictionJobs" in o)
    assert [j["name"].rsplit("/", 1)[1] for j in listed["batchPredictionJobs"]] == [job]
    cost = next(o for o in objects if o.get("jobId") == job)
    assert cost["totals"]["rows"] == 2
    assert cost["costFinal"] is True
    assert cost["costUsd"] != "0" and not cost["costUsd"].startswith("0E")
    spend = next(o for o in objects if o.get("groupBy") == "model")
    # The session's stack is shared with other e2e tests: other models may have spend too.
    flash = next(g for g in spend["groups"] if g["model"] == "gemini-3.5-flash-lite")
    assert flash["costUsd"] != "0" and not flash["costUsd"].startswith("0E")
    assert not [o for o in objects if "error" in o]


def test_readme_first_screen_runs_as_written(stack, tmp_path):
    """The README's `vbg run` and google-genai examples, in a fresh folder beside `.venv`."""
    section = marked_section(ROOT / "README.md", "readme-run")
    [script] = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    [program] = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    (tmp_path / "example.py").write_text(program)
    shell = (
        "set -euo pipefail\n" + script + '\necho "KEY=$VBG_API_KEY"\n.venv/bin/python example.py\n'
    )
    result = subprocess.run(
        ["bash", "-c", shell],
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin:/usr/local/bin",
            "HOME": str(tmp_path),
            "VBG_STACK_FILE": str(Path(stack["state_dir"]) / "stack.json"),
        },
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    answers = [json.loads(line) for line in (tmp_path / "questions.results.jsonl").open()]
    asked = [json.loads(line) for line in (tmp_path / "questions.jsonl").open()]
    assert [a["request"] for a in answers] == [q["request"] for q in asked]
    assert all(a["status"] == "" and a["response"]["candidates"] for a in answers)
    key = re.search(r"^KEY=(\S+)$", result.stdout, flags=re.M)[1]
    name = re.search(r"^(projects/\S+/batchPredictionJobs/\d+) ", result.stdout, flags=re.M)[1]
    job = requests.get(
        f"{stack['gateway_url']}/v1/{name}", headers={"x-goog-api-key": key}, timeout=30
    ).json()
    assert job["displayName"] and job["model"].endswith("gemini-3.5-flash-lite")
