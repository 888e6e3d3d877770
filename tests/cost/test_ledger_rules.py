"""The ledger's pure rules: ids of a generation and of an object, and the day spend lands on."""

import hashlib
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.cost import ledger


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_a_cost_record_is_named_by_its_object_generation():
    assert ledger.record_id("bkt", "out/p.jsonl", 7) == sha256("bkt/out/p.jsonl#7")
    assert ledger.record_id("bkt", "out/p.jsonl", "7") == ledger.record_id("bkt", "out/p.jsonl", 7)
    assert ledger.record_id("bkt", "out/p.jsonl", 8) != ledger.record_id("bkt", "out/p.jsonl", 7)
    assert ledger.object_id("bkt", "out/p.jsonl") == sha256("bkt/out/p.jsonl")


def test_spend_lands_on_the_utc_day_the_job_was_created():
    eastern = timezone(timedelta(hours=-5))
    late_evening = datetime(2025, 3, 4, 21, 30, tzinfo=eastern)  # 02:30 UTC on the 5th
    assert ledger.spend_day({"create_time": late_evening}) == "2025-03-05"
    assert ledger.spend_day({"create_time": datetime(2025, 3, 4, 0, 0, tzinfo=UTC)}) == "2025-03-04"
    today = datetime.now(UTC).date().isoformat()
    assert ledger.spend_day({}) == today


def test_a_contended_write_waits_a_random_time_under_a_bound_that_doubles_to_one_second(
    monkeypatch,
):
    monkeypatch.setattr(ledger.random, "uniform", lambda low, high: (low, high))
    bounds = [ledger._backoff(r) for r in range(7)]
    assert bounds == [(0, 0.05), (0, 0.1), (0, 0.2), (0, 0.4), (0, 0.8), (0, 1.0), (0, 1.0)]


@pytest.fixture
def local_day_is_not_utcs(monkeypatch):
    """A local zone whose date differs from UTC's right now: 14 h ahead from 10:00 UTC on,
    12 h behind before (a naive `now()` or `astimezone()` would land on another day)."""
    ahead = datetime.now(UTC).hour >= 10
    monkeypatch.setenv("TZ", "Pacific/Kiritimati" if ahead else "Etc/GMT+12")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_spend_day_ignores_the_machines_zone(local_day_is_not_utcs):
    assert datetime.now().date() != datetime.now(UTC).date()
    evening = datetime(2025, 3, 4, 20, 0, tzinfo=UTC)  # the 5th in Kiritimati, the 4th at -12
    morning = datetime(2025, 3, 4, 8, 0, tzinfo=UTC)  # the 3rd at -12
    assert ledger.spend_day({"create_time": evening}) == "2025-03-04"
    assert ledger.spend_day({"create_time": morning}) == "2025-03-04"
    before = datetime.now(UTC).date().isoformat()
    today = ledger.spend_day({})
    assert today in (before, datetime.now(UTC).date().isoformat())
