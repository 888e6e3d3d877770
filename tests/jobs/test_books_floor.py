"""Issue #22 item 1, the floor: the books of a finished job never hold fewer billed rows than
Vertex says it ran, whatever a key holder does to the files before the gateway reads them.

The finding, reproduced on real parts: a key holder with write access to its output folder
deletes each predictions file as it appears. Before this issue the job ended `costFinal` at
$0, with no `tamper` and no `unpriced` alert. Now each vanished generation is a `tamper`
event, and at the terminal state the rows Vertex ran that the books lack are booked at the
estimate's per-row rate, marked estimated, in spend (budgets see them), with one `tamper`
alert naming the gap; the cost stays not final.

Money: the estimate is set by hand on the record (per row = expected // rows, worked out
below); file costs come from tests/cost/reference.py."""

from datetime import UTC, date

import pytest

from shared.core import clients
from shared.cost import floor, ledger
from shared.jobs import records
from tests.cost.cost_helpers import expected, make_job, prediction_bytes, upload, usage_of
from tests.cost.reference import expected_cost
from tests.jobs.lifecycle_support import make_world
from tests.jobs.test_finalize import deliver
from tests.support import DIRECT_MODEL_LIST, auth, cloudevent_client

# --- the pure rules ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "read"),
    [
        ("40", 40),
        (40, 40),
        ("0", 0),
        (0, 0),
        (-1, None),  # Vertex: -1 when the number is unknown
        ("-1", None),
        (True, None),
        ("4.0", None),
        ("1e3", None),
        (None, None),
        (10**9, 10**9),
        ("1000000000", 10**9),
        ("01000000000", None),  # 11 digits: not read, whatever their value
        (10**9 + 1, None),
        ("9" * 13, None),
        ("9" * 5000, None),  # never handed to int(): Python refuses 4,300+ digits
    ],
)
def test_a_completion_count_is_read_or_refused(value, read):
    assert floor.count(value) == read


def test_vertex_counts_from_completion_stats():
    assert floor.ran({"successfulCount": "38", "failedCount": "2"}) == floor.Ran(38, 2)
    assert floor.ran({"successfulCount": "5"}) == floor.Ran(5, 0)  # proto3 JSON drops zeros
    assert floor.ran({"incompleteCount": "3"}) == floor.Ran(0, 0)
    assert floor.ran({}) is None and floor.ran(None) is None and floor.ran([1]) is None
    assert floor.ran({"successfulCount": "-1"}) is None
    assert floor.ran({"successfulCount": "3", "failedCount": "x"}) is None


@pytest.mark.parametrize(
    ("vertex", "booked", "gap"), [(40, 0, 40), (40, 39, 1), (40, 40, 0), (40, 41, 0), (0, 3, 0)]
)
def test_the_gap_is_the_successful_rows_the_books_lack(vertex, booked, gap):
    assert floor.gap_rows(vertex, booked) == gap


@pytest.mark.parametrize(
    ("estimate", "rate"),
    [
        ({"rows": 4, "cost_nanos": {"expected": 1_000_003}}, 250_000),  # floor division
        ({"rows": 3, "cost_nanos": {"expected": 300}}, 100),
        ({"rows": 1, "cost_nanos": {"expected": 0}}, 0),
        ({"rows": 0, "cost_nanos": {"expected": 0}}, None),  # no rows: one row of the model
        ({"rows": 2, "cost_nanos": {"expected": -2}}, None),
        ({"error": "unreadable", "rows": 2, "cost_nanos": {"expected": 10}}, None),
        ({"rows": "2", "cost_nanos": {"expected": 10}}, None),
        ({"rows": 2, "cost_nanos": {}}, None),
        (None, None),
    ],
)
def test_a_missing_row_is_booked_at_the_estimates_expected_rate(estimate, rate):
    assert floor.per_row_nanos(estimate) == rate


# --- the ledger's plan of the floor (pure) ---------------------------------------------------

PATHS = {"spend_daily/a-1", "spend_labels/b-1"}


