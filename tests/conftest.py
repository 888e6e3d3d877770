"""Fixtures shared by every test layer.

The emulators start once per session on free ports. Isolation between tests comes from a
fresh project id per test (Firestore and Pub/Sub emulators keep projects apart) and fresh
bucket names, which is faster than wiping and cannot leak between tests. A test's buckets are
dropped after it: gcp-storage-emulator rewrites all its metadata on every write, so a run
that kept them (thousands of tests, or `make mutate`'s tens of thousands) slows each write
to a crawl.
"""

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from local.processes import (
    Server,
    StackError,
    firestore_emulator,
    free_port,
    gcloud_emulators_missing,
    pubsub_emulator,
    storage_emulator,
)
from shared.core import clients
from tests.support import emulator_storage, reset_process

EMULATOR_ENV = ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")
# Ports of emulators already running (`make mutate` starts them once for hundreds of short
# pytest runs); unset, each session starts its own.
RUNNING_PORT_ENV = {
    "firestore": "VBG_TEST_FIRESTORE_PORT",
    "pubsub": "VBG_TEST_PUBSUB_PORT",
    "storage": "VBG_TEST_STORAGE_PORT",
}


def running_emulator(name: str) -> Server | None:
    port = os.environ.get(RUNNING_PORT_ENV[name])
    return Server(f"{name}-emulator (running)", [], int(port)) if port else None


@pytest.fixture(scope="session")
def log_dir():
    path = Path(tempfile.mkdtemp(prefix="vbg-test-logs-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def storage_server(log_dir):
    """The GCS emulator (PyPI gcp-storage-emulator): always available, no gcloud needed."""
    running = running_emulator("storage")
    if running:
        yield running
        return
    server = storage_emulator(free_port(), log_dir).start()
    try:
        server.wait_ready(timeout=30)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gcloud_servers(log_dir):
    """The gcloud Firestore and Pub/Sub emulators, or a skip that names what is missing."""
    running = running_emulator("firestore"), running_emulator("pubsub")
    if all(running):
        yield {"firestore": running[0], "pubsub": running[1]}
        return
    missing = gcloud_emulators_missing()
    if missing:
        pytest.skip(f"emulator tests need the gcloud emulators: {missing}")
    firestore = firestore_emulator(free_port(), log_dir).start()
    pubsub = pubsub_emulator(free_port(), "vbg-test", log_dir).start()
    try:
        firestore.wait_ready(timeout=90)
        pubsub.wait_ready(timeout=90)
        yield {"firestore": firestore, "pubsub": pubsub}
    finally:
        firestore.stop()
        pubsub.stop()


def _drop_test_buckets(storage_url: str, bucket: str) -> None:
    """Delete the fixture's bucket and the staging bucket `tests/support.gateway_env` may have
    made, objects first. At teardown the test's own clients may point at a proxy it has
    closed, so this talks to the emulator directly."""
    from google.api_core import exceptions

    staging = os.environ.get("VBG_STAGING_BUCKET", "")
    client = emulator_storage(storage_url)
    for name in [bucket, staging] if staging.startswith("staging-") else [bucket]:
        try:
            for blob in client.list_blobs(name):
                blob.delete()
            client.bucket(name).delete()
        except (exceptions.NotFound, exceptions.Conflict):
            pass  # gone already, or an upload still open: the next test does not mind


def _fresh_world(monkeypatch, gcloud_servers, storage_server):
    project = f"test-{uuid.uuid4().hex[:12]}"
    bucket = f"bucket-{uuid.uuid4().hex[:12]}"
    env = {
        "FIRESTORE_EMULATOR_HOST": gcloud_servers["firestore"].host,
        "PUBSUB_EMULATOR_HOST": gcloud_servers["pubsub"].host,
        "STORAGE_EMULATOR_HOST": storage_server.url,
        "VBG_PROJECT": project,
        "GOOGLE_CLOUD_PROJECT": project,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_process()
    clients.storage().create_bucket(bucket)
    yield {
        "project": project,
        "bucket": bucket,
        "firestore_host": env["FIRESTORE_EMULATOR_HOST"],
        "pubsub_host": env["PUBSUB_EMULATOR_HOST"],
        "storage_url": env["STORAGE_EMULATOR_HOST"],
    }
    _drop_test_buckets(storage_server.url, bucket)
    reset_process()


@pytest.fixture
def gcp(monkeypatch, gcloud_servers, storage_server):
    """A clean world for one test: a new project on all three emulators and a new bucket.

    Yields a dict with project, bucket and the emulator hosts; the environment points the
    shared clients at the emulators for the length of the test.
    """
    yield from _fresh_world(monkeypatch, gcloud_servers, storage_server)


@pytest.fixture(scope="module")
def gcp_module(gcloud_servers, storage_server):
    """`gcp` shared by a module's tests: for many cheap requests against one set-up world."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        yield from _fresh_world(monkeypatch, gcloud_servers, storage_server)


@pytest.fixture
def storage_only(monkeypatch, storage_server):
    """The GCS emulator alone, for tests that need no Firestore or Pub/Sub."""
    project = f"test-{uuid.uuid4().hex[:12]}"
    bucket = f"bucket-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", storage_server.url)
    monkeypatch.setenv("VBG_PROJECT", project)
    for name in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST"):
        if name not in os.environ:
            monkeypatch.delenv(name, raising=False)
    reset_process()
    clients.storage().create_bucket(bucket)
    yield {"project": project, "bucket": bucket, "storage_url": storage_server.url}
    _drop_test_buckets(storage_server.url, bucket)
    reset_process()


@pytest.fixture(scope="session")
def bq_server(log_dir):
    """The local BigQuery emulator (local/bq_emulator.py), or a skip that says what is
    missing or why it would not start."""
    from local import bq_emulator

    missing = bq_emulator.missing()
    if missing:
        pytest.skip(f"BigQuery tests need the emulator: {missing}")
    server = bq_emulator.server(free_port(), log_dir=log_dir).start()
    try:
        try:
            server.wait_ready(timeout=60)
        except StackError as error:
            pytest.skip(f"the BigQuery emulator did not start: {error}")
        yield server
    finally:
        server.stop()


@pytest.fixture
def bq(monkeypatch, bq_server):
    """A fresh project name on the BigQuery emulator (tables are named in full, so tests do
    not meet); `clients.bigquery()` points at the emulator."""
    project = f"test-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", bq_server.url)
    clients.reset()
    yield {"project": project, "url": bq_server.url, "client": clients.bigquery()}
    clients.reset()


SLOW_FIXTURES = {"gcp", "gcp_module", "storage_only", "stack", "local_stack", "stack_env", "bq"}


@pytest.fixture(autouse=True)
def _uncached_pricing_under_mutmut():
    """mutmut maps each function to the tests that call it: a price cached by an earlier test
    would hide the call from the later ones, and their verdict from the mutant."""
    if os.environ.get("MUTANT_UNDER_TEST"):
        from shared.cost import pricing

        pricing.cache_clear()


def pytest_collection_modifyitems(config, items):
    """Under `make mutate`, tests that need no emulator run first: with `-x`, a mutant the
    unit tests kill costs a second, not the set-up of an emulator world."""
    if os.environ.get("MUTANT_UNDER_TEST"):
        items.sort(key=lambda item: bool(SLOW_FIXTURES & set(item.fixturenames)))
