"""The documents one recorded generation leaves, field by field, at the ids a redeploy must
find again (ids are part of the exactly-once contract: a changed formula would count every
file a second time). Expected ids are computed here from the documented formulas."""

import hashlib
import json
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from shared.core import clients, docids
from shared.cost import ledger
from shared.cost.usage import FileUsage, ModelUsage
from tests.cost.cost_helpers import make_job

NAME = "out/prediction-model-2025-03-04T10:00:00.000000Z/predictions.jsonl"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def file_usage(prompt: int, candidates: int, cost_nanos: int, **samples) -> FileUsage:
    part = ModelUsage(
        rows=2,
        succeeded=2,
        prompt_tokens=prompt,
        candidates_tokens=candidates,
        cost_nanos=cost_nanos,
    )
    return FileUsage(
        rows=2,
        succeeded=2,
        prompt_tokens=prompt,
        candidates_tokens=candidates,
        cost_nanos=cost_nanos,
        by_model={"gemini-3.5-flash-lite": part},
        **samples,
    )


@pytest.fixture
def far_from_utc(monkeypatch):
    """Local time nine hours ahead of UTC: a naive `datetime.now()` would be stored 9 h off."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def job_doc(job_id: str):
    return clients.firestore().collection("jobs").document(docids.doc_id(job_id))


def test_one_generation_writes_these_documents(gcp, far_from_utc):
    job = make_job(gcp["bucket"], "301", labels={"env": "prod"})
    before = datetime.now(UTC) - timedelta(seconds=5)
    failed = [{"line": 2, "message": "boom"}]
    unpriced = [{"line": 3, "model": "mystery", "reason": "model not in the price table"}]
    common = {"job_id": "301", "job": job, "bucket": "b", "name": NAME, "generation": 1}
    recorded = ledger.record_generation(
        **common,
        size="77",
        usage=file_usage(100, 10, 2_000, failed_samples=failed, unpriced_samples=unpriced),
    )
    assert recorded.outcome == "recorded" and bool(recorded) and recorded.generation == 1
    assert recorded.uri == f"gs://b/{NAME}" and recorded.file_nanos == 2_000
    jobs = job_doc("301")

    rid = sha(f"b/{NAME}#1")
    rec = jobs.collection("outputs").document(rid).get().to_dict()
    assert rec["bucket"] == "b" and rec["name"] == NAME and rec["uri"] == f"gs://b/{NAME}"
    assert (rec["generation"], rec["size"], rec["group"]) == (1, 77, "final")
    assert rec["model"] == "gemini-3.5-flash-lite"
    assert (rec["counted"], rec["superseded"], rec["superseded_by"]) == (True, False, None)
    assert rec["counters"]["prompt_tokens"] == 100 and rec["counters"]["cost_nanos"] == 2_000
    assert rec["by_model"]["gemini-3.5-flash-lite"]["candidates_tokens"] == 10
    assert rec["failed_samples"] == failed and rec["unpriced_samples"] == unpriced
    assert rec["malformed_samples"] == []
    assert before <= rec["created"] <= datetime.now(UTC)

    shard = int(sha("301")[:8], 16) % 16
    daily_path = f"spend_daily/{sha('2025-03-04|' + 'a' * 16 + '|gemini-3.5-flash-lite')}-{shard}"
    label_path = f"spend_labels/{sha('2025-03-04|' + 'a' * 16 + '|env|prod')}-{shard}"
    obj = jobs.collection("objects").document(sha(f"b/{NAME}")).get().to_dict()
    assert obj["uri"] == f"gs://b/{NAME}" and obj["generation"] == 1
    assert obj["record_id"] == rid and obj["group"] == "final"
    assert obj["counters"]["cost_nanos"] == 2_000
    assert obj["rollups"] == sorted([daily_path, label_path])
    assert before <= obj["updated"] <= datetime.now(UTC)

    totals = jobs.collection("cost_groups").document("totals").get().to_dict()
    assert totals["counted"] == "final" and totals["rollups"] == sorted([daily_path, label_path])
    assert totals["final"]["cost_nanos"] == 2_000 and totals["incremental"]["cost_nanos"] == 0
    assert before <= totals["updated"] <= datetime.now(UTC)

    daily = clients.firestore().document(daily_path).get().to_dict()
    assert daily["cost_nanos"] == 2_000 and daily["shard"] == shard
    assert before <= daily["updated"] <= datetime.now(UTC)
    assert (daily["day"], daily["model"], daily["alias"]) == (
        "2025-03-04",
        "gemini-3.5-flash-lite",
        "alice",
    )
    label = clients.firestore().document(label_path).get().to_dict()
    assert (label["label"], label["value"], label["cost_nanos"]) == ("env", "prod", 2_000)

    job_now = jobs.get().to_dict()
    assert job_now["cost"]["cost_nanos"] == 2_000 and job_now["cost_basis"] == "final"
    assert before <= job_now["cost_updated"] <= datetime.now(UTC)

    again = ledger.record_generation(**common, size="77", usage=file_usage(1, 1, 9))
    assert (again.outcome, again.uri, again.generation) == ("duplicate", f"gs://b/{NAME}", 1)
    assert jobs.get().to_dict()["cost"]["cost_nanos"] == 2_000


def test_a_second_generation_supersedes_the_first_and_buckets_stay_apart(gcp):
    job = make_job(gcp["bucket"], "302")
    common = {"job_id": "302", "job": job, "name": NAME}
    ledger.record_generation(
        **common, bucket="b", generation=1, size=None, usage=file_usage(100, 10, 2_000)
    )
    # The same object name in another bucket is another object, counted beside the first.
    other = ledger.record_generation(
        **common, bucket="c", generation=1, size="", usage=file_usage(50, 5, 1_000)
    )
    assert other.outcome == "recorded" and other.previous_generation is None
    newer = ledger.record_generation(
        **common, bucket="b", generation=2, size=5, usage=file_usage(120, 10, 2_500)
    )
    assert (newer.outcome, newer.previous_generation, newer.counted_nanos) == ("recorded", 1, 2_000)

    jobs = job_doc("302")
    first = jobs.collection("outputs").document(sha(f"b/{NAME}#1")).get().to_dict()
    assert (first["superseded"], first["superseded_by"]) == (True, sha(f"b/{NAME}#2"))
    assert first["size"] is None
    assert jobs.collection("outputs").document(sha(f"c/{NAME}#1")).get().to_dict()["size"] is None
    objects = {d.id: d.to_dict() for d in jobs.collection("objects").stream()}
    assert set(objects) == {sha(f"b/{NAME}"), sha(f"c/{NAME}")}
    assert objects[sha(f"b/{NAME}")]["generation"] == 2
    assert objects[sha(f"b/{NAME}")]["record_id"] == sha(f"b/{NAME}#2")
    # b counts its newer generation (2,500), c its only one (1,000).
    assert jobs.get().to_dict()["cost"]["cost_nanos"] == 3_500
    assert [d.id for d in jobs.collection("cost_groups").stream()] == ["totals"]


def test_counters_must_fit_firestore_int64():
    top = 2**63 - 1  # Firestore's largest integer
    ledger._check_recordable({"rows": 0, "cost_nanos": top})
    for bad in (top + 1, -1):
        with pytest.raises(ledger.Unrecordable, match="out of range"):
            ledger._check_recordable({"rows": 1, "cost_nanos": bad})


def test_a_generation_after_the_final_cost_is_kept_but_not_counted(gcp):
    job = make_job(gcp["bucket"], "303")
    common = {"job_id": "303", "job": job, "bucket": "b", "name": NAME, "size": 1}
    ledger.record_generation(**common, generation=1, usage=file_usage(100, 10, 2_000))
    job_doc("303").update({"cost_final": True})
    late = ledger.record_generation(**common, generation=2, usage=file_usage(900, 10, 5_000))
    assert (late.outcome, late.job_final, late.uri) == ("tamper", True, f"gs://b/{NAME}")
    rec = job_doc("303").collection("outputs").document(sha(f"b/{NAME}#2")).get().to_dict()
    assert rec["counted"] is False and rec["counters"]["cost_nanos"] == 5_000
    assert rec["tamper"] == {
        "reason": "a new generation after the job's cost was final",
        "previous_generation": 1,
        "counted_nanos": 2_000,
        "file_nanos": 5_000,
        "difference_nanos": 3_000,
    }
    assert job_doc("303").get().to_dict()["cost"]["cost_nanos"] == 2_000


def test_a_file_with_nothing_in_it_writes_no_rollup(gcp):
    job = make_job(gcp["bucket"], "311")
    empty = ledger.record_generation(
        job_id="311", job=job, bucket="b", name=NAME, generation=1, size=0, usage=FileUsage()
    )
    assert empty.outcome == "recorded"
    [path] = totals_of("311")["rollups"]
    assert path.startswith("spend_daily/") and not clients.firestore().document(path).get().exists


def test_another_file_of_the_job_landing_during_a_write_sends_it_round_again(gcp, monkeypatch):
    """The job's set totals are read, then another of its files is recorded, then the batch:
    it must fail on the changed totals and retry, or it overwrites the other file's share."""
    job = make_job(gcp["bucket"], "312")
    common = {"job_id": "312", "job": job, "bucket": "b", "size": 1, "generation": 1}
    names = [NAME.replace("predictions", f"predictions_{i}") for i in range(3)]
    ledger.record_generation(**common, name=names[0], usage=file_usage(1, 1, 100))
    read_totals = ledger._group_totals
    raced = []

    def racing(job_ref):
        found = read_totals(job_ref)
        if not raced:
            raced.append(1)
            ledger.record_generation(**common, name=names[1], usage=file_usage(5, 1, 700))
        return found

    monkeypatch.setattr(ledger, "_group_totals", racing)
    retries = ledger.write_retries()
    ledger.record_generation(**common, name=names[2], usage=file_usage(20, 1, 2_000))
    assert raced and ledger.write_retries() == retries + 1
    assert totals_of("312")["final"]["cost_nanos"] == 100 + 700 + 2_000
    assert job_doc("312").get().to_dict()["cost"]["cost_nanos"] == 100 + 700 + 2_000


