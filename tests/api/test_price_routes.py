"""The price routes (master key) on the emulators: the catalog in force, one model, and an
import that shows its diff, applies only when asked, makes a new operator version that
prices at once, and never re-prices what was already booked."""

import pytest

from shared.cost import catalog, pricing
from tests.support import MASTER_KEY, auth, gateway_env, passthrough_client, reset_process

NEW = {
    "vertex_ai/gemini-3.9-flash": {
        "litellm_provider": "vertex_ai",
        "mode": "chat",
        "input_cost_per_token": 1e-06,
        "output_cost_per_token": 5e-06,
        "regional_endpoint_uplift_multiplier": 1.1,
    },
    "gemini-3.8-flash": {
        "litellm_provider": "vertex_ai-language-models",
        "mode": "chat",
        "input_cost_per_token": 7.5e-07,
        "output_cost_per_token": 3.75e-06,
        "cache_read_input_token_cost": 7.5e-08,
    },
}


@pytest.fixture
def prices(gcp, monkeypatch, tmp_path):
    gateway_env(monkeypatch, tmp_path, vertex_url="http://127.0.0.1:9")
    monkeypatch.setenv("VBG_PRICE_CATALOG", "firestore")
    reset_process()
    catalog.forget()
    pricing.cache_clear()
    yield passthrough_client()
    catalog.forget()
    pricing.cache_clear()


def test_list_and_show_the_catalog_in_force(prices):
    listed = prices.get("/v1/gateway/prices", headers=auth(MASTER_KEY))
    assert listed.status_code == 200, listed.get_data(as_text=True)
    body = listed.get_json()
    assert body["catalogVersion"] == pricing.bundled()["version"]
    assert body["operatorVersion"] is None
    names = [m["model"] for m in body["models"]]
    assert "gemini-3.8-flash" in names and "gemini-embedding-2" in names
    shown = prices.get(
        "/v1/gateway/prices/gemini-3.8-flash?location=us&at=2027-01-01", headers=auth(MASTER_KEY)
    )
    view = shown.get_json()
    # from 2027-01-01: batch 0.75 / 3.75 per 1M, x 1.1 in us
    assert view["batch"] == [
        {"maxPromptTokens": None, "input": "0.825", "output": "4.125", "cachedInput": "0.165"}
    ]
    assert view["periodFrom"] == "2027-01-01" and view["regionalUplift"] == "1.1"
    assert all(s["url"].startswith("https://") for s in view["sources"].values())
    missing = prices.get("/v1/gateway/prices/gemini-9-nope", headers=auth(MASTER_KEY))
    assert missing.status_code == 404 and "gemini-9-nope" in missing.get_json()["error"]["message"]
    bad = prices.get("/v1/gateway/prices/gemini-3.8-flash?at=yesterday", headers=auth(MASTER_KEY))
    assert bad.status_code == 400


def test_an_import_shows_its_diff_and_applies_only_when_asked(prices):
    body = {"source": "litellm", "document": NEW}
    shown = prices.post("/v1/gateway/prices:import", json=body, headers=auth(MASTER_KEY))
    assert shown.status_code == 200, shown.get_data(as_text=True)
    report = shown.get_json()
    statuses = {c["model"]: c["status"] for c in report["diff"]}
    assert statuses == {"gemini-3.9-flash": "added", "gemini-3.8-flash": "changed"}
    assert report["applied"] is None
    assert "gemini-3.9-flash" not in pricing.known_models()

    applied = prices.post(
        "/v1/gateway/prices:import",
        json={**body, "models": ["gemini-3.9-flash"], "apply": True, "note": "3.9 launch"},
        headers=auth(MASTER_KEY),
    ).get_json()
    version = applied["applied"]
    assert version and version.startswith("op-")
    catalog.forget()
    assert pricing.version() == f"{pricing.bundled()['version']}+{version}"
    # 1e-06 USD a token online: batch 500 nanos a token, x 1.1 in a region
    assert pricing.row_cost_nanos("gemini-3.9-flash", pricing.RowTokens(prompt=10)) == 5000
    regional = pricing.row_cost_nanos(
        "gemini-3.9-flash", pricing.RowTokens(prompt=10), location="us-central1"
    )
    assert regional == 5500
    listed = prices.get("/v1/gateway/prices", headers=auth(MASTER_KEY)).get_json()
    assert listed["operatorVersion"] == version
    assert listed["history"][0]["note"] == "3.9 launch"
    assert listed["history"][0]["changed"] == ["gemini-3.9-flash"]
    # the same import again changes nothing: no new version
    again = prices.post(
        "/v1/gateway/prices:import",
        json={**body, "models": ["gemini-3.9-flash"], "apply": True},
        headers=auth(MASTER_KEY),
    ).get_json()
    assert again["applied"] is None
    assert {c["status"] for c in again["diff"]} == {"unchanged"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"source": "csv", "document": {}}, "source"),
        ({"source": "litellm", "document": [], "extra": 1}, "Unknown field"),
        ({"source": "litellm", "document": []}, "JSON object of models"),
        ({"source": "litellm", "document": {}, "apply": "yes"}, "apply"),
        ({"source": "litellm", "document": {}, "models": ["a/b"]}, "models"),
        (
            {
                "source": "litellm",
                "document": {
                    "gemini-x": {"litellm_provider": "vertex_ai", "input_cost_per_token": "x"}
                },
            },
            "not a number",
        ),
    ],
)
def test_bad_imports_are_400_in_the_envelope(prices, body, message):
    response = prices.post("/v1/gateway/prices:import", json=body, headers=auth(MASTER_KEY))
    assert response.status_code == 400, response.get_data(as_text=True)
    assert message in response.get_json()["error"]["message"]


def test_apply_needs_the_operator_catalog(gcp, monkeypatch, tmp_path):
    gateway_env(monkeypatch, tmp_path, vertex_url="http://127.0.0.1:9")
    monkeypatch.setenv("VBG_PRICE_CATALOG", "bundled")
    reset_process()
    client = passthrough_client()
    response = client.post(
        "/v1/gateway/prices:import",
        json={"source": "litellm", "document": NEW, "apply": True},
        headers=auth(MASTER_KEY),
    )
    assert response.status_code == 400
    assert "VBG_PRICE_CATALOG=firestore" in response.get_json()["error"]["message"]
