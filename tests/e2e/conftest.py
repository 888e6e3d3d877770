"""The whole local stack, started once per session with the code of `make dev` (local/stack.py).

- `local_stack`: the running `Stack` object (pause the GCS bridge with
  `local_stack.finalize_bridge.pause()` / `.resume()`, sync now with
  `local_stack.sync_ticker.tick()`).
- `stack`: its stack.json dict (gateway_url, vertex_url, master_key, bucket, ...).
- `stack_env`: per test, points `shared.core.clients` of the test process at the stack's emulators
  and project, so a test can read Firestore or write GCS objects the functions will see.

The simulator runs fast (0.1 s per job state) and the sync tick fires every second, so a job
reaches a terminal state in about a second. Skips, with the reason, where the gcloud emulators
are missing.
"""

import pytest

from local.processes import gcloud_emulators_missing
from local.stack import Stack
from tests.support import reset_process

STACK_SPEED = 0.1
STACK_SYNC_INTERVAL = 1.0


def stack_skip_reason() -> str | None:
    missing = gcloud_emulators_missing()
    if missing:
        return f"the local stack needs the gcloud emulators: {missing}"
    return None


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    reason = stack_skip_reason()
    if reason:
        pytest.skip(reason)
    stack = Stack(
        tmp_path_factory.mktemp("stack"),
        speed=STACK_SPEED,
        sync_interval=STACK_SYNC_INTERVAL,
    )
    with stack:
        yield stack


@pytest.fixture(scope="session")
def stack(local_stack):
    return local_stack.info


@pytest.fixture
def stack_env(monkeypatch, stack):
    env = {
        "FIRESTORE_EMULATOR_HOST": stack["firestore_host"],
        "PUBSUB_EMULATOR_HOST": stack["pubsub_host"],
        "STORAGE_EMULATOR_HOST": stack["storage_url"],
        "VBG_PROJECT": stack["project"],
        "GOOGLE_CLOUD_PROJECT": stack["project"],
        "VBG_CONFIG": stack["config"],
        "VBG_MASTER_KEY": stack["master_key"],
        "VBG_VERTEX_ENDPOINT": stack["vertex_url"],
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_process()
    yield stack
    reset_process()
