"""What Google runs for us in production, done locally: Eventarc's GCS trigger and Cloud Scheduler.

`FinalizeBridge` polls the GCS emulator (it has no notifications) and delivers one
`google.cloud.storage.object.v1.finalized` CloudEvent, in binary mode, per new object
generation, the way Eventarc does: objects that exist when it starts are not announced,
a failed delivery (non-2xx or no answer) is retried with exponential backoff under the
same `ce-id`, and deliveries are not ordered. It watches every bucket of the emulator unless
given a list, so buckets that tests create on the fly are covered too, and so is the staging
bucket, as Terraform's trigger on it does in production: sealed outputs land there, in each
job's `outputs/` folder, and are priced and copied from there (shared/jobs/sealed_outputs.py).
Given a list, name the staging bucket in it too.

`SyncTicker` publishes `{"type": "sync"}` (attribute `type=sync`) to the events topic every
interval, like the Cloud Scheduler job of the Terraform.

Both talk plain HTTP to the emulators (the Pub/Sub emulator speaks REST too), so they never
read or change the process environment and run as threads of the stack process.
"""

import base64
import hashlib
import json
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO

import requests
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent

GCS_FINALIZED = "google.cloud.storage.object.v1.finalized"


class JsonLog:
    """Structured JSON lines, as shared/core/logs.py writes them, to a file of our choosing."""

    def __init__(self, stream: IO[str] | None = None, component: str = "bridge"):
        self.stream = stream
        self.component = component
        self._lock = threading.Lock()

    def __call__(self, severity: str, message: str, **fields) -> None:
        if self.stream is None:
            return
        entry = {
            "severity": severity,
            "message": message,
            "time": time.time(),
            "component": self.component,
            **fields,
        }
        with self._lock:
            self.stream.write(json.dumps(entry, default=str, separators=(",", ":")) + "\n")
            self.stream.flush()


# --- Pub/Sub emulator over REST -------------------------------------------------------------


def pubsub_call(host: str, method: str, path: str, body: dict | None = None) -> requests.Response:
    """One call to the Pub/Sub emulator's REST surface (`host` is `127.0.0.1:PORT`)."""
    return requests.request(method, f"http://{host}/v1/{path}", json=body, timeout=10)


def pubsub_publish(host: str, topic_path: str, data: dict, attributes: dict[str, str]) -> str:
    payload = base64.b64encode(json.dumps(data).encode()).decode()
    response = pubsub_call(
        host,
        "POST",
        f"{topic_path}:publish",
        {"messages": [{"data": payload, "attributes": attributes}]},
    )
    response.raise_for_status()
    return response.json()["messageIds"][0]


# --- GCS finalize -> CloudEvent -----------------------------------------------------------------


def event_id(bucket: str, name: str, generation: str) -> str:
    """Stable per object generation: a redelivery carries the same id, as Eventarc's does."""
    digest = hashlib.sha256(f"{bucket}/{name}#{generation}".encode()).digest()
    return str(int.from_bytes(digest[:8], "big"))


def object_resource(item: dict) -> dict:
    """The JSON API object resource as Eventarc puts it in the event body (StorageObjectData)."""
    bucket, name, generation = item["bucket"], item["name"], str(item["generation"])
    quoted = urllib.parse.quote(name, safe="")
    data = {key: value for key, value in item.items() if key != "acl"}
    data.update(
        kind="storage#object",
        id=f"{bucket}/{name}/{generation}",
        selfLink=f"https://www.googleapis.com/storage/v1/b/{bucket}/o/{quoted}",
        bucket=bucket,
        name=name,
        generation=generation,
        metageneration=str(item.get("metageneration", "1")),
        size=str(item.get("size", "0")),
    )
    data.setdefault("contentType", "application/octet-stream")
    data.setdefault("storageClass", "STANDARD")
    return data