def test_a_file_that_costs_nothing_adds_nothing_to_spend(gcp):
    # All rows failed: the rollup document gets rows and failures but no cost field at all.
    job = make_job(gcp["bucket"], "304", key_id="z" * 16)
    nothing = FileUsage(
        rows=3, failed=3, by_model={"gemini-3.5-flash-lite": ModelUsage(rows=3, failed=3)}
    )
    ledger.record_generation(
        job_id="304", job=job, bucket="b", name=NAME, generation=1, size=1, usage=nothing
    )
    day = date(2025, 3, 4)
    assert ledger.spend_nanos(start=day, end=day, key_id="z" * 16) == 0


def totals_of(job_id: str) -> dict:
    return job_doc(job_id).collection("cost_groups").document("totals").get().to_dict()


def test_a_generation_holding_less_is_recorded_as_tamper_and_counts_the_larger(gcp):
    job = make_job(gcp["bucket"], "305")
    common = {"job_id": "305", "job": job, "bucket": "b", "name": NAME, "size": 1}
    ledger.record_generation(**common, generation=1, usage=file_usage(100, 10, 2_000))
    less = ledger.record_generation(**common, generation=2, usage=file_usage(40, 10, 1_000))
    assert (less.outcome, less.job_final) == ("tamper", False)
    rec = job_doc("305").collection("outputs").document(sha(f"b/{NAME}#2")).get().to_dict()
    assert rec["tamper"] == {
        "reason": "the generation holds less than what counts for its object",
        "previous_generation": 1,
        "lowered": ["cost_nanos", "prompt_tokens"],
        "counted_nanos": 2_000,
        "file_nanos": 1_000,
        "difference_nanos": -1_000,
    }
    assert job_doc("305").get().to_dict()["cost"]["cost_nanos"] == 2_000


