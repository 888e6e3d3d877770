"""Issue #22 item 8: `on_job_event` killed during terminal ticks sent terminal alerts twice
(16 of 300) and left 36 jobs' alert and final cost 5 minutes late (the alert lease). Now an
alert's claim holds its message before anything is published; a claim whose sender died is
published by the next tick within seconds, every copy with one `alert_id`, and the job's
cost is final without waiting for it.

Reproduced with a real SIGKILL at the worst moment, every time: the functions of the chaos
stack reach Pub/Sub through a gate the test holds, so `on_job_event` is killed after its
claim is written and while its publish is in flight; the gate then drops what it held (the
publish never reached Pub/Sub).
"""

import json
import time
import uuid

import pytest
from google.cloud import pubsub_v1

from tests.cost.reference import expected_cost
from tests.e2e.chaos_support import drain, kill, predictions, wait_back
from tests.e2e.helpers import make_key, wait_for

pytestmark = pytest.mark.e2e

JOBS = "/v1/projects/my-project/locations/global/batchPredictionJobs"
MODEL = "gemini-3.5-flash-lite"


def test_a_terminal_alert_whose_sender_was_killed_goes_out_within_seconds_once(chaos_env):
    import requests

    from shared.core import clients
    from shared.jobs import records

    stack, info = chaos_env, chaos_env.info
    run = uuid.uuid4().hex[:8]
    subscriber = pubsub_v1.SubscriberClient()
    subscription = subscriber.subscription_path(info["project"], f"crash-alerts-{run}")
    subscriber.create_subscription(name=subscription, topic=clients.topic_path("batch-job-alerts"))
    key = make_key(info, f"crash-{run}", folder=f"crash/{run}")
    rows = [
        {"request": {"contents": [{"role": "user", "parts": [{"text": f"q{i}"}]}]}}
        for i in range(3)
    ]
    source = f"crash/{run}/in.jsonl"
    clients.storage().bucket(info["bucket"]).blob(source).upload_from_string(
        "".join(json.dumps(r) + "\n" for r in rows)
    )
    created = requests.post(
        info["gateway_url"] + JOBS,
        json={
            "displayName": f"crash-{run}",
            "model": MODEL,
            "inputConfig": {
                "instancesFormat": "jsonl",
                "gcsSource": {"uris": [f"gs://{info['bucket']}/{source}"]},
            },
            "outputConfig": {
                "predictionsFormat": "jsonl",
                "gcsDestination": {"outputUriPrefix": f"gs://{info['bucket']}/crash/{run}/out/"},
            },
        },
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )
    assert created.status_code == 200, created.text
    job_id = created.json()["name"].rsplit("/", 1)[-1]

    marker = clients.firestore().collection("alerts_sent").document(f"{job_id}:terminal")
    stack.gate.hold()  # from here every publish of the functions stays in flight
    try:
        wait_for(lambda: marker.get().exists, timeout=60, what="the terminal alert's claim")
        killed_at = time.time()
        pid = kill(stack, "on_job_event")
        stack.gate.sever()
    finally:
        stack.gate.release()
    wait_back(stack, "on_job_event", pid)

    record = wait_for(
        lambda: (r := records.get(job_id)) and r.get("cost_final") and r,
        timeout=30,
        what="the job's final cost",
    )
    final_late = record["cost_final_time"].timestamp() - killed_at
    copies: list[dict] = []

    def terminal_copies():
        copies.extend(
            c for c in drain(subscriber, subscription) if c["attributes"].get("job_id") == job_id
        )
        return [c for c in copies if c["attributes"]["kind"] == "terminal"]

    wait_for(terminal_copies, timeout=60, what="the terminal alert")
    time.sleep(3)  # several ticks more: a second copy would show now
    terminal = terminal_copies()
    late = terminal[0]["published"] - killed_at
    print(f"killed after the claim: alert {late:.1f}s later, final cost {final_late:.1f}s later")
    assert late < 20 and final_late < 20
    first = terminal[0]
    assert first["attributes"]["alert_id"] == first["body"]["alert_id"]
    assert len({c["attributes"]["alert_id"] for c in terminal}) == 1
    assert len({c["data"] for c in terminal}) == 1  # a copy, if any, is the same message
    assert len(terminal) == 1  # the held publish was dropped: the resumed claim is the one

    want = expected_cost(predictions(record), MODEL)
    assert want.succeeded == 3
    assert first["body"]["cost"]["cost_nanos"] == record["cost"]["cost_nanos"] == want.cost_nanos
