"""An explicit, recorded reprice of a job's books with the price catalog in force.

Why: a new catalog version never re-prices a cost record already written (each names the
version that priced it), so books stay what they were when a price changes. When a price was
wrong (an operator fixed it, Google corrected a rate), the master key reprices a job on
purpose: every counted file is read again (its recorded generation) and priced with the
catalog in force, and the difference is booked as one adjustment.

Where: `jobs/{id}/cost_groups/reprice`: `nanos` (the adjustment in force: repriced minus
recorded cost of the counted files), `catalog_version`, `files` (uri, recorded and repriced
nanos and versions), `rollups`, and `history` (each reprice: time, author, note, versions,
`nanos` and the change it made). It is written as the floor is (shared/cost/ledger.py
`record_floor`): one batch that writes the doc under a precondition and adds the change (new
adjustment - the one booked before) to the job's cost map (`cost_nanos`, `repriced_nanos`)
and to its spend rollups by `Increment`. Running it again with the same catalog changes nothing
but the history's last check; a later reprice replaces the adjustment, never adds it twice.
The cost records themselves are never rewritten.
"""

import time
from datetime import UTC, datetime
from typing import Any

from shared.core import clients, logs, times
from shared.core.config import model_list
from shared.cost import ledger, pricing, ranged_reads, usage

REPRICE_DOC = "reprice"
MAX_HISTORY = 50


class RepriceError(ValueError):
    """A job that cannot be repriced (no counted files, a file gone); the message says why."""


def _counted_records(job_id: str) -> list[dict]:
    """The cost records of the job's counted file set (not superseded, not failed)."""
    job_ref = ledger._job_ref(job_id)
    totals = job_ref.collection(ledger.GROUPS).document(ledger.GROUP_DOC).get()
    counted = (totals.to_dict() or {}).get("counted") if totals.exists else None
    out = []
    for snapshot in job_ref.collection(ledger.OUTPUTS).stream():
        record = snapshot.to_dict() or {}
        if record.get("error") or record.get("superseded") or record.get("counted") is False:
            continue
        if counted and record.get("group") not in (counted, None):
            continue
        out.append(record)
    return sorted(out, key=lambda r: (r.get("uri") or "", int(r.get("generation") or 0)))


def _repriced(job: dict, record: dict) -> int:
    """One file priced again, as finalize priced it, with the catalog in force."""
    deployment = model_list().find(job.get("deployment") or {})
    overrides = dict(deployment.price_overrides) if deployment else None
    model = (job.get("deployment") or {}).get("model") or job.get("model")
    chunks = ranged_reads.chunks_for(
        record["bucket"], record["name"], int(record["generation"]), record.get("size")
    )
    parsed = usage.parse_predictions(
        chunks,
        model=model,
        overrides=overrides or None,
        batch=True,
        location=(job.get("deployment") or {}).get("location"),
        at=job.get("create_time"),
    )
    return parsed.cost_nanos


def reprice(job_id: str, job: dict, *, author: str, note: str = "") -> dict:
    """Reprice a job's counted files with the catalog in force and book the difference."""
    from google.api_core import exceptions
    from google.cloud import firestore

    records = _counted_records(job_id)
    if not records:
        raise RepriceError(f"job {job_id} has no counted output file to reprice")
    version = pricing.version()
    files: list[dict[str, Any]] = []
    for record in records:
        try:
            repriced = _repriced(job, record)
        except usage.ObjectGone:
            raise RepriceError(f"{record.get('uri')}: its priced generation is gone") from None
        recorded = int((record.get("counters") or {}).get("cost_nanos") or 0)
        files.append(
            {
                "uri": record.get("uri"),
                "generation": int(record.get("generation") or 0),
                "recorded_nanos": recorded,
                "repriced_nanos": repriced,
                "recorded_version": record.get("catalog_version") or "",
            }
        )
    nanos = sum(f["repriced_nanos"] - f["recorded_nanos"] for f in files)
    client = clients.firestore()
    job_ref = ledger._job_ref(job_id)
    doc_ref = job_ref.collection(ledger.GROUPS).document(REPRICE_DOC)
    rollups = ledger._rollup_docs(job, ledger.rollup_shard(job_id))

    def attempt() -> dict:
        snapshot = doc_ref.get()
        old = snapshot.to_dict() if snapshot.exists else {}
        old_nanos = int(old.get("nanos") or 0)
        old_paths = set(old.get("rollups") or [])
        now = datetime.now(UTC)
        change = nanos - old_nanos
        entry = {
            "time": now,
            "author": author,
            "note": note[:500],
            "catalog_version": version,
            "nanos": nanos,
            "change_nanos": change,
        }
        fields = {
            "nanos": nanos,
            "catalog_version": version,
            "files": files,
            "rollups": sorted(rollups),
            "history": [*(old.get("history") or []), entry][-MAX_HISTORY:],
            "updated": now,
        }
        batch = client.batch()
        if snapshot.exists:
            batch.update(
                doc_ref, fields, option=client.write_option(last_update_time=snapshot.update_time)
            )
        else:
            batch.create(doc_ref, {**fields, "created": now})
        if change:
            batch.update(
                job_ref,
                {
                    "cost.cost_nanos": firestore.Increment(change),
                    "cost.repriced_nanos": firestore.Increment(change),
                    "cost_updated": now,
                },
            )
        for path in old_paths | set(rollups):
            added = (nanos if path in rollups else 0) - (old_nanos if path in old_paths else 0)
            if added:
                batch.set(
                    client.document(path),
                    {
                        **rollups.get(path, {}),
                        "cost_nanos": firestore.Increment(added),
                        "updated": now,
                    },
                    merge=True,
                )
        batch.commit()
        return {
            "jobId": job_id,
            "catalogVersion": version,
            "adjustmentNanos": nanos,
            "changeNanos": change,
            "files": [
                {
                    "uri": f["uri"],
                    "recordedUsd": pricing.nanos_to_usd(f["recorded_nanos"]),
                    "repricedUsd": pricing.nanos_to_usd(f["repriced_nanos"]),
                    "recordedCatalogVersion": f["recorded_version"],
                }
                for f in files
            ],
            "time": times.iso(now),
        }

    for round_ in range(ledger.WRITE_ATTEMPTS):
        try:
            result = attempt()
            break
        except (exceptions.AlreadyExists, exceptions.FailedPrecondition, exceptions.Aborted):
            time.sleep(ledger._backoff(round_))
    else:
        raise RuntimeError(f"reprice of job {job_id}: still contended")
    logs.info(
        "job repriced",
        job_id=job_id,
        catalog_version=version,
        adjustment_nanos=nanos,
        change_nanos=result["changeNanos"],
        author=author,
    )
    return result
