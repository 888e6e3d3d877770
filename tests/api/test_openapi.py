"""The OpenAPI document is written from the route table: every route, and only those."""

import re

import pytest

from shared.api import openapi, routes
from shared.api.http import route
from tests.support import passthrough_client

SAMPLES = {"version": "v1beta1", "project": "p", "location": "l", "job_id": "123"}


def test_every_route_is_in_the_document_and_its_template_matches_its_regex():
    document = openapi.build(routes.ROUTES)
    documented = {
        (method.upper(), path) for path, ops in document["paths"].items() for method in ops
    }
    assert len(documented) == len(routes.ROUTES)
    for row in routes.ROUTES:
        template, params = openapi.path_template(row.pattern.pattern.removeprefix("^/"))
        assert (row.method, template) in documented
        operation = document["paths"][template][row.method.lower()]
        assert operation["operationId"] == row.name
        assert operation["x-vbg-errors"] == row.errors
        path = re.sub(r"\{(\w+)\}", lambda m: SAMPLES.get(m[1], "x"), template)
        assert row.pattern.match(path), (row.name, path)
        assert set(params) == set(row.pattern.groupindex)
        if row.auth == "none":
            assert operation["security"] == []


def test_a_route_without_schemas_fails_the_build():
    def handler(request):
        return None

    with pytest.raises(openapi.RouteUndocumented, match="no reply schema"):
        openapi.build([*routes.ROUTES, route("GET", r"v1/gateway/new", handler, name="new")])
    with pytest.raises(openapi.RouteUndocumented, match="no body schema"):
        openapi.build(
            [route("POST", r"v1/gateway/new", handler, name="new", reply={"type": "object"})]
        )
    with pytest.raises(openapi.RouteUndocumented, match="not plain text"):
        openapi.path_template(r"v1/gateway/(a|b)+")


def test_path_templates_and_parameter_patterns():
    template, params = openapi.path_template(routes.JOB + r":cancel")
    assert (
        template
        == "/{version}/projects/{project}/locations/{location}/batchPredictionJobs/{job_id}:cancel"
    )
    assert params["version"] == "v1|v1beta1"
    assert openapi._param_schema(params["version"]) == {"type": "string", "enum": ["v1", "v1beta1"]}
    assert openapi._param_schema(params["job_id"]) == {"type": "string", "pattern": "^[^/:]+$"}


def test_the_document_is_public(gcp, monkeypatch, tmp_path):
    from tests.support import gateway_env

    gateway_env(monkeypatch, tmp_path, vertex_url="http://127.0.0.1:9")
    response = passthrough_client().get("/v1/gateway/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"] == "3.1.0"
    assert "/v1/gateway/openapi.json" in document["paths"]
    assert document["components"]["schemas"]["GoogleError"]["required"] == ["error"]


@pytest.mark.parametrize(
    "path", ["/v1/gateway/keys/%0Ax", "/v1/gateway/jobs/%0A/cost", "/v1/projects/%0A/x"]
)
def test_paths_the_framework_cannot_route_get_the_envelope(gcp, monkeypatch, tmp_path, path):
    """Found by the fuzzer: werkzeug's own 404 page for a path holding a newline."""
    from tests.support import gateway_env

    gateway_env(monkeypatch, tmp_path, vertex_url="http://127.0.0.1:9")
    response = passthrough_client().get(path)
    assert response.status_code == 404
    body = response.get_json()
    assert set(body) == {"error"} and body["error"]["code"] == 404


def test_a_path_the_framework_cannot_route_gets_its_doors_error_shape(gcp, monkeypatch, tmp_path):
    from tests.support import gateway_env

    gateway_env(monkeypatch, tmp_path, vertex_url="http://127.0.0.1:9")
    response = passthrough_client().get("/v1/files/%0Ax")
    assert response.status_code == 404
    assert isinstance(response.get_json()["error"]["type"], str)
