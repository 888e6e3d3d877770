"""The local BigQuery emulator: PyPI's bqemulator (DuckDB-backed), made to start offline.

bqemulator installs and loads DuckDB's `spatial` extension at start (GEOGRAPHY support) and
tries the `avro` one; both are downloads from DuckDB's extension repository, which a machine
without that network cannot reach, and the first failure stops the server. The gateway
needs no GEOGRAPHY and no Avro, so this wrapper skips both loads and runs the emulator's own
`start` command. What the emulator does not model is listed in docs/bigquery.md.

Run: `python -m local.bq_emulator --port N [--grpc-port M] [--project P]`; the official
`google-cloud-bigquery` client reaches it with `client_options={"api_endpoint": url}` and
anonymous credentials (`local.bq_emulator.client`).
"""

import argparse
import importlib.util
import sys
from pathlib import Path

from local.processes import Server

REQUIRED = ("bqemulator", "numpy", "google.cloud.bigquery")


def missing() -> str | None:
    """Why the emulator cannot run here, or None when it can."""
    for name in REQUIRED:
        try:
            found = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            found = None
        if found is None:
            return f"{name} is not installed: `make .venv/.installed` installs the dev extras"
    return None


def _skip_extension_downloads() -> None:
    from bqemulator.storage import engine

    engine.DuckDBEngine._load_spatial = lambda _self: None
    engine.DuckDBEngine._load_format_extensions = lambda _self: None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.bq_emulator")
    parser.add_argument("--port", type=int, required=True, help="REST port on 127.0.0.1")
    parser.add_argument("--grpc-port", type=int, default=0, help="gRPC port (0: any free one)")
    parser.add_argument("--project", default="vbg-local")
    args = parser.parse_args(argv)
    _skip_extension_downloads()
    from bqemulator import cli

    cli.main(
        [
            "start",
            "--rest-host=127.0.0.1",
            f"--rest-port={args.port}",
            "--grpc-host=127.0.0.1",
            f"--grpc-port={args.grpc_port}",
            "--ephemeral",
            f"--project={args.project}",
            "--log-level=warning",
        ],
        standalone_mode=True,
    )


def server(port: int, project: str = "vbg-local", log_dir: Path | None = None) -> Server:
    """The emulator as a `Server` (its own process group, stopped by PID)."""
    return Server(
        "bigquery-emulator",
        [sys.executable, "-m", "local.bq_emulator", f"--port={port}", f"--project={project}"],
        port,
        log_path=log_dir / "bigquery.log" if log_dir else None,
    )


def client(url: str, project: str):
    """The official BigQuery client pointed at the emulator at `url`."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    return bigquery.Client(
        project=project,
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=url),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
