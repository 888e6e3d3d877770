"""The spend routes through the real HTTP layer (functions-framework test client)."""

import pytest

from shared.core import keys
from shared.cost import ledger
from shared.jobs import records
from tests.cost.cost_helpers import expected, make_job, prediction_bytes, usage_of
from tests.cost.reference import usd as reference_usd
from tests.support import MASTER_KEY, auth, create_key, gateway_env, passthrough_client

PATH = "out/prediction-model-2025-03-04T10:01:00.000000Z/predictions.jsonl"
MARCH = "start=2025-03-01&end=2025-03-31"


def key_id(plaintext: str) -> str:
    return keys.key_id_of(keys.hash_key(plaintext))


@pytest.fixture
def world(gcp, monkeypatch, tmp_path):
    """Three keys, three jobs with costs: alice (red) twice, bob (red, admin), carol (blue)."""
    gateway_env(monkeypatch, tmp_path, vertex_url="http://127.0.0.1:9")
    client = passthrough_client()
    alice = create_key(client, alias="alice", team="red")
    bob = create_key(client, alias="bob", team="red", teamAdmin=True)
    carol = create_key(client, alias="carol", team="blue")
    files = {
        "301": prediction_bytes(["alpha", "beta"], fail={1}),
        "302": prediction_bytes(["gamma " * 30]),
        "303": prediction_bytes(["delta", "epsilon", "zeta"]),
    }
    owners = {
        "301": (alice, "alice", "red", {"env": "prod"}, "2025-03-04T10:00:00Z"),
        "302": (alice, "alice", "red", {"env": "dev"}, "2025-03-05T10:00:00Z"),
        "303": (carol, "carol", "blue", {}, "2025-03-05T11:00:00Z"),
    }
    costs = {}
    for job_id, (key, alias, team, labels, created) in owners.items():
        job = make_job(
            gcp["bucket"],
            job_id,
            key_id=key_id(key),
            alias=alias,
            team=team,
            labels=labels,
            create_time=created,
        )
        parsed = usage_of(files[job_id])
        costs[job_id] = expected(files[job_id]).cost_nanos
        assert ledger.record_generation(
            job_id=job_id,
            job=job,
            bucket=gcp["bucket"],
            name=PATH,
            generation=7,
            size=len(files[job_id]),
            usage=parsed,
        )
    estimate = {"cost_nanos": {"low": 1000, "expected": 1500, "high": 9000}, "rows": 2}
    records.mark("301", estimate=estimate, cost_final=True)
    return {"client": client, "alice": alice, "bob": bob, "carol": carol, "costs": costs}


def get(world, path, key=MASTER_KEY):
    response = world["client"].get(path, headers=auth(key))
    return response.status_code, response.get_json()


def groups(body, field):
    return {g[field]: g["costUsd"] for g in body["groups"]}


def usd(*nanos):
    return reference_usd(sum(nanos))


def test_job_cost_for_owner_team_admin_and_master(world):
    costs = world["costs"]
    for key in (world["alice"], world["bob"], MASTER_KEY):
        status, body = get(world, "/v1/gateway/jobs/301/cost", key)
        assert status == 200, body
        assert body["costUsd"] == usd(costs["301"])
        assert body["totals"]["rows"] == 2 and body["totals"]["failed"] == 1
        assert body["costFinal"] is True
        assert body["estimate"]["rows"] == 2
        assert body["estimate"]["costUsd"]["expected"] == "0.000001500"
        actual = costs["301"]
        wanted_pct = round((1500 - actual) * 1000 / actual) / 10
        assert float(body["estimateErrorPct"]) == wanted_pct
        [file] = body["files"]
        assert file["uri"].endswith(PATH) and file["generation"] == "7"
        assert file["costUsd"] == usd(costs["301"]) and file["superseded"] is False
        assert body["failedSamples"][0]["message"] == (
            'Internal Server Error: {"error": {"code": 500, "message": "boom", '
            '"status": "INTERNAL"}}'
        )
        assert body["failedSamples"][0]["line"] == 2
        assert body["malformedSamples"] == []


