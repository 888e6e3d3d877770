"""Fresh state (#25 item 4): each job synced on its own backoff, and output files advance it."""

from datetime import UTC, datetime, timedelta

from shared.jobs import lifecycle, records, sync_schedule
from tests.jobs.lifecycle_support import world  # noqa: F401  (the fixture)
from tests.support import reset_process

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_every_tick_while_fresh_then_every_two_then_every_five():
    # Ticks of 60 s: 10 ticks = 10 min, 60 ticks = 1 h (worked out by hand).
    def gap(minutes_since_move: float) -> timedelta:
        since = T0 - timedelta(minutes=minutes_since_move)
        return sync_schedule.interval(now=T0, since=since, tick=60)

    assert gap(0) == gap(9.99) == timedelta(minutes=1)
    assert gap(10) == gap(59.99) == timedelta(minutes=2)
    assert gap(60) == gap(24 * 60) == timedelta(minutes=5)
    assert sync_schedule.interval(now=T0, since=None, tick=60) == timedelta(minutes=1)
    # Due five seconds early (a twelfth of a 60 s tick): the tick that starts then reads it.
    assert sync_schedule.next_due(now=T0, since=T0, tick=60) == T0 + timedelta(seconds=55)


def test_a_tick_reads_only_the_jobs_that_are_due(world, monkeypatch):  # noqa: F811
    monkeypatch.setenv("VBG_SYNC_TICK_SECONDS", "60")
    reset_process()
    job_id = world.create(labels={"sim-fault": "stuck-queued"})
    world.wait_sim(job_id, "JOB_STATE_QUEUED")
    first = records.get(job_id)
    assert first["sync_due"] <= datetime.now(UTC)  # new: due at once
    assert [r["job_id"] for r in records.open_jobs(10)] == [job_id]
    lifecycle.sync_job(job_id)
    synced = records.get(job_id)
    assert synced["state"] == "JOB_STATE_QUEUED"
    wait = synced["sync_due"] - synced["synced"]
    assert timedelta(seconds=54) < wait <= timedelta(seconds=55)  # it just moved: a tick
    assert records.open_jobs(10) == []  # not due: the next tick leaves it alone
    later = datetime.now(UTC) + timedelta(seconds=56)
    assert [r["job_id"] for r in records.open_jobs(10, now=later)] == [job_id]


def test_an_output_file_makes_a_queued_job_running_and_due(world):  # noqa: F811
    job_id = world.create(labels={"sim-fault": "stuck-queued"})
    world.wait_sim(job_id, "JOB_STATE_QUEUED")
    lifecycle.sync_job(job_id)
    assert records.get(job_id)["state"] == "JOB_STATE_QUEUED"
    moved = records.output_seen(job_id)
    assert moved["from"] == "JOB_STATE_QUEUED" and moved["to"] == "JOB_STATE_RUNNING"
    record = records.get(job_id)
    assert record["state"] == "JOB_STATE_RUNNING"
    assert record["state_history"][-1]["source"] == "output"
    assert records.output_seen(job_id) is None  # a redelivery changes nothing
    assert len(records.get(job_id)["state_history"]) == len(record["state_history"])
    # Vertex still answering QUEUED (a slower read) does not take the record back.
    lifecycle.sync_job(job_id)
    assert records.get(job_id)["state"] == "JOB_STATE_RUNNING"


def test_finalize_of_an_incremental_file_advances_the_record(world):  # noqa: F811
    """The event of an incremental output file, as on_output_finalized gets it: the record
    of a job still QUEUED in the books reads RUNNING, with no Vertex read."""
    from shared.core import clients
    from shared.jobs import finalize

    job_id = world.create(labels={"sim-fault": "stuck-queued"})
    world.wait_sim(job_id, "JOB_STATE_QUEUED")
    lifecycle.sync_job(job_id)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # Where Vertex writes: the job's own folder (the staging bucket's, outputs being sealed).
    bucket, _, folder = records.get(job_id)["output_prefix"].removeprefix("gs://").partition("/")
    name = f"{folder}prediction-model-{stamp}/incremental_predictions-0.jsonl"
    blob = clients.storage().bucket(bucket).blob(name)
    blob.upload_from_string(b"")
    blob.reload()
    finalize.handle_object(bucket=bucket, name=name, generation=blob.generation, size=0)
    assert records.get(job_id)["state"] == "JOB_STATE_RUNNING"
