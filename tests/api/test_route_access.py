"""Every route of `shared/api/routes.py` by every kind of caller: refused exactly as declared.

The matrix is generated from `ROUTES`, so a new route is in it the moment it is added, and
`ACCESS` below must name it (with the access its author means it to have) or
`test_every_route_has_an_expected_access` fails: a route cannot be added, or its `auth`
changed, without saying here who may call it.

Adding a route: add its name to `ACCESS`; if its path has a group not in `SAMPLE_VALUES` (or
regex outside its groups), add a sample value or a `SAMPLE_PATHS` entry. The refusal is
checked in the route's own error shape (`errors`: the Google envelope, or OpenAI's).
"""

import re

import pytest

from local.vertex_sim import SimulatorThread
from shared.api.http import _match
from shared.api.routes import ROUTES
from tests.support import MASTER_KEY, auth, create_key, gateway_env, passthrough_client

# Who may call each route: "master" (the master key only), "key" (any valid key), "none"
# (anyone, key or not). Written by hand, on purpose: it is the second place the access is
# stated, so a route declared with the wrong `auth` fails here.
ACCESS = {
    "jobs.create": "key",
    "jobs.list": "key",
    "jobs.get": "key",
    "jobs.cancel": "key",
    "jobs.delete": "key",
    "operations.get": "key",
    "jobs.cost": "key",
    "spend": "key",
    "budget.self": "key",
    "estimate": "key",
    "teams.put": "master",
    "teams.get": "master",
    "keys.create": "master",
    "keys.list": "master",
    "keys.get": "master",
    "keys.update": "master",
    "keys.revoke": "master",
    "health": "none",
    "openapi": "none",
    "prices.list": "master",
    "prices.get": "master",
    "prices.import": "master",
    "jobs.reprice": "master",
    "openai.files.create": "key",
    "openai.files.list": "key",
    "openai.files.get": "key",
    "openai.files.content": "key",
    "openai.files.delete": "key",
    "openai.batches.create": "key",
    "openai.batches.list": "key",
    "openai.batches.get": "key",
    "openai.batches.cancel": "key",
    "openai.uploads.create": "key",
    "openai.uploads.parts": "key",
    "openai.uploads.complete": "key",
    "openai.uploads.cancel": "key",
    "webhooks.create": "key",
    "webhooks.list": "key",
    "webhooks.get": "key",
    "webhooks.delete": "key",
    "webhooks.rotate": "key",
    "webhooks.deliveries": "key",
    "webhooks.replay": "key",
    "me": "key",
    "gateway.jobs.list": "key",
    "gateway.jobs.get": "key",
    "jobs.retry": "key",
    "spend.daily": "key",
    "spend.export": "key",
    "runs.create": "key",
    "runs.list": "key",
    "runs.get": "key",
    "runs.cost": "key",
    "runs.cancel": "key",
    "runs.retry": "key",
    "uploads.create": "key",
    "console.root": "none",
    "console": "none",
}

# A value for each named group of a route pattern (ids that exist nowhere: a handler that
# runs answers 4xx, never touching a real record).
SAMPLE_VALUES = {
    "version": "v1",
    "project": "matrix-project",
    "location": "us-central1",
    "job_id": "9876543210",
    "operation_id": "1234567890",
    "key_id": "0123456789abcdef",
    "team": "matrix-team",
    "file_id": "file-matrix0000000000000000",
    "batch_id": "batch_matrix000000000000000",
    "file": "app.css",
    "model": "gemini-9-matrix",
    "endpoint_id": "we_000000000000000000matrix",
    "upload_id": "upload_0000000000000matrix",
    "delivery_id": "wd_000000000000000000matrix",
    "run_id": "run-0123456789abcdef",
}
# Paths for patterns SAMPLE_VALUES cannot fill in (regex outside a group).
SAMPLE_PATHS: dict[str, str] = {}

CALLERS = ("master", "team_admin", "plain", "revoked", "unknown", "none")
# caller -> the access levels it passes
PASSES = {
    "master": {"master", "key", "none"},
    "team_admin": {"key", "none"},
    "plain": {"key", "none"},
    "revoked": {"none"},
    "unknown": {"none"},
    "none": {"none"},
}
# A refused caller: (status, text in the message, Google status).
REFUSAL = {
    "team_admin": (403, "needs the master key", "PERMISSION_DENIED"),
    "plain": (403, "needs the master key", "PERMISSION_DENIED"),
    "revoked": (401, "has been revoked", "UNAUTHENTICATED"),
    "unknown": (401, "is not valid", "UNAUTHENTICATED"),
    "none": (401, "No gateway API key", "UNAUTHENTICATED"),
}


