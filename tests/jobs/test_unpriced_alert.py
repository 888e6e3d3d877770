"""A $0 never passes silently: a job whose rows have no price gets one `unpriced` alert, on the
Firestore, Pub/Sub and GCS emulators through `on_output_finalized`."""

import contextlib
import json
import time

from google.cloud import pubsub_v1

from shared.core import clients
from shared.core.config import Deployment
from shared.jobs import records
from tests.cost.cost_helpers import make_job, upload
from tests.jobs.test_finalize import DIRECTORY, deliver, finalize  # noqa: F401 - the fixture

OLD_FLASH = Deployment(
    model_name="flash-old", model="gemini-1.5-flash", project="proj-a", location="us-central1"
)


def row(prompt: int, model_version: str = "gemini-1.5-flash-002") -> str:
    usage = {"promptTokenCount": prompt, "candidatesTokenCount": 5}
    return json.dumps(
        {"status": "", "response": {"usageMetadata": usage, "modelVersion": model_version}}
    )


def watch_alerts(project: str) -> tuple:
    topic = clients.topic_path("batch-job-alerts")
    with contextlib.suppress(Exception):  # the fixture may have created it
        clients.publisher().create_topic(name=topic)
    subscriber = pubsub_v1.SubscriberClient()
    subscription = subscriber.subscription_path(project, "unpriced-watch")
    subscriber.create_subscription(name=subscription, topic=topic)
    return subscriber, subscription


def pull_all(subscriber, subscription, settle: float = 2.0) -> list:
    found, deadline = [], time.monotonic() + settle
    while time.monotonic() < deadline:
        pulled = subscriber.pull(subscription=subscription, max_messages=20, timeout=2)
        for message in pulled.received_messages:
            found.append(message.message)
        if pulled.received_messages:
            subscriber.acknowledge(
                subscription=subscription, ack_ids=[m.ack_id for m in pulled.received_messages]
            )
    return found


def test_rows_of_a_model_without_a_price_raise_one_unpriced_alert(finalize, gcp):  # noqa: F811
    bucket = gcp["bucket"]
    subscriber, subscription = watch_alerts(gcp["project"])
    make_job(bucket, "901", deployment=OLD_FLASH)
    for index in (1, 2):
        name = f"{DIRECTORY}/predictions_0000{index}.jsonl"
        data = (row(100) + "\n" + row(50) + "\n").encode()
        assert deliver(finalize, bucket, name, upload(bucket, name, data)).status_code == 200

    cost = records.get("901")["cost"]
    assert (cost["unpriced_rows"], cost["succeeded"], cost.get("cost_nanos", 0)) == (4, 4, 0)
    messages = [m for m in pull_all(subscriber, subscription) if m.attributes["kind"] == "unpriced"]
    assert len(messages) == 1
    body = json.loads(messages[0].data)
    assert body["job_id"] == "901"
    assert "2 row(s) of a model with no price" in body["text"]
    assert "gemini-1.5-flash" in body["text"]
    assert records.get("901")["alerts"]["unpriced"]


def test_a_priced_job_raises_no_unpriced_alert(finalize, gcp):  # noqa: F811
    bucket = gcp["bucket"]
    subscriber, subscription = watch_alerts(gcp["project"])
    make_job(bucket, "902")
    name = f"{DIRECTORY}/predictions.jsonl"
    data = (row(100, "gemini-3.5-flash-lite") + "\n").encode()
    assert deliver(finalize, bucket, name, upload(bucket, name, data)).status_code == 200
    assert records.get("902")["cost"]["cost_nanos"] == 100 * 150 + 5 * 1250
    assert not [m for m in pull_all(subscriber, subscription, 1.0) if m.attributes["kind"]]
