"""Many files of one key, day and model finalized at once: each priced once, no lost increment."""

from datetime import date

from shared.core import clients
from shared.cost import ledger
from shared.jobs import finalize, records
from tests.jobs import contention
from tests.support import gateway_env


def test_concurrent_finalize_counts_every_file_exactly_once(gcp, monkeypatch, tmp_path):
    gateway_env(monkeypatch, tmp_path, vertex_url="http://127.0.0.1:9")
    scenario = contention.build(gcp["bucket"], jobs=6, files_per_job=5)
    result = contention.finalize_all(scenario, workers=16, deliveries=2)

    assert result["events"] == 60
    assert result["recorded"] == 30
    want = scenario.expected
    for job_id, job_cost in scenario.expected_by_job.items():
        assert records.get(job_id)["cost"]["cost_nanos"] == job_cost
    [daily] = ledger.daily_rows(start="2025-03-04", end="2025-03-04", key_id="a" * 16)
    for counter in ("rows", "prompt_tokens", "candidates_tokens", "cost_nanos"):
        assert daily[counter] == want[counter], counter
    assert ledger.spend_nanos(start=date(2025, 3, 1), end=date(2025, 3, 31)) == want["cost_nanos"]
    [label] = ledger.label_rows(label="project", start="2025-03-04", end="2025-03-04")
    assert (label["value"], label["cost_nanos"]) == ("contention", want["cost_nanos"])

    # The increments were spread over shards, and the shards hold the whole total.
    shards = [s.to_dict() for s in clients.firestore().collection(ledger.DAILY).stream()]
    assert len(shards) == len(contention.writes_per_rollup_doc(scenario)) > 1
    assert sum(s["cost_nanos"] for s in shards) == want["cost_nanos"]


def test_shards_of_two_jobs_sum_and_a_replaced_generation_leaves(gcp, monkeypatch, tmp_path):
    """Two jobs on different shards read as one rollup; a replaced generation's cost leaves."""
    gateway_env(monkeypatch, tmp_path, vertex_url="http://127.0.0.1:9")
    scenario = contention.build(gcp["bucket"], jobs=2, files_per_job=1, rows_per_file=3)
    first_job, second_job = scenario.job_ids
    assert ledger.rollup_shard(first_job) != ledger.rollup_shard(second_job)
    assert contention.finalize_all(scenario, workers=2, deliveries=1)["recorded"] == 2
    name = scenario.files[0][0]
    blob = clients.storage().bucket(gcp["bucket"]).blob(name)
    # Vertex rewriting the file with one more row (a rewrite with less would remove nothing:
    # monotonic books, issue #10).
    data = blob.download_as_bytes() + (contention.row_json(1000, 10) + "\n").encode()
    blob.upload_from_string(data)
    blob.reload()
    assert finalize.handle_object(
        bucket=gcp["bucket"], name=name, generation=int(blob.generation), size=len(data)
    )
    replaced = (
        scenario.expected_by_job[first_job]
        + 1000 * contention.INPUT_NANOS_PER_TOKEN
        + 10 * contention.OUTPUT_NANOS_PER_TOKEN
    )
    want = replaced + scenario.expected_by_job[second_job]
    [daily] = ledger.daily_rows(start="2025-03-04", end="2025-03-04")
    assert (daily["cost_nanos"], daily["rows"]) == (want, 4 + 3)
    shards = [s.to_dict() for s in clients.firestore().collection(ledger.DAILY).stream()]
    assert sorted(s["cost_nanos"] for s in shards) == sorted(
        [replaced, scenario.expected_by_job[second_job]]
    )
