"""The whole gateway on this machine: `make dev` = `python -m local.stack`.

Starts, on 127.0.0.1 (free ports unless given), the Firestore and Pub/Sub emulators, the GCS
emulator, the Vertex simulator and the three functions under functions-framework, then wires
them as Google does in production: topics `batch-job-events` and `batch-job-alerts`, a pull
subscription `batch-job-alerts-watch` for people to watch alerts, a push subscription from
the events topic to `on_job_event`, the GCS-finalize bridge to `on_output_finalized` and the
sync ticker (both threads of this process, see local/bridges.py). It seeds a master key,
creates the demo bucket, writes `<state>/stack.json` once every part answers HTTP, and
stops every process it started (whole process groups, so the emulators' Java too) on
Ctrl-C or SIGTERM, removing stack.json.

A function process that dies (a crash, SIGKILL) is started again on its port, as Cloud
Functions starts a new instance (local/supervisor.py: stderr, `logs/bridges.log` and the
function's own log say so; stack.json names the new PID); the emulators and the simulator
hold the stack's state in memory, so the death of one of them stops the stack.

The tests start the stack with the same code: `with Stack(state_dir=tmp, speed=0.1,
sync_interval=1) as info: ...` (info = the stack.json dict); `stack.finalize_bridge.pause()`
/ `.resume()` switch the GCS bridge off and on, `stack.sync_ticker.tick()` syncs now.

One stack per state directory: a lock (`flock` on `<state>/stack.lock`, released by the
kernel when the process dies, so stale locks never block) makes a second one exit with the
PID of the live one. A stack killed with SIGKILL cannot clean up: the next start stops the
process groups its stack.json names (when their command lines show they are ours).

The functions inherit this process's environment, then get the emulator hosts, project,
config, master key, simulator endpoint and topics set over it: other `VBG_*` settings you
export (e.g. `VBG_STUCK_RUNNING_HOURS`) reach the local functions as they would in Terraform.
The finalize bridge watches every bucket of the GCS emulator (Eventarc watches one bucket
per trigger; locally any bucket a test creates should work); polling at 0.3 s means two
writes of one object within one poll yield one event for the last generation.

Ports and other options: `python -m local.stack --help`; every port flag also reads an
environment variable (`VBG_DEV_GATEWAY_PORT`, ...). The master key is `VBG_MASTER_KEY` when
set, else a new random `vbg-master-...` per run (printed, and in stack.json).
"""

import argparse
import contextlib
import fcntl
import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from local import bq_bridge, bq_emulator
from local.bridges import FinalizeBridge, JsonLog, SyncTicker, pubsub_call
from local.processes import (
    Server,
    StackError,
    firestore_emulator,
    free_port,
    gcloud_emulators_missing,
    group_alive,
    pubsub_emulator,
    storage_emulator,
)
from local.supervisor import Restart, Supervisor
from shared.cost import pricing

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO_ROOT / "functions" / "main.py"
DEFAULT_PROJECT = "vbg-local"
DEFAULT_BUCKET = "vbg-local-bucket"
# Gateway-owned: sealed inputs and uploaded files; no key may name it as a prefix.
STAGING_BUCKET = "vbg-local-staging"
EVENTS_TOPIC = "batch-job-events"
ALERTS_TOPIC = "batch-job-alerts"
ALERTS_SUBSCRIPTION = "batch-job-alerts-watch"
EVENTS_PUSH_SUBSCRIPTION = "batch-job-events-on-job-event"
DEAD_LETTER_TOPIC = "batch-job-events-dead-letter"
# The books in BigQuery (docs/bigquery.md): the topic, the bridge standing in for its BigQuery
# subscription, the dataset in the BigQuery emulator.
COST_RECORDS_TOPIC = "cost-records"
COST_RECORDS_SUBSCRIPTION = "cost-records-to-bigquery"
BOOKS_DATASET = "vbg_books"
FUNCTIONS = {
    # name -> signature type (None = http)
    "passthrough": None,
    "on_job_event": "cloudevent",
    "on_output_finalized": "cloudevent",
}
# Every model of the bundled price catalog that Google has not retired: what the simulator
# serves (shared/cost/prices.json is the one list).
LOCAL_MODELS = tuple(
    name for name in pricing.bundled()["models"] if not pricing.facts(name).retired(pricing.today())
)
PORT_NAMES = ("gateway", "vertex", "storage", "firestore", "pubsub")


