"""The ledger on the Firestore emulator: exactly-once records, totals and rollups."""

from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from google.api_core import exceptions

from shared.core import clients
from shared.cost import ledger
from shared.cost.usage import COUNTER_FIELDS
from shared.jobs import records
from tests.cost.cost_helpers import expected, make_job, prediction_bytes, usage_of

NAME = "out/prediction-model-2025-03-04T10:00:00.000000Z/predictions.jsonl"


def record(job, usage, *, name=NAME, generation=1, bucket="b"):
    """True when the books changed."""
    return bool(
        ledger.record_generation(
            job_id=job["job_id"],
            job=job,
            bucket=bucket,
            name=name,
            generation=generation,
            size=123,
            usage=usage,
        )
    )


def cost(job_id):
    return records.get(job_id)["cost"]


def rollups(collection):
    """One dict per rollup, its shard documents' counters summed."""
    identity = ("day", "key_id", "model", "label", "value")
    merged: dict = {}
    for doc in clients.firestore().collection(collection).stream():
        row = doc.to_dict()
        key = tuple(row.get(f) for f in identity)
        if key not in merged:
            merged[key] = row
            continue
        for field, value in row.items():
            if field not in identity and isinstance(value, int) and field != "shard":
                merged[key][field] = merged[key].get(field, 0) + value
    return list(merged.values())


def test_record_sets_totals_record_and_rollups_once(gcp):
    job = make_job(gcp["bucket"], "101", labels={"cost-center": "cc-1", "env": "prod"})
    data = prediction_bytes(["hello", "world", "again"], fail={1})
    usage = usage_of(data)
    assert usage.cost_nanos == expected(data).cost_nanos > 0 and usage.failed == 1

    assert record(job, usage) is True
    assert record(job, usage) is False

    totals = cost("101")
    assert totals["cost_nanos"] == usage.cost_nanos
    assert (totals["rows"], totals["succeeded"], totals["failed"]) == (3, 2, 1)
    assert totals["prompt_tokens"] == usage.prompt_tokens
    assert ledger.has_record("101", "b", NAME, 1)
    assert not ledger.has_record("101", "b", NAME, 2)

    [daily] = rollups(ledger.DAILY)
    assert daily["day"] == "2025-03-04"
    assert (daily["key_id"], daily["alias"], daily["team"]) == ("a" * 16, "alice", "Data Science")
    assert daily["model"] == "gemini-3.5-flash-lite"
    assert daily["cost_nanos"] == usage.cost_nanos
    labels = {(r["label"], r["value"]): r["cost_nanos"] for r in rollups(ledger.LABELS)}
    assert labels == {("cost-center", "cc-1"): usage.cost_nanos, ("env", "prod"): usage.cost_nanos}

    view = ledger.job_cost("101")
    [file_record] = view["records"]
    assert file_record["uri"] == f"gs://b/{NAME}" and file_record["size"] == 123
    assert file_record["counters"]["cost_nanos"] == usage.cost_nanos
    boom = (
        'Internal Server Error: {"error": {"code": 500, "message": "boom", "status": "INTERNAL"}}'
    )
    assert view["failed_samples"] == [{"uri": f"gs://b/{NAME}", "line": 2, "message": boom}]


def test_concurrent_duplicates_change_nothing(gcp):
    job = make_job(gcp["bucket"], "102")
    usage = usage_of(prediction_bytes(["one", "two"]))
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda _: record(job, usage), range(8)))
    assert sorted(outcomes) == [False] * 7 + [True]
    assert cost("102")["cost_nanos"] == usage.cost_nanos
    assert cost("102")["rows"] == 2
    [daily] = rollups(ledger.DAILY)
    assert daily["cost_nanos"] == usage.cost_nanos
    assert len(list(records.job_ref("102").collection(ledger.OUTPUTS).stream())) == 1


def elementwise_max(*usages) -> dict:
    return {f: max(getattr(u, f) for u in usages) for f in COUNTER_FIELDS}


def test_a_newer_generation_adds_cost_but_never_removes_it(gcp):
    """Finding 1 of issue #10: a rewrite with less in it must not lower the books."""
    job = make_job(gcp["bucket"], "103", labels={"env": "dev"})
    first = usage_of(prediction_bytes(["a", "b", "c", "d"]))
    smaller = usage_of(prediction_bytes(["a"]))
    bigger = usage_of(prediction_bytes(["a", "b", "c", "d", "e", "a much longer prompt " * 40]))
    assert smaller.cost_nanos < first.cost_nanos < bigger.cost_nanos

    assert record(job, first, generation=10)
    lowered = ledger.record_generation(
        job_id="103", job=job, bucket="b", name=NAME, generation=20, size=1, usage=smaller
    )
    assert lowered.outcome == "tamper" and not lowered.job_final
    assert (lowered.previous_generation, lowered.generation) == (10, 20)
    assert lowered.difference_nanos == smaller.cost_nanos - first.cost_nanos
    assert cost("103")["cost_nanos"] == first.cost_nanos
    assert cost("103")["rows"] == 4

    assert record(job, bigger, generation=30)
    assert record(job, first, generation=15) is False
    totals = cost("103")
    assert totals["cost_nanos"] == bigger.cost_nanos
    assert totals["rows"] == 6
    [daily] = rollups(ledger.DAILY)
    assert daily["cost_nanos"] == bigger.cost_nanos and daily["rows"] == 6
    [label] = rollups(ledger.LABELS)
    assert label["cost_nanos"] == bigger.cost_nanos
    by_generation = {r["generation"]: r for r in ledger.job_cost("103")["records"]}
    assert by_generation[10]["superseded_by"] == ledger.record_id("b", NAME, 20)
    assert by_generation[20]["tamper"]["lowered"]
    assert by_generation[30]["superseded"] is False
    assert ledger.spend_nanos(start=date(2025, 3, 1), end=date(2025, 3, 31)) == bigger.cost_nanos


