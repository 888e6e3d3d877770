"""Benchmark (not a test): a file past Cloud Functions' 32 MiB request cap through OpenAI's
Uploads API on the local stack, then run as a batch (#25 item 3).

    .venv/bin/python bench/bench_uploads.py [--mb 100] [--part-mb 16] [--run]

Starts the whole local stack (`local.stack.Stack`, as `make dev`), makes a key, writes a JSONL
file of `--mb` MB of chat lines (50,000 at most: OpenAI's batch limit, so each line is about
mb/50,000), and sends it with the official SDK's `client.uploads.upload_file_chunked(...,
part_size=--part-mb MiB)`. Beside it, in the same process:
- floor: the same bytes written straight to the GCS emulator in one upload (what no path
  through the gateway can beat);
- one request: `client.files.create` of the largest file one request may carry on Cloud
  Functions (30 MB; the route itself takes up to 200 MB locally).
Prints wall seconds and MB/s of each (a shared machine: compare within one run), the parts,
and with `--run` the seconds from batch create to `completed` and the requests completed.
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openai
import requests

from local.stack import Stack

MB = 1_000_000
MAX_LINES = 50_000


def write_file(path: Path, size: int) -> int:
    """A JSONL of chat lines adding up to about `size` bytes; returns the line count."""
    lines = min(MAX_LINES, max(1, size // 400))
    pad = max(0, size // lines - 200)
    with path.open("w") as out:
        for n in range(lines):
            body = {
                "model": "gemini-3.5-flash-lite",
                "max_tokens": 16,
                "messages": [{"role": "user", "content": f"{n} " + "x" * pad}],
            }
            line = {"custom_id": f"r{n}", "method": "POST", "url": "/v1/chat/completions"}
            out.write(json.dumps({**line, "body": body}) + "\n")
    return lines


def timed(call):
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--part-mb", type=int, default=16)
    parser.add_argument("--run", action="store_true", help="also run the file as a batch")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as scratch,
        Stack(Path(scratch) / "stack", speed=0.1, sync_interval=1.0) as stack,
    ):
        info = stack
        made = requests.post(
            info["gateway_url"] + "/v1/gateway/keys",
            json={"alias": "bench-uploads", "models": ["gemini-3.5-flash-lite"]},
            headers={"Authorization": f"Bearer {info['master_key']}"},
            timeout=60,
        )
        made.raise_for_status()
        client = openai.OpenAI(
            base_url=info["gateway_url"] + "/v1", api_key=made.json()["key"], timeout=600
        )
        path = Path(scratch) / "requests.jsonl"
        lines = write_file(path, args.mb * MB)
        data = path.read_bytes()
        size = len(data)

        from google.cloud import storage

        os.environ["STORAGE_EMULATOR_HOST"] = info["storage_url"]
        floor_blob = storage.Client(project=info["project"]).bucket(info["bucket"]).blob("bench")
        _, floor = timed(lambda: floor_blob.upload_from_string(data))

        part = args.part_mb << 20
        upload, chunked = timed(
            lambda: client.uploads.upload_file_chunked(
                file=path,
                mime_type="application/jsonl",
                purpose="batch",
                part_size=part,
                md5=hashlib.md5(data, usedforsecurity=False).hexdigest(),
            )
        )
        assert upload.status == "completed" and upload.file and upload.file.bytes == size

        single_path = Path(scratch) / "single.jsonl"
        write_file(single_path, 30 * MB)
        single_size = single_path.stat().st_size
        with single_path.open("rb") as handle:
            _, single = timed(lambda: client.files.create(file=handle, purpose="batch"))

        print(
            f"file: {size / MB:.1f} MB, {lines} lines; parts of {args.part_mb} MiB: "
            f"{-(-size // part)}"
        )
        for name, seconds, nbytes in (
            ("uploads API (SDK chunked)", chunked, size),
            ("floor: straight to GCS", floor, size),
            ("one request /v1/files (30 MB)", single, single_size),
        ):
            print(f"{name:32s} {seconds:7.2f} s  {nbytes / MB / seconds:7.1f} MB/s")
        if args.run:
            batch, created = timed(
                lambda: client.batches.create(
                    input_file_id=upload.file.id,
                    endpoint="/v1/chat/completions",
                    completion_window="24h",
                )
            )
            started = time.perf_counter()
            while batch.status not in ("completed", "failed", "expired", "cancelled"):
                time.sleep(2)
                batch = client.batches.retrieve(batch.id)
            print(
                f"batch create {created:.1f} s; to {batch.status} "
                f"{time.perf_counter() - started:.1f} s; completed "
                f"{batch.request_counts.completed}/{batch.request_counts.total}"
            )


if __name__ == "__main__":
    main()
