"""Pure parts of keys and auth: budget fields, where the key is read from, hashing."""

import pytest

from shared.api.http import api_key
from shared.core.errors import ApiError
from shared.core.keys import budget_fields, hash_key, key_id_of


@pytest.mark.parametrize(
    ("body", "current", "stored"),
    [
        ({"budgetUsd": "10"}, {}, ("10", "month")),
        ({"budgetUsd": 2.5, "budgetPeriod": "day"}, {}, ("2.5", "day")),
        ({"budgetUsd": "10", "budgetPeriod": "none"}, {}, ("10", "none")),
        ({}, {}, (None, "none")),
        ({"budgetUsd": "20"}, {"budget_usd": "10", "budget_period": "day"}, ("20", "day")),
        ({"budgetUsd": None}, {"budget_usd": "10", "budget_period": "day"}, (None, "day")),
    ],
)
def test_budget_fields(body, current, stored):
    assert budget_fields(body, current) == stored


@pytest.mark.parametrize(
    "body",
    [{"budgetUsd": "lots"}, {"budgetUsd": "-1"}, {"budgetUsd": "NaN"}, {"budgetPeriod": "week"}],
)
def test_bad_budget_fields_are_400(body):
    with pytest.raises(ApiError) as raised:
        budget_fields(body, {})
    assert raised.value.code == 400


def test_the_api_key_header_wins_over_a_google_bearer_token():
    assert api_key({"x-goog-api-key": "vbg-a", "authorization": "Bearer ya29.x"}) == "vbg-a"
    assert api_key({"authorization": "Bearer vbg-b"}) == "vbg-b"
    assert api_key({"authorization": "Basic abc"}) is None
    assert api_key({}) is None


def test_key_ids_are_a_prefix_of_the_hash_never_the_key():
    digest = hash_key("vbg-secret")
    assert len(digest) == 64 and "secret" not in digest
    assert key_id_of(digest) == digest[:16]
