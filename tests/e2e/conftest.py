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


def _point_at(monkeypatch, stack: dict) -> None:
    """This test process's clients on the stack's emulators, project and config."""
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


@pytest.fixture
def stack_env(monkeypatch, stack):
    _point_at(monkeypatch, stack)
    yield stack
    reset_process()


@pytest.fixture(scope="session")
def chaos_stack(tmp_path_factory):
    """A stack of its own for the kill tests (their kills must not disturb other tests):
    its functions reach Pub/Sub through `chaos_stack.gate` (tests/e2e/chaos_support.py), so a
    test can hold a publish in flight; the supervisor starts each killed function again."""
    from local.processes import free_port
    from tests.e2e.chaos_support import GateProxy

    reason = stack_skip_reason()
    if reason:
        pytest.skip(reason)
    pubsub_port = free_port()
    gate = GateProxy(pubsub_port)
    stack = Stack(
        tmp_path_factory.mktemp("chaos-stack"),
        speed=STACK_SPEED,
        sync_interval=STACK_SYNC_INTERVAL,
        ports={"pubsub": pubsub_port},
        extra_env={"PUBSUB_EMULATOR_HOST": gate.host, **CHAOS_ENV},
    )
    stack.gate = gate
    try:
        with stack:
            yield stack
    finally:
        gate.stop()


# Settings of the chaos stack's functions: pending intents are adopted after 2 s (in
# production after a create could still be running; shared/jobs/adoption.py).
CHAOS_ENV = {"VBG_ADOPT_AFTER_SECONDS": "2"}


@pytest.fixture
def chaos_env(monkeypatch, chaos_stack):
    """`stack_env` for the chaos stack: the test process reads and writes its emulators."""
    _point_at(monkeypatch, chaos_stack.info)
    yield chaos_stack
    reset_process()
