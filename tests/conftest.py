"""Fixtures shared by every test layer.

The emulators start once per session on free ports. Isolation between tests comes from a
fresh project id per test (Firestore and Pub/Sub emulators keep projects apart) and fresh
bucket names, which is faster than wiping and cannot leak between tests.
"""

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

from local.processes import (
    firestore_emulator,
    free_port,
    gcloud_emulators_missing,
    pubsub_emulator,
    storage_emulator,
)
from shared.core import clients
from tests.support import reset_process

EMULATOR_ENV = ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")


@pytest.fixture(scope="session")
def log_dir():
    path = Path(tempfile.mkdtemp(prefix="vbg-test-logs-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def storage_server(log_dir):
    """The GCS emulator (PyPI gcp-storage-emulator): always available, no gcloud needed."""
    server = storage_emulator(free_port(), log_dir).start()
    try:
        server.wait_ready(timeout=30)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gcloud_servers(log_dir):
    """The gcloud Firestore and Pub/Sub emulators, or a skip that names what is missing."""
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


@pytest.fixture
def gcp(monkeypatch, gcloud_servers, storage_server):
    """A clean world for one test: a new project on all three emulators and a new bucket.

    Yields a dict with project, bucket and the emulator hosts; the environment points the
    shared clients at the emulators for the length of the test.
    """
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
    reset_process()


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
    reset_process()
