"""Start, wait for and stop the local servers: each in its own process group, stopped by PID.

The gcloud emulators are a shell script that starts Java: killing the group stops both.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


class StackError(RuntimeError):
    """A local part could not start; the message says what to install or free."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def group_alive(pgid: int) -> bool:
    """Whether any process of the group still runs; zombies (dead, waiting for a reaper that
    may never come to orphans) do not count."""
    proc = Path("/proc")
    if proc.is_dir():
        for stat in proc.glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
        return False
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class Server:
    name: str
    argv: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "Server":
        if port_is_open(self.port):
            raise StackError(f"{self.name}: port {self.port} is already taken")
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            self.argv,
            env={**os.environ, **self.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        if out is not subprocess.DEVNULL:
            out.close()
        return self

    def wait_ready(self, path: str = "/", timeout: float = 60.0) -> "Server":
        """Ready means it answers HTTP on its port (any status): the port alone is not enough."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                raise StackError(
                    f"{self.name} exited with code {self.process.returncode} while starting"
                    + (f"; see {self.log_path}" if self.log_path else "")
                )
            try:
                with urllib.request.urlopen(self.url + path, timeout=1):
                    return self
            except urllib.error.HTTPError:
                return self
            except OSError:
                time.sleep(0.1)
        raise StackError(f"{self.name} did not answer on {self.url} within {timeout:.0f}s")

    def stop(self, timeout: float = 10.0) -> None:
        if not self.process or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
        deadline = time.monotonic() + timeout
        while port_is_open(self.port) and time.monotonic() < deadline:
            # Java children may outlive the shell that started them by a moment.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            time.sleep(0.1)


def gcloud_emulators_missing() -> str | None:
    """Why the gcloud emulators cannot run here, or None when they can."""
    gcloud = shutil.which("gcloud")
    if not gcloud:
        return (
            "gcloud is not installed: install the Google Cloud CLI with the "
            "cloud-firestore-emulator and pubsub-emulator components and Java 17"
        )
    if not shutil.which("java"):
        return "java is not installed: the gcloud emulators need Java 17 (openjdk-17-jre)"
    sdk_root = Path(os.path.realpath(gcloud)).parent.parent
    for component in ("cloud-firestore-emulator", "pubsub-emulator"):
        if not (sdk_root / "platform" / component).is_dir():
            return (
                f"the gcloud component {component} is missing under {sdk_root}: install it "
                f"(gcloud components install {component}, or the Debian package "
                f"google-cloud-cli-{'firestore' if 'firestore' in component else 'pubsub'}"
                "-emulator)"
            )
    return None


def firestore_emulator(port: int, log_dir: Path | None = None) -> Server:
    return Server(
        "firestore-emulator",
        ["gcloud", "beta", "emulators", "firestore", "start", f"--host-port=127.0.0.1:{port}"],
        port,
        log_path=log_dir / "firestore.log" if log_dir else None,
    )


def pubsub_emulator(port: int, project: str, log_dir: Path | None = None) -> Server:
    return Server(
        "pubsub-emulator",
        [
            "gcloud",
            "beta",
            "emulators",
            "pubsub",
            "start",
            f"--host-port=127.0.0.1:{port}",
            f"--project={project}",
        ],
        port,
        log_path=log_dir / "pubsub.log" if log_dir else None,
    )


def storage_emulator(port: int, log_dir: Path | None = None) -> Server:
    return Server(
        "storage-emulator",
        [
            sys.executable,
            "-m",
            "gcp_storage_emulator",
            "start",
            "--host=127.0.0.1",
            f"--port={port}",
            "--in-memory",
        ],
        port,
        log_path=log_dir / "storage.log" if log_dir else None,
    )
