"""`make smoke`: does the deployment really work, against real Vertex, in one command?

    python -m local.smoke --yes                       # the deployment of `terraform apply`
    python -m local.smoke --yes --stack               # the local stack of `make dev`
    python -m local.smoke --yes --gateway URL --master-key K --bucket B \\
        --alerts-subscription projects/P/subscriptions/S

Steps, each printed with its time and what it cost: the gateway's health; a temporary key
limited to a scratch folder (`gs://<bucket>/vbg-smoke/<run>/`, with a small daily budget as
a safety net); a 3-row input there; the cheapest Gemini model of the model list (by the
gateway's own estimate); a batch job through the gateway; its terminal alert on the alerts
subscription; its cost record against `vbg cost --json` of each output file (an
independent pricing of the same rows); the key revoked and refused. The key is revoked
whatever failed before. It runs a real batch job, so it refuses to start without `--yes`.

By default everything comes from `terraform -chdir=infra output -json` (`gateway_url`,
`master_key_command`, `buckets`, `subscriptions.alerts_inbox`); the flags or VBG_GATEWAY_URL,
VBG_MASTER_KEY, VBG_SMOKE_BUCKET and VBG_SMOKE_ALERTS_SUBSCRIPTION override it.
`--stack [FILE]` reads `.local/stack.json` instead and points the GCS and Pub/Sub clients
and `vbg` at the stack's emulators. Only the gateway's HTTP surface, the GCS and Pub/Sub
clients and the `vbg` console script are used: what a user of the deployment has.

A model list with per-deployment price overrides makes the gateway's price differ from the
price table `vbg cost` uses: the cost step then fails and says so.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[1]
JOBS_PATH = "/v1/projects/vbg-smoke/locations/us-central1/batchPredictionJobs"
ROWS = (
    "Reply with one word: the colour of a clear daytime sky.",
    "Reply with one number: two plus two.",
    "Reply with one word: the opposite of cold.",
)
MAX_OUTPUT_TOKENS = 32
TERMINAL_OK = "JOB_STATE_SUCCEEDED"


class SmokeFailure(Exception):
    """A step found the deployment not working: the message says what was seen."""


@dataclass
class Target:
    """Where the deployment is, and the environment its clients (and `vbg`) need."""

    gateway: str
    master_key: str
    bucket: str
    alerts_subscription: str
    env: dict[str, str] = field(default_factory=dict)
    id_token: str | None = None

    @property
    def project(self) -> str:
        """The project of the alerts subscription (projects/P/subscriptions/S): the
        deployment's own, which the GCS client bills and ADC may not name."""
        return self.alerts_subscription.split("/")[1]


@dataclass
class Step:
    name: str
    ok: bool
    seconds: float
    cost_nanos: int = 0
    detail: str = ""


def usd_to_nanos(usd: str | Decimal) -> int:
    return int(Decimal(str(usd)) * 1_000_000_000)


def cents(nanos: int) -> str:
    return f"{Decimal(nanos) / 10_000_000:.5f}¢"


# --- where the deployment is --------------------------------------------------------------