def _sets(final_succeeded=0, incremental_succeeded=0, final_cost=0, incremental_cost=0):
    return {
        "final": {"succeeded": final_succeeded, "rows": final_succeeded, "cost_nanos": final_cost},
        "incremental": {
            "succeeded": incremental_succeeded,
            "rows": incremental_succeeded,
            "cost_nanos": incremental_cost,
        },
    }


def _plan(previous=None, stored=None, *, vertex=5, rate=100, final=False, paths=PATHS):
    return ledger.plan_floor(
        previous=previous,
        stored=stored if stored is not None else _sets(final_succeeded=2, final_cost=900),
        job_final=final,
        vertex_succeeded=vertex,
        vertex_failed=1,
        per_row_nanos=rate,
        rollups=paths,
    )


def test_the_plan_books_the_gap_on_the_job_and_every_rollup():
    planned = _plan()
    assert planned.floored == ledger.Floored(
        "booked",
        rows=3,
        nanos=300,
        per_row_nanos=100,
        booked_succeeded=2,
        vertex_succeeded=5,
        vertex_failed=1,
    )
    assert planned.doc == {
        "rows": 3,
        "nanos": 300,
        "per_row_nanos": 100,
        "booked_succeeded": 2,
        "vertex_succeeded": 5,
        "vertex_failed": 1,
        "rollups": sorted(PATHS),
    }
    change = {"cost_nanos": 300, "estimated_nanos": 300, "estimated_rows": 3}
    assert planned.job_delta == change
    assert planned.rollup_deltas == dict.fromkeys(sorted(PATHS), change)


def test_the_plan_reads_the_set_the_job_counts():
    # The incremental set bills more: it counts (4 succeeded), so the gap is 1 row.
    stored = _sets(final_succeeded=2, final_cost=900, incremental_succeeded=4, incremental_cost=950)
    assert _plan(stored=stored).floored.rows == 1
    # Once the final set bills more, it counts (its 2 succeeded): a gap of 3.
    stored = _sets(final_succeeded=2, final_cost=951, incremental_succeeded=4, incremental_cost=950)
    assert _plan(stored=stored).floored.rows == 3


def test_the_plan_moves_only_the_difference_and_nothing_when_it_is_the_same():
    booked = {"rows": 3, "nanos": 300, "rollups": sorted(PATHS)}
    same = _plan(previous=booked)
    assert same.floored.outcome == "unchanged" and same.doc is None
    assert (same.job_delta, same.rollup_deltas) == ({}, {})
    shrunk = _plan(previous=booked, stored=_sets(final_succeeded=4, final_cost=1800))
    assert (shrunk.floored.rows, shrunk.floored.nanos) == (1, 100)
    assert shrunk.job_delta == {"cost_nanos": -200, "estimated_nanos": -200, "estimated_rows": -2}
    gone = _plan(previous=booked, stored=_sets(final_succeeded=5, final_cost=2000))
    assert gone.floored.rows == 0
    assert gone.job_delta == {"cost_nanos": -300, "estimated_nanos": -300, "estimated_rows": -3}
    nothing = _plan(stored=_sets(final_succeeded=5, final_cost=2000))
    assert nothing.floored.outcome == "unchanged" and nothing.doc is None


def test_a_relabelled_job_moves_its_estimate_between_rollups():
    booked = {"rows": 3, "nanos": 300, "rollups": ["spend_daily/a-1", "spend_labels/old-1"]}
    moved = _plan(previous=booked)
    assert moved.floored.outcome == "booked" and moved.job_delta == {
        "cost_nanos": 0,
        "estimated_nanos": 0,
        "estimated_rows": 0,
    }
    change = {"cost_nanos": 300, "estimated_nanos": 300, "estimated_rows": 3}
    assert moved.rollup_deltas == {
        "spend_daily/a-1": dict.fromkeys(change, 0),
        "spend_labels/b-1": change,
        "spend_labels/old-1": {k: -v for k, v in change.items()},
    }
    empty = _plan(previous={"rollups": ["spend_labels/old-1"]}, vertex=2)
    assert empty.floored.outcome == "unchanged"


def test_closed_books_are_not_planned():
    planned = _plan(final=True)
    assert planned.floored.outcome == "final" and planned.doc is None
    assert (planned.job_delta, planned.rollup_deltas) == ({}, {})


