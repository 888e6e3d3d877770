"""Pure parts of keys and auth: budget fields, where the key is read from, hashing."""

import pytest

from shared.api.http import api_key
from shared.core.errors import ApiError
from shared.core.keys import (
    Caller,
    _prefixes,
    authenticate,
    budget_fields,
    hash_key,
    key_id_of,
    master_caller,
)
from tests.support import reset_process


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
    # The scheme is the first word, in any case; spaces around the key do not count.
    assert api_key({"authorization": " bearer   vbg-c "}) == "vbg-c"
    assert api_key({"authorization": "Bearer"}) is None


def test_a_key_is_stored_as_its_sha256_and_named_by_the_hash_never_the_key():
    # SHA-256 test vector of FIPS 180-2: "abc"
    digest = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert hash_key("abc") == digest
    assert key_id_of(digest) == "ba7816bf8f01cfea"


def test_who_may_see_a_job():
    mine = {"owner_key_id": "k1", "team": "red"}
    teammates = {"owner_key_id": "k2", "team": "red"}
    others = {"owner_key_id": "k3", "team": "blue"}
    no_team = {"owner_key_id": "k4", "team": ""}
    plain = Caller(key_id="k1", alias="a", team="red")
    admin = Caller(key_id="k9", alias="lead", team="red", team_admin=True)
    teamless_admin = Caller(key_id="k8", alias="x", team="", team_admin=True)
    assert [plain.may_see(j) for j in (mine, teammates, others)] == [True, False, False]
    assert [admin.may_see(j) for j in (mine, teammates, others)] == [True, True, False]
    assert [teamless_admin.may_see(j) for j in (mine, no_team)] == [False, False]
    assert all(master_caller().may_see(j) for j in (mine, others, no_team, {}))


def test_which_models_a_key_may_use():
    assert Caller(key_id="k", alias="a").may_use_model("anything")
    limited = Caller(key_id="k", alias="a", models=("gemini-3.5-flash-lite",))
    assert limited.may_use_model("gemini-3.5-flash-lite")
    assert not limited.may_use_model("gemini-3.1-pro-preview")
    master = master_caller()
    assert master.is_master and master.key_id == "master" and master.models == ()
    assert master.may_use_model("gemini-3.1-pro-preview")


@pytest.mark.parametrize("presented", [None, ""])
def test_no_key_is_401_before_any_lookup(presented):
    with pytest.raises(ApiError) as raised:
        authenticate(presented)
    assert raised.value.code == 401 and "No gateway API key" in raised.value.message


def test_the_master_key_is_the_master(monkeypatch):
    monkeypatch.setenv("VBG_MASTER_KEY", "the-master-key")
    reset_process()
    try:
        assert authenticate("the-master-key") == master_caller()
    finally:
        monkeypatch.delenv("VBG_MASTER_KEY")
        reset_process()


def test_the_master_caller_is_named_master_in_records_and_logs():
    master = master_caller()
    assert (master.key_id, master.alias, master.is_master) == ("master", "master", True)


def test_a_prefix_may_hold_any_object_name_character_but_no_wildcard():
    assert _prefixes({"p": ["gs://bkt/Team X/é"]}, "p") == ["gs://bkt/Team X/é/"]
    for wild in ("gs://bkt/a*", "gs://bkt/a?", "gs://bkt/[ab]", "gs://bkt/a#1"):
        with pytest.raises(ApiError) as raised:
            _prefixes({"input_prefixes": [wild]}, "input_prefixes")
        assert (raised.value.code, raised.value.param) == (400, "input_prefixes")
        assert raised.value.message == (
            f"`input_prefixes` entry {wild!r} is not a gs://bucket/path prefix: no wildcards."
        )
    with pytest.raises(ApiError) as raised:
        _prefixes({"output_prefixes": ["gs://bkt/a/../b"]}, "output_prefixes")
    assert raised.value.param == "output_prefixes"
    assert raised.value.message.startswith(
        "`output_prefixes` entry 'gs://bkt/a/../b' is not a gs://bucket/path prefix: it holds "
    )


def test_an_unknown_broken_or_revoked_key_is_401_saying_which(gcp):
    from shared.core import clients
    from shared.core.keys import COLLECTION

    keys = clients.firestore().collection(COLLECTION)
    keys.document(hash_key("no-hash-field")).set({"id": "a" * 16, "alias": "broken"})
    revoked = hash_key("revoked-key")
    keys.document(revoked).set({"id": "b" * 16, "alias": "gone", "hash": revoked, "revoked": True})
    for presented, message in (
        ("never-issued", "The gateway API key is not valid."),
        ("no-hash-field", "The gateway API key is not valid."),
        ("revoked-key", "The gateway API key has been revoked."),
    ):
        with pytest.raises(ApiError) as raised:
            authenticate(presented)
        assert (raised.value.code, raised.value.message) == (401, message)


def test_a_key_list_is_kept_once_each_in_order_and_bounded_at_its_limits():
    """Issue #22 item 15: the bounds hold at the boundary, counted after de-duplication."""
    from shared.core.keys import MAX_LIST_CHARS, MAX_LIST_ITEMS, _string_list

    assert _string_list({"m": ["b", "a", "b", "a", "c"]}, "m") == ["b", "a", "c"]
    assert _string_list({"m": None}, "m") == [] and _string_list({}, "m") == []
    most = [f"{n:03d}" for n in range(MAX_LIST_ITEMS)]
    assert _string_list({"m": most * 3}, "m") == most
    longest = ["x" * (MAX_LIST_CHARS - 1), "y"]
    assert _string_list({"m": longest}, "m") == longest
    for past in ([*most, "one more"], [*longest[:1], "yz"]):
        with pytest.raises(ApiError) as raised:
            _string_list({"m": past}, "m")
        assert (raised.value.code, raised.value.param) == (400, "m")
        assert raised.value.message == (
            f"`m` holds {len(past)} distinct entries; at most {MAX_LIST_ITEMS} (and "
            f"{MAX_LIST_CHARS} characters in all) are allowed."
        )
    assert _prefixes({"p": ["gs://b/a", "gs://b/a/", "gs://b/c"]}, "p") == [
        "gs://b/a/",
        "gs://b/c/",
    ]
