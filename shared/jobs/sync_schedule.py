"""When each open job is next read from Vertex: soon after it is created or moves, then less
often (pure).

Vertex publishes no state change, so the gateway polls. One tick for all open jobs reads
every job every minute, the one that has run for a day as often as the one created a
minute ago. Instead each job carries `sync_due` (`records.SYNC_DUE`), and a tick reads only
the jobs that are due: every tick for 10 ticks after its creation or last state change,
every 2 ticks until 60 ticks, then every 5 ticks (with the minute of Cloud Scheduler: every
minute for 10 minutes, every 2 minutes until an hour, then every 5 minutes). The tick's
period is `VBG_SYNC_TICK_SECONDS` (60; the local stack sets its own). An output file
(shared/jobs/finalize.py) makes the job due at once: it proves the job runs (a PENDING or
QUEUED record becomes RUNNING on the spot) and a final file means its end is near.
"""

from datetime import datetime, timedelta

FRESH_TICKS = 10
WARM_TICKS = 60
WARM_EVERY = 2
COLD_EVERY = 5


def interval(*, now: datetime, since: datetime | None, tick: float) -> timedelta:
    """How long until the next read, for a job whose state last moved at `since`, with ticks
    `tick` seconds apart."""
    period = timedelta(seconds=tick)
    age = now - since if since else timedelta(0)
    if age < period * FRESH_TICKS:
        return period
    if age < period * WARM_TICKS:
        return period * WARM_EVERY
    return period * COLD_EVERY


def next_due(*, now: datetime, since: datetime | None, tick: float) -> datetime:
    """The next read's time, a twelfth of a tick early: a job due a little after a tick
    starts is read by that tick, not the next."""
    return now + interval(now=now, since=since, tick=tick) - timedelta(seconds=tick) / 12