def test_a_gap_beyond_what_firestore_holds_is_refused():
    with pytest.raises(ledger.Unrecordable, match="'estimated_nanos'"):
        _plan(vertex=10**9, rate=2**62, stored=_sets())
    with pytest.raises(ledger.Unrecordable, match="'estimated_rows'"):
        _plan(vertex=2**63, rate=0, stored=_sets())


def test_rows_booked_at_no_cost_move_between_rollups_too():
    """A model without a price books the gap at $0 a row: the rows still move."""
    booked = {"rows": 3, "nanos": 0, "rollups": ["spend_labels/old-1"]}
    moved = _plan(previous=booked, rate=0)
    assert moved.floored.outcome == "booked"
    assert moved.rollup_deltas["spend_labels/old-1"]["estimated_rows"] == -3
    assert moved.rollup_deltas["spend_daily/a-1"]["estimated_rows"] == 3


# --- the ledger's floor record (exactly once, beside the job's files) ------------------------


@pytest.fixture
def books(gcp):
    return gcp


def test_the_gap_is_booked_once_and_shrinks_as_missing_rows_arrive(books):
    bucket = books["bucket"]
    job = make_job(bucket, "901", labels={"env": "prod"})
    first = prediction_bytes(["a", "b", "c"], fail={2})  # 2 succeeded, 1 failed
    generation = upload(bucket, "out/d/predictions.jsonl", first)
    ledger.record_generation(
        job_id="901",
        job=job,
        bucket=bucket,
        name="out/d/predictions.jsonl",
        generation=generation,
        size=len(first),
        usage=usage_of(first),
    )
    file_nanos = expected(first).cost_nanos
    # Vertex ran 5 successful rows; the books hold 2: a gap of 3 at 100 nanos a row.
    floored = ledger.record_floor(
        job_id="901", job=job, vertex_succeeded=5, vertex_failed=1, per_row_nanos=100
    )
    assert (floored.outcome, floored.rows, floored.nanos) == ("booked", 3, 300)
    assert (floored.booked_succeeded, floored.vertex_succeeded) == (2, 5)
    cost = records.get("901")["cost"]
    assert cost["cost_nanos"] == file_nanos + 300
    assert (cost["estimated_rows"], cost["estimated_nanos"]) == (3, 300)
    day = date(2025, 3, 4)
    assert ledger.spend_nanos(start=day, end=day, key_id="a" * 16) == file_nanos + 300
    [label_row] = ledger.label_rows(label="env", start=day, end=day)
    assert label_row["estimated_nanos"] == 300 and label_row["cost_nanos"] == file_nanos + 300

    again = ledger.record_floor(
        job_id="901", job=job, vertex_succeeded=5, vertex_failed=1, per_row_nanos=100
    )
    assert again.outcome == "unchanged" and not again
    assert records.get("901")["cost"]["cost_nanos"] == file_nanos + 300

    # A late file holds two of the missing rows: they are priced, the estimate shrinks.
    late = prediction_bytes(["d", "e"])
    name = "out/d/predictions_00002.jsonl"
    ledger.record_generation(
        job_id="901",
        job=job,
        bucket=bucket,
        name=name,
        generation=upload(bucket, name, late),
        size=len(late),
        usage=usage_of(late),
    )
    shrunk = ledger.record_floor(
        job_id="901", job=job, vertex_succeeded=5, vertex_failed=1, per_row_nanos=100
    )
    assert (shrunk.rows, shrunk.nanos, shrunk.booked_succeeded) == (1, 100, 4)
    cost = records.get("901")["cost"]
    assert cost["cost_nanos"] == file_nanos + expected(late).cost_nanos + 100
    assert (cost["estimated_rows"], cost["estimated_nanos"]) == (1, 100)
    assert ledger.spend_nanos(start=day, end=day, key_id="a" * 16) == cost["cost_nanos"]
    assert ledger.get_floor("901")["rows"] == 1


