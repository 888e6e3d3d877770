"""Benchmark of the create-time input check (not a test): MB/s beside a json.loads baseline.

    .venv/bin/python bench/bench_input_check.py [--size-mb 64] [--prompt-chars 1500]

Builds Gemini request lines (a prompt, a generationConfig with a small responseSchema, a
`key`), then, in the same run:
- check: shared.jobs.input_rules.InputCheck fed 8 MiB chunks (every rule, every line)
- naive: json.loads of every line (the floor: any check must parse each line once)
Times are CPU seconds of this process (time.process_time): on a shared, loaded machine wall
time mostly measures the neighbours. The check's cost over the baseline is the walk of each
row's objects and arrays.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.jobs.input_rules import InputCheck

CHUNK = 8 << 20


def make_input(size_mb: int, prompt_chars: int) -> bytes:
    lines = []
    total, i = 0, 0
    while total < size_mb << 20:
        row = {
            "key": f"row-{i}",
            "request": {
                "contents": [
                    {"role": "user", "parts": [{"text": (f"word{i} ") * (prompt_chars // 6)}]}
                ],
                "generationConfig": {
                    "maxOutputTokens": 256,
                    "temperature": 0.2,
                    "responseSchema": {
                        "type": "OBJECT",
                        "properties": {"a": {"type": "STRING"}, "b": {"type": "NUMBER"}},
                    },
                },
            },
        }
        line = json.dumps(row) + "\n"
        lines.append(line)
        total += len(line)
        i += 1
    return "".join(lines).encode()


def run_check(data: bytes) -> tuple[float, int]:
    started = time.process_time()
    check = InputCheck()
    check.start_file("gs://bench/input.jsonl")
    for start in range(0, len(data), CHUNK):
        check.feed(data[start : start + CHUNK])
    check.end_file()
    assert not check.problems, check.problems
    return time.process_time() - started, check.rows


def run_naive(data: bytes) -> tuple[float, int]:
    started = time.process_time()
    rows = 0
    for line in data.split(b"\n"):
        if line.strip():
            json.loads(line)
            rows += 1
    return time.process_time() - started, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=64)
    parser.add_argument("--prompt-chars", type=int, default=1500)
    args = parser.parse_args()
    data = make_input(args.size_mb, args.prompt_chars)
    mb = len(data) / 1e6
    print(f"input: {mb:.1f} MB, prompts of ~{args.prompt_chars} chars")
    for name, run in (("check", run_check), ("naive json.loads", run_naive)):
        seconds, rows = run(data)
        print(
            f"{name:>17}: {seconds:6.2f} s  {mb / seconds:7.1f} MB/s  {rows / seconds:9.0f} rows/s"
        )


if __name__ == "__main__":
    main()
