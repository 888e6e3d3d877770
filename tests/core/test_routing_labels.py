"""Model names to deployments, and Vertex's label rules."""

import pytest

from shared.core.config import parse_model_list
from shared.core.errors import ApiError
from shared.core.keys import Caller
from shared.core.labels import label_value, validate_labels
from shared.core.routing import public_model_name, resolve

ANYONE = Caller("k", "a")  # a key without a model list: every model
MODELS = parse_model_list(
    """
model_list:
  - {model_name: gemini-2.5-flash, litellm_params: {model: vertex_ai/gemini-2.5-flash,
     vertex_project: p, vertex_location: us-central1}}
  - {model_name: cheap, litellm_params: {model: vertex_ai/gemini-2.5-flash-lite,
     vertex_project: p, vertex_location: us-central1}}
"""
)


@pytest.mark.parametrize(
    "model",
    [
        "gemini-2.5-flash",
        "publishers/google/models/gemini-2.5-flash",
        "projects/x/locations/us-central1/publishers/google/models/gemini-2.5-flash",
        "models/gemini-2.5-flash",
        "gemini-2.5-flash@default",
    ],
)
def test_every_model_form_names_the_public_model(model):
    assert public_model_name(model) == "gemini-2.5-flash"


def test_friendly_name_maps_to_its_deployment():
    [deployment] = resolve("cheap", MODELS, ANYONE)
    assert deployment.model == "gemini-2.5-flash-lite"


def test_unknown_model_is_400_naming_the_known_ones():
    with pytest.raises(ApiError) as raised:
        resolve("gemini-9", MODELS, ANYONE)
    assert raised.value.code == 400
    assert "Known models: cheap, gemini-2.5-flash" in raised.value.message


def test_model_outside_the_key_is_403_naming_the_allowed_ones():
    with pytest.raises(ApiError) as raised:
        resolve("gemini-2.5-flash", MODELS, Caller("k", "a", models=("cheap",)))
    assert raised.value.code == 403
    assert raised.value.message == (
        "This key may not use model 'gemini-2.5-flash'. Allowed models: cheap."
    )
    limited = Caller("k", "a", models=("cheap", "gemini-2.5-flash"))
    assert [d.model for d in resolve("models/cheap", MODELS, limited)] == ["gemini-2.5-flash-lite"]
    master = Caller("m", "m", is_master=True, models=("cheap",))
    assert resolve("gemini-2.5-flash", MODELS, master)[0].model == "gemini-2.5-flash"


BAD_KEY = (
    "is invalid: 1-63 characters, starting with a lowercase letter, then lowercase letters, "
    "digits, '_' or '-'."
)
BAD_VALUE = "is invalid: at most 63 lowercase letters, digits, '_' or '-'."


@pytest.mark.parametrize(
    ("labels", "field", "message"),
    [
        ({"Upper": "x"}, "labels.Upper", "Label key 'Upper' must be lowercase."),
        ({"1digit": "x"}, "labels.1digit", f"Label key '1digit' {BAD_KEY}"),
        ({"k" * 64: "x"}, f"labels.{'k' * 64}", f"Label key '{'k' * 64}' {BAD_KEY}"),
        ({"has space": "x"}, "labels.has space", f"Label key 'has space' {BAD_KEY}"),
        ({"k": "Upper"}, "labels.k", "Label value 'Upper' must be lowercase."),
        ({"k": "x" * 64}, "labels.k", f"Label value '{'x' * 64}' for 'k' {BAD_VALUE}"),
        ({"k": 5}, "labels.k", f"Label value 5 for 'k' {BAD_VALUE}"),
        (
            {"vbg-key": "spoof"},
            "labels.vbg-key",
            "Label key 'vbg-key' is reserved: the gateway sets labels starting with 'vbg-' itself.",
        ),
        ({f"k{i}": "v" for i in range(65)}, "labels", "At most 64 labels are allowed."),
    ],
)
def test_labels_outside_vertex_rules_are_refused_naming_the_label(labels, field, message):
    with pytest.raises(ApiError) as raised:
        validate_labels(labels)
    assert (raised.value.code, raised.value.message, raised.value.param) == (400, message, field)
    assert raised.value.details[0]["fieldViolations"] == [{"field": field, "description": message}]


def test_valid_labels_pass_and_team_names_squeeze_into_label_values():
    assert validate_labels({"cost-center": "cc_42", "env": ""}) == {
        "cost-center": "cc_42",
        "env": "",
    }
    assert label_value("Data Science / EU") == "data-science-eu"


def test_a_label_value_is_at_most_63_characters_without_edge_dashes():
    assert label_value("!" + "a" * 100 + "!") == "a" * 63
    assert label_value("  Ops  ") == "ops"
    assert label_value("--x--") == "x"
    # the longest valid label, and one character more
    assert validate_labels({"k" * 63: "v" * 63}) == {"k" * 63: "v" * 63}
    assert validate_labels({f"k{i}": "v" for i in range(64)})


def test_vertex_hosts_by_location(monkeypatch):
    from shared.core import vertex
    from tests.support import reset_process

    monkeypatch.delenv("VBG_VERTEX_ENDPOINT", raising=False)
    reset_process()
    assert vertex.endpoint("global") == "https://aiplatform.googleapis.com"
    assert vertex.endpoint("us") == "https://aiplatform.us.rep.googleapis.com"
    assert vertex.endpoint("eu") == "https://aiplatform.eu.rep.googleapis.com"
    assert vertex.endpoint("us-central1") == "https://us-central1-aiplatform.googleapis.com"
    monkeypatch.setenv("VBG_VERTEX_ENDPOINT", "http://127.0.0.1:9/")
    reset_process()
    assert vertex.endpoint("us") == "http://127.0.0.1:9"
    monkeypatch.delenv("VBG_VERTEX_ENDPOINT")
    reset_process()


@pytest.mark.parametrize("model", [None, "", "   ", 7])
def test_a_missing_model_is_400_saying_it_is_required(model):
    with pytest.raises(ApiError) as info:
        resolve(model, MODELS, ANYONE)
    assert info.value.code == 400
    assert info.value.message == "`model` is required, e.g. gemini-2.5-flash."
