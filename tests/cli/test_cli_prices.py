"""`vbg prices`: the catalog offline (list, show with a location and a day) and the import
flow against the gateway (diff, then --apply), on the emulators."""

import json

import pytest

from shared.cli.main import main
from shared.cost import catalog, pricing
from tests.support import MASTER_KEY, gateway_env, passthrough_client, reset_process


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_show_offline_prints_the_rates_in_force_and_their_sources(capsys):
    code, out, err = run(
        capsys,
        "prices",
        "show",
        "gemini-3.8-flash",
        "--offline",
        "--at",
        "2027-01-02",
        "--location",
        "europe-west4",
    )
    assert code == 0, err
    # from 2027-01-01 batch 0.75 / 3.75, x 1.1 outside global
    assert "batch  any prompt" in out and "input $0.825, output $4.125" in out
    assert "https://" in out and "inferred:" in out
    code, out, err = run(capsys, "prices", "show", "gemini-3.8-flash", "--offline", "--json")
    view = json.loads(out)
    assert view["location"] == "global" and view["batch"][0]["input"] == "0.375"
    code, out, err = run(capsys, "prices", "show", "gemini-9", "--offline")
    assert code != 0 and "gemini-9" in err


def test_list_offline_names_every_model(capsys):
    code, out, err = run(capsys, "prices", "list", "--offline", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert [m["model"] for m in report["models"]] == pricing.known_models()
    flash = next(m for m in report["models"] if m["model"] == "gemini-3.5-flash")
    assert flash["batch"][0]["input"] == "0.75" and flash["regionalUplift"] == "1.1"


@pytest.fixture
def gateway(gcp, monkeypatch, tmp_path):
    gateway_env(monkeypatch, tmp_path, vertex_url="http://127.0.0.1:9")
    monkeypatch.setenv("VBG_PRICE_CATALOG", "firestore")
    reset_process()
    catalog.forget()
    pricing.cache_clear()
    client = passthrough_client()
    yield client
    catalog.forget()
    pricing.cache_clear()


def test_diff_then_import_apply_through_the_gateway(capsys, gateway, tmp_path, monkeypatch):
    import requests

    class Reply:
        def __init__(self, response):
            self.status_code = response.status_code
            self.ok = response.status_code < 400
            self.text = response.get_data(as_text=True)
            self._json = response.get_json(silent=True)

        def json(self):
            return self._json

    def request(method, url, json=None, params=None, headers=None, timeout=None):
        path = url.removeprefix("http://gw")
        return Reply(
            gateway.open(path, method=method, json=json, query_string=params, headers=headers)
        )

    monkeypatch.setattr(requests, "request", request)
    source = tmp_path / "map.json"
    source.write_text(
        json.dumps(
            {
                "gpt-9": {"litellm_provider": "openai", "input_cost_per_token": 1},
                "vertex_ai/gemini-3.9-flash": {
                    "litellm_provider": "vertex_ai",
                    "input_cost_per_token": 1e-06,
                    "output_cost_per_token": 5e-06,
                },
            }
        )
    )
    common = ["--gateway", "http://gw", "--master-key", MASTER_KEY]
    code, out, err = run(capsys, "prices", "diff", "--litellm", str(source), *common)
    assert code == 0, err
    assert "added     gemini-3.9-flash" in out and "not applied" in out
    assert "gemini-3.9-flash" not in pricing.known_models()
    code, out, err = run(capsys, "prices", "import", "--litellm", str(source), "--apply", *common)
    assert code == 0, err
    assert "applied: catalog op-" in out
    catalog.forget()
    assert "gemini-3.9-flash" in pricing.known_models()
    code, out, err = run(capsys, "prices", "show", "gemini-3.9-flash", *common)
    assert code == 0, err
    assert "input $0.5, output $2.5" in out  # batch: half of 1e-06 / 5e-06 a token
