"""Issue #22 items 13-15: names with a trailing newline, lone surrogates, key updates.

Each request here was reproduced against the gateway of the time (a 500, a 503, or a value
stored that should have been refused); each must now get a clear 4xx in the route's error
shape, on real parts (emulators, simulator).
"""

import base64
import io
import json

import pytest

from shared.api import console, http, job_routes, passthrough
from shared.core import gcs_paths
from shared.core.errors import ApiError
from shared.core.labels import validate_labels
from shared.jobs import lifecycle
from tests.api.test_passthrough import JOBS, create, error_of
from tests.support import MASTER_KEY, auth, job_body

# --- item 13: `$` where the whole string was meant --------------------------------------------


def test_a_label_key_with_a_trailing_newline_is_refused_everywhere(gateway, gcp, alice):
    refused = create(gateway, alice, job_body(gcp["bucket"], labels={"team\n": "a"}))
    assert refused.status_code == 400
    assert error_of(refused)["message"].startswith("Label key 'team\\n' is invalid")
    made = gateway.post(
        "/v1/gateway/keys",
        json={"alias": "nl", "labels": {"team\n": "a"}},
        headers=auth(MASTER_KEY),
    )
    assert made.status_code == 400 and "'team\\n'" in made.get_json()["error"]["message"]
    spend = gateway.get("/v1/gateway/spend?groupBy=label:team%0A", headers=auth(MASTER_KEY))
    assert spend.status_code == 400
    assert error_of(spend)["message"].startswith("`groupBy` 'label:team\\n'")


@pytest.mark.parametrize(
    ("accepts", "value"),
    [
        (lambda v: http._match([http.route("GET", "x", None, name="x")], "GET", v), "/x"),
        (lambda v: validate_labels({v: "x"}), "team"),
        (lambda v: gcs_paths.problem(v + "/a") is None, "gs://bucket"),
        (lambda v: console._load(v), "index.html"),
    ],
)
def test_each_whole_string_rule_refuses_a_trailing_newline(accepts, value):
    """Each rule accepts `value` and refuses it with a newline appended: the newline is part
    of the string, never past its end."""

    def verdict(text):
        try:
            return bool(accepts(text))
        except ApiError:
            return False

    assert verdict(value) and not verdict(value + "\n")


def test_a_bucket_with_a_trailing_newline_is_named_as_no_bucket():
    assert "'bucket\\n' is not a bucket name" in gcs_paths.problem("gs://bucket\n/a")


def test_ids_with_a_trailing_newline_are_malformed(gateway, gcp):
    from shared.api.http import Request
    from shared.core import keys

    request = Request("GET", "/", {}, {}, caller=keys.master_caller())
    for visible in (passthrough._visible_job, job_routes._visible):
        with pytest.raises(ApiError) as raised:
            visible(request, "123\n")
        assert raised.value.code == 400 and "malformed" in raised.value.message
    event = {"message_id": "m1", "data": None, "attributes": {"type": "job.cancel_requested"}}
    event["attributes"]["job_id"] = "123\n"
    assert lifecycle.handle_message(**event) == "malformed"


# --- item 14: lone surrogates, refused where JSON text is parsed -----------------------------

LONE = "\\ud800"  # JSON's escape of a lone UTF-16 surrogate, as a client sends it


def post_text(gateway, path: str, text: str, key: str):
    return gateway.post(path, data=text, content_type="application/json", headers=auth(key))


def test_a_lone_surrogate_in_a_body_is_400_naming_where(gateway, gcp, alice):
    bucket = gcp["bucket"]
    key = post_text(
        gateway,
        "/v1/gateway/keys",
        f'{{"alias": "s", "inputPrefixes": ["gs://{bucket}/in/{LONE}/"]}}',
        MASTER_KEY,
    )
    assert key.status_code == 400
    assert error_of(key)["message"].startswith("The request body's inputPrefixes[0] holds a lone")
    body = json.dumps(job_body(bucket, input_uri=f"gs://{bucket}/in/X.jsonl"))
    job = post_text(gateway, JOBS, body.replace("X.jsonl", LONE + ".jsonl"), alice)
    assert job.status_code == 400
    assert "inputConfig.gcsSource.uris[0] holds a lone" in error_of(job)["message"]
    named = post_text(gateway, JOBS, body.replace('"test-job"', f'"x{LONE}"'), alice)
    assert named.status_code == 400 and "displayName holds a lone" in error_of(named)["message"]
    paired = json.dumps(job_body(bucket)).replace('"test-job"', '"\\ud83d\\ude00"')
    pair = post_text(gateway, JOBS, paired, alice)
    assert pair.status_code == 200, pair.get_data(as_text=True)  # a pair is a character
    token = base64.urlsafe_b64encode(f'{{"c": ["{LONE}", "", ""], "l": {{}}}}'.encode()).decode()
    listed = gateway.get(f"{JOBS}?pageToken={token}", headers=auth(alice))
    assert listed.status_code == 400 and "pageToken" in error_of(listed)["message"]


