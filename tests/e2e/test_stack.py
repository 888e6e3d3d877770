"""The local stack: its wiring (bridge, push, ticker) against a recording function, the whole
stack as `make dev` runs it (signals, lock, ports), and the session stack the e2e tests use."""

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
import requests

from local.bridges import GCS_FINALIZED, FinalizeBridge, SyncTicker, pubsub_call
from local.processes import Server, free_port, gcloud_emulators_missing, port_is_open
from local.stack import (
    ALERTS_SUBSCRIPTION,
    ALERTS_TOPIC,
    EVENTS_PUSH_SUBSCRIPTION,
    EVENTS_TOPIC,
    REPO_ROOT,
    group_alive,
    wire_pubsub,
)
from tests.e2e.helpers import wait_for
from tests.support import emulator_storage

pytestmark = pytest.mark.e2e

ECHO_SOURCE = Path(__file__).parent / "fixtures" / "echo_function.py"
PUBSUB_PUBLISHED = "google.cloud.pubsub.topic.v1.messagePublished"
STACK_KEYS = (
    "gateway_url",
    "vertex_url",
    "storage_url",
    "firestore_host",
    "pubsub_host",
    "project",
    "master_key",
    "bucket",
    "events_topic",
    "alerts_topic",
    "alerts_subscription",
)


def read_events(path: Path, target: str | None = None) -> list[dict]:
    if not path.exists():
        return []
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in events if target is None or e["target"] == target]


