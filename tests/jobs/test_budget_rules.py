"""The pure rules of budgets: periods, amounts, which reservations count."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from shared.core.keys import Caller, master_caller
from shared.jobs import budgets
from shared.jobs.budgets import Budget, period_bounds, usd_to_nanos

AT = datetime(2025, 3, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "today", "bounds"),
    [
        ("day", date(2025, 3, 15), (date(2025, 3, 15), date(2025, 3, 15))),
        ("month", date(2025, 3, 15), (date(2025, 3, 1), date(2025, 3, 31))),
        ("month", date(2025, 3, 1), (date(2025, 3, 1), date(2025, 3, 31))),
        ("month", date(2025, 3, 31), (date(2025, 3, 1), date(2025, 3, 31))),
        ("month", date(2024, 2, 10), (date(2024, 2, 1), date(2024, 2, 29))),
        ("month", date(2025, 2, 28), (date(2025, 2, 1), date(2025, 2, 28))),
        ("month", date(2025, 12, 31), (date(2025, 12, 1), date(2025, 12, 31))),
        ("month", date(2025, 4, 30), (date(2025, 4, 1), date(2025, 4, 30))),
        ("none", date(2025, 3, 15), (date(1970, 1, 1), date(9999, 12, 31))),
    ],
)
def test_period_bounds(period, today, bounds):
    assert period_bounds(period, today) == bounds


@pytest.mark.parametrize(
    ("usd", "nanos"),
    [("10", 10_000_000_000), ("0.000000001", 1), (Decimal("2.5"), 2_500_000_000), (0, 0)],
)
def test_usd_to_nanos_is_exact(usd, nanos):
    assert usd_to_nanos(usd) == nanos


def test_a_budget_names_its_commitment_doc_by_scope_subject_and_period():
    monthly = Budget("key", "k1", "alice", "10", "month")
    assert monthly.limit_nanos == 10_000_000_000
    assert monthly.bounds(AT) == (date(2025, 3, 1), date(2025, 3, 31))
    assert monthly.doc_id(AT) == "key:k1:2025-03-01"
    assert Budget("team", "red", "red", "1", "day").doc_id(AT) == "team:red:2025-03-15"
    assert Budget("team", "red", "red", "1", "none").doc_id(AT) == "team:red:all"
    # an unknown period is treated as monthly, never as no limit
    odd = Budget("key", "k1", "alice", "1", "fortnight")
    assert odd.period == "month" and odd.doc_id(AT) == "key:k1:2025-03-01"
    assert monthly.describe() == "key 'alice': $10.000000000 per month"
    assert Budget("team", "red", "red", "1", "none").describe().endswith("in total")
    assert Budget("team", "red", "red", "1", "day").describe().endswith("per day")


def test_which_reservations_count():
    fresh = AT - budgets.UNBOUND_TTL + timedelta(seconds=1)
    stale = AT - budgets.UNBOUND_TTL
    doc = {
        "entries": {
            "bound-old": {"nanos": 5, "job_id": "1", "created": stale - timedelta(days=9)},
            "unbound-fresh": {"nanos": 7, "job_id": None, "created": fresh},
            "unbound-stale": {"nanos": 11, "job_id": None, "created": stale},
            "no-time": {"nanos": 13, "job_id": None},
        }
    }
    live = budgets._live_entries(doc, AT)
    assert set(live) == {"bound-old", "unbound-fresh", "no-time"}
    assert budgets._committed(live) == 5 + 7 + 13
    assert budgets._live_entries({}, AT) == {}
    assert budgets._committed({"a": {"nanos": None}, "b": {}}) == 0


def test_only_others_still_being_checked_are_contended():
    entries = {
        "me": {"nanos": 1, "admitted": False, "job_id": None},
        "checking": {"nanos": 2, "admitted": False, "job_id": None},
        "admitted": {"nanos": 4, "admitted": True, "job_id": None},
        "bound": {"nanos": 8, "admitted": False, "job_id": "9"},
        "checking-too": {"nanos": 16},
        "checking-no-amount": {"nanos": None},
    }
    assert budgets._contended(entries, "me") == 2 + 16


def test_the_budgets_of_a_caller():
    assert budgets.budgets_for(None) == []
    assert budgets.budgets_for(master_caller()) == []
    assert budgets.budgets_for(Caller(key_id="k1", alias="alice")) == []
    [own] = budgets.budgets_for(
        Caller(key_id="k1", alias="alice", budget_usd=Decimal("3"), budget_period="day")
    )
    assert (own.scope, own.subject, own.label) == ("key", "k1", "alice")
    assert (own.limit_nanos, own.period) == (3_000_000_000, "day")


def test_a_team_budget_comes_from_the_team_record_monthly_unless_it_says(gcp):
    member = Caller(key_id="k1", alias="alice", team="blue")
    assert budgets.budgets_for(member) == []  # no team record
    budgets.team_ref("blue").set({"budget_usd": ""})
    assert budgets.budgets_for(member) == []  # a cleared budget
    budgets.team_ref("blue").set({"budget_usd": "5"})
    [team] = budgets.budgets_for(member)
    assert (team.scope, team.subject, team.label) == ("team", "blue", "blue")
    assert (team.limit_nanos, team.period) == (5_000_000_000, "month")
    budgets.team_ref("blue").set({"budget_usd": "5", "budget_period": "day"})
    assert budgets.budgets_for(member)[0].period == "day"


def test_a_budget_counts_the_spend_of_its_own_key_or_team_only(gcp):
    from shared.cost import ledger
    from tests.cost.cost_helpers import expected, make_job, prediction_bytes, usage_of

    name = "out/prediction-model-2025-03-04T10:00:00.000000Z/predictions.jsonl"
    spend = {}
    for job_id, key_id, team, texts in (
        ("121", "a" * 16, "blue", ["x"]),
        ("122", "b" * 16, "red", ["y", "z"]),
    ):
        job = make_job(gcp["bucket"], job_id, key_id=key_id, team=team)
        data = prediction_bytes(texts)
        spend[key_id] = expected(data).cost_nanos
        assert ledger.record_generation(
            job_id=job_id,
            job=job,
            bucket="b",
            name=name,
            generation=1,
            size=1,
            usage=usage_of(data),
        )
    assert spend["a" * 16] != spend["b" * 16]
    assert Budget("key", "a" * 16, "alice", "1", "month").actual_nanos(AT) == spend["a" * 16]
    assert Budget("team", "red", "red", "1", "month").actual_nanos(AT) == spend["b" * 16]
    assert Budget("key", "b" * 16, "bob", "1", "day").actual_nanos(AT) == 0  # 4 March is past


def test_alerts_count_a_budget_as_admission_does(gcp):
    """One rule for both (#24.1): a stored period the gateway does not know is a month when a
    create is admitted and when a cost is alerted on (alerts took it for all time), and the
    alert counts the budget's own spend over that month."""
    from shared.core import clients, keys
    from shared.cost import ledger
    from shared.jobs import alert_outbox, alerts
    from tests.cost.cost_helpers import make_job, prediction_bytes, usage_of

    clients.publisher().create_topic(name=clients.topic_path("batch-job-alerts"))
    budgets.team_ref("blue").set({"budget_usd": "0.000000001", "budget_period": "fortnight"})
    _, key = keys.create_key({"alias": "ann", "team": "blue"})
    [team] = budgets.budgets_for(keys.caller_from_record(key))
    assert (team.period, team.limit_nanos) == ("month", 1)
    [owners] = budgets.budgets_of_owner(key["id"], None)
    assert (owners.scope, owners.subject, owners.period) == ("team", "blue", "month")
    job = make_job(gcp["bucket"], "131", key_id=key["id"], team="blue")  # created 4 March 2025
    name = "out/prediction-model-2025-03-04T10:00:00.000000Z/predictions.jsonl"
    usage = usage_of(prediction_bytes(["x"]))
    assert ledger.record_generation(
        job_id="131", job=job, bucket="b", name=name, generation=1, size=1, usage=usage
    )
    # April is another month: March's spend does not count there.
    assert alerts.check_budget_alerts(key_id=key["id"], team="blue", today=date(2025, 4, 2)) == []
    sent = alerts.check_budget_alerts(key_id=key["id"], team="blue", today=date(2025, 3, 20))
    assert sent == [("team", 80), ("team", 100)]
    marker = alert_outbox.marker("budget:team:blue:2025-03:100").get().to_dict()
    assert (marker["kind"], marker["status"]) == ("budget", "sent")