def openai_batch(gateway, key, lines: list[str], **fields):
    upload = gateway.post(
        "/v1/files",
        data={"purpose": "batch", "file": (io.BytesIO("\n".join(lines).encode()), "in.jsonl")},
        headers=auth(key),
        content_type="multipart/form-data",
    )
    assert upload.status_code == 200, upload.get_data(as_text=True)
    body = {
        "input_file_id": upload.get_json()["id"],
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        **fields,
    }
    return post_text(gateway, "/v1/batches", json.dumps(body).replace("LONE", LONE), key)


def chat(custom_id: str, content: str) -> str:
    body = {"model": "gemini-3.5-flash-lite", "messages": [{"role": "user", "content": content}]}
    line = {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions"}
    return json.dumps({**line, "body": body}).replace("LONE", LONE)


def test_a_lone_surrogate_on_the_openai_door_is_a_4xx_or_a_line_error(gateway, alice):
    metadata = openai_batch(gateway, alice, [chat("a", "hi")], metadata={"k": "xLONE"})
    assert metadata.status_code == 400
    error = metadata.get_json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", "metadata.k")
    tool = {"role": "assistant", "tool_calls": [{"type": "function", "function": {}}]}
    tool["tool_calls"][0]["function"] = {"name": "f", "arguments": '{"a": "' + LONE + '"}'}
    deep = json.dumps({"custom_id": "d", "body": {"x": [[[0]]]}}).replace("[[[0]]]", "[" * 5000)
    lines = [chat("a", "hi"), chat("b", "xLONE"), deep]
    lines.append(chat("c", "hi").replace('"messages": [', f'"messages": [{json.dumps(tool)}, '))
    batch = openai_batch(gateway, alice, lines)
    assert batch.status_code == 200, batch.get_data(as_text=True)
    found = batch.get_json()
    assert found["status"] == "failed"
    errors = {e["line"]: e for e in found["errors"]["data"]}
    assert sorted(errors) == [2, 3, 4]
    assert errors[2]["param"] == "body.messages[0].content" and "lone" in errors[2]["message"]
    assert errors[3]["code"] == "invalid_json" and "nested too deeply" in errors[3]["message"]
    assert errors[4]["param"] == "messages[0].tool_calls[0]"


def test_an_input_line_nested_past_what_json_loads_parses_is_refused(gateway, gcp, alice):
    """A neighbour of item 14: `json.loads` raises RecursionError (not a ValueError) past
    about a thousand levels, which the create's input check and estimate let through (500)."""
    from shared.core import clients

    clients.storage().bucket(gcp["bucket"]).blob("in/deep.jsonl").upload_from_string(
        "[" * 100_000 + "\n"
    )
    body = job_body(gcp["bucket"], input_uri=f"gs://{gcp['bucket']}/in/deep.jsonl")
    estimate = gateway.post("/v1/gateway/estimate", json=body, headers=auth(alice))
    assert estimate.status_code == 200 and estimate.get_json()["malformedRows"] == 1
    refused = create(gateway, alice, body)
    assert refused.status_code == 400 and "nested too deeply" in error_of(refused)["message"]


# --- item 15: key updates ----------------------------------------------------------------------


def test_a_key_update_naming_nothing_changes_nothing(gateway, alice):
    from shared.core import keys

    key_id = keys.hash_key(alice)[:16]
    path = f"/v1/gateway/keys/{key_id}"
    before = gateway.get(path, headers=auth(MASTER_KEY)).get_json()
    for body in ("{}", ""):
        reply = gateway.patch(
            path, data=body, content_type="application/json", headers=auth(MASTER_KEY)
        )
        assert reply.status_code == (200 if body else 400), reply.get_data(as_text=True)
    assert gateway.get(path, headers=auth(MASTER_KEY)).get_json() == before


def test_key_lists_are_stored_once_each_and_bounded(gateway, gcp):
    bucket = gcp["bucket"]
    made = gateway.post(
        "/v1/gateway/keys",
        json={
            "alias": "lists",
            "models": ["gemini-3.1-pro-preview", "gemini-3.5-flash-lite"] * 5000,
            "inputPrefixes": [f"gs://{bucket}/a", f"gs://{bucket}/a/", f"gs://{bucket}/b/"],
        },
        headers=auth(MASTER_KEY),
    )
    assert made.status_code == 200, made.get_data(as_text=True)
    assert made.get_json()["models"] == ["gemini-3.1-pro-preview", "gemini-3.5-flash-lite"]
    assert made.get_json()["inputPrefixes"] == [f"gs://{bucket}/a/", f"gs://{bucket}/b/"]
    path = f"/v1/gateway/keys/{made.get_json()['id']}"
    for field, values in (
        ("models", [f"m{n}" for n in range(101)]),
        ("outputPrefixes", [f"gs://{bucket}/{n}/" for n in range(101)]),
        ("inputPrefixes", [f"gs://{bucket}/{'x' * 60_000}/", f"gs://{bucket}/{'y' * 6_000}/"]),
    ):
        refused = gateway.patch(path, json={field: values}, headers=auth(MASTER_KEY))
        assert refused.status_code == 400, refused.get_data(as_text=True)
        error = error_of(refused)
        assert error["message"].startswith(f"`{field}` holds {len(values)} distinct entries")
    assert gateway.patch(path, json={"models": []}, headers=auth(MASTER_KEY)).status_code == 200