def answers_http(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def echo(tmp_path_factory, log_dir):
    """The recording stand-ins for on_job_event and on_output_finalized, one process each."""
    events = tmp_path_factory.mktemp("echo") / "events.jsonl"
    servers = {}
    for target in ("on_job_event", "on_output_finalized"):
        port = free_port()
        servers[target] = Server(
            f"echo-{target}",
            [
                sys.executable,
                "-m",
                "functions_framework",
                "--target",
                target,
                "--source",
                str(ECHO_SOURCE),
                "--port",
                str(port),
                "--host",
                "127.0.0.1",
                "--signature-type",
                "cloudevent",
            ],
            port,
            env={"ECHO_EVENTS_FILE": str(events), "PYTHONPATH": str(REPO_ROOT)},
            log_path=log_dir / f"echo-{target}.log",
        ).start()
    try:
        for server in servers.values():
            server.wait_ready(timeout=30)
        yield {"events": events, **servers}
    finally:
        for server in servers.values():
            server.stop()


# --- the GCS-finalize bridge ------------------------------------------------------------


def test_finalize_bridge_sends_one_event_per_new_generation_not_for_old_objects(
    storage_server, echo
):
    client = emulator_storage(storage_server.url)
    bucket = client.create_bucket(f"bridge-{uuid.uuid4().hex[:10]}")
    bucket.blob("before/start.jsonl").upload_from_string(b"{}\n")
    bridge = FinalizeBridge(
        storage_server.url, echo["on_output_finalized"].url, buckets=[bucket.name], interval=0.1
    ).start()
    name = "out/prediction-model-2025/predictions.jsonl"
    blob = bucket.blob(name)
    try:
        blob.upload_from_string(b'{"a": 1}\n', content_type="application/jsonl")
        first = blob.generation
        bridge.wait_idle()
        blob.upload_from_string(b'{"a": 2}\n{"a": 3}\n', content_type="application/jsonl")
        second = blob.generation
        bridge.wait_idle()
        bridge.wait_polled(polls=3)
        bridge.wait_idle()
    finally:
        bridge.stop()

    events = [
        e
        for e in read_events(echo["events"], "on_output_finalized")
        if e["data"]["bucket"] == bucket.name
    ]
    assert [(e["data"]["name"], e["data"]["generation"]) for e in events] == [
        (name, str(first)),
        (name, str(second)),
    ]
    last = events[-1]
    attributes, data, headers = last["attributes"], last["data"], last["headers"]
    assert attributes["type"] == GCS_FINALIZED
    assert attributes["source"] == f"//storage.googleapis.com/projects/_/buckets/{bucket.name}"
    assert attributes["subject"] == f"objects/{name}"
    assert attributes["specversion"] == "1.0"
    assert attributes["id"] != events[0]["attributes"]["id"]
    assert attributes["time"] == data["updated"]
    # Binary mode, as Eventarc: ce-* headers and the object resource as the JSON body.
    assert headers["ce-type"] == GCS_FINALIZED
    assert headers["content-type"].startswith("application/json")
    assert data["size"] == "18" and data["contentType"] == "application/jsonl"
    assert data["id"] == f"{bucket.name}/{name}/{second}"
    assert data["kind"] == "storage#object"
    assert data["md5Hash"] and data["crc32c"] and data["timeCreated"]
    assert isinstance(data["metageneration"], str)
    assert [d.attempts for d in bridge.deliveries] == [1, 1]


def test_finalize_bridge_retries_a_failing_delivery_with_the_same_event_id(storage_server, echo):
    client = emulator_storage(storage_server.url)
    bucket = client.create_bucket(f"retry-{uuid.uuid4().hex[:10]}")
    bridge = FinalizeBridge(
        storage_server.url,
        echo["on_output_finalized"].url,
        buckets=[bucket.name],
        interval=0.1,
        first_backoff=0.05,
    ).start()
    try:
        bucket.blob("fail-2-times.jsonl").upload_from_string(b"{}\n")
        bridge.wait_idle()
    finally:
        bridge.stop()
    events = [
        e
        for e in read_events(echo["events"], "on_output_finalized")
        if e["data"]["bucket"] == bucket.name
    ]
    assert [e["failed"] for e in events] == [True, True, False]
    assert len({e["attributes"]["id"] for e in events}) == 1
    (delivery,) = bridge.deliveries
    assert delivery.delivered and delivery.attempts == 3 and delivery.status == 200


def test_finalize_bridge_gives_up_after_max_attempts(storage_server, echo):
    bucket = emulator_storage(storage_server.url).create_bucket(f"giveup-{uuid.uuid4().hex[:10]}")
    bridge = FinalizeBridge(
        storage_server.url,
        echo["on_output_finalized"].url,
        buckets=[bucket.name],
        interval=0.1,
        first_backoff=0.01,
        max_attempts=3,
    ).start()
    try:
        bucket.blob("fail-9-times.jsonl").upload_from_string(b"{}\n")
        bridge.wait_idle()
    finally:
        bridge.stop()
    (delivery,) = bridge.deliveries
    assert delivery.done and not delivery.delivered
    assert delivery.attempts == 3 and delivery.status == 500


def test_finalize_bridge_pause_withholds_and_resume_can_deliver_late_or_drop(storage_server, echo):
    client = emulator_storage(storage_server.url)
    bucket = client.create_bucket(f"pause-{uuid.uuid4().hex[:10]}")
    bridge = FinalizeBridge(
        storage_server.url, echo["on_output_finalized"].url, buckets=[bucket.name], interval=0.1
    ).start()
    try:
        bridge.pause()
        assert bridge.paused
        bucket.blob("late.jsonl").upload_from_string(b"{}\n")
        wait_for(lambda: bridge.missed, what="the paused bridge to see the object")
        bridge.resume(deliver_missed=True)
        bridge.wait_idle()

        bridge.pause()
        bucket.blob("lost.jsonl").upload_from_string(b"{}\n")
        wait_for(lambda: bridge.missed, what="the paused bridge to see the object")
        bridge.resume()
        bucket.blob("after.jsonl").upload_from_string(b"{}\n")
        bridge.wait_idle()
        bridge.wait_polled()
        bridge.wait_idle()
    finally:
        bridge.stop()
    names = [
        e["data"]["name"]
        for e in read_events(echo["events"], "on_output_finalized")
        if e["data"]["bucket"] == bucket.name
    ]
    assert names == ["late.jsonl", "after.jsonl"]


def test_finalize_bridge_watches_buckets_created_after_it_started(storage_server, echo):
    client = emulator_storage(storage_server.url)
    bridge = FinalizeBridge(
        storage_server.url, echo["on_output_finalized"].url, interval=0.1
    ).start()
    try:
        bucket = client.create_bucket(f"later-{uuid.uuid4().hex[:10]}")
        bucket.blob("x/y.jsonl").upload_from_string(b"{}\n")
        events = wait_for(
            lambda: [
                e
                for e in read_events(echo["events"], "on_output_finalized")
                if e["data"]["bucket"] == bucket.name
            ],
            what="an event from the new bucket",
        )
        assert [e["data"]["name"] for e in events] == ["x/y.jsonl"]
    finally:
        bridge.stop()


# --- Pub/Sub push + sync ticker --------------------------------------------------------------


def test_push_subscription_and_ticker_reach_on_job_event_as_pubsub_cloudevents(
    gcloud_servers, echo
):
    host = gcloud_servers["pubsub"].host
    project = f"wire-{uuid.uuid4().hex[:10]}"
    push_url = f"{echo['on_job_event'].url}/projects/{project}/topics/{EVENTS_TOPIC}"
    wire_pubsub(host, project, push_url)
    wire_pubsub(host, project, push_url)  # idempotent: a restart finds them in place
    ticker = SyncTicker(host, project, EVENTS_TOPIC, interval=0.3).start()

    def ticks(kind: str = "sync"):
        return [
            e
            for e in read_events(echo["events"], "on_job_event")
            if e["attributes"]["source"].endswith(f"projects/{project}/topics/{EVENTS_TOPIC}")
            and e["data"]["message"]["attributes"].get("type") == kind
        ]

    try:
        events = wait_for(lambda: len(ticks()) >= 2 and ticks(), what="two sync ticks pushed")
        # Each tick also publishes the runs' own (shared/runs/drive.py), as the second
        # Cloud Scheduler job does.
        runs = wait_for(lambda: ticks("run.tick"), what="a run.tick pushed")
    finally:
        ticker.stop()
    assert ticker.published >= 2
    assert json.loads(base64.b64decode(runs[0]["data"]["message"]["data"])) == {"type": "run.tick"}
    event = events[0]
    assert event["attributes"]["type"] == PUBSUB_PUBLISHED
    assert event["attributes"]["source"] == (
        f"//pubsub.googleapis.com/projects/{project}/topics/{EVENTS_TOPIC}"
    )
    message = event["data"]["message"]
    assert json.loads(base64.b64decode(message["data"])) == {"type": "sync"}
    assert message["attributes"] == {"type": "sync"}
    assert message["messageId"]

    sub = pubsub_call(host, "GET", f"projects/{project}/subscriptions/{EVENTS_PUSH_SUBSCRIPTION}")
    assert sub.json()["pushConfig"]["pushEndpoint"] == push_url
    watch = pubsub_call(host, "GET", f"projects/{project}/subscriptions/{ALERTS_SUBSCRIPTION}")
    assert watch.json()["topic"] == f"projects/{project}/topics/{ALERTS_TOPIC}"


# --- `make dev` as a user runs it ------------------------------------------------------------


def _dev_argv(state_dir: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "local.stack",
        "--state-dir",
        str(state_dir),
        "--functions-source",
        str(ECHO_SOURCE),
        "--speed",
        "0.1",
        "--sync-interval",
        "1",
    ]


def _gone(pgid: int) -> bool:
    return not group_alive(pgid)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_make_dev_starts_refuses_a_second_and_stops_everything(tmp_path, stop_signal):
    reason = gcloud_emulators_missing()
    if reason:
        pytest.skip(f"the local stack needs the gcloud emulators: {reason}")
    state = tmp_path / "state"
    state.mkdir()
    (state / "stack.lock").write_text("999999\n")  # a stale lock of a dead stack: ignored
    events = tmp_path / "events.jsonl"
    env = {**os.environ, "ECHO_EVENTS_FILE": str(events), "VBG_MASTER_KEY": ""}
    output = (tmp_path / "stack.out").open("wb")
    started = time.monotonic()
    proc = subprocess.Popen(
        _dev_argv(state),
        cwd=REPO_ROOT,
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: (state / "stack.json").exists() or proc.poll() is not None,
            timeout=90,
            what="stack.json",
        )
        assert proc.poll() is None, (tmp_path / "stack.out").read_text()
        ready = time.monotonic() - started
        info = json.loads((state / "stack.json").read_text())
        print(f"make dev ready in {ready:.1f}s (stack says {info['startup_seconds']}s)")
        assert ready < 60
        assert set(STACK_KEYS) <= set(info)
        assert info["master_key"].startswith("vbg-master-")
        for url in (
            info["gateway_url"],
            info["vertex_url"],
            info["storage_url"],
            f"http://{info['firestore_host']}",
            f"http://{info['pubsub_host']}",
            *info["functions"].values(),
        ):
            assert answers_http(url), url
        assert "curl -s " in (tmp_path / "stack.out").read_text()

        # The wiring inside the real stack: ticks are pushed, new objects are announced.
        wait_for(lambda: read_events(events, "on_job_event"), what="a sync tick pushed")
        emulator_storage(info["storage_url"]).bucket(info["bucket"]).blob(
            "o/p.jsonl"
        ).upload_from_string(b"1")
        wait_for(lambda: read_events(events, "on_output_finalized"), what="a finalize event")

        if stop_signal == signal.SIGTERM:
            second = subprocess.run(
                _dev_argv(state),
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert second.returncode == 1
            assert "already running" in second.stderr and f"pid {proc.pid}" in second.stderr
            assert "Traceback" not in second.stderr
            assert (state / "stack.json").exists()

        proc.send_signal(stop_signal)
        assert proc.wait(timeout=60) == 0
        assert not (state / "stack.json").exists()
        for name, port in info["ports"].items():
            assert not port_is_open(port), f"{name} still holds port {port}"
        for name, pid in info["pids"].items():
            assert _gone(pid), f"{name} (process group {pid}) survived"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        output.close()


def test_make_dev_without_gcloud_names_what_to_install(tmp_path):
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    result = subprocess.run(
        [sys.executable, "-m", "local.stack", "--state-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "gcloud" in result.stderr and "install" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "stack.json").exists()


# --- the session stack (tests/e2e/conftest.py) -----------------------------------------------


def test_session_stack_is_up_and_stack_json_says_where(stack, local_stack):
    assert set(STACK_KEYS) <= set(stack)
    assert json.loads(Path(local_stack.stack_file).read_text()) == stack
    assert stack["startup_seconds"] < 60
    print(f"session stack ready in {stack['startup_seconds']}s")
    for url in (
        stack["gateway_url"],
        stack["vertex_url"],
        stack["storage_url"],
        f"http://{stack['firestore_host']}",
        f"http://{stack['pubsub_host']}",
        *stack["functions"].values(),
    ):
        assert answers_http(url), url
    assert not local_stack.dead_servers()
    project, host = stack["project"], stack["pubsub_host"]
    for topic in (stack["events_topic"], stack["alerts_topic"]):
        assert pubsub_call(host, "GET", f"projects/{project}/topics/{topic}").status_code == 200
    watch = pubsub_call(host, "GET", f"projects/{project}/subscriptions/{ALERTS_SUBSCRIPTION}")
    assert watch.status_code == 200
    bucket = requests.get(f"{stack['storage_url']}/storage/v1/b/{stack['bucket']}", timeout=5)
    assert bucket.status_code == 200
    config = Path(stack["config"]).read_text()
    assert "gemini-3.5-flash-lite" in config and "text-embedding-005" in config


def _log_entries(path) -> list[dict]:
    entries = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict):
                entries.append(entry)
    return entries


def test_session_stack_functions_get_the_sync_tick_without_failing(stack, local_stack):
    """Each tick reaches on_job_event, which syncs and logs it, and nothing logs an error."""
    log = local_stack.log_dir / "on_job_event.log"

    def ticks_done() -> int:
        return sum(e.get("message") == "sync tick done" for e in _log_entries(log))

    before_published, before_done = local_stack.sync_ticker.published, ticks_done()
    seen = len(_log_entries(log))
    message_id = local_stack.sync_ticker.tick()
    assert message_id
    # The ticker's own thread may publish in the same moment, so this tick is at least one more.
    assert local_stack.sync_ticker.published >= before_published + 1
    wait_for(
        lambda: ticks_done() >= before_done + 2,
        timeout=20,
        what="on_job_event to handle the tick and the next one",
    )
    since = _log_entries(log)[seen:]
    errors = [e for e in since if e.get("severity") in ("ERROR", "CRITICAL")]
    assert not errors, errors
    assert not local_stack.dead_servers()


def test_a_killed_stack_leaves_nothing_behind_the_next_start(tmp_path):
    """SIGKILL gives no chance to clean up: the next `make dev` stops the orphans it finds."""
    reason = gcloud_emulators_missing()
    if reason:
        pytest.skip(f"the local stack needs the gcloud emulators: {reason}")
    state = tmp_path / "state"
    env = {**os.environ, "ECHO_EVENTS_FILE": str(tmp_path / "events.jsonl")}
    procs = []

    def start() -> tuple[subprocess.Popen, dict]:
        proc = subprocess.Popen(
            _dev_argv(state),
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        procs.append(proc)

        def written():
            try:
                info = json.loads((state / "stack.json").read_text())
            except (OSError, ValueError):
                return None
            return info if info["pid"] == proc.pid else None

        info = wait_for(lambda: written() or proc.poll() is not None, timeout=90, what="stack.json")
        assert proc.poll() is None
        return proc, info

    try:
        first, old = start()
        first.kill()
        first.wait(timeout=10)
        assert all(not _gone(pid) for pid in old["pids"].values())  # orphans, for now
        second, new = start()
        for name, pid in old["pids"].items():
            assert _gone(pid), f"the orphaned {name} (process group {pid}) survived"
        assert set(new["pids"].values()).isdisjoint(old["pids"].values())
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)
