"""The retirement rule, the create-path check that every deployment is priced, and the
operator catalog's validation (pure: no emulator)."""

from datetime import date

import pytest

from shared.core import keys
from shared.core.config import ConfigError, parse_model_list
from shared.core.errors import ApiError
from shared.core.routing import resolve
from shared.cost import catalog, readiness, retirement

LIST = """
unpriced_models: {choice}
model_list:
  - {{model_name: old, litellm_params: {{model: vertex_ai/gemini-2.0-flash-001,
     vertex_project: p, vertex_location: us-central1}}}}
  - {{model_name: old, litellm_params: {{model: vertex_ai/gemini-3.5-flash-lite,
     vertex_project: p, vertex_location: us}}}}
  - {{model_name: gone, litellm_params: {{model: vertex_ai/gemini-2.5-pro,
     vertex_project: p, vertex_location: global}}}}
  - {{model_name: new, litellm_params: {{model: vertex_ai/gemini-3.8-flash,
     vertex_project: p, vertex_location: global}}}}
  - {{model_name: priced-by-hand, litellm_params: {{model: vertex_ai/gemini-9-nova,
     vertex_project: p, vertex_location: global, input_cost_per_token: 0.000001}}}}
"""


def test_a_retired_model_is_refused_naming_its_successor():
    assert retirement.refusal("gemini-2.0-flash-001", date(2026, 5, 31)) is None
    assert retirement.refusal("gemini-2.0-flash-001", date(2026, 6, 1)) == (
        "Model 'gemini-2.0-flash-001' was retired on 2026-06-01; use 'gemini-3.5-flash-lite' "
        "instead."
    )
    assert retirement.refusal("gemini-2.5-pro", date(2026, 12, 7)) == (
        "Model 'gemini-2.5-pro' was retired on 2026-10-20; use 'gemini-3.8-flash' instead "
        "(or 'gemini-3.5-flash')."
    )
    assert retirement.refusal("gemini-3.8-flash", date(2030, 1, 1)) is None
    assert retirement.refusal("gemini-9-nova", date(2030, 1, 1)) is None


def test_routing_drops_retired_deployments_and_refuses_when_none_is_left():
    models = parse_model_list(LIST.format(choice="allow"))
    on = retirement.refuser(date(2026, 12, 7))
    [kept] = resolve("old", models, keys.master_caller(), refuse=on)
    assert kept.model == "gemini-3.5-flash-lite"
    with pytest.raises(ApiError) as info:
        resolve("gone", models, keys.master_caller(), refuse=on)
    assert info.value.code == 400
    assert "gemini-3.8-flash" in info.value.message
    assert (
        len(resolve("old", models, keys.master_caller())) == 2
    )  # no rule: routing alone keeps both


def test_refuser_defaults_to_today():
    rule = retirement.refuser()
    assert rule("gemini-2.0-flash") is not None
    assert rule("gemini-3.8-flash") is None


def test_unpriced_deployments_refuse_the_config_or_load_when_allowed():
    refused = parse_model_list(LIST.format(choice="refuse").replace("gemini-3.8-flash", "gemini-x"))
    assert [d.model for d in readiness.unpriced(refused)] == ["gemini-x"]
    with pytest.raises(ConfigError) as info:
        readiness._checked("v", refused)
    assert "new (gemini-x)" in str(info.value)
    assert "vbg prices import" in str(info.value) and "unpriced_models: allow" in str(info.value)
    allowed = parse_model_list(LIST.format(choice="allow").replace("gemini-3.8-flash", "gemini-x"))
    assert readiness._checked("v", allowed) is allowed
    priced = parse_model_list(LIST.format(choice="refuse"))
    assert readiness.unpriced(priced) == []  # the override prices gemini-9-nova
    assert readiness._checked("v", priced) is priced


def test_unpriced_message_says_how_to_fix_it():
    text = readiness.unpriced_message("gemini-x")
    assert "'gemini-x' has no price" in text and "input_cost_per_token" in text


def _entry(**changes):
    entry = {
        "kind": "gemini",
        "prices": [
            {"from": None, "tiers": [{"max_prompt_tokens": None, "online": {"input": "1"}}]}
        ],
        "sources": ["operator"],
    }
    entry.update(changes)
    return entry


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (_entry(kind="audio"), "kind must be one of"),
        (_entry(billing="pages"), "billing must be"),
        (_entry(prices=[]), "prices must be a list"),
        (_entry(sources=[]), "sources must name"),
        (_entry(prices=[{"from": "2027-13-01", "tiers": []}]), "from must be YYYY-MM-DD"),
        (
            _entry(prices=[{"from": None, "tiers": [{"max_prompt_tokens": 5, "online": {}}]}]),
            "the last tier has max_prompt_tokens null",
        ),
        (
            _entry(
                prices=[
                    {
                        "from": None,
                        "tiers": [{"max_prompt_tokens": None, "online": {"input": "-1"}}],
                    }
                ]
            ),
            "between 0 and 1000000",
        ),
        (
            _entry(
                prices=[
                    {"from": None, "tiers": [{"max_prompt_tokens": None, "online": {"inp": "1"}}]}
                ]
            ),
            "unknown rate 'inp'",
        ),
        (
            _entry(
                prices=[
                    {"from": None, "tiers": [{"max_prompt_tokens": None, "online": {}}]},
                    {"from": None, "tiers": [{"max_prompt_tokens": None, "online": {}}]},
                ]
            ),
            "null only for the first period",
        ),
        (
            _entry(
                prices=[
                    {"from": "2027-01-01", "tiers": [{"max_prompt_tokens": None, "online": {}}]},
                    {"from": "2026-01-01", "tiers": [{"max_prompt_tokens": None, "online": {}}]},
                ]
            ),
            "later than the period before",
        ),
        (_entry(regional_uplift="x"), "decimal string"),
    ],
)
def test_an_operator_entry_is_validated(entry, message):
    with pytest.raises(catalog.CatalogError) as info:
        catalog.validate_entry("m", entry)
    assert message in str(info.value)


def test_every_bundled_entry_passes_the_operator_validation():
    catalog.validate_models(catalog.bundled()["models"])


def test_overlay_adds_and_replaces_models_and_names_both_versions():
    base = catalog.bundled()
    merged = catalog.overlay(base, {"gemini-3.8-flash": _entry(), "gemini-9": _entry()}, "op-1")
    assert merged.version == f"{base['version']}+op-1"
    assert merged.table["models"]["gemini-3.8-flash"] == _entry()
    assert "gemini-9" in merged.table["models"] and "gemini-3.5-flash" in merged.table["models"]
    assert "gemini-9" not in base["models"]


def test_every_alternative_is_named(monkeypatch):
    base = catalog.bundled()
    entry = dict(base["models"]["gemini-2.5-pro"])
    entry["facts"] = {**entry["facts"], "alternatives": ["gemini-3.5-flash", "gemini-3.6-flash"]}
    merged = catalog.overlay(base, {"gemini-2.5-pro": entry}, "op-alt")
    monkeypatch.setattr(catalog, "current", lambda: merged)
    assert retirement.refusal("gemini-2.5-pro", date(2026, 12, 7)) == (
        "Model 'gemini-2.5-pro' was retired on 2026-10-20; use 'gemini-3.8-flash' instead "
        "(or 'gemini-3.5-flash', 'gemini-3.6-flash')."
    )