# Extra public names for the same model in a region and a multi-region (the regional uplift
# and the us / eu hosts can be tried and tested on the local stack).
LOCAL_LOCATION_VARIANTS = (
    ("gemini-3.8-flash-us", "gemini-3.8-flash", "us"),
    ("gemini-3.8-flash-europe-west4", "gemini-3.8-flash", "europe-west4"),
    ("gemini-embedding-2-eu", "gemini-embedding-2", "eu"),
    # A retired model: a create is refused naming its successor, as in production.
    ("gemini-2.5-flash", "gemini-2.5-flash", "global"),
)


# A deployment whose jobs hold at most 100 requests (model_info.max_job_rows): a run on it
# splits a file of a few hundred lines into pieces (shared/runs/), as a 200,001-line file
# splits on Vertex's own limit.
LOCAL_CAPPED = (("gemini-3.5-flash-lite-small-jobs", "gemini-3.5-flash-lite", 100),)


def default_config(project: str, location: str = "global") -> str:
    """A LiteLLM model list naming every model the simulator serves, all in one project."""
    lines = [
        "# Written by local/stack.py for the local stack; pass --config to use your own.",
        "model_list:",
    ]
    for model in LOCAL_MODELS:
        # A model whose batch runs only in some locations (gemini-embedding-2) gets the first.
        allowed = pricing.facts(model).batch_locations
        where = location if not allowed or location in allowed else allowed[0]
        lines += [
            f"  - model_name: {model}",
            "    litellm_params:",
            f"      model: vertex_ai/{model}",
            f"      vertex_project: {project}",
            f"      vertex_location: {where}",
        ]
    for name, model, where in LOCAL_LOCATION_VARIANTS:
        lines += [
            f"  - model_name: {name}",
            "    litellm_params:",
            f"      model: vertex_ai/{model}",
            f"      vertex_project: {project}",
            f"      vertex_location: {where}",
        ]
    for name, model, rows in LOCAL_CAPPED:
        lines += [
            f"  - model_name: {name}",
            "    litellm_params:",
            f"      model: vertex_ai/{model}",
            f"      vertex_project: {project}",
            f"      vertex_location: {location}",
            f"    model_info: {{max_job_rows: {rows}}}",
        ]
    return "\n".join(lines) + "\n"


def stop_group(server: Server, timeout: float = 10.0) -> None:
    """Stop the server, then wait until nothing of its process group is left (the emulators'
    Java can outlive its port by a moment); SIGKILL what lingers past half the timeout."""
    server.stop(timeout=timeout)
    if not server.process:
        return
    pgid = server.process.pid
    deadline = time.monotonic() + timeout
    killed = False
    while group_alive(pgid) and time.monotonic() < deadline:
        if not killed and time.monotonic() > deadline - timeout / 2:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            killed = True
        time.sleep(0.05)


# What the command line of a process we started contains: a leftover is only killed when its
# command line proves it ours (a PID may have been reused since). functions-framework runs
# gunicorn, which retitles itself "gunicorn: master" where setproctitle is installed.
_OUR_COMMANDS = (
    "emulators",
    "functions_framework",
    "gunicorn: master",
    "local.vertex_sim",
    "local.bq_emulator",
    "gcp_storage_emulator",
)


