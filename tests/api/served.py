"""`passthrough` served as Cloud Functions serves it (functions-framework: gunicorn, its own
process), for what the in-process test client cannot show: bodies sent in chunks, a body
refused before it is read, and the worker's memory (its resident set, read from /proc)."""

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from local.processes import Server, free_port
from tests.support import MAIN, MASTER_KEY


@dataclass
class Served:
    server: Server
    url: str

    @property
    def worker(self) -> int:
        """The gunicorn worker's pid (functions-framework's process is gunicorn's master)."""
        master = self.server.process.pid
        for task in Path(f"/proc/{master}/task").iterdir():
            children = (task / "children").read_text().split()
            if children:
                return int(children[0])
        raise AssertionError("the gunicorn master has no worker")

    def _status(self, field: str) -> int:
        for line in Path(f"/proc/{self.worker}/status").read_text().split("\n"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in /proc/{self.worker}/status")

    def rss(self) -> int:
        return self._status("VmRSS")

    def reset_peak(self) -> None:
        """Start the worker's peak resident set (VmHWM) afresh (Linux: clear_refs 5)."""
        Path(f"/proc/{self.worker}/clear_refs").write_text("5")

    def peak(self) -> int:
        return self._status("VmHWM")


def serve_passthrough(
    world: dict, tmp_path: Path, model_list: str, staging: str, extra_env: dict | None = None
) -> Served:
    config = tmp_path / "models.yaml"
    config.write_text(model_list)
    port = free_port()
    env = {
        "FIRESTORE_EMULATOR_HOST": world["firestore_host"],
        "PUBSUB_EMULATOR_HOST": world["pubsub_host"],
        "STORAGE_EMULATOR_HOST": world["storage_url"],
        "VBG_PROJECT": world["project"],
        "GOOGLE_CLOUD_PROJECT": world["project"],
        "VBG_CONFIG": str(config),
        "VBG_MASTER_KEY": MASTER_KEY,
        "VBG_STAGING_BUCKET": staging,
        "VBG_VERTEX_ENDPOINT": "http://127.0.0.1:9",
        "PYTHONPATH": str(Path(MAIN).parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **(extra_env or {}),
    }
    argv = [sys.executable, "-m", "functions_framework", "--target", "passthrough"]
    argv += ["--source", MAIN, "--port", str(port), "--host", "127.0.0.1"]
    server = Server("passthrough", argv, port, env=env, log_path=tmp_path / "passthrough.log")
    server.start().wait_ready(path="/v1/gateway/health", timeout=60)
    served = Served(server, server.url)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            served.worker  # noqa: B018 (waits for gunicorn to fork it)
            return served
        except AssertionError:
            time.sleep(0.05)
    return served