def test_no_gap_books_nothing_and_closed_books_are_not_touched(books):
    bucket = books["bucket"]
    job = make_job(bucket, "902")
    data = prediction_bytes(["a", "b"])
    ledger.record_generation(
        job_id="902",
        job=job,
        bucket=bucket,
        name="out/d/predictions.jsonl",
        generation=upload(bucket, "out/d/predictions.jsonl", data),
        size=len(data),
        usage=usage_of(data),
    )
    none = ledger.record_floor(
        job_id="902", job=job, vertex_succeeded=2, vertex_failed=0, per_row_nanos=100
    )
    assert none.outcome == "unchanged" and none.rows == 0
    assert ledger.get_floor("902") is None
    assert "estimated_rows" not in records.get("902")["cost"]
    records.mark("902", cost_final=True)
    closed = ledger.record_floor(
        job_id="902", job=job, vertex_succeeded=9, vertex_failed=0, per_row_nanos=100
    )
    assert closed.outcome == "final"
    assert records.get("902")["cost"]["cost_nanos"] == expected(data).cost_nanos


def test_a_job_without_any_file_books_the_whole_floor(books):
    job = make_job(books["bucket"], "903")
    floored = ledger.record_floor(
        job_id="903", job=job, vertex_succeeded=4, vertex_failed=0, per_row_nanos=250_000
    )
    assert (floored.rows, floored.nanos) == (4, 1_000_000)
    assert records.get("903")["cost"]["cost_nanos"] == 1_000_000


# --- the finding, on the simulator -----------------------------------------------------------


@pytest.fixture
def world(gcp, monkeypatch, tmp_path):
    made = make_world(gcp, monkeypatch, tmp_path, speed=0.1, model_list=DIRECT_MODEL_LIST)
    yield made
    made.sim.stop()


# The estimate of the test jobs, by hand: 4 rows, $0.001000003 expected: 250,000 nanos a row
# (floor division drops the 3).
ESTIMATE = {
    "rows": 4,
    "method": "read",
    "cost_nanos": {"low": 500_000, "expected": 1_000_003, "high": 4_000_000},
}
PER_ROW = 250_000


def _outputs(bucket: str) -> dict[str, tuple[int, bytes]]:
    return {
        b.name: (int(b.generation), b.download_as_bytes())
        for b in clients.storage().list_blobs(bucket, prefix="out/")
    }


def test_deleting_every_output_before_it_is_read_leaves_the_floor_and_a_tamper(world):
    bucket = world.gcp["bucket"]
    finalized = cloudevent_client("on_output_finalized")
    job_id = world.create(rows=4)
    records.mark(job_id, estimate=ESTIMATE)
    world.wait_sim(job_id, "JOB_STATE_SUCCEEDED")
    files = _outputs(bucket)
    assert len(files) == 5  # four incremental files and predictions.jsonl
    for name in files:  # the key holder deletes each file before the gateway reads it
        clients.storage().bucket(bucket).blob(name).delete()
    for _ in range(2):  # at least once: each event twice
        for name, (generation, _) in files.items():
            assert deliver(finalized, bucket, name, generation).status_code == 200
    for _ in range(3):
        world.tick()

    record = records.get(job_id)
    assert record["state"] == "JOB_STATE_SUCCEEDED" and record["cost_final"] is False
    assert record["cost"]["cost_nanos"] == 4 * PER_ROW == 1_000_000
    assert record["cost"]["estimated_rows"] == 4
    day = record["create_time"].astimezone(UTC).date()
    assert ledger.spend_nanos(start=day, end=day, key_id=record["owner_key_id"]) == 1_000_000

    alerts = world.alerts()
    tampers = [body["tamper"] for attributes, body in alerts if attributes["kind"] == "tamper"]
    assert sorted(t["reason"] for t in tampers) == ["floor"] + ["vanished"] * 5
    [gap] = [t for t in tampers if t["reason"] == "floor"]
    assert gap == {
        "reason": "floor",
        "vertex_succeeded": 4,
        "vertex_failed": 0,
        "booked_succeeded": 0,
        "gap_rows": 4,
        "per_row_usd": "0.000250000",
        "per_row_nanos": PER_ROW,
        "estimated_usd": "0.001000000",
        "estimated_nanos": 1_000_000,
    }
    [terminal] = [body for attributes, body in alerts if attributes["kind"] == "terminal"]
    assert terminal["cost"]["final"] is False and terminal["cost"]["estimated_rows"] == 4
    assert "booked at the estimate" in terminal["text"]

    view = world.gateway.get(f"/v1/gateway/jobs/{job_id}/cost", headers=auth(world.key))
    cost = view.get_json()
    assert cost["costFinal"] is False and cost["provisional"] is True
    assert (cost["costUsd"], cost["estimatedRows"], cost["estimatedUsd"]) == (
        "0.001000000",
        4,
        "0.001000000",
    )
    assert cost["floor"]["gapRows"] == 4 and cost["floor"]["perRowUsd"] == "0.000250000"
    assert cost["tamperedFiles"] == 5
    assert {f["tamper"]["reason"] for f in cost["files"]} == {"vanished before it was priced"}

    # Redelivered events and more ticks change nothing and alert nothing new.
    for name, (generation, _) in files.items():
        assert deliver(finalized, bucket, name, generation).status_code == 200
    for _ in range(2):
        world.tick()
    assert records.get(job_id)["cost"] == record["cost"]
    assert world.alerts(settle=0.5) == []