def reap_leftovers(stack_file: Path) -> list[int]:
    """Stop the process groups a killed stack (SIGKILL, no cleanup) left behind.

    Only called with the lock held, so the stack that wrote the file is dead; its
    stack.json still names the groups it started.
    """
    try:
        pids = json.loads(stack_file.read_text()).get("pids", {}).values()
    except (OSError, ValueError, AttributeError):
        return []
    reaped = []
    for pid in pids:
        try:
            command = Path(f"/proc/{int(pid)}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            continue
        if any(mark in command for mark in _OUR_COMMANDS) and group_alive(pid):
            reaped.append(pid)
    threads = [
        threading.Thread(
            target=stop_group, args=(Server("leftover", [], 0, process=_Adopted(pid)), 5)
        )
        for pid in reaped
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return reaped


class _Adopted:
    """Enough of a Popen for Server.stop: a process we did not start in this run."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode = None

    def poll(self):
        return None if group_alive(self.pid) else 0

    def wait(self, timeout: float | None = None):
        deadline = time.monotonic() + (timeout or 0)
        while group_alive(self.pid):
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("leftover", timeout)
            time.sleep(0.05)
        return 0


def wire_pubsub(host: str, project: str, push_url: str) -> None:
    """Topics and subscriptions as the Terraform declares them (idempotent)."""

    def put(path: str, body: dict | None = None) -> None:
        response = pubsub_call(host, "PUT", path, body or {})
        if response.status_code not in (200, 409):
            raise StackError(f"Pub/Sub emulator refused PUT {path}: {response.text[:300]}")

    prefix = f"projects/{project}"
    for topic in (EVENTS_TOPIC, ALERTS_TOPIC, DEAD_LETTER_TOPIC):
        put(f"{prefix}/topics/{topic}")
    put(
        f"{prefix}/subscriptions/{ALERTS_SUBSCRIPTION}",
        {"topic": f"{prefix}/topics/{ALERTS_TOPIC}", "ackDeadlineSeconds": 60},
    )
    # As the Cloud Functions Pub/Sub trigger: push, long ack deadline, backoff, dead letter.
    put(
        f"{prefix}/subscriptions/{EVENTS_PUSH_SUBSCRIPTION}",
        {
            "topic": f"{prefix}/topics/{EVENTS_TOPIC}",
            "pushConfig": {"pushEndpoint": push_url},
            "ackDeadlineSeconds": 600,
            "retryPolicy": {"minimumBackoff": "1s", "maximumBackoff": "60s"},
            "deadLetterPolicy": {
                "deadLetterTopic": f"{prefix}/topics/{DEAD_LETTER_TOPIC}",
                "maxDeliveryAttempts": 10,
            },
        },
    )


class AlreadyRunning(StackError):
    """Another stack holds the lock of this state directory."""


class Stack:
    """Start with `start()` (or `with`), stop with `stop()`; `info` is the stack.json dict."""

    def __init__(
        self,
        state_dir: str | Path = ".local",
        *,
        project: str = DEFAULT_PROJECT,
        bucket: str = DEFAULT_BUCKET,
        speed: float = 1.0,
        sync_interval: float = 60.0,
        ports: dict[str, int] | None = None,
        config: str | Path | None = None,
        master_key: str | None = None,
        finalize_bridge: bool = True,
        functions_source: str | Path = DEFAULT_SOURCE,
        extra_env: dict[str, str] | None = None,
        ready_timeout: float = 90.0,
        supervise: bool = True,
        announce=None,
    ):
        self.state_dir = Path(state_dir).resolve()
        self.log_dir = self.state_dir / "logs"
        self.stack_file = self.state_dir / "stack.json"
        self.project = project
        self.bucket = bucket
        self.speed = speed
        self.sync_interval = sync_interval
        self.ports = {name: (ports or {}).get(name) or 0 for name in PORT_NAMES}
        self.config = Path(config).resolve() if config else None
        self.master_key = (
            master_key
            or os.environ.get("VBG_MASTER_KEY")
            or ("vbg-master-" + secrets.token_urlsafe(24))
        )
        self.with_finalize_bridge = finalize_bridge
        self.functions_source = Path(functions_source).resolve()
        self.extra_env = extra_env or {}
        self.ready_timeout = ready_timeout
        self.supervise = supervise
        self.announce = announce or _to_stderr
        self.supervisor: Supervisor | None = None
        self.servers: dict[str, Server] = {}
        self.finalize_bridge: FinalizeBridge | None = None
        self.sync_ticker: SyncTicker | None = None
        self.cost_records_bridge: bq_bridge.CostRecordsBridge | None = None
        self.info: dict = {}
        self.failed: list[Server] = []
        self.startup_seconds: float | None = None
        self._lock_file = None
        self._bridge_log = None
        self._stopped = threading.Event()
        self._stack_file_lock = threading.Lock()

    # -- lifecycle

    def __enter__(self) -> dict:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> dict:
        started = time.monotonic()
        missing = gcloud_emulators_missing()
        if missing:
            raise StackError(f"the local stack needs the gcloud emulators: {missing}")
        if importlib.util.find_spec("local.vertex_sim") is None:
            raise StackError("local/vertex_sim.py (the Vertex simulator) is missing")
        if not self.functions_source.is_file():
            raise StackError(f"the functions source {self.functions_source} does not exist")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._acquire_lock()
        try:
            self._start_all()
        except BaseException:
            self.failed = self.dead_servers()
            self.stop()
            raise
        self.startup_seconds = round(time.monotonic() - started, 2)
        self.info["startup_seconds"] = self.startup_seconds
        self._write_stack_file()
        return self.info

    def stop(self) -> None:
        """Idempotent; safe from a half-started stack."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        parts = (self.supervisor, self.sync_ticker, self.finalize_bridge, self.cost_records_bridge)
        for part in parts:
            if part:
                part.stop()
        threads = [threading.Thread(target=stop_group, args=(s,)) for s in self.servers.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with contextlib.suppress(FileNotFoundError):
            if self._lock_file:
                self.stack_file.unlink()
        if self._bridge_log:
            self._bridge_log.close()
            self._bridge_log = None
        self._release_lock()

    def dead_servers(self) -> list[Server]:
        return [s for s in self.servers.values() if s.process and s.process.poll() is not None]

    def dead_parts(self) -> list[Server]:
        """Dead servers the supervisor does not restart (the emulators, the simulator; the
        functions too when the stack runs unsupervised): their state is gone, so the stack
        cannot go on."""
        supervised = set(self.supervisor.servers) if self.supervisor else set()
        return [s for s in self.dead_servers() if s.name not in supervised]

    def _restarted(self, restart: Restart) -> None:
        """A function has a new process: stack.json names it (for `reap_leftovers`)."""
        self.info["pids"][restart.name] = restart.new_pid
        if not self._stopped.is_set():
            self._write_stack_file()

    # -- parts

    def _acquire_lock(self) -> None:
        lock_path = self.state_dir / "stack.lock"
        handle = open(lock_path, "a+")  # noqa: SIM115 - held for the life of the stack
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            pid = handle.read().strip() or "?"
            handle.close()
            raise AlreadyRunning(
                f"a local stack is already running from {self.state_dir} (pid {pid}); "
                f"its endpoints are in {self.stack_file}. Stop it with Ctrl-C in its "
                f"terminal or `kill {pid}`, or use another --state-dir."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock_file = handle

    def _release_lock(self) -> None:
        if self._lock_file:
            self._lock_file.seek(0)
            self._lock_file.truncate()
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def _port(self, name: str) -> int:
        return self.ports.get(name) or free_port()

    def _start_all(self) -> None:
        reap_leftovers(self.stack_file)
        with contextlib.suppress(FileNotFoundError):
            self.stack_file.unlink()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for old in self.log_dir.glob("*.log"):
            old.unlink()
        config = self.config or self.state_dir / "config.yaml"
        if not self.config:
            config.write_text(default_config(self.project))

        firestore = firestore_emulator(self._port("firestore"), self.log_dir)
        pubsub = pubsub_emulator(self._port("pubsub"), self.project, self.log_dir)
        storage = storage_emulator(self._port("storage"), self.log_dir)
        # BigQuery where its emulator is installed (the dev extras); without it the stack
        # runs and publishes no cost records (docs/bigquery.md).
        bigquery = None
        if bq_emulator.missing() is None:
            bigquery = bq_emulator.server(self._port("bigquery"), self.project, self.log_dir)
        books_env = {}
        if bigquery:
            books_env = {
                "BIGQUERY_EMULATOR_HOST": bigquery.url,
                "VBG_COST_RECORDS_TOPIC": COST_RECORDS_TOPIC,
                "VBG_BOOKS_DATASET": f"{self.project}.{BOOKS_DATASET}",
            }
        vertex_port = self._port("vertex")
        python_path = os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
        )
        vertex = Server(
            "vertex-sim",
            [
                sys.executable,
                "-m",
                "local.vertex_sim",
                "--port",
                str(vertex_port),
                "--speed",
                str(self.speed),
            ],
            vertex_port,
            env={"STORAGE_EMULATOR_HOST": storage.url, "PYTHONPATH": python_path},
            log_path=self.log_dir / "vertex_sim.log",
        )
        function_env = {
            "FIRESTORE_EMULATOR_HOST": firestore.host,
            "PUBSUB_EMULATOR_HOST": pubsub.host,
            "STORAGE_EMULATOR_HOST": storage.url,
            "VBG_PROJECT": self.project,
            "GOOGLE_CLOUD_PROJECT": self.project,
            "VBG_CONFIG": str(config),
            "VBG_MASTER_KEY": self.master_key,
            "VBG_VERTEX_ENDPOINT": vertex.url,
            "VBG_EVENTS_TOPIC": EVENTS_TOPIC,
            "VBG_ALERTS_TOPIC": ALERTS_TOPIC,
            "VBG_STAGING_BUCKET": STAGING_BUCKET,
            # Each job's sync backoff counts this stack's ticks (shared/jobs/sync_schedule.py).
            "VBG_SYNC_TICK_SECONDS": str(self.sync_interval),
            "VBG_PRICE_CATALOG": "firestore",
            "PYTHONPATH": python_path,
            "PYTHONUNBUFFERED": "1",
            **books_env,
            **self.extra_env,
        }
        functions = {}
        for name, signature in FUNCTIONS.items():
            port = self._port("gateway") if name == "passthrough" else free_port()
            argv = [
                sys.executable,
                "-m",
                "functions_framework",
                "--target",
                name,
                "--source",
                str(self.functions_source),
                "--port",
                str(port),
                "--host",
                "127.0.0.1",
            ]
            if signature:
                argv += ["--signature-type", signature]
            functions[name] = Server(
                name, argv, port, env=function_env, log_path=self.log_dir / f"{name}.log"
            )

        # Start everything at once (the Java emulators dominate), then wait for each.
        extra = (bigquery,) if bigquery else ()
        for server in (firestore, pubsub, storage, vertex, *extra, *functions.values()):
            self.servers[server.name] = server
            server.start()
        for server in self.servers.values():
            server.wait_ready(timeout=self.ready_timeout)

        for bucket in (self.bucket, STAGING_BUCKET):
            self._create_bucket(storage.url, bucket)
        push_url = f"{functions['on_job_event'].url}/projects/{self.project}/topics/{EVENTS_TOPIC}"
        wire_pubsub(pubsub.host, self.project, push_url)

        self._bridge_log = open(self.log_dir / "bridges.log", "a")  # noqa: SIM115
        if bigquery:
            books = bq_emulator.client(bigquery.url, self.project)
            table = bq_bridge.create_books(books, project=self.project, dataset=BOOKS_DATASET)
            self.cost_records_bridge = (
                bq_bridge.CostRecordsBridge(
                    pubsub_host=pubsub.host,
                    project=self.project,
                    topic=COST_RECORDS_TOPIC,
                    subscription=COST_RECORDS_SUBSCRIPTION,
                    bigquery_client=books,
                    table=table,
                    log=JsonLog(self._bridge_log, "cost-records-bridge"),
                )
                .setup()
                .start()
            )
        if self.with_finalize_bridge:
            self.finalize_bridge = FinalizeBridge(
                storage.url,
                functions["on_output_finalized"].url,
                log=JsonLog(self._bridge_log, "finalize-bridge"),
            ).start()
        self.sync_ticker = SyncTicker(
            pubsub.host,
            self.project,
            EVENTS_TOPIC,
            self.sync_interval,
            log=JsonLog(self._bridge_log, "sync-ticker"),
        ).start()

        self.info = {
            "gateway_url": functions["passthrough"].url,
            "vertex_url": vertex.url,
            "storage_url": storage.url,
            "firestore_host": firestore.host,
            "pubsub_host": pubsub.host,
            "project": self.project,
            "master_key": self.master_key,
            "bucket": self.bucket,
            "staging_bucket": STAGING_BUCKET,
            "events_topic": EVENTS_TOPIC,
            "alerts_topic": ALERTS_TOPIC,
            "alerts_subscription": ALERTS_SUBSCRIPTION,
            "bigquery_url": bigquery.url if bigquery else None,
            "books_dataset": f"{self.project}.{BOOKS_DATASET}" if bigquery else None,
            "events_push_subscription": EVENTS_PUSH_SUBSCRIPTION,
            "functions": {name: s.url for name, s in functions.items()},
            "on_job_event_push_endpoint": push_url,
            "finalize_bridge": self.with_finalize_bridge,
            "sync_interval": self.sync_interval,
            "speed": self.speed,
            "config": str(config),
            "pid": os.getpid(),
            "pids": {name: s.process.pid for name, s in self.servers.items()},
            "ports": {name: s.port for name, s in self.servers.items()},
            "log_dir": str(self.log_dir),
            "state_dir": str(self.state_dir),
        }
        if self.supervise:
            self.supervisor = Supervisor(
                {name: functions[name] for name in FUNCTIONS},
                log=JsonLog(self._bridge_log, "supervisor"),
                announce=self.announce,
                on_restart=self._restarted,
            ).start()

    def _create_bucket(self, storage_url: str, bucket: str) -> None:
        response = requests.post(
            f"{storage_url}/storage/v1/b",
            params={"project": self.project},
            json={"name": bucket},
            timeout=10,
        )
        if response.status_code not in (200, 409):
            raise StackError(f"cannot create the bucket {bucket}: {response.text[:300]}")

    def _write_stack_file(self) -> None:
        with self._stack_file_lock:
            tmp = self.stack_file.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(self.info, indent=2) + "\n")
            tmp.replace(self.stack_file)


def _to_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- the command ----------------------------------------------------------------------------


def banner(info: dict) -> str:
    gateway, key = info["gateway_url"], info["master_key"]
    return f"""
Vertex Batch Gateway: local stack ready in {info["startup_seconds"]}s
  ({info["state_dir"]}/stack.json)

  gateway (passthrough)  {gateway}
  Vertex simulator       {info["vertex_url"]}
  GCS emulator           {info["storage_url"]}   bucket gs://{info["bucket"]}
  Firestore emulator     {info["firestore_host"]}
  Pub/Sub emulator       {info["pubsub_host"]}   project {info["project"]}
  BigQuery emulator      {info.get("bigquery_url") or "not installed"} \
(books {info.get("books_dataset")})
  on_job_event           {info["functions"]["on_job_event"]} (push from {info["events_topic"]})
  on_output_finalized    {info["functions"]["on_output_finalized"]} \
(finalize bridge {"on" if info["finalize_bridge"] else "OFF"})
  alerts                 pull subscription {info["alerts_subscription"]}
  sync tick              every {info["sync_interval"]}s
  logs                   {info["log_dir"]}/
  master key             {key}

Try:
  curl -s {gateway}/v1/gateway/health
  curl -s -X POST {gateway}/v1/gateway/keys -H 'Authorization: Bearer {key}' \\
       -H 'Content-Type: application/json' -d '{{"alias": "me", "team": "demo"}}'

Point your own tools at the emulators with:
  export FIRESTORE_EMULATOR_HOST={info["firestore_host"]} \
PUBSUB_EMULATOR_HOST={info["pubsub_host"]} STORAGE_EMULATOR_HOST={info["storage_url"]}

Ctrl-C stops everything.
"""


def _tail(path: Path | None, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except (OSError, AttributeError):
        return "(no log)"


class _Terminate(BaseException):
    """SIGTERM/SIGHUP, raised in the main thread so `finally` stops every process."""


def _on_signal(signum, _frame):
    raise _Terminate(signum)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.stack", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--state-dir",
        default=os.environ.get("VBG_DEV_STATE_DIR", ".local"),
        help="where stack.json, the lock, config.yaml and logs/ go (.local)",
    )
    for name in PORT_NAMES:
        env = f"VBG_DEV_{name.upper()}_PORT"
        parser.add_argument(
            f"--{name}-port",
            type=int,
            default=int(os.environ.get(env) or 0),
            help=f"port of the {name} server (env {env}; default: a free one)",
        )
    parser.add_argument("--project", default=os.environ.get("VBG_DEV_PROJECT", DEFAULT_PROJECT))
    parser.add_argument("--bucket", default=os.environ.get("VBG_DEV_BUCKET", DEFAULT_BUCKET))
    parser.add_argument(
        "--config",
        default=None,
        help="model list YAML (default: one written to <state-dir>/config.yaml)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="seconds the Vertex simulator spends in each job state (1.0)",
    )
    parser.add_argument(
        "--sync-interval",
        type=float,
        default=60.0,
        help="seconds between sync ticks, as Cloud Scheduler (60)",
    )
    parser.add_argument(
        "--no-finalize-bridge",
        action="store_true",
        help="do not turn new GCS objects into finalize events",
    )
    parser.add_argument("--functions-source", default=str(DEFAULT_SOURCE), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    missing = gcloud_emulators_missing()
    if missing:
        print(f"make dev: cannot start the local stack: {missing}", file=sys.stderr)
        return 2
    stack = Stack(
        args.state_dir,
        project=args.project,
        bucket=args.bucket,
        speed=args.speed,
        sync_interval=args.sync_interval,
        ports={name: getattr(args, f"{name}_port") for name in PORT_NAMES},
        config=args.config,
        finalize_bridge=not args.no_finalize_bridge,
        functions_source=args.functions_source,
    )
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)
    print("starting the local stack (emulators, Vertex simulator, functions)...", flush=True)
    try:
        info = stack.start()
        print(banner(info), flush=True)
        while True:
            dead = stack.dead_parts()
            if dead:
                for server in dead:
                    print(
                        f"make dev: {server.name} exited with code {server.process.returncode};"
                        f" see {server.log_path}",
                        file=sys.stderr,
                    )
                return 1
            time.sleep(0.5)
    except AlreadyRunning as exc:
        print(f"make dev: {exc}", file=sys.stderr)
        return 1
    except StackError as exc:
        print(f"make dev: {exc}", file=sys.stderr)
        for server in stack.failed:
            print(
                f"--- last lines of {server.log_path} ---\n{_tail(server.log_path)}",
                file=sys.stderr,
            )
        return 1
    except (KeyboardInterrupt, _Terminate):
        print("\nstopping the local stack...", flush=True)
        return 0
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