def target_from_terraform(chdir: Path) -> dict:
    """The smoke's settings from the Terraform outputs (the master key via its command)."""
    try:
        done = subprocess.run(
            ["terraform", f"-chdir={chdir}", "output", "-json"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        stderr = getattr(exc, "stderr", "") or ""
        raise SmokeFailure(f"terraform output failed in {chdir}: {stderr.strip() or exc}") from exc
    outputs = {name: spec["value"] for name, spec in json.loads(done.stdout or "{}").items()}
    if "gateway_url" not in outputs:
        raise SmokeFailure(f"no gateway_url output in {chdir}: run terraform apply first")
    buckets = outputs.get("buckets") or {}
    return {
        "gateway": outputs["gateway_url"],
        "master_key_command": outputs.get("master_key_command"),
        "bucket": buckets.get("created") or next(iter(buckets.get("watched") or {}), None),
        "alerts_subscription": (outputs.get("subscriptions") or {}).get("alerts_inbox"),
    }


def target_from_stack(path: Path) -> dict:
    """The smoke's settings from the local stack's stack.json, emulators included."""
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SmokeFailure(f"no running local stack ({path}): run make dev first") from exc
    return {
        "gateway": info["gateway_url"],
        "master_key": info["master_key"],
        "bucket": info["bucket"],
        "alerts_subscription": (
            f"projects/{info['project']}/subscriptions/{info['alerts_subscription']}"
        ),
        "env": {
            "STORAGE_EMULATOR_HOST": info["storage_url"],
            "PUBSUB_EMULATOR_HOST": info["pubsub_host"],
            "GOOGLE_CLOUD_PROJECT": info["project"],
        },
    }


def resolve_target(args) -> Target:
    found: dict = {}
    if args.stack:
        found = target_from_stack(Path(args.stack))
    elif not (args.gateway and args.master_key and args.bucket and args.alerts_subscription):
        found = target_from_terraform(Path(args.terraform_dir))
    master_key = args.master_key or found.get("master_key")
    if not master_key and found.get("master_key_command"):
        master_key = read_master_key(found["master_key_command"])
    settings = {
        "gateway": args.gateway or found.get("gateway"),
        "master_key": master_key,
        "bucket": args.bucket or found.get("bucket"),
        "alerts_subscription": args.alerts_subscription or found.get("alerts_subscription"),
    }
    missing = [name for name, value in settings.items() if not value]
    if missing:
        raise SmokeFailure(f"missing {', '.join(missing)}: see --help")
    if not settings["alerts_subscription"].startswith("projects/"):
        raise SmokeFailure("--alerts-subscription: expected projects/P/subscriptions/S")
    settings["gateway"] = settings["gateway"].rstrip("/")
    return Target(**settings, env=found.get("env", {}), id_token=args.id_token)


def read_master_key(command: str) -> str:
    """Runs the `master_key_command` output (gcloud secrets versions access ...)."""
    try:
        done = subprocess.run(
            shlex.split(command), capture_output=True, text=True, timeout=60, check=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        stderr = getattr(exc, "stderr", "") or ""
        raise SmokeFailure(f"reading the master key failed ({command}): {stderr.strip()}") from exc
    return done.stdout.strip()


# --- the run ------------------------------------------------------------------------------


class Smoke:
    """The steps, in order; the key is revoked even when a step fails."""

    def __init__(
        self,
        target: Target,
        *,
        timeout: float,
        budget_usd: str,
        labels: dict[str, str] | None = None,
        out=print,
    ):
        self.target = target
        self.labels = {"smoke": "true", **(labels or {})}
        self.timeout = timeout
        self.budget_usd = budget_usd
        self.out = out
        self.run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        self.folder = f"gs://{target.bucket}/vbg-smoke/{self.run_id}/"
        self.steps: list[Step] = []
        self.http = requests.Session()
        self.key: str | None = None
        self.key_id: str | None = None
        self.model: str | None = None
        self.job_id: str | None = None
        self.alert: dict = {}

    # plumbing

    def call(self, method: str, path: str, key: str, **kwargs) -> requests.Response:
        """The key in x-goog-api-key, so that Authorization can carry a Google identity
        token where the gateway is not public (`--id-token`)."""
        headers = {"x-goog-api-key": key}
        if self.target.id_token:
            headers["Authorization"] = f"Bearer {self.target.id_token}"
        return self.http.request(
            method, self.target.gateway + path, headers=headers, timeout=60, **kwargs
        )

    def expect(self, response: requests.Response, what: str) -> dict:
        if response.status_code != 200:
            raise SmokeFailure(f"{what}: HTTP {response.status_code}: {response.text[:500]}")
        return response.json()

    def step(self, name: str, action: Callable[[], tuple[str, int] | str]) -> bool:
        started = time.monotonic()
        try:
            result = action()
        except (SmokeFailure, requests.RequestException, OSError) as exc:
            ok, detail, cost = False, str(exc), 0
        except Exception as exc:  # a bug or an unexpected client error: still report it
            ok, detail, cost = False, f"{type(exc).__name__}: {exc}", 0
        else:
            ok = True
            detail, cost = result if isinstance(result, tuple) else (result, 0)
        step = Step(name, ok, round(time.monotonic() - started, 2), cost, detail)
        self.steps.append(step)
        mark = "ok  " if ok else "FAIL"
        self.out(f"{mark} {name:<8} {step.seconds:7.2f} s  {cents(cost):>10}  {detail}")
        return ok

    def run(self) -> bool:
        self.out(f"smoke {self.run_id}: {self.target.gateway}, scratch folder {self.folder}")
        try:
            for name, action in (
                ("health", self.health),
                ("key", self.create_key),
                ("input", self.upload_input),
                ("model", self.pick_model),
                ("job", self.create_job),
                ("alert", self.wait_for_alert),
                ("cost", self.check_cost),
            ):
                if not self.step(name, action):
                    break
        finally:
            if self.job_id and not self.alert:
                self.step("cancel", self.cancel_job)
            if self.key_id:
                self.step("revoke", self.revoke_key)
        total = sum(s.cost_nanos for s in self.steps)
        seconds = sum(s.seconds for s in self.steps)
        passed = self.passed
        self.out(
            f"smoke {'passed' if passed else 'FAILED'} in {seconds:.1f} s; spent {cents(total)}"
            f" (${Decimal(total) / 10**9:f})"
        )
        return passed

    @property
    def passed(self) -> bool:
        names = [s.name for s in self.steps if s.ok]
        return names == ["health", "key", "input", "model", "job", "alert", "cost", "revoke"]

    def report(self) -> dict:
        return {
            "run": self.run_id,
            "gateway": self.target.gateway,
            "folder": self.folder,
            "model": self.model,
            "job_id": self.job_id,
            "passed": self.passed,
            "cost_nanos": sum(s.cost_nanos for s in self.steps),
            "steps": [asdict(s) for s in self.steps],
        }

    # steps

    def health(self) -> str:
        body = self.expect(self.call("GET", "/v1/gateway/health", self.target.master_key), "health")
        if body.get("status") != "ok":
            raise SmokeFailure(f"health is {body.get('status')}: {json.dumps(body)[:500]}")
        self.models = [m for m in body.get("models", []) if is_gemini(m)]
        if not self.models:
            raise SmokeFailure(f"no Gemini model in the model list: {body.get('models')}")
        latency = (body.get("firestore") or {}).get("latencyMs")
        return f"{len(body['models'])} models, Firestore {latency} ms"

    def create_key(self) -> str:
        body = self.expect(
            self.call(
                "POST",
                "/v1/gateway/keys",
                self.target.master_key,
                json={
                    "alias": f"vbg-smoke-{self.run_id}",
                    "team": "vbg-smoke",
                    "inputPrefixes": [self.folder],
                    "outputPrefixes": [self.folder],
                    "labels": {"smoke-run": self.run_id.lower()},
                    "budgetUsd": self.budget_usd,
                    "budgetPeriod": "day",
                },
            ),
            "create key",
        )
        self.key, self.key_id = body["key"], body["id"]
        return f"key {self.key_id}, {self.folder} only, budget ${self.budget_usd}/day"

    def upload_input(self) -> str:
        from google.cloud import storage

        lines = [
            json.dumps(
                {
                    "request": {
                        "contents": [{"role": "user", "parts": [{"text": text}]}],
                        "generationConfig": {"maxOutputTokens": MAX_OUTPUT_TOKENS},
                    }
                }
            )
            for text in ROWS
        ]
        client = storage_client(storage, self.target.project)
        name = self.input_uri.removeprefix(f"gs://{self.target.bucket}/")
        client.bucket(self.target.bucket).blob(name).upload_from_string(
            "\n".join(lines) + "\n", content_type="application/jsonl"
        )
        return f"{len(lines)} rows at {self.input_uri}"

    @property
    def input_uri(self) -> str:
        return self.folder + "input.jsonl"

    def job_body(self, model: str) -> dict:
        return {
            "displayName": f"vbg-smoke-{self.run_id}",
            "model": model,
            "inputConfig": {"instancesFormat": "jsonl", "gcsSource": {"uris": [self.input_uri]}},
            "outputConfig": {
                "predictionsFormat": "jsonl",
                "gcsDestination": {"outputUriPrefix": self.folder + "out/"},
            },
            "labels": self.labels,
        }

    def pick_model(self) -> str:
        """The cheapest Gemini model of the list, by the gateway's estimate of this input."""
        estimates = {}
        for model in self.models:
            body = self.expect(
                self.call("POST", "/v1/gateway/estimate", self.key, json=self.job_body(model)),
                f"estimate for {model}",
            )
            estimates[model] = usd_to_nanos(body["costUsd"]["expected"])
        self.model = min(estimates, key=lambda m: (estimates[m], m))
        self.estimate_nanos = estimates[self.model]
        return f"{self.model} (of {len(estimates)}), estimate {cents(self.estimate_nanos)}"

    def create_job(self) -> str:
        body = self.expect(
            self.call("POST", JOBS_PATH, self.key, json=self.job_body(self.model)), "create job"
        )
        self.job_name = body["name"]
        self.job_id = body["name"].rsplit("/", 1)[-1]
        return f"job {self.job_id} {body.get('state', '')}".strip()

    def wait_for_alert(self) -> str:
        """The job's terminal alert; other alerts are released for whoever reads the inbox."""
        from google.api_core import exceptions
        from google.cloud import pubsub_v1

        subscriber = pubsub_v1.SubscriberClient()
        subscription = self.target.alerts_subscription
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            try:
                response = subscriber.pull(
                    subscription=subscription,
                    max_messages=50,
                    timeout=min(20.0, max(1.0, deadline - time.monotonic())),
                )
            except (exceptions.DeadlineExceeded, exceptions.ServiceUnavailable):
                continue
            mine, others = [], []
            for received in response.received_messages:
                is_mine = received.message.attributes.get("job_id") == self.job_id
                (mine if is_mine else others).append(received)
            if others:
                # Someone else's alerts stay on the inbox for them.
                subscriber.modify_ack_deadline(
                    subscription=subscription,
                    ack_ids=[r.ack_id for r in others],
                    ack_deadline_seconds=0,
                )
            if mine:
                subscriber.acknowledge(subscription=subscription, ack_ids=[r.ack_id for r in mine])
            for received in mine:
                if received.message.attributes.get("kind") == "terminal":
                    return self.terminal(received.message)
            if not response.received_messages:
                time.sleep(1.0)
        raise SmokeFailure(f"no terminal alert for job {self.job_id} within {self.timeout:.0f} s")

    def terminal(self, message) -> str:
        self.alert = json.loads(message.data)
        state = message.attributes.get("state")
        if state != TERMINAL_OK:
            raise SmokeFailure(f"job {self.job_id} ended {state}: {self.alert.get('text')}")
        return f"{state}: {self.alert.get('text', '')[:160]}"

    def check_cost(self) -> tuple[str, int]:
        """The cost record equals the alert's cost and `vbg cost` of the output files."""
        deadline = time.monotonic() + 60
        while True:
            view = self.expect(
                self.call("GET", f"/v1/gateway/jobs/{self.job_id}/cost", self.key), "job cost"
            )
            if view.get("costFinal") or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        if not view.get("costFinal"):
            raise SmokeFailure(f"job {self.job_id}: cost not final a minute after its alert")
        recorded = usd_to_nanos(view["costUsd"])
        files = [f["uri"] for f in view.get("files", []) if f.get("counted")]
        if not files:
            raise SmokeFailure(f"job {self.job_id}: no cost record for any output file")
        independent = sum(usd_to_nanos(vbg_cost(uri, self.target.env)) for uri in files)
        alerted = int((self.alert.get("cost") or {}).get("cost_nanos") or 0)
        rows = view["totals"].get("rows")
        if not recorded == independent == alerted:
            raise SmokeFailure(
                f"cost record ${view['costUsd']}, alert {cents(alerted)}, "
                f"vbg cost of {len(files)} file(s) {cents(independent)}: they differ"
            )
        if rows != len(ROWS):
            raise SmokeFailure(f"cost record counts {rows} rows, the input has {len(ROWS)}")
        return (
            f"${view['costUsd']} = vbg cost of {len(files)} file(s) = the alert's; {rows} rows",
            recorded,
        )

    def cancel_job(self) -> str:
        """A job left running by a failed or interrupted smoke would go on costing."""
        self.expect(self.call("POST", f"{JOBS_PATH}/{self.job_id}:cancel", self.key), "cancel job")
        return f"job {self.job_id} cancelled: the smoke did not see it end"

    def revoke_key(self) -> str:
        self.expect(
            self.call("POST", f"/v1/gateway/keys/{self.key_id}:revoke", self.target.master_key),
            "revoke key",
        )
        # Key records are cached 10 s per instance: another instance may still take it.
        deadline = time.monotonic() + 20
        while True:
            status = self.call("GET", "/v1/gateway/budget", self.key).status_code
            if status in (401, 403) or time.monotonic() > deadline:
                break
            time.sleep(1.0)
        if status not in (401, 403):
            raise SmokeFailure(f"key {self.key_id} revoked, yet still answered {status}")
        return f"key {self.key_id} revoked, now refused ({status})"


def is_gemini(model: str) -> bool:
    return model.startswith("gemini") and "embedding" not in model


def storage_client(storage, project: str):
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project=project, credentials=AnonymousCredentials())
    return storage.Client(project=project)


def vbg_cost(uri: str, env: dict[str, str]) -> str:
    """`vbg cost --json` of one file, as a user would run it: the USD string."""
    vbg = Path(sys.executable).with_name("vbg")
    command = str(vbg) if vbg.exists() else shutil.which("vbg")
    if not command:
        raise SmokeFailure("the vbg console script is not installed (pip install -e .)")
    done = subprocess.run(
        [command, "cost", "--json", uri],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )
    if done.returncode != 0:
        raise SmokeFailure(f"vbg cost {uri}: {done.stderr.strip()}")
    return json.loads(done.stdout)["cost_usd"]


# --- command line -------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local.smoke",
        description="Check a deployed gateway end to end with one real (cheap) batch job.",
    )
    parser.add_argument(
        "--yes", action="store_true", help="really run: it creates a Vertex batch job, which costs"
    )
    parser.add_argument(
        "--stack",
        nargs="?",
        const=str(REPO_ROOT / ".local" / "stack.json"),
        help="the local stack of `make dev` (its stack.json; default .local/stack.json)",
    )
    parser.add_argument("--terraform-dir", default=str(REPO_ROOT / "infra"))
    parser.add_argument("--gateway", default=os.environ.get("VBG_GATEWAY_URL"))
    parser.add_argument("--master-key", default=os.environ.get("VBG_MASTER_KEY"))
    parser.add_argument("--bucket", default=os.environ.get("VBG_SMOKE_BUCKET"))
    parser.add_argument(
        "--alerts-subscription",
        default=os.environ.get("VBG_SMOKE_ALERTS_SUBSCRIPTION"),
        help="projects/P/subscriptions/S of the alerts topic (Terraform: alerts_inbox)",
    )
    parser.add_argument(
        "--id-token",
        default=os.environ.get("VBG_SMOKE_ID_TOKEN"),
        help="a Google identity token, where public_gateway = false",
    )
    parser.add_argument(
        "--timeout", type=float, default=3600.0, help="seconds to wait for the job's alert"
    )
    parser.add_argument(
        "--budget-usd", default="0.50", help="the temporary key's daily budget (a safety net)"
    )
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another label on the job (against make dev: sim-fault=stuck-queued tries a stall)",
    )
    parser.add_argument("--report", help="also write the steps as JSON to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.yes:
        print(
            "make smoke runs a real Vertex AI batch job (3 rows of the cheapest Gemini model,"
            " a fraction of a cent) through the deployed gateway.\n"
            "Run it again with --yes (make smoke YES=1) to go ahead.",
            file=sys.stderr,
        )
        return 2
    try:
        target = resolve_target(args)
    except SmokeFailure as exc:
        print(f"smoke: {exc}", file=sys.stderr)
        return 1
    os.environ.update(target.env)
    labels = dict(item.split("=", 1) for item in args.label if "=" in item)
    smoke = Smoke(
        target,
        timeout=args.timeout,
        budget_usd=args.budget_usd,
        labels=labels,
        out=lambda line: print(line, flush=True),
    )
    passed = smoke.run()
    if args.report:
        with contextlib.suppress(OSError):
            Path(args.report).write_text(json.dumps(smoke.report(), indent=2))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
