"""The model list: LiteLLM's format, validated with errors that name entry, field and line."""

from decimal import Decimal

import pytest

from shared.core.config import ConfigError, parse_model_list

GOOD = """
model_list:
  - model_name: gemini-2.5-flash
    litellm_params:
      model: vertex_ai/gemini-2.5-flash
      vertex_project: prod-ml-123
      vertex_location: us-central1
      vertex_credentials: null
  - model_name: gemini-2.5-flash
    litellm_params: {model: vertex_ai/gemini-2.5-flash, vertex_project: prod-ml-123,
                     vertex_location: europe-west4, input_cost_per_token_batches: 0.00000015}
    model_info: {id: eu}
litellm_settings: {drop_params: true}
"""


def test_litellm_model_list_loads_with_failover_order_and_overrides():
    models = parse_model_list(GOOD)
    first, second = models.deployments_for("gemini-2.5-flash")
    assert (first.location, second.location) == ("us-central1", "europe-west4")
    assert first.model == "gemini-2.5-flash" and first.credentials is None
    assert first.model_resource == (
        "projects/prod-ml-123/locations/us-central1/publishers/google/models/gemini-2.5-flash"
    )
    assert dict(second.price_overrides) == {"input_cost_per_token_batches": Decimal("0.00000015")}
    assert models.model_names == ["gemini-2.5-flash"]
    assert models.locations() == [("prod-ml-123", "us-central1"), ("prod-ml-123", "europe-west4")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model_list: []", "must be a non-empty list"),
        ("", "empty; it needs a model_list"),
        ("other: 1\nmodel_list: []", "unknown top-level key 'other' at line 1"),
        (
            "model_list:\n  - model_name: a\n    litellm_params:\n      model: vertex_ai/a\n"
            "      vertex_project: p\n      vertex_location: l\n      temperature: 1\n",
            "model_list[0].litellm_params: unknown field 'temperature' at line 7",
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: vertex_ai/a,"
            " vertex_project: p}\n",
            "model_list[0].litellm_params (line 3): vertex_location is required",
        ),
        (
            "model_list:\n  - model_name: a\n    extra: 1\n",
            "model_list[0]: unknown field 'extra' at line 3",
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: openai/gpt-4,"
            " vertex_project: p, vertex_location: l}\n",
            "expected vertex_ai/<publisher model>",
        ),
        (
            "model_list:\n  - model_name: a\n    litellm_params: {model: vertex_ai/a,"
            " vertex_project: p, vertex_location: l, input_cost_per_token: cheap}\n",
            "input_cost_per_token (line 3) must be a number",
        ),
        ("model_list: [\n", "not valid YAML"),
        (
            "unpriced_models: maybe\nmodel_list:\n  - model_name: a\n    litellm_params: "
            "{model: a, vertex_project: p, vertex_location: l}\n",
            "unpriced_models (line 1) must be one of refuse, allow, got 'maybe'",
        ),
    ],
)
def test_bad_config_names_entry_field_and_line(text, message):
    with pytest.raises(ConfigError) as raised:
        parse_model_list(text, source="models.yaml")
    assert message in str(raised.value)
    assert str(raised.value).startswith("models.yaml")


@pytest.mark.parametrize(
    ("text", "choice"), [("", "refuse"), ("unpriced_models: allow\n", "allow")]
)
def test_unpriced_models_is_read_at_load(text, choice):
    body = (
        "model_list:\n  - {model_name: a, litellm_params: "
        "{model: a, vertex_project: p, vertex_location: l}}\n"
    )
    assert parse_model_list(text + body).unpriced_models == choice


def test_price_catalog_setting_is_checked(monkeypatch):
    from shared.core.config import settings
    from tests.support import reset_process

    monkeypatch.setenv("VBG_PRICE_CATALOG", "firestore")
    reset_process()
    assert settings().price_catalog == "firestore"
    monkeypatch.setenv("VBG_PRICE_CATALOG", "s3")
    reset_process()
    with pytest.raises(
        ConfigError, match="VBG_PRICE_CATALOG='s3' must be one of bundled, firestore"
    ):
        settings()
    monkeypatch.delenv("VBG_PRICE_CATALOG")
    reset_process()
    assert settings().price_catalog == "bundled"
