"""Where the gateway is, which key to send, and the HTTP calls every `vbg` command makes.

The gateway URL comes from `--gateway`, else VBG_GATEWAY_URL, else the running local
stack's `.local/stack.json`. The key comes from `--key`/VBG_API_KEY (`--master-key`/
VBG_MASTER_KEY for admin commands, which also fall back to the local stack's master key).
Errors come back as one-line `CliError`s carrying the gateway's own message.
"""

import argparse
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from shared.cli.errors import EXIT_FAILURE, CliError

STACK_FILE = Path(".local") / "stack.json"
TIMEOUT = 60


def local_stack() -> dict:
    try:
        return json.loads(STACK_FILE.read_text())
    except (OSError, ValueError):
        return {}


def target_args(*, master: bool = False) -> argparse.ArgumentParser:
    """The flags every command shares, as a parent parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--gateway", help="gateway URL (default: VBG_GATEWAY_URL or the local stack)"
    )
    if master:
        common.add_argument("--master-key", help="master key (default: VBG_MASTER_KEY)")
    else:
        common.add_argument("--key", help="gateway API key (default: VBG_API_KEY)")
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    return common


@dataclass(frozen=True)
class Gateway:
    url: str
    key: str
    stack: dict

    @classmethod
    def from_args(cls, args) -> "Gateway":
        stack = local_stack()
        url = args.gateway or os.environ.get("VBG_GATEWAY_URL") or stack.get("gateway_url")
        if not url:
            raise CliError("no gateway: pass --gateway URL or set VBG_GATEWAY_URL")
        if hasattr(args, "master_key"):
            key = args.master_key or os.environ.get("VBG_MASTER_KEY") or stack.get("master_key")
            if not key:
                raise CliError("no master key: pass --master-key or set VBG_MASTER_KEY")
        else:
            key = args.key or os.environ.get("VBG_API_KEY")
            if not key:
                raise CliError("no API key: pass --key or set VBG_API_KEY")
        return cls(url.rstrip("/"), key, stack)

    def call(self, method: str, path: str, body: dict | None = None, params=None) -> dict:
        """One JSON call; a non-2xx reply is a CliError with the gateway's message."""
        import requests

        try:
            response = requests.request(
                method,
                f"{self.url}{path}",
                json=body,
                params=params,
                headers={"x-goog-api-key": self.key},
                timeout=TIMEOUT,
            )
        except requests.RequestException as exc:
            raise CliError(f"gateway unreachable at {self.url}: {exc}", EXIT_FAILURE) from None
        _raise_for_status(response)
        try:
            return response.json()
        except ValueError:
            return {}

    def stream(self, path: str, params=None) -> Iterator[bytes]:
        """A GET whose reply is passed on as it arrives (exports); errors as for `call`."""
        import requests

        try:
            response = requests.get(
                f"{self.url}{path}",
                params=params,
                headers={"x-goog-api-key": self.key},
                timeout=TIMEOUT,
                stream=True,
            )
        except requests.RequestException as exc:
            raise CliError(f"gateway unreachable at {self.url}: {exc}", EXIT_FAILURE) from None
        with response:
            _raise_for_status(response)
            yield from response.iter_content(chunk_size=65536)

    def storage(self):
        """A GCS client: the emulator the local stack runs, else the user's own credentials
        (`gcloud auth application-default login`)."""
        from google.cloud import storage

        emulator = os.environ.get("STORAGE_EMULATOR_HOST")
        if not emulator and self.stack.get("storage_url") and self._is_stack():
            emulator = self.stack["storage_url"]
            os.environ["STORAGE_EMULATOR_HOST"] = emulator
        if emulator:
            from google.auth.credentials import AnonymousCredentials

            return storage.Client(project="vbg-cli", credentials=AnonymousCredentials())
        return storage.Client()

    def _is_stack(self) -> bool:
        return self.url == str(self.stack.get("gateway_url", "")).rstrip("/")


def _raise_for_status(response) -> None:
    """A non-2xx reply as a CliError with the gateway's message (exit 1 for a 5xx, else 2)."""
    if response.ok:
        return
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    error = payload.get("error") if isinstance(payload, dict) else None
    message = (error or {}).get("message") or response.text[:300]
    code = EXIT_FAILURE if response.status_code >= 500 else 2
    raise CliError(f"HTTP {response.status_code}: {message}", code)


def job_path(name: str, suffix: str = "") -> str:
    """The Vertex-native path of a job from its full name."""
    return f"/v1/{name}{suffix}"
