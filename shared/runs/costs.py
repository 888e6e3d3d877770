"""A run's cost: each piece's job books, and their sum; nothing is booked for the run itself.

Each piece is a job whose cost the ledger books exactly once from its own output files
(shared/cost/ledger.py). The run's total is the sum of its pieces' job totals, read from
their records (`cost`, the counted set, the floor's estimated part inside it), so it can be
neither a second booking nor differ from them. `final` once the run has ended (every piece
settled) and every piece's job has final books.
"""

from shared.cost import estimate, ledger, spend
from shared.cost.pricing import nanos_to_usd
from shared.cost.usage import COUNTER_FIELDS
from shared.jobs import records
from shared.runs import store

FIELDS = COUNTER_FIELDS + ledger.ESTIMATED_FIELDS


def _sum(maps: list[dict]) -> dict:
    return {field: sum(int(m.get(field) or 0) for m in maps) for field in FIELDS}


def cost_view(run: dict, pieces: list[dict]) -> dict:
    """Each piece's cost as its job's books have it, and the total (their sum)."""
    job_ids = [p["job_id"] for p in pieces if p.get("job_id")]
    jobs = records.get_many(job_ids) if job_ids else {}
    shown, maps = [], []
    for piece in pieces:
        job = jobs.get(piece.get("job_id") or "") or {}
        cost = job.get("cost") or {}
        maps.append(cost)
        shown.append(
            {
                "index": piece["index"],
                "jobId": piece.get("job_id"),
                "state": piece["state"],
                "jobState": job.get("state"),
                "costFinal": bool(job.get("cost_final")),
                **spend.counters_view(cost),
            }
        )
    total = _sum(maps)
    settled = all(store.settled(p) for p in pieces)
    return {
        "runId": run["run_id"],
        "model": run.get("model"),
        "state": run.get("state"),
        "final": bool(run.get("terminal"))
        and settled
        and all(s["costFinal"] for s in shown if s["jobId"]),
        "totalUsd": nanos_to_usd(total["cost_nanos"]),
        "total": spend.counters_view(total),
        "estimate": estimate.public_view(run.get("estimate")),
        "pieces": shown,
    }


def row_counts(pieces: list[dict]) -> dict:
    """The merged rows of the run, by outcome (from each piece's merge)."""
    keys = ("succeeded", "failed", "notProcessed", "unmatched")
    merged = [p.get("merge") or {} for p in pieces]
    counts = {k: sum(int(m.get(k) or 0) for m in merged) for k in keys}
    counts["rows"] = sum(int(p.get("rows") or 0) for p in pieces)
    return counts