def test_after_the_cost_is_final_a_new_generation_changes_nothing(gcp):
    job = make_job(gcp["bucket"], "107")
    first = usage_of(prediction_bytes(["a", "b"]))
    zero = usage_of(prediction_bytes([]))
    assert record(job, first, generation=10)
    records.mark("107", cost_final=True)

    for generation in (11, 12):
        found = ledger.record_generation(
            job_id="107", job=job, bucket="b", name=NAME, generation=generation, size=1, usage=zero
        )
        assert found.outcome == "tamper" and found.job_final
        assert found.difference_nanos == -first.cost_nanos
    other = ledger.record_generation(
        job_id="107",
        job=job,
        bucket="b",
        name="out/p/predictions_2.jsonl",
        generation=5,
        size=1,
        usage=first,
    )
    assert other.outcome == "tamper" and other.previous_generation is None
    assert cost("107")["cost_nanos"] == first.cost_nanos
    [daily] = rollups(ledger.DAILY)
    assert daily["cost_nanos"] == first.cost_nanos
    assert ledger.has_record("107", "b", NAME, 11)


def test_two_files_sum_and_spend_filters(gcp):
    alice = make_job(gcp["bucket"], "104", key_id="a" * 16, team="red")
    bob = make_job(
        gcp["bucket"],
        "105",
        key_id="b" * 16,
        alias="bob",
        team="blue",
        create_time="2025-03-06T01:00:00Z",
    )
    one = usage_of(prediction_bytes(["x"]))
    two = usage_of(prediction_bytes(["y", "z"]))
    assert record(alice, one, name="out/p/predictions_00001.jsonl")
    assert record(alice, two, name="out/p/predictions_00002.jsonl")
    assert record(bob, two)

    assert cost("104")["cost_nanos"] == one.cost_nanos + two.cost_nanos
    assert cost("104")["rows"] == 3
    march = {"start": date(2025, 3, 1), "end": date(2025, 3, 31)}
    assert ledger.spend_nanos(**march) == one.cost_nanos + 2 * two.cost_nanos
    assert ledger.spend_nanos(**march, key_id="a" * 16) == one.cost_nanos + two.cost_nanos
    assert ledger.spend_nanos(**march, team="blue") == two.cost_nanos
    assert ledger.spend_nanos(**march, key_id="a" * 16, team="blue") == 0
    assert ledger.spend_nanos(start=date(2025, 3, 5), end=date(2025, 3, 6)) == two.cost_nanos
    assert ledger.spend_nanos(start=date(2025, 3, 4), end=date(2025, 3, 4)) == (
        one.cost_nanos + two.cost_nanos
    )


def test_concurrent_generations_and_duplicates_never_lose_or_double(gcp):
    job = make_job(gcp["bucket"], "106")
    old = usage_of(prediction_bytes(["a", "b", "c"]))
    new = usage_of(prediction_bytes(["d"]))
    deliveries = [(old, 10), (new, 20)] * 4
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda pair: record(job, pair[0], generation=pair[1]), deliveries))
    # 20 first: 10 is stale and never counts; 10 first: 20 may add, never remove.
    totals = {f: cost("106").get(f, 0) for f in COUNTER_FIELDS}
    assert totals in ({f: getattr(new, f) for f in COUNTER_FIELDS}, elementwise_max(old, new))
    [daily] = rollups(ledger.DAILY)
    assert (daily["rows"], daily["cost_nanos"]) == (totals["rows"], totals["cost_nanos"])


def test_a_stale_object_doc_fails_the_whole_batch(gcp):
    """The mechanism the ledger relies on, pinned on the emulator: one failed precondition
    and nothing of the batch is written."""
    client = clients.firestore()
    obj = client.document("t/obj")
    obj.set({"generation": 1})
    seen = obj.get()
    obj.update({"generation": 2})
    batch = client.batch()
    batch.create(client.document("t/record"), {"x": 1})
    batch.update(
        obj, {"generation": 3}, option=client.write_option(last_update_time=seen.update_time)
    )
    with pytest.raises(exceptions.FailedPrecondition):
        batch.commit()
    assert not client.document("t/record").get().exists
    assert obj.get().to_dict() == {"generation": 2}
    batch = client.batch()
    batch.create(client.document("t/obj"), {"generation": 4})
    with pytest.raises((exceptions.AlreadyExists, exceptions.Conflict)):
        batch.commit()
