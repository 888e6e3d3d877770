"""The ledger on the Firestore emulator: exactly-once records, totals and rollups."""

from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest
from google.api_core import exceptions

from shared.core import clients
from shared.cost import ledger
from shared.jobs import records
from tests.cost.cost_helpers import expected, make_job, prediction_bytes, usage_of

NAME = "out/prediction-model-2025-03-04T10:00:00.000000Z/predictions.jsonl"


def record(job, usage, *, name=NAME, generation=1, bucket="b"):
    return ledger.record_file(
        job_id=job["job_id"],
        job=job,
        bucket=bucket,
        name=name,
        generation=generation,
        size=123,
        usage=usage,
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
    assert daily["model"] == "gemini-2.5-flash"
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


def test_new_generation_replaces_and_old_one_arriving_late_is_ignored(gcp):
    job = make_job(gcp["bucket"], "103", labels={"env": "dev"})
    first = usage_of(prediction_bytes(["a", "b", "c", "d"]))
    second = usage_of(prediction_bytes(["a much longer prompt " * 40]))
    assert first.cost_nanos != second.cost_nanos

    assert record(job, first, generation=10)
    assert record(job, second, generation=20)
    assert record(job, first, generation=10) is False
    assert record(job, first, generation=15) is False

    totals = cost("103")
    assert totals["cost_nanos"] == second.cost_nanos
    assert totals["rows"] == 1
    assert totals["prompt_tokens"] == second.prompt_tokens
    [daily] = rollups(ledger.DAILY)
    assert daily["cost_nanos"] == second.cost_nanos and daily["rows"] == 1
    [label] = rollups(ledger.LABELS)
    assert label["cost_nanos"] == second.cost_nanos
    by_generation = {r["generation"]: r for r in ledger.job_cost("103")["records"]}
    assert by_generation[10]["superseded"] is True
    assert by_generation[10]["superseded_by"] == ledger.record_id("b", NAME, 20)
    assert by_generation[20]["superseded"] is False
    assert ledger.spend_nanos(start=date(2025, 3, 1), end=date(2025, 3, 31)) == second.cost_nanos


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


def test_concurrent_generations_and_duplicates_leave_the_newest(gcp):
    job = make_job(gcp["bucket"], "106")
    old = usage_of(prediction_bytes(["a", "b", "c"]))
    new = usage_of(prediction_bytes(["d"]))
    deliveries = [(old, 10), (new, 20)] * 4
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda pair: record(job, pair[0], generation=pair[1]), deliveries))
    assert cost("106")["rows"] == 1
    assert cost("106")["cost_nanos"] == new.cost_nanos
    [daily] = rollups(ledger.DAILY)
    assert (daily["rows"], daily["cost_nanos"]) == (1, new.cost_nanos)


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
