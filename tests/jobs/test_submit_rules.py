"""The tenancy rules of a create, as pure functions: bucket prefixes and the stamped labels."""

import pytest

from shared.core.errors import ApiError
from shared.core.keys import Caller, _prefixes, master_caller
from shared.jobs import submit
from shared.jobs.create_request import Door, parse


def check_buckets(who, request_body, *, gateway_inputs=False):
    """The body parsed as its door would (a retry's inputs are the gateway's), then judged."""
    door = Door.RETRY if gateway_inputs else Door.CLIENT
    return submit.check_buckets(who, parse(request_body, door=door))


def stamped_labels(who, request_body):
    return submit.stamped_labels(who, parse({**body(["gs://bkt/team/x"]), **request_body}))


def body(uris, prefix="gs://bkt/team/out/"):
    return {
        "inputConfig": {"gcsSource": {"uris": uris}},
        "outputConfig": {"gcsDestination": {"outputUriPrefix": prefix}},
    }


def caller(*, inputs=("gs://bkt/team",), outputs=("gs://bkt/team",), **fields):
    """A key whose prefixes were stored as the admin API stores them."""
    return Caller(
        key_id="k" * 16,
        alias="someone",
        input_prefixes=tuple(_prefixes({"p": list(inputs)}, "p")),
        output_prefixes=tuple(_prefixes({"p": list(outputs)}, "p")),
        **fields,
    )


def refusal(call) -> ApiError:
    with pytest.raises(ApiError) as raised:
        call()
    return raised.value


def test_a_prefix_is_stored_as_a_folder():
    assert _prefixes({"p": ["gs://bkt/team", "gs://bkt/other/"]}, "p") == [
        "gs://bkt/team/",
        "gs://bkt/other/",
    ]
    assert _prefixes({}, "p") == []
    for bad in (["s3://b/x"], ["gs://BKT/x"], [""], "gs://bkt/x"):
        assert refusal(lambda bad=bad: _prefixes({"p": bad}, "p")).code == 400


def test_a_prefix_grants_its_folder():
    """README: `gs://bkt/team` grants `gs://bkt/team/...`."""
    uris = ["gs://bkt/team/in.jsonl", "gs://bkt/team/deep/more.jsonl"]
    assert check_buckets(caller(), body(uris)) == (uris, "gs://bkt/team/out/")
    # the output folder itself, with or without its slash
    assert check_buckets(caller(), body(uris, "gs://bkt/team"))[1] == "gs://bkt/team"
    assert check_buckets(caller(), body(uris, "gs://bkt/team/"))[1] == "gs://bkt/team/"


@pytest.mark.parametrize(
    ("uris", "prefix", "field"),
    [
        (["gs://bkt/team-x/in.jsonl"], "gs://bkt/team/out/", "inputConfig.gcsSource.uris"),
        (["gs://bkt/teamx.jsonl"], "gs://bkt/team/out/", "inputConfig.gcsSource.uris"),
        (["gs://bkt/team/ok.jsonl", "gs://ckt/team/in.jsonl"], "gs://bkt/team/", "inputConfig"),
        (["gs://bkt/team/in.jsonl"], "gs://bkt/team-x/", "outputUriPrefix"),
        (["gs://bkt/team/in.jsonl"], "gs://bkt/teamx", "outputUriPrefix"),
        (["gs://bkt/team/in.jsonl"], "gs://bkt/", "outputUriPrefix"),
    ],
)
def test_a_prefix_is_not_a_string_prefix(uris, prefix, field):
    """README: ... not `gs://bkt/team-x/`; every input must be inside, and the output too."""
    error = refusal(lambda: check_buckets(caller(), body(uris, prefix)))
    assert error.code == 403 and error.status == "PERMISSION_DENIED"
    assert field in error.message


def test_a_key_without_prefixes_may_read_and_write_nowhere():
    error = refusal(lambda: check_buckets(caller(inputs=(), outputs=()), body(["gs://bkt/x"])))
    assert error.code == 403 and "none (ask an admin" in error.message
    only_input = caller(outputs=())
    error = refusal(lambda: check_buckets(only_input, body(["gs://bkt/team/x"])))
    assert error.code == 403 and "output prefixes. Allowed: none" in error.message


def test_the_master_key_is_not_held_to_prefixes():
    assert check_buckets(master_caller(), body("gs://anywhere/x", "gs://else/out")) == (
        ["gs://anywhere/x"],
        "gs://else/out",
    )


NOT_OBJECTS = "`inputConfig` and `outputConfig` must be objects."
GCS_ONLY = (
    "The gateway supports GCS input and output only (its cost tracking reads the output "
    "files): use inputConfig.gcsSource and outputConfig.gcsDestination."
)
URIS = "inputConfig.gcsSource.uris"
URIS_REQUIRED = "`inputConfig.gcsSource.uris` is required: a list of gs:// URIs."
PREFIX = "outputConfig.gcsDestination.outputUriPrefix"
PREFIX_REQUIRED = "`outputConfig.gcsDestination.outputUriPrefix` is required: a gs:// prefix."
SOURCE = "inputConfig.gcsSource"
DESTINATION = "outputConfig.gcsDestination"