def test_a_new_generation_of_an_incremental_file_replaces_it_in_its_own_set(gcp):
    job = make_job(gcp["bucket"], "306")
    name = "out/prediction-model-x/incremental_predictions/predictions_00001.jsonl"
    common = {"job_id": "306", "job": job, "bucket": "b", "name": name, "size": 1}
    ledger.record_generation(
        **common, generation=1, group="incremental", usage=file_usage(10, 1, 700)
    )
    ledger.record_generation(
        **common, generation=2, group="incremental", usage=file_usage(20, 1, 900)
    )
    totals = totals_of("306")
    # The incremental set holds the newer generation alone (900, not 700 + 900); the final
    # set never saw either.
    assert totals["incremental"]["cost_nanos"] == 900 and totals["final"]["cost_nanos"] == 0
    assert totals["counted"] == "incremental"
    assert job_doc("306").get().to_dict()["cost"]["cost_nanos"] == 900


def test_when_a_job_changes_rollups_its_spend_moves_with_it(gcp):
    job = make_job(gcp["bucket"], "307", labels={"env": "prod"})
    common = {"job_id": "307", "bucket": "b", "size": 1}
    ledger.record_generation(
        **common, job=job, name=NAME, generation=1, usage=file_usage(10, 1, 2_000)
    )
    relabelled = {**job, "labels": {"env": "dev"}}
    other = NAME.replace("predictions.jsonl", "predictions_2.jsonl")
    ledger.record_generation(
        **common, job=relabelled, name=other, generation=1, usage=file_usage(10, 1, 500)
    )
    shard = int(sha("307")[:8], 16) % 16

    def label_cost(value):
        path = f"spend_labels/{sha('2025-03-04|' + 'a' * 16 + '|env|' + value)}-{shard}"
        return clients.firestore().document(path).get().to_dict().get("cost_nanos", 0)

    # The job's whole 2,500 now belongs to env=dev; env=prod gives back its 2,000.
    assert (label_cost("prod"), label_cost("dev")) == (0, 2_500)


