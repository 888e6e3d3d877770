"""The README's walk-through, run as written against the local stack."""

import json
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def readme_script() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("<!-- readme-e2e:start -->", 1)[1].split("<!-- readme-e2e:end -->")[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    assert len(blocks) >= 6, "the README walk-through lost its code blocks"
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
    flash = next(g for g in spend["groups"] if g["model"] == "gemini-2.5-flash")
    assert flash["costUsd"] != "0" and not flash["costUsd"].startswith("0E")
    assert not [o for o in objects if "error" in o]