def finalized_event(item: dict) -> CloudEvent:
    data = object_resource(item)
    return CloudEvent(
        {
            "id": event_id(data["bucket"], data["name"], data["generation"]),
            "type": GCS_FINALIZED,
            "source": f"//storage.googleapis.com/projects/_/buckets/{data['bucket']}",
            "subject": f"objects/{data['name']}",
            "time": data.get("updated") or data.get("timeCreated"),
            "specversion": "1.0",
            "datacontenttype": "application/json",
        },
        data,
    )


@dataclass
class Delivery:
    """One finalize event and what became of it (for logs and tests)."""

    bucket: str
    name: str
    generation: str
    event_id: str
    attempts: int = 0
    status: int | None = None
    done: bool = False
    delivered: bool = False
    errors: list[str] = field(default_factory=list)


class FinalizeBridge:
    """Polls the GCS emulator and posts a finalized CloudEvent per new object generation.

    `pause()` keeps watching but delivers nothing: the generations written meanwhile are
    remembered in `missed`, and `resume(deliver_missed=True)` sends them late (a delayed
    Eventarc), `resume()` drops them (a lost event, which the job reconciliation must cover).
    """

    def __init__(
        self,
        storage_url: str,
        target_url: str,
        *,
        buckets: list[str] | None = None,
        interval: float = 0.3,
        max_attempts: int = 8,
        first_backoff: float = 0.5,
        max_backoff: float = 10.0,
        request_timeout: float = 300.0,
        workers: int = 4,
        log: JsonLog | None = None,
    ):
        self.storage_url = storage_url.rstrip("/")
        self.target_url = target_url
        self.buckets = buckets
        self.interval = interval
        self.max_attempts = max_attempts
        self.first_backoff = first_backoff
        self.max_backoff = max_backoff
        self.request_timeout = request_timeout
        self.log = log or JsonLog(None)
        self.deliveries: list[Delivery] = []
        self.missed: list[dict] = []
        self._seen: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._polled = threading.Condition()
        self._polls = 0
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="finalize")
        self._session = requests.Session()

    # -- control

    def start(self) -> "FinalizeBridge":
        """Snapshot what exists now (never announced), then watch in a daemon thread."""
        for item in self._list_all():
            self._seen.add(self._key(item))
        self._thread = threading.Thread(target=self._run, name="finalize-bridge", daemon=True)
        self._thread.start()
        self.log("INFO", "finalize bridge started", target=self.target_url, known=len(self._seen))
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def pause(self) -> None:
        self._paused.set()
        self.log("INFO", "finalize bridge paused")

    def resume(self, deliver_missed: bool = False) -> None:
        with self._lock:
            missed, self.missed = self.missed, []
            self._paused.clear()
        if deliver_missed:
            for item in missed:
                self._submit(item)
        self.log("INFO", "finalize bridge resumed", missed=len(missed), delivered=deliver_missed)

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def wait_polled(self, polls: int = 2, timeout: float = 10.0) -> None:
        """Return once `polls` full polls have finished since the call: what existed is seen."""
        with self._polled:
            target = self._polls + polls
            if not self._polled.wait_for(lambda: self._polls >= target, timeout=timeout):
                raise TimeoutError("the finalize bridge did not poll in time")

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Return once everything seen so far has been delivered or given up."""
        self.wait_polled(timeout=timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if all(d.done for d in self.deliveries):
                    return
            time.sleep(0.05)
        raise TimeoutError("finalize deliveries still pending")

    # -- polling

    @staticmethod
    def _key(item: dict) -> tuple[str, str, str]:
        return item["bucket"], item["name"], str(item["generation"])

    def _bucket_names(self) -> list[str]:
        if self.buckets is not None:
            return list(self.buckets)
        response = self._session.get(f"{self.storage_url}/storage/v1/b", timeout=10)
        response.raise_for_status()
        return [b["name"] for b in response.json().get("items", [])]

    def _list_all(self) -> list[dict]:
        items = []
        for bucket in self._bucket_names():
            # The emulator returns every object in one page and ignores pageToken.
            response = self._session.get(
                f"{self.storage_url}/storage/v1/b/{urllib.parse.quote(bucket, safe='')}/o",
                timeout=10,
            )
            if response.status_code == 404:
                continue
            response.raise_for_status()
            items.extend(response.json().get("items", []))
        return items

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._poll_once()
            except requests.RequestException as exc:
                self.log("WARNING", "finalize bridge cannot list the GCS emulator", error=str(exc))
            with self._polled:
                self._polls += 1
                self._polled.notify_all()
            self._stop.wait(self.interval)

    def _poll_once(self) -> None:
        for item in self._list_all():
            key = self._key(item)
            with self._lock:
                if key in self._seen:
                    continue
                self._seen.add(key)
                if self._paused.is_set():
                    self.missed.append(item)
                    self.log("INFO", "finalize event withheld (paused)", object=self._uri(key))
                    continue
            self._submit(item)

    @staticmethod
    def _uri(key: tuple[str, str, str]) -> str:
        return f"gs://{key[0]}/{key[1]}#{key[2]}"

    # -- delivery

    def _submit(self, item: dict) -> None:
        event = finalized_event(item)
        bucket, name, generation = self._key(item)
        delivery = Delivery(bucket, name, generation, event["id"])
        with self._lock:
            self.deliveries.append(delivery)
        try:
            self._pool.submit(self._deliver, event, delivery)
        except RuntimeError:  # shut down while polling
            delivery.done = True

    def _deliver(self, event: CloudEvent, delivery: Delivery) -> None:
        headers, body = to_binary(event)
        backoff = self.first_backoff
        uri = self._uri((delivery.bucket, delivery.name, delivery.generation))
        while not self._stop.is_set():
            delivery.attempts += 1
            try:
                response = self._session.post(
                    self.target_url, headers=headers, data=body, timeout=self.request_timeout
                )
                delivery.status = response.status_code
                if 200 <= response.status_code < 300:
                    delivery.delivered = True
                    self.log(
                        "INFO", "finalize event delivered", object=uri, attempts=delivery.attempts
                    )
                    break
                delivery.errors.append(f"HTTP {response.status_code}: {response.text[:200]}")
            except requests.RequestException as exc:
                delivery.errors.append(str(exc))
            if delivery.attempts >= self.max_attempts:
                self.log(
                    "ERROR",
                    "finalize event dropped after retries",
                    object=uri,
                    attempts=delivery.attempts,
                    last_error=delivery.errors[-1],
                )
                break
            self.log(
                "WARNING",
                "finalize event failed, will retry",
                object=uri,
                attempts=delivery.attempts,
                error=delivery.errors[-1],
                retry_in=backoff,
            )
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.max_backoff)
        delivery.done = True


# --- Cloud Scheduler -> sync -------------------------------------------------------------------


class SyncTicker:
    """Publishes `{"type": "sync"}` and `{"type": "run.tick"}` every `interval` seconds, as
    the two Cloud Scheduler jobs do; `tick()` publishes both now."""

    def __init__(
        self,
        pubsub_host: str,
        project: str,
        topic: str,
        interval: float = 60.0,
        log: JsonLog | None = None,
    ):
        self.pubsub_host = pubsub_host
        self.topic_path = (
            topic if topic.startswith("projects/") else f"projects/{project}/topics/{topic}"
        )
        self.interval = interval
        self.log = log or JsonLog(None)
        self.published = 0
        self._count_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "SyncTicker":
        self._thread = threading.Thread(target=self._run, name="sync-ticker", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def tick(self) -> str:
        message_id = pubsub_publish(
            self.pubsub_host, self.topic_path, {"type": "sync"}, {"type": "sync"}
        )
        with self._count_lock:
            self.published += 1
        self.log("INFO", "sync published", message_id=message_id, topic=self.topic_path)
        self.tick_runs()
        return message_id

    def tick_runs(self) -> str:
        """The second scheduled message: `run.tick` advances every open run."""
        message_id = pubsub_publish(
            self.pubsub_host, self.topic_path, {"type": "run.tick"}, {"type": "run.tick"}
        )
        self.log("INFO", "run.tick published", message_id=message_id, topic=self.topic_path)
        return message_id

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except requests.RequestException as exc:
                self.log("WARNING", "sync publish failed", error=str(exc))