def test_deleting_the_final_file_after_the_incremental_ones_counted_leaves_no_gap(world):
    """The rows are in the books already (the incremental files): nothing is estimated."""
    bucket = world.gcp["bucket"]
    finalized = cloudevent_client("on_output_finalized")
    job_id = world.create(rows=4)
    records.mark(job_id, estimate=ESTIMATE)
    world.wait_sim(job_id, "JOB_STATE_SUCCEEDED")
    files = _outputs(bucket)
    [final] = [n for n in files if n.endswith("/predictions.jsonl")]
    clients.storage().bucket(bucket).blob(final).delete()
    for name, (generation, _) in files.items():
        assert deliver(finalized, bucket, name, generation).status_code == 200
    record = world.drive(job_id)
    want = expected_cost(files[final][1], "gemini-3.5-flash-lite", location="us-central1")
    assert record["cost"]["cost_nanos"] == want.cost_nanos
    assert int(record["cost"].get("estimated_rows") or 0) == 0
    kinds = sorted((a["kind"], (b.get("tamper") or {}).get("reason")) for a, b in world.alerts())
    assert kinds == [("tamper", "vanished"), ("terminal", None)]


def test_a_job_without_an_estimate_books_one_row_of_its_model(world, monkeypatch):
    """No usable estimate: a missing row costs the estimate of one typical row of the model
    (2 KiB of text at 4 characters a token, 64 answer tokens and no thinking: the catalog
    says gemini-3.5-flash-lite does not think unless asked; $0.15 and $1.25 per 1M batch
    tokens; worked out below)."""
    bucket = world.gcp["bucket"]
    job_id = world.create(rows=2)
    records.mark(job_id, estimate={"error": "unreadable"})
    world.wait_sim(job_id, "JOB_STATE_SUCCEEDED")
    for blob in clients.storage().list_blobs(bucket, prefix="out/"):
        blob.delete()
    for _ in range(3):
        world.tick()
    record = records.get(job_id)
    # The typical row holds int(2048 * 0.85) = 1,740 characters of text: ceil(1740 / 4) = 435
    # input tokens; output 64 tokens. At $0.15 and $1.25 per 1M tokens, i.e. 150 and 1,250
    # nanos a token: 435 * 150 + 64 * 1,250 = 65,250 + 80,000 = 145,250 nanos.
    assert record["cost"]["estimated_rows"] == 2
    assert record["cost"]["cost_nanos"] == 2 * 145_250
    assert record["cost_final"] is False


def test_estimated_rows_count_against_the_budget(world):
    bucket = world.gcp["bucket"]
    job_id = world.create(rows=4)
    records.mark(job_id, estimate=ESTIMATE)
    world.wait_sim(job_id, "JOB_STATE_SUCCEEDED")
    for blob in clients.storage().list_blobs(bucket, prefix="out/"):
        blob.delete()
    for _ in range(3):
        world.tick()
    spend = world.gateway.get("/v1/gateway/spend?groupBy=model", headers=auth(world.key))
    [group] = spend.get_json()["groups"]
    assert group["costUsd"] == "0.001000000" and group["estimatedUsd"] == "0.001000000"
    assert group["estimatedRows"] == 4
