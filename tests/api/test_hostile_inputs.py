"""Issue #22 items 13-15: names with a trailing newline, lone surrogates, key updates.

Each request here was reproduced against the gateway of the time (a 500, a 503, or a value
stored that should have been refused); each must now get a clear 4xx in the route's error
shape, on real parts (emulators, simulator).
"""

import pytest

from shared.api import console, http, job_routes, passthrough
from shared.core import gcs_paths
from shared.core.errors import ApiError
from shared.core.labels import validate_labels
from shared.jobs import lifecycle
from tests.api.test_passthrough import create, error_of
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
