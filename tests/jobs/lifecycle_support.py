"""Shared set-up for the lifecycle and alert tests: a gateway on the emulators + simulator,
`on_job_event` driven with Pub/Sub CloudEvents, alerts read from a pull subscription."""

import base64
import json
import time
import uuid

import pytest
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from google.api_core import exceptions
from google.cloud import pubsub_v1

from local.vertex_sim import SimulatorThread
from shared.core import clients
from shared.jobs import records
from tests.support import (
    DEFAULT_MODEL_LIST,
    auth,
    cloudevent_client,
    create_key,
    gateway_env,
    gemini_request,
    job_body,
    passthrough_client,
    upload_jsonl,
)

JOBS_PATH = "/v1/projects/my-project/locations/us-central1/batchPredictionJobs"
PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"


def pubsub_event(body: dict | None, attributes: dict | None = None, raw: str | None = None):
    data = raw if raw is not None else base64.b64encode(json.dumps(body).encode()).decode()
    message = {"data": data, "attributes": attributes or {}, "messageId": uuid.uuid4().hex}
    event = CloudEvent(
        {"type": PUBLISHED, "source": "//pubsub.googleapis.com/projects/p/topics/batch-job-events"},
        {"message": message, "subscription": "projects/p/subscriptions/s"},
    )
    return to_binary(event)


class World:
    """The parts one lifecycle test talks to."""

    def __init__(self, gcp, sim, gateway, events, subscription):
        self.gcp = gcp
        self.sim = sim
        self.gateway = gateway
        self.events = events
        self.subscription = subscription
        self.subscriber = pubsub_v1.SubscriberClient()
        self.key = create_key(
            gateway,
            alias="alice",
            team="Data Science",
            inputPrefixes=[f"gs://{gcp['bucket']}/in/"],
            outputPrefixes=[f"gs://{gcp['bucket']}/out/"],
        )

    def send(self, body: dict | None, attributes: dict | None = None, raw: str | None = None):
        headers, data = pubsub_event(body, attributes, raw)
        return self.events.post("/", headers=headers, data=data)

    def tick(self):
        response = self.send({"type": "sync"}, {"type": "sync"})
        assert response.status_code == 200, response.get_data(as_text=True)

    def create(self, labels: dict | None = None, key: str | None = None, rows: int = 3) -> str:
        name = f"in/{uuid.uuid4().hex[:8]}.jsonl"
        uri = upload_jsonl(
            self.gcp["bucket"], name, [gemini_request(f"row {i} hello") for i in range(rows)]
        )
        body = job_body(self.gcp["bucket"], input_uri=uri, labels=labels)
        response = self.gateway.post(JOBS_PATH, json=body, headers=auth(key or self.key))
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()["name"].rsplit("/", 1)[-1]

    def sim_state(self, job_id: str) -> str:
        from google.cloud.aiplatform_v1.types import JobState

        record = records.get(job_id)
        return JobState(self.sim.sim.get(record["name"]).pb.state).name

    def wait_sim(self, job_id: str, state: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.sim_state(job_id) != state:
            assert time.monotonic() < deadline, f"simulator job {job_id} never reached {state}"
            time.sleep(0.02)

    def drive(self, job_id: str, timeout: float = 30.0, interval: float = 0.1) -> dict:
        """Sync ticks until the job's cost is final."""
        deadline = time.monotonic() + timeout
        while True:
            self.tick()
            record = records.get(job_id)
            if record.get("cost_final"):
                return record
            assert time.monotonic() < deadline, f"job {job_id} not final: {record.get('state')}"
            time.sleep(interval)

    def alerts(self, settle: float = 1.0, timeout: float = 10.0) -> list[tuple[dict, dict]]:
        """Every alert published so far: (attributes, body), after `settle` s without any."""
        found = []
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < settle:
            try:
                response = self.subscriber.pull(
                    subscription=self.subscription,
                    max_messages=50,
                    return_immediately=True,
                    timeout=5,
                )
            except exceptions.DeadlineExceeded:
                continue
            if response.received_messages:
                quiet_since = time.monotonic()
                self.subscriber.acknowledge(
                    subscription=self.subscription,
                    ack_ids=[m.ack_id for m in response.received_messages],
                )
                found += [
                    (dict(m.message.attributes), json.loads(m.message.data))
                    for m in response.received_messages
                ]
            else:
                time.sleep(0.1)
        return found


def make_world(
    gcp,
    monkeypatch,
    tmp_path,
    *,
    speed: float = 0.1,
    env: dict | None = None,
    model_list: str = DEFAULT_MODEL_LIST,
):
    """`model_list=DIRECT_MODEL_LIST` for deployments that keep direct writes."""
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    sim = SimulatorThread(speed=speed).start()
    gateway_env(monkeypatch, tmp_path, vertex_url=sim.url, model_list=model_list)
    publisher = clients.publisher()
    for topic in ("batch-job-events", "batch-job-alerts"):
        publisher.create_topic(name=clients.topic_path(topic))
    subscriber = pubsub_v1.SubscriberClient()
    subscription = subscriber.subscription_path(gcp["project"], "alerts-watch")
    subscriber.create_subscription(name=subscription, topic=clients.topic_path("batch-job-alerts"))
    world = World(gcp, sim, passthrough_client(), cloudevent_client("on_job_event"), subscription)
    return world


@pytest.fixture
def world(gcp, monkeypatch, tmp_path):
    made = make_world(gcp, monkeypatch, tmp_path)
    yield made
    made.sim.stop()
