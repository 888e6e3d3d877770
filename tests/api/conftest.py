"""Fixtures of the route tests: the simulator, the gateway in front of it, two keys."""

import pytest

from local.vertex_sim import SimulatorThread
from tests.support import create_key, gateway_env, gemini_request, passthrough_client, upload_jsonl


@pytest.fixture
def sim(gcp):
    with SimulatorThread(speed=0.05) as simulator:
        yield simulator


@pytest.fixture
def gateway(gcp, sim, monkeypatch, tmp_path):
    gateway_env(monkeypatch, tmp_path, vertex_url=sim.url)
    upload_jsonl(gcp["bucket"], "in/input.jsonl", [gemini_request("hello there")] * 3)
    return passthrough_client()


@pytest.fixture
def alice(gateway, gcp):
    return create_key(
        gateway,
        alias="alice",
        team="Data Science",
        inputPrefixes=[f"gs://{gcp['bucket']}/in/"],
        outputPrefixes=[f"gs://{gcp['bucket']}/out/"],
    )


@pytest.fixture
def bob(gateway, gcp):
    return create_key(
        gateway,
        alias="bob",
        team="Search",
        inputPrefixes=[f"gs://{gcp['bucket']}/in/"],
        outputPrefixes=[f"gs://{gcp['bucket']}/out/"],
    )
