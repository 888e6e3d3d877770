"""The OpenAI door's fixtures on real parts: emulators, the simulator, the gateway's routes."""

import pytest

from local.vertex_sim import SimulatorThread
from shared.core import clients
from tests.jobs.test_alerts import Receiver
from tests.support import create_key, gateway_env, passthrough_client


@pytest.fixture
def sim(gcp):
    with SimulatorThread(speed=0.05) as simulator:
        yield simulator


@pytest.fixture
def gateway(gcp, sim, monkeypatch, tmp_path):
    monkeypatch.setenv("VBG_STAGING_BUCKET", gcp["bucket"])
    gateway_env(monkeypatch, tmp_path, vertex_url=sim.url)
    for topic in ("batch-job-events", "batch-job-alerts"):
        clients.publisher().create_topic(name=clients.topic_path(topic))
    return passthrough_client()


@pytest.fixture
def alice(gateway):
    return create_key(gateway, alias="alice", models=["gemini-3.5-flash-lite"])


@pytest.fixture
def bob(gateway):
    return create_key(gateway, alias="bob", models=["gemini-3.5-flash-lite"])


@pytest.fixture
def receiver():
    """A webhook receiver on 127.0.0.1 (answers the statuses queued on it, then 200)."""
    made = Receiver()
    yield made
    made.stop()
