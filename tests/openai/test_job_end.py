"""The OpenAI door finishes a batch when its job ends, although `jobs` never imports it."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

HOOKS_AFTER_IMPORT = """
import {module}
from shared.jobs import job_end
print(sorted(f"{{h.__module__}}.{{h.__name__}}" for h in job_end.hooks()))
"""


def _hooks_after_importing(module: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", HOOKS_AFTER_IMPORT.format(module=module)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def test_every_function_process_has_the_openai_hook():
    """The entry points' module alone registers it: a job-event process that never served an
    OpenAI route still writes a batch's files."""
    assert "shared.openai.batches.finish_for_job" in _hooks_after_importing("functions.main")


def test_jobs_alone_registers_no_hook():
    """The check above can fail: lifecycle by itself knows no door."""
    assert _hooks_after_importing("shared.jobs.lifecycle").strip() == "[]"