def _fill_groups(pattern: str) -> str:
    """The pattern with each named group replaced by its sample value."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("(?P<", i):
            name = pattern[i + 4 : pattern.index(">", i)]
            depth, j = 0, i
            while True:
                if pattern[j] == "\\":
                    j += 2
                    continue
                depth += {"(": 1, ")": -1}.get(pattern[j], 0)
                j += 1
                if depth == 0:
                    break
            if name not in SAMPLE_VALUES:
                raise LookupError(f"no sample value for the path group {name!r}")
            out.append(SAMPLE_VALUES[name])
            i = j
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)


def sample_path(route) -> str:
    if route.name in SAMPLE_PATHS:
        return SAMPLE_PATHS[route.name]
    path = _fill_groups(route.pattern.pattern.removeprefix("^").removesuffix("$"))
    path = re.sub(r"\\(.)", r"\1", path)
    assert route.pattern.fullmatch(path), (
        f"route {route.name}: cannot make a sample path from {route.pattern.pattern!r}; "
        "add one to SAMPLE_PATHS"
    )
    return path


def test_every_route_has_an_expected_access():
    declared = {r.name: r.auth for r in ROUTES}
    assert len(declared) == len(ROUTES), "route names must be unique"
    missing = sorted(set(declared) - set(ACCESS))
    assert not missing, f"routes without an expected access in ACCESS: {missing}"
    gone = sorted(set(ACCESS) - set(declared))
    assert not gone, f"ACCESS names routes the table no longer has: {gone}"
    wrong = {n: (declared[n], ACCESS[n]) for n in declared if declared[n] != ACCESS[n]}
    assert not wrong, f"declared auth differs from the expected access: {wrong}"


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_each_sample_path_reaches_its_own_route(route):
    """The matrix's request for a route is served by that route, not an earlier row."""
    found, _ = _match(ROUTES, route.method, sample_path(route))
    assert found is route


@pytest.fixture(scope="module")
def world(gcp_module, tmp_path_factory):
    """One gateway, and the header of each kind of caller."""
    with SimulatorThread(speed=0.05) as sim, pytest.MonkeyPatch.context() as monkeypatch:
        gateway_env(monkeypatch, tmp_path_factory.mktemp("matrix"), vertex_url=sim.url)
        client = passthrough_client()
        bucket = gcp_module["bucket"]
        prefixes = {
            "inputPrefixes": [f"gs://{bucket}/in/"],
            "outputPrefixes": [f"gs://{bucket}/out/"],
        }
        revoked = create_key(client, alias="revoked", **prefixes)
        listed = client.get("/v1/gateway/keys", headers=auth(MASTER_KEY)).get_json()["keys"]
        revoked_id = next(k["id"] for k in listed if k["alias"] == "revoked")
        response = client.post(f"/v1/gateway/keys/{revoked_id}:revoke", headers=auth(MASTER_KEY))
        assert response.status_code == 200
        headers = {
            "master": auth(MASTER_KEY),
            "team_admin": auth(
                create_key(client, alias="lead", team="matrix-team", teamAdmin=True, **prefixes)
            ),
            "plain": auth(create_key(client, alias="plain", team="matrix-team", **prefixes)),
            "revoked": auth(revoked),
            "unknown": auth("vbg-" + "x" * 43),
            "none": {},
        }
        yield client, headers


def _message(body) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("message", "")) if isinstance(error, dict) else ""


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_route_by_caller(world, route, caller):
    client, headers = world
    response = client.open(sample_path(route), method=route.method, headers=headers[caller])
    body = response.get_json(silent=True)
    if route.auth in PASSES[caller]:
        refused = response.status_code == 401 or (
            response.status_code == 403 and "master key" in _message(body)
        )
        assert not refused, f"{caller} refused on {route.name}: {response.get_data()!r}"
        assert response.status_code < 500, response.get_data(as_text=True)
        return
    code, text, status = REFUSAL[caller]
    assert response.status_code == code, response.get_data(as_text=True)
    assert text in _message(body)
    if route.errors == "openai":
        assert set(body["error"]) == {"message", "type", "param", "code"}, body
    else:
        assert body["error"]["code"] == code and body["error"]["status"] == status
