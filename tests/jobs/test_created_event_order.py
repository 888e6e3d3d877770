"""Issue #10 finding 7: `job.created` must never reach its handler before the job record.

The record write is slowed down (as a contended Firestore commit would be); a pull
subscriber on `batch-job-events` checks, for every `job.created` it receives, that the
record it names already exists.
"""

import threading
import time

import pytest
from google.cloud import pubsub_v1

from shared.core import clients
from shared.jobs import records
from tests.jobs.lifecycle_support import make_world


@pytest.fixture
def world(gcp, monkeypatch, tmp_path):
    made = make_world(gcp, monkeypatch, tmp_path, speed=5)
    yield made
    made.sim.stop()


def test_job_created_is_published_after_the_record_is_committed(world, monkeypatch):
    subscriber = pubsub_v1.SubscriberClient()
    subscription = subscriber.subscription_path(world.gcp["project"], "events-watch")
    subscriber.create_subscription(name=subscription, topic=clients.topic_path("batch-job-events"))
    seen: dict[str, bool] = {}
    done = threading.Event()

    def on_message(message):
        job_id = message.attributes.get("job_id")
        if message.attributes.get("type") == "job.created":
            seen[job_id] = records.get(job_id) is not None
            done.set()
        message.ack()

    slow_write = records.record_created

    def record_created(record):
        time.sleep(1.5)
        return slow_write(record)

    monkeypatch.setattr(records, "record_created", record_created)
    future = subscriber.subscribe(subscription, callback=on_message)
    try:
        job_id = world.create()
        assert done.wait(20), "no job.created event"
    finally:
        future.cancel()
    assert seen == {job_id: True}
