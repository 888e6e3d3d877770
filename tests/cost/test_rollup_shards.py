"""Sharded spend rollups read back as one row per rollup, old unsharded documents included."""

from datetime import UTC, date, datetime

from shared.core import clients
from shared.cost import ledger
from tests.cost.cost_helpers import expected, make_job, prediction_bytes, usage_of

NAME = "out/prediction-model-2025-03-04T10:00:00.000000Z/predictions.jsonl"


def test_shards_and_a_pre_shard_document_sum_into_one_row(gcp):
    db = clients.firestore()
    # A rollup document as the unsharded layout wrote it (no `-{shard}`, no `shard` field).
    db.document(f"{ledger.DAILY}/legacy").set(
        {
            "day": "2025-03-04",
            "key_id": "a" * 16,
            "alias": "alice",
            "team": "Data Science",
            "model": "gemini-3.5-flash-lite",
            "cost_nanos": 1_000,
            "rows": 2,
            "updated": datetime(2025, 3, 4, tzinfo=UTC),
        }
    )
    ids = ["501", "503"]
    assert ledger.rollup_shard(ids[0]) != ledger.rollup_shard(ids[1])
    files = {}
    for job_id, texts in zip(ids, (["one", "two"], ["three"]), strict=True):
        job = make_job(gcp["bucket"], job_id)
        data = prediction_bytes(texts)
        files[job_id] = expected(data)
        assert ledger.record_generation(
            job_id=job_id,
            job=job,
            bucket="b",
            name=NAME,
            generation=1,
            size=1,
            usage=usage_of(data),
        )
    stored = [s.to_dict() for s in db.collection(ledger.DAILY).stream()]
    assert len(stored) == 3
    [row] = ledger.daily_rows(start="2025-03-01", end="2025-03-31", key_id="a" * 16)
    want = 1_000 + files["501"].cost_nanos + files["503"].cost_nanos
    assert (row["cost_nanos"], row["rows"]) == (want, 2 + 2 + 1)
    assert "shard" not in row
    assert ledger.spend_nanos(start=date(2025, 3, 4), end=date(2025, 3, 4)) == want