def test_an_object_changed_under_a_write_sends_it_round_again(gcp, monkeypatch):
    """Generation 2 of an object lands while generation 3 is being written (after its read of
    the object, before its batch): the batch must fail on the stale object and retry, or it
    takes generation 1's counters out of the set instead of generation 2's."""
    job = make_job(gcp["bucket"], "308")
    common = {"job_id": "308", "job": job, "bucket": "b", "name": NAME, "size": 1}
    ledger.record_generation(**common, generation=1, usage=file_usage(1, 1, 100))
    read_totals = ledger._group_totals
    raced = []

    def racing(job_ref):
        if not raced:
            raced.append(2)
            ledger.record_generation(**common, generation=2, usage=file_usage(5, 1, 700))
        return read_totals(job_ref)

    monkeypatch.setattr(ledger, "_group_totals", racing)
    ledger.record_generation(**common, generation=3, usage=file_usage(20, 1, 2_000))
    # One object: what counts is its largest generation, 2,000, once.
    assert raced and totals_of("308")["final"]["cost_nanos"] == 2_000
    assert job_doc("308").get().to_dict()["cost"]["cost_nanos"] == 2_000
    obj = job_doc("308").collection("objects").document(sha(f"b/{NAME}")).get().to_dict()
    assert obj["generation"] == 3


def test_an_older_generation_holding_no_more_is_stale_and_writes_nothing(gcp):
    job = make_job(gcp["bucket"], "309")
    common = {"job_id": "309", "job": job, "bucket": "b", "name": NAME, "size": 1}
    ledger.record_generation(**common, generation=20, usage=file_usage(50, 9, 9_000))
    older = ledger.record_generation(**common, generation=10, usage=file_usage(5, 1, 700))
    assert (older.outcome, bool(older)) == ("stale", False)
    assert (older.uri, older.previous_generation) == (f"gs://b/{NAME}", 20)
    assert not job_doc("309").collection("outputs").document(sha(f"b/{NAME}#10")).get().exists
    assert job_doc("309").get().to_dict()["cost"]["cost_nanos"] == 9_000


def test_an_older_generation_arriving_late_adds_what_it_holds_more(gcp):
    """Events arrive in any order: generation 10 priced after 20 still counts, counter by
    counter, the larger of the two, as if it had come first (the books are order-free)."""
    job = make_job(gcp["bucket"], "315")
    common = {"job_id": "315", "job": job, "bucket": "b", "name": NAME, "size": 1}
    ledger.record_generation(**common, generation=20, usage=file_usage(5, 12, 700))
    older = ledger.record_generation(**common, generation=10, usage=file_usage(50, 9, 9_000))
    assert (older.outcome, older.previous_generation) == ("recorded", 20)
    cost = job_doc("315").get().to_dict()["cost"]
    assert (cost["cost_nanos"], cost["prompt_tokens"], cost["candidates_tokens"]) == (9_000, 50, 12)
    obj = job_doc("315").collection("objects").document(sha(f"b/{NAME}")).get().to_dict()
    assert (obj["generation"], obj["record_id"]) == (20, sha(f"b/{NAME}#20"))
    records = {r["generation"]: r for r in ledger.job_cost("315")["records"]}
    assert (records[10]["superseded"], records[10]["superseded_by"]) == (True, sha(f"b/{NAME}#20"))
    assert records[20]["superseded"] is False
    assert totals_of("315")["final"]["cost_nanos"] == 9_000