@pytest.mark.parametrize(
    ("request_body", "field", "message"),
    [
        ({"inputConfig": ["x"], "outputConfig": {}}, None, NOT_OBJECTS),
        ({"inputConfig": {}, "outputConfig": "x"}, None, NOT_OBJECTS),
        ({**body(["gs://bkt/team/x"]), "inputConfig": {"bigquerySource": {}}}, None, GCS_ONLY),
        (
            {**body(["gs://bkt/team/x"]), "outputConfig": {"bigqueryDestination": {}}},
            None,
            GCS_ONLY,
        ),
        (
            {"inputConfig": {"gcsSource": ["gs://bkt/team/x"]}, "outputConfig": {}},
            SOURCE,
            '`inputConfig.gcsSource` must be an object: {"uris": ["gs://..."]}.',
        ),
        (
            {
                "inputConfig": body(["gs://bkt/team/x"])["inputConfig"],
                "outputConfig": {"gcsDestination": "gs://bkt/team/out/"},
            },
            DESTINATION,
            '`outputConfig.gcsDestination` must be an object: {"outputUriPrefix": "gs://..."}.',
        ),
        ({"outputConfig": body([])["outputConfig"]}, URIS, URIS_REQUIRED),
        (body([]), URIS, URIS_REQUIRED),
        (body([1]), URIS, URIS_REQUIRED),
        (body({"u": "gs://bkt/team/x"}), URIS, URIS_REQUIRED),
        (body(["gs://bkt/team/x"], prefix="/local/out"), PREFIX, PREFIX_REQUIRED),
        (body(["gs://bkt/team/x"], prefix=None), PREFIX, PREFIX_REQUIRED),
        ({"inputConfig": body(["gs://bkt/team/x"])["inputConfig"]}, PREFIX, PREFIX_REQUIRED),
    ],
)
def test_malformed_configs_are_400_for_every_caller(request_body, field, message):
    for who in (caller(), master_caller()):
        error = refusal(lambda who=who: check_buckets(who, request_body))
        assert (error.code, error.status, error.message) == (400, "INVALID_ARGUMENT", message)
        assert error.param == field


@pytest.mark.parametrize(
    ("uris", "prefix", "field", "refused"),
    [
        (
            ["gs://bkt/team/../other/x.jsonl"],
            "gs://bkt/team/out/",
            URIS,
            "gs://bkt/team/../other/x.jsonl",
        ),
        (
            ["gs://bkt/team/x.jsonl", "gs://bkt/team/%2e%2e/y"],
            "gs://bkt/team/",
            URIS,
            "gs://bkt/team/%2e%2e/y",
        ),
        (["gs://bkt/team/x.jsonl"], "gs://bkt/team/out/../../", PREFIX, "gs://bkt/team/out/../../"),
    ],
)
def test_a_path_that_is_not_plain_is_400_even_for_the_master_key(uris, prefix, field, refused):
    """Prefixes hold keys to their folders; the plain-path rule also holds the master key,
    whose URIs would otherwise reach Vertex as they are."""
    for who in (caller(), master_caller()):
        error = refusal(lambda who=who: check_buckets(who, body(uris, prefix)))
        assert (error.code, error.param) == (400, field)
        assert error.message.startswith(f"`{field}`: {refused!r} is refused: it holds ")
        assert error.details[0]["fieldViolations"][0]["field"] == field


def test_labels_are_stamped_with_owner_and_team_and_the_keys_labels_are_authoritative():
    who = caller(team="Data Science!", labels={"env": "dev", "cost-center": "cc-1"})
    stamped = stamped_labels(who, {"labels": {"env": "dev", "project": "x"}})
    assert stamped == {
        "env": "dev",
        "project": "x",
        "cost-center": "cc-1",
        "vbg-key": "k" * 16,
        "vbg-team": "data-science",
    }
    with pytest.raises(ApiError) as refused:  # issue #10: a key's labels are authoritative
        stamped_labels(who, {"labels": {"env": "prod"}})
    assert refused.value.code == 403 and "env" in refused.value.message
    assert stamped_labels(caller(), {}) == {"vbg-key": "k" * 16}


@pytest.mark.parametrize(
    "labels",
    [{"vbg-key": "someone-else"}, {"vbg-team": "other"}, {"Env": "x"}, ["env"], "env=x"],
)
def test_a_body_cannot_spoof_or_break_the_stamped_labels(labels):
    error = refusal(lambda: stamped_labels(caller(team="t"), {"labels": labels}))
    assert error.code == 400


@pytest.mark.parametrize("labels", [["env"], "env=x", 7])
def test_labels_that_are_not_an_object_get_a_field_violation(labels):
    error = refusal(lambda: stamped_labels(caller(), {"labels": labels}))
    message = "`labels` must be an object of strings."
    assert error.envelope()["error"] == {
        "code": 400,
        "message": message,
        "status": "INVALID_ARGUMENT",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{"field": "labels", "description": message}],
            }
        ],
    }


