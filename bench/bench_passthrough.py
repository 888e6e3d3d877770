"""How much latency the gateway adds to create and get, and what its cold start costs.

Starts the Firestore, Pub/Sub and GCS emulators, the Vertex simulator and the `passthrough`
function under functions-framework (all on 127.0.0.1, free ports), then times N creates and
N gets through the gateway beside the same calls made to the simulator directly, in the
same run. Prints median and p95 of each and the difference; then the cold import time of
the `passthrough` entry point in a fresh interpreter (best of 5).

    .venv/bin/python bench/bench_passthrough.py [--requests 200]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from local.processes import (  # noqa: E402
    Server,
    firestore_emulator,
    free_port,
    gcloud_emulators_missing,
    pubsub_emulator,
    storage_emulator,
)

PROJECT = "bench"
MASTER = "vbg-master-bench"
CONFIG = """model_list:
  - model_name: gemini-2.5-flash
    litellm_params: {model: vertex_ai/gemini-2.5-flash, vertex_project: bench,
                     vertex_location: us-central1}
"""


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def timed(call, n):
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        response = call()
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"unexpected {response.status_code}: {response.text[:300]}")
    return samples


def cold_import_ms() -> float:
    code = (
        f"import sys,time; sys.path.insert(0, {str(ROOT)!r}); t=time.perf_counter(); "
        "import functions.main as m; m.passthrough; print((time.perf_counter()-t)*1000)"
    )
    runs = []
    for _ in range(5):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
        )
        runs.append(float(out.stdout.strip().splitlines()[-1]))
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    missing = gcloud_emulators_missing()
    if missing:
        raise SystemExit(f"needs the gcloud emulators: {missing}")

    work = Path(tempfile.mkdtemp(prefix="vbg-bench-"))
    (work / "config.yaml").write_text(CONFIG)
    servers: list[Server] = []
    try:
        firestore = firestore_emulator(free_port(), work).start()
        pubsub = pubsub_emulator(free_port(), PROJECT, work).start()
        storage = storage_emulator(free_port(), work).start()
        servers += [firestore, pubsub, storage]
        for server in servers:
            server.wait_ready(timeout=90)
        sim_port = free_port()
        sim = Server(
            "vertex-sim",
            [sys.executable, "-m", "local.vertex_sim", "--port", str(sim_port), "--speed", "5"],
            sim_port,
            env={"STORAGE_EMULATOR_HOST": storage.url},
            log_path=work / "sim.log",
        ).start()
        servers.append(sim)
        sim.wait_ready()
        env = {
            "FIRESTORE_EMULATOR_HOST": firestore.host,
            "PUBSUB_EMULATOR_HOST": pubsub.host,
            "STORAGE_EMULATOR_HOST": storage.url,
            "VBG_PROJECT": PROJECT,
            "VBG_CONFIG": str(work / "config.yaml"),
            "VBG_MASTER_KEY": MASTER,
            "VBG_VERTEX_ENDPOINT": sim.url,
        }
        gw_port = free_port()
        gateway = Server(
            "passthrough",
            [
                sys.executable,
                "-m",
                "functions_framework",
                "--target",
                "passthrough",
                "--source",
                str(ROOT / "functions" / "main.py"),
                "--host",
                "127.0.0.1",
                "--port",
                str(gw_port),
            ],
            gw_port,
            env=env,
            log_path=work / "gateway.log",
        ).start()
        servers.append(gateway)
        gateway.wait_ready()

        import os

        from google.cloud import pubsub_v1
        from google.cloud import storage as gcs

        os.environ.update(env)
        pubsub_v1.PublisherClient().create_topic(name=f"projects/{PROJECT}/topics/batch-job-events")
        from google.auth.credentials import AnonymousCredentials

        bucket = gcs.Client(project=PROJECT, credentials=AnonymousCredentials()).create_bucket(
            "bench-bucket"
        )
        bucket.blob("in/input.jsonl").upload_from_string(
            json.dumps({"request": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}})
        )
        session = requests.Session()
        key = session.post(
            f"{gateway.url}/v1/gateway/keys",
            json={
                "alias": "bench",
                "inputPrefixes": ["gs://bench-bucket/in/"],
                "outputPrefixes": ["gs://bench-bucket/out/"],
            },
            headers={"Authorization": f"Bearer {MASTER}"},
        ).json()["key"]
        body = {
            "displayName": "bench",
            "model": "publishers/google/models/gemini-2.5-flash",
            "inputConfig": {
                "instancesFormat": "jsonl",
                "gcsSource": {"uris": ["gs://bench-bucket/in/input.jsonl"]},
            },
            "outputConfig": {
                "predictionsFormat": "jsonl",
                "gcsDestination": {"outputUriPrefix": "gs://bench-bucket/out/"},
            },
        }
        jobs_path = "/v1/projects/bench/locations/us-central1/batchPredictionJobs"
        headers = {"Authorization": f"Bearer {key}"}
        n = args.requests
        # Warm both paths (connection pools, first Firestore reads) before timing.
        for _ in range(5):
            session.post(sim.url + jobs_path, json=body)
            session.post(gateway.url + jobs_path, json=body, headers=headers)

        direct_create = timed(lambda: session.post(sim.url + jobs_path, json=body), n)
        gateway_create = timed(
            lambda: session.post(gateway.url + jobs_path, json=body, headers=headers), n
        )
        job_name = session.post(gateway.url + jobs_path, json=body, headers=headers).json()["name"]
        job_id = job_name.rsplit("/", 1)[-1]
        direct_get = timed(lambda: session.get(f"{sim.url}/v1/{job_name}"), n)
        gateway_get = timed(
            lambda: session.get(f"{gateway.url}{jobs_path}/{job_id}", headers=headers), n
        )

        print(f"requests per measurement: {n} (sequential, one client, keep-alive)")
        print(f"{'call':<8}{'path':<10}{'median ms':>10}{'p95 ms':>10}")
        for call, direct, through in (
            ("create", direct_create, gateway_create),
            ("get", direct_get, gateway_get),
        ):
            for label, samples in (("direct", direct), ("gateway", through)):
                median = statistics.median(samples)
                print(f"{call:<8}{label:<10}{median:>10.2f}{percentile(samples, 0.95):>10.2f}")
            overhead = statistics.median(through) - statistics.median(direct)
            print(f"{call:<8}{'overhead':<10}{overhead:>10.2f}")
        print(f"cold import of the passthrough entry point: {cold_import_ms():.0f} ms (best of 5)")
    finally:
        for server in reversed(servers):
            server.stop()


if __name__ == "__main__":
    main()
