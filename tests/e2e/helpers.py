"""What the e2e tests do alike against the running stack: make a key, wait, run `vbg`."""

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

VBG = str(Path(sys.executable).with_name("vbg"))


def make_key(stack: dict, alias: str, *, folder: str, **fields) -> str:
    """A key through the admin API, allowed `gs://<bucket>/<folder>/` for input and output."""
    prefix = f"gs://{stack['bucket']}/{folder.strip('/')}/"
    response = requests.post(
        f"{stack['gateway_url']}/v1/gateway/keys",
        json={"alias": alias, "inputPrefixes": [prefix], "outputPrefixes": [prefix], **fields},
        headers={"Authorization": f"Bearer {stack['master_key']}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["key"]


def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    """The predicate's first truthy value; an AssertionError naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def vbg(*args, stack: dict | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """The installed console script, as a user runs it (pointed at the stack's GCS)."""
    env = dict(os.environ)
    if stack:
        env["STORAGE_EMULATOR_HOST"] = stack["storage_url"]
    return subprocess.run(
        [VBG, *args], capture_output=True, text=True, timeout=60, env=env, check=check
    )
