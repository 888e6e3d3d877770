"""The gateway's own job routes and the daily spend series, through the real HTTP layer."""

import pytest

from shared.jobs import records
from tests.api.test_spend_api import MARCH, get, usd, world  # noqa: F401  (the fixture)
from tests.support import MASTER_KEY


def ids(body):
    return [job["jobId"] for job in body["jobs"]]


def test_each_key_lists_the_jobs_it_may_see_newest_first(world):  # noqa: F811
    assert ids(get(world, "/v1/gateway/jobs", world["alice"])[1]) == ["302", "301"]
    assert ids(get(world, "/v1/gateway/jobs", world["bob"])[1]) == ["302", "301"]
    assert ids(get(world, "/v1/gateway/jobs", world["carol"])[1]) == ["303"]
    assert ids(get(world, "/v1/gateway/jobs")[1]) == ["303", "302", "301"]


def test_list_filters_by_state_and_label_and_pages(world):  # noqa: F811
    records.mark("302", state="JOB_STATE_RUNNING")
    status, body = get(world, "/v1/gateway/jobs?state=RUNNING", world["alice"])
    assert status == 200 and ids(body) == ["302"]
    assert ids(get(world, "/v1/gateway/jobs?state=JOB_STATE_PENDING", world["alice"])[1]) == ["301"]
    assert ids(get(world, "/v1/gateway/jobs?label=env=prod", world["alice"])[1]) == ["301"]
    assert ids(get(world, "/v1/gateway/jobs?label=env=prod", world["carol"])[1]) == []

    first = get(world, "/v1/gateway/jobs?pageSize=2")[1]
    assert ids(first) == ["303", "302"] and first["nextBefore"] == "2025-03-05T10:00:00Z"
    rest = get(world, f"/v1/gateway/jobs?pageSize=2&before={first['nextBefore']}")[1]
    assert ids(rest) == ["301"] and "nextBefore" not in rest


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("state=DONE", "SUCCEEDED"),
        ("label=env", "NAME=VALUE"),
        ("pageSize=0", "positive integer"),
        ("before=yesterday", "RFC 3339"),
        ("colour=red", "state, label, pageSize, before"),
    ],
)
def test_bad_list_parameters_are_400_saying_what_is_valid(world, query, names):  # noqa: F811
    status, body = get(world, f"/v1/gateway/jobs?{query}", world["alice"])
    assert status == 400 and names in body["error"]["message"]


def test_one_job_view_for_its_owner_only(world):  # noqa: F811
    status, job = get(world, "/v1/gateway/jobs/301", world["alice"])
    assert status == 200
    assert job["estimateUsd"] == "0.000001500"  # the 1500 nano-dollars the fixture set
    assert job["costUsd"] == usd(world["costs"]["301"]) and job["costFinal"] is True
    assert [step["to"] for step in job["timeline"]] == ["JOB_STATE_PENDING"]
    assert job["labels"]["env"] == "prod" and job["retryOf"] is None and job["retries"] == []
    assert get(world, "/v1/gateway/jobs/301", world["carol"])[0] == 404
    assert get(world, "/v1/gateway/jobs/301", world["bob"])[0] == 200
    assert get(world, "/v1/gateway/jobs/nope", world["alice"])[0] == 400
    assert get(world, "/v1/gateway/jobs/999", world["alice"])[0] == 404


def test_me_names_the_key(world):  # noqa: F811
    status, me = get(world, "/v1/gateway/me", world["alice"])
    assert status == 200 and me["alias"] == "alice" and me["isMaster"] is False
    assert "key" not in me and "hash" not in me
    assert get(world, "/v1/gateway/me", MASTER_KEY)[1]["isMaster"] is True
    assert get(world, "/v1/gateway/me", "vbg-wrong")[0] == 401


def test_daily_series_has_every_day_and_adds_up(world):  # noqa: F811
    costs = world["costs"]
    status, body = get(world, f"/v1/gateway/spend/daily?{MARCH}&groupBy=key")
    assert status == 200
    assert len(body["days"]) == 31 and body["days"][3] == "2025-03-04"
    series = {s["name"]: s for s in body["series"]}
    assert set(series) == {"alice", "carol"}
    assert series["alice"]["costUsd"][3] == usd(costs["301"])
    assert series["alice"]["costUsd"][4] == usd(costs["302"])
    assert series["carol"]["costUsd"][4] == usd(costs["303"])
    assert series["carol"]["costUsd"][3] == usd(0)
    assert body["dailyTotalUsd"][4] == usd(costs["302"], costs["303"])
    assert body["totalUsd"] == usd(*costs.values())
    own = get(world, f"/v1/gateway/spend/daily?{MARCH}&groupBy=model", world["carol"])[1]
    assert [(s["name"], s["totalUsd"]) for s in own["series"]] == [
        ("gemini-3.5-flash-lite", usd(costs["303"]))
    ]
    assert get(world, "/v1/gateway/spend/daily?groupBy=nope")[0] == 400