def test_job_cost_is_not_found_for_other_keys(world):
    for path in ("/v1/gateway/jobs/301/cost", "/v1/gateway/jobs/999/cost"):
        status, body = get(world, path, world["carol"])
        assert status == 404
        assert body["error"]["status"] == "NOT_FOUND"
    status, _ = get(world, "/v1/gateway/jobs/303/cost", world["bob"])
    assert status == 404
    response = world["client"].get("/v1/gateway/jobs/301/cost")
    assert response.status_code == 401


def test_master_spend_grouped_each_way(world):
    c = world["costs"]
    status, body = get(world, f"/v1/gateway/spend?{MARCH}&groupBy=key")
    assert status == 200, body
    assert body["scope"] == {"all": True} and body["currency"] == "USD"
    assert body["totals"]["costUsd"] == usd(*c.values())
    assert body["totals"]["rows"] == 6
    assert groups(body, "keyId") == {
        key_id(world["alice"]): usd(c["301"], c["302"]),
        key_id(world["carol"]): usd(c["303"]),
    }
    assert {g["alias"] for g in body["groups"]} == {"alice", "carol"}

    _, body = get(world, f"/v1/gateway/spend?{MARCH}&groupBy=team")
    assert groups(body, "team") == {"red": usd(c["301"], c["302"]), "blue": usd(c["303"])}
    _, body = get(world, f"/v1/gateway/spend?{MARCH}&groupBy=model")
    assert groups(body, "model") == {"gemini-3.5-flash-lite": usd(*c.values())}
    _, body = get(world, f"/v1/gateway/spend?{MARCH}&groupBy=day")
    assert [g["day"] for g in body["groups"]] == ["2025-03-04", "2025-03-05"]
    assert groups(body, "day") == {
        "2025-03-04": usd(c["301"]),
        "2025-03-05": usd(c["302"], c["303"]),
    }
    _, body = get(world, f"/v1/gateway/spend?{MARCH}&groupBy=label:env")
    assert body["groupBy"] == "label:env"
    assert groups(body, "value") == {
        "prod": usd(c["301"]),
        "dev": usd(c["302"]),
        None: usd(c["303"]),
    }
    _, body = get(world, "/v1/gateway/spend?start=2025-03-05&end=2025-03-05&groupBy=key")
    assert body["totals"]["costUsd"] == usd(c["302"], c["303"])


def test_keys_see_their_own_spend_and_team_admins_their_team(world):
    c = world["costs"]
    _, body = get(world, f"/v1/gateway/spend?{MARCH}&groupBy=key", world["carol"])
    assert body["scope"] == {"keyId": key_id(world["carol"])}
    assert groups(body, "keyId") == {key_id(world["carol"]): usd(c["303"])}
    _, body = get(world, f"/v1/gateway/spend?{MARCH}&groupBy=label:env", world["alice"])
    assert groups(body, "value") == {"prod": usd(c["301"]), "dev": usd(c["302"])}
    _, body = get(world, f"/v1/gateway/spend?{MARCH}&groupBy=team", world["bob"])
    assert body["scope"] == {"team": "red"}
    assert groups(body, "team") == {"red": usd(c["301"], c["302"])}


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("groupBy=owner", ["key, team, model, day, label:<name>"]),
        ("groupBy=label:Bad Name", ["label name"]),
        ("start=2025-13-01", ["YYYY-MM-DD"]),
        ("start=2025-03-05&end=2025-03-01", ["after"]),
        ("start=2020-01-01&end=2025-01-01", ["at most 366"]),
        ("group_by=key", ["start, end, groupBy"]),
    ],
)
def test_invalid_spend_parameters_are_400_naming_valid_values(world, query, names):
    status, body = get(world, f"/v1/gateway/spend?{query}")
    assert status == 400
    assert body["error"]["status"] == "INVALID_ARGUMENT"
    for name in names:
        assert name in body["error"]["message"]