def test_a_label_set_by_the_key_is_refused_with_a_machine_readable_reason():
    error = refusal(lambda: stamped_labels(caller(labels={"env": "dev"}), {"labels": {"env": "x"}}))
    assert error.code == 403 and error.status == "PERMISSION_DENIED"
    assert error.message == (
        "Label 'env' is set by this key to 'dev'; a job may not set it to 'x'. "
        "Leave it out (the gateway adds it) or set it to 'dev'."
    )
    assert error.details == [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "LABEL_SET_BY_KEY",
            "domain": "vertex-batch-gateway",
            "metadata": {"label": "env", "value": "dev"},
        }
    ]


def test_vertexs_64_labels_count_the_ones_the_gateway_adds():
    """A key with a team stamps two (vbg-key, vbg-team) and its own one: 61 are left."""
    who = caller(team="t", labels={"env": "dev"})
    fits = {f"l{i}": "v" for i in range(61)}
    assert len(stamped_labels(who, {"labels": fits})) == 64
    error = refusal(lambda: stamped_labels(who, {"labels": {**fits, "one-more": "v"}}))
    assert (error.code, error.param) == (400, "labels")
    assert error.message == (
        "Too many labels: the job would carry 65, Vertex allows 64. The gateway adds 3 "
        "(env, vbg-key, vbg-team), so a job of this key may set at most 61."
    )


def test_vertexs_input_uri_limits_hold_at_their_boundary():
    """At most 100 URIs and 64 KiB of URI text: the largest input allowed, and one more."""
    folder = "gs://bkt/team/"
    hundred = [f"{folder}{i:03}.jsonl" for i in range(100)]
    assert check_buckets(caller(), body(hundred))[0] == hundred
    long_one = folder + "x" * (64 * 1024 - len(folder))
    assert len(long_one) == 64 * 1024 and check_buckets(caller(), body([long_one]))[0] == [long_one]
    for uris, count in (([*hundred, f"{folder}100.jsonl"], 101), ([long_one + "y"], 1)):
        error = refusal(lambda uris=uris: check_buckets(caller(), body(uris)))
        assert (error.code, error.param) == (400, URIS)
        assert error.message.startswith(f"`inputConfig.gcsSource.uris` holds {count} URIs; ")


def test_the_intent_label_counts_toward_vertexs_64():
    """Every create carries `vbg-intent`: with it, a key with a team and one label of its own
    leaves 60 to the job."""
    who = caller(team="t", labels={"env": "dev"})
    fits = {f"l{i}": "v" for i in range(60)}
    request = parse({**body(["gs://bkt/team/x"]), "labels": fits})
    stamped = submit.stamped_labels(who, request, "0123456789abcdef")
    assert len(stamped) == 64 and stamped["vbg-intent"] == "0123456789abcdef"
    over = parse({**body(["gs://bkt/team/x"]), "labels": {**fits, "one-more": "v"}})
    error = refusal(lambda: submit.stamped_labels(who, over, "0123456789abcdef"))
    assert error.message == (
        "Too many labels: the job would carry 65, Vertex allows 64. The gateway adds 4 "
        "(env, vbg-intent, vbg-key, vbg-team), so a job of this key may set at most 60."
    )


def test_a_keys_refusal_names_what_it_may_use():
    two = caller(inputs=("gs://bkt/a", "gs://bkt/b"), outputs=("gs://bkt/a", "gs://bkt/b"))
    error = refusal(lambda: check_buckets(two, body(["gs://bkt/c/x"], "gs://bkt/a/out")))
    assert error.message == (
        "inputConfig.gcsSource.uris: gs://bkt/c/x is outside this key's input prefixes. "
        "Allowed: gs://bkt/a/, gs://bkt/b/."
    )
    error = refusal(lambda: check_buckets(two, body(["gs://bkt/a/x"], "gs://bkt/c")))
    assert error.message == (
        "outputConfig.gcsDestination.outputUriPrefix: gs://bkt/c is outside this key's output "
        "prefixes. Allowed: gs://bkt/a/, gs://bkt/b/."
    )
    nothing = caller(inputs=(), outputs=())
    error = refusal(lambda: check_buckets(nothing, body(["gs://bkt/a/x"])))
    assert error.message.endswith("input prefixes. Allowed: none (ask an admin to add some).")
    error = refusal(lambda: check_buckets(nothing, body(["gs://bkt/a/x"]), gateway_inputs=True))
    assert error.message.endswith("output prefixes. Allowed: none (ask an admin to add some).")


def test_a_retry_reads_the_gateways_file_but_writes_only_where_the_key_may():
    staged = ["gs://staging/retries/1/x.jsonl"]
    assert check_buckets(caller(), body(staged), gateway_inputs=True) == (
        staged,
        "gs://bkt/team/out/",
    )
    error = refusal(
        lambda: check_buckets(caller(), body(staged, "gs://else/"), gateway_inputs=True)
    )
    assert error.code == 403 and error.message.startswith("outputConfig")
    assert refusal(lambda: check_buckets(caller(), body(staged))).code == 403
