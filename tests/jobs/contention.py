"""The contention scenario of issue #15: many prediction files of one key, one day and one
model finalized at once, each event delivered more than once.

Every row's usage is chosen here and its cost computed here from the price table's batch
rates for gemini-3.5-flash-lite ($0.15 input, $1.25 output per 1M tokens, i.e. 150 and 1250
nano-dollars a token), independently of the parser and the pricing code.
"""

import json
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from shared.cost import ledger
from shared.jobs import finalize
from tests.cost.cost_helpers import make_job, upload

INPUT_NANOS_PER_TOKEN = 150
OUTPUT_NANOS_PER_TOKEN = 1250
DIRECTORY = "prediction-model-2025-03-04T10:01:00.000000Z"
LABELS = {"project": "contention"}


@dataclass
class Scenario:
    bucket: str
    job_ids: list[str]
    files: list[tuple[str, int, int]] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=dict)
    expected_by_job: dict[str, int] = field(default_factory=dict)


def usage_of(file_index: int, row: int) -> tuple[int, int]:
    """(prompt tokens, candidates tokens) of one row: varied, and known without parsing."""
    return 100 + (file_index * 7 + row) % 50, 20 + (file_index + row * 3) % 30


def row_json(prompt: int, candidates: int) -> str:
    return json.dumps(
        {
            "request": {"contents": [{"role": "user", "parts": [{"text": "q"}]}]},
            "status": "",
            "processed_time": "2025-03-04T10:05:00.000+00:00",
            "response": {
                "candidates": [{"content": {"role": "model", "parts": [{"text": "a"}]}}],
                "usageMetadata": {
                    "promptTokenCount": prompt,
                    "candidatesTokenCount": candidates,
                    "totalTokenCount": prompt + candidates,
                },
                "modelVersion": "gemini-3.5-flash-lite",
            },
        }
    )


def build(bucket: str, *, jobs: int, files_per_job: int, rows_per_file: int = 5) -> Scenario:
    """Job records (one key, one creation day, one model) and their uploaded files."""
    scenario = Scenario(bucket, [str(910_000 + j) for j in range(jobs)])
    totals = {"rows": 0, "prompt_tokens": 0, "candidates_tokens": 0, "cost_nanos": 0}
    file_index = 0
    for job_id in scenario.job_ids:
        folder = f"out/{job_id}/{DIRECTORY}"
        make_job(
            bucket,
            job_id,
            prefix=f"out/{job_id}/",
            output_directory=f"gs://{bucket}/{folder}/",
            labels=LABELS,
        )
        for n in range(files_per_job):
            lines, job_cost = [], 0
            for row in range(rows_per_file):
                prompt, candidates = usage_of(file_index, row)
                lines.append(row_json(prompt, candidates))
                cost = prompt * INPUT_NANOS_PER_TOKEN + candidates * OUTPUT_NANOS_PER_TOKEN
                totals["rows"] += 1
                totals["prompt_tokens"] += prompt
                totals["candidates_tokens"] += candidates
                totals["cost_nanos"] += cost
                job_cost += cost
            data = ("\n".join(lines) + "\n").encode()
            name = f"{folder}/predictions_{n + 1:05d}.jsonl"
            scenario.files.append((name, upload(bucket, name, data), len(data)))
            scenario.expected_by_job[job_id] = scenario.expected_by_job.get(job_id, 0) + job_cost
            file_index += 1
    scenario.expected = totals
    return scenario


def finalize_all(scenario: Scenario, *, workers: int, deliveries: int = 2) -> dict:
    """Every file's finalize event `deliveries` times, shuffled, `workers` at a time."""
    events = [f for f in scenario.files for _ in range(deliveries)]
    random.Random(15).shuffle(events)
    retries_before = ledger.write_retries()

    def deliver(event: tuple[str, int, int]) -> bool:
        name, generation, size = event
        return finalize.handle_object(
            bucket=scenario.bucket, name=name, generation=generation, size=size
        )

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        recorded = sum(pool.map(deliver, events))
    return {
        "seconds": time.perf_counter() - started,
        "events": len(events),
        "recorded": recorded,
        "retries": ledger.write_retries() - retries_before,
    }


def writes_per_rollup_doc(scenario: Scenario) -> dict[int, int]:
    """How many of the scenario's files each daily-rollup shard received (a job's shard)."""
    counts: dict[int, int] = {}
    for name, _, _ in scenario.files:
        shard = ledger.rollup_shard(name.split("/")[1])
        counts[shard] = counts.get(shard, 0) + 1
    return counts
