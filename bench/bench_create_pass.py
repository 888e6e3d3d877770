"""Benchmark (not a test): the create latency the one-pass read adds, on a 1 GB input.

    .venv/bin/python bench/bench_create_pass.py [--gb 1] [--prompt-chars 1500]

Feeds the create path's pass (`shared/jobs/input_pass.read`: Vertex's import rules, every
object URI against the key's prefixes, the exact estimate, the per-request size) with a
synthetic input of Gemini request lines (a prompt, a generationConfig, every tenth line a
`fileData` part inside the key's prefix), generated chunk by chunk in this process (8 MiB, as
`estimate.read_chunks` yields them: the GCS reads themselves are measured by
bench_ranged_reads.py), and beside it, in the same run:
- naive: three passes, each splitting the bytes and parsing every line with json.loads, one
  per concern (the import rules, the URI walk, the estimate): what the three checks cost
  done the obvious way;
- floor: json.loads of every line once (any pass must parse each line).
Prints CPU seconds (time.process_time: on a shared machine wall time measures the
neighbours), MB/s, and the peak of Python's traced memory (tracemalloc) for the pass on two
input sizes (flat: one chunk and one line are held, whatever the size).
Media lookups are off (a referenced object's size is unknown), so no GCS call is timed.
"""

import argparse
import json
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.core.keys import Caller
from shared.cost import estimate
from shared.jobs import input_pass, input_rules

CHUNK = 8 << 20
PREFIX = "gs://bench/in/"


def rows(prompt_chars: int):
    words = "the batch job reads every line of its input and writes one prediction per row "
    prompt = (words * (prompt_chars // len(words) + 1))[:prompt_chars]
    index = 0
    while True:
        parts: list = [{"text": f"{index} {prompt}"}]
        if index % 10 == 0:
            parts.append({"fileData": {"mimeType": "image/png", "fileUri": f"{PREFIX}{index}.png"}})
        row = {
            "request": {
                "contents": [{"role": "user", "parts": parts}],
                "generationConfig": {"maxOutputTokens": 256, "temperature": 0.2},
            }
        }
        yield (json.dumps(row) + "\n").encode()
        index += 1


def chunks(total: int, prompt_chars: int):
    """`total` bytes of whole lines, in 8 MiB chunks (the last line may run a little over)."""
    buffer, made = bytearray(), 0
    for line in rows(prompt_chars):
        buffer += line
        made += len(line)
        if len(buffer) >= CHUNK or made >= total:
            yield bytes(buffer)
            buffer.clear()
        if made >= total:
            return


def one_pass(total: int, prompt_chars: int, *, trace: bool = False) -> tuple[float, int, int]:
    """(CPU seconds, rows, peak traced bytes: 0 unless `trace`, which slows it several times)."""
    objects = [("gs://bench/in/input.jsonl", estimate.InputObject("bench", "in/input.jsonl", 0))]
    real = estimate.read_chunks
    estimate.read_chunks = lambda _obj, _limit=None: chunks(total, prompt_chars)
    try:
        rule = input_pass.UriRule(Caller(key_id="k", alias="k", input_prefixes=(PREFIX,)), "stage")
        estimator = estimate.RowEstimator("gemini-2.5-flash")
        if trace:
            tracemalloc.start()
        started = time.process_time()
        report = input_pass.read(objects, rule=rule, estimator=estimator)
        seconds = time.process_time() - started
        peak = tracemalloc.get_traced_memory()[1] if trace else 0
        tracemalloc.stop()
    finally:
        estimate.read_chunks = real
    assert not report.check.problems and not report.refused, (report.check.problems, report.refused)
    return seconds, report.tally.rows, peak


def lines_of(total: int, prompt_chars: int):
    rest = b""
    for chunk in chunks(total, prompt_chars):
        pieces = (rest + chunk).split(b"\n")
        rest = pieces.pop()
        yield from pieces


def naive(total: int, prompt_chars: int) -> float:
    started = time.process_time()
    check = input_rules.InputCheck()
    check.start_file("input")
    for line in lines_of(total, prompt_chars):
        check.line(line, json.loads(line))
    check.end_file()
    rule = input_pass.UriRule(Caller(key_id="k", alias="k", input_prefixes=(PREFIX,)), "stage")
    for number, line in enumerate(lines_of(total, prompt_chars), start=1):
        rule.refusals(json.loads(line), "input", number)
    estimator, tally = estimate.RowEstimator("gemini-2.5-flash"), estimate.Tally()
    for line in lines_of(total, prompt_chars):
        estimator.add_row(tally, json.loads(line), len(line))
    return time.process_time() - started


def floor(total: int, prompt_chars: int) -> float:
    started = time.process_time()
    for line in lines_of(total, prompt_chars):
        json.loads(line)
    return time.process_time() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=1.0)
    parser.add_argument("--prompt-chars", type=int, default=1500)
    args = parser.parse_args()
    total = int(args.gb * 1000**3)
    mb = total / 1e6
    print(f"input: {mb:,.0f} MB of Gemini request lines, prompts of {args.prompt_chars} chars")
    seconds, count, _ = one_pass(total, args.prompt_chars)
    print(
        f"one pass (rules + URIs + exact estimate): {seconds:7.1f} s CPU  {mb / seconds:6.1f} MB/s"
        f"  {count:,} rows"
    )
    slow = naive(total, args.prompt_chars)
    print(f"naive (three json.loads passes):         {slow:7.1f} s CPU  {mb / slow:6.1f} MB/s")
    least = floor(total, args.prompt_chars)
    print(f"floor (json.loads once, nothing else):    {least:7.1f} s CPU  {mb / least:6.1f} MB/s")
    print(f"one pass vs naive: {slow / seconds:.2f}x faster")
    for size in (16_000_000, 128_000_000):
        peak = one_pass(size, args.prompt_chars, trace=True)[2]
        print(f"peak traced memory of the pass on {size / 1e6:,.0f} MB: {peak / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