def test_the_same_generation_landing_first_elsewhere_is_stale_without_a_retry(gcp, monkeypatch):
    """A second delivery of one generation that passed the record check while the first was
    being written: its read finds the generation counted, so it stops there (no failed batch,
    no retry); `>` instead of `>=` would send it round again."""
    job = make_job(gcp["bucket"], "310")
    common = {"job_id": "310", "job": job, "bucket": "b", "name": NAME, "size": 1}
    usage = file_usage(5, 1, 700)
    read_pair = ledger._read_pair
    raced = []

    def racing(client, obj_ref, job_ref):
        if not raced:
            raced.append(1)
            assert ledger.record_generation(**common, generation=4, usage=usage)
        return read_pair(client, obj_ref, job_ref)

    monkeypatch.setattr(ledger, "_read_pair", racing)
    retries = ledger.write_retries()
    second = ledger.record_generation(**common, generation=4, usage=usage)
    assert raced and (second.outcome, second.previous_generation) == ("stale", 4)
    assert ledger.write_retries() == retries
    assert job_doc("310").get().to_dict()["cost"]["cost_nanos"] == 700


def test_a_write_that_never_gets_through_fails_loudly(gcp, monkeypatch):
    job = make_job(gcp["bucket"], "313")
    common = {"job_id": "313", "job": job, "bucket": "b", "size": 1, "generation": 1}
    ledger.record_generation(**common, name=NAME, usage=file_usage(1, 1, 100))
    read_totals = ledger._group_totals
    raced, busy = [], []

    def always_raced(job_ref):
        """Another file of the job lands after every read of the totals."""
        found = read_totals(job_ref)
        if not busy:
            busy.append(1)
            raced.append(f"out/other-{len(raced)}.jsonl")
            ledger.record_generation(**common, name=raced[-1], usage=file_usage(1, 1, 10))
            busy.pop()
        return found

    monkeypatch.setattr(ledger, "_group_totals", always_raced)
    monkeypatch.setattr(ledger, "WRITE_ATTEMPTS", 2)
    monkeypatch.setattr(ledger, "_backoff", lambda round_: 0)
    late = NAME.replace("predictions", "predictions_late")
    with pytest.raises(
        RuntimeError, match=f"cost record {sha('b/' + late + '#1')}: still contended after 2 tries"
    ):
        ledger.record_generation(**common, name=late, usage=file_usage(1, 1, 5))
    assert len(raced) == 2


def test_each_outcome_is_logged_with_the_job_the_object_and_the_record(gcp, capsys):
    job = make_job(gcp["bucket"], "314")
    common = {"job_id": "314", "job": job, "bucket": "b", "name": NAME, "size": 1}
    capsys.readouterr()
    ledger.record_generation(**common, generation=2, usage=file_usage(5, 1, 700))
    ledger.record_generation(**common, generation=2, usage=file_usage(5, 1, 700))
    ledger.record_generation(**common, generation=1, usage=file_usage(5, 1, 700))
    ledger.record_generation(**common, generation=3, usage=file_usage(1, 1, 300))
    entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    where = [
        {"job_id": "314", "uri": f"gs://b/{NAME}#{g}", "record_id": sha(f"b/{NAME}#{g}")}
        for g in (2, 2, 1, 3)
    ]
    assert [(e["severity"], e["message"]) for e in entries] == [
        ("INFO", "cost recorded"),
        ("INFO", "cost record exists; nothing to do"),
        ("INFO", "an equal or newer generation already counts; nothing to do"),
        ("WARNING", "output generation not counted in full (tamper)"),
    ]
    for entry, expected in zip(entries, where, strict=True):
        assert {k: entry[k] for k in expected} == expected
    assert (entries[0]["group"], entries[0]["cost_nanos"], entries[0]["rows"]) == ("final", 700, 2)
    assert entries[0]["replaced_generation"] is None
    assert entries[2]["current_generation"] == 2
    assert (entries[3]["previous_generation"], entries[3]["job_final"]) == (2, False)
    assert (entries[3]["counted_nanos"], entries[3]["file_nanos"]) == (700, 300)
