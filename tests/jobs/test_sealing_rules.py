"""`seal_inputs` on the GCS emulator alone: what is copied where, and what a refusal leaves.

The emulator sits behind `local.gcs_proxy.GcsProxy`, which answers rewrites as GCS does
(a pinned `sourceGeneration`, the `ifGenerationMatch=0` precondition, a copy split over two
calls) and refuses a bucket the service account may not read (403).
"""

import dataclasses
import json
import os
import re
import uuid
from datetime import UTC, datetime

import pytest

from local.gcs_proxy import GcsProxy
from shared.core import clients
from shared.core.config import Deployment
from shared.core.errors import ApiError
from shared.cost import estimate
from shared.cost.estimate import InputObject
from shared.jobs import sealing
from tests.support import reset_process

FLASH = Deployment("gemini-3.5-flash-lite", "gemini-3.5-flash-lite", "proj-a", "us-central1")
FORBIDDEN = "forbidden-bucket"


@pytest.fixture
def gcs(storage_only, monkeypatch):
    """(input bucket, staging bucket, proxy): GCS as the gateway sees it."""
    staging = f"staging-{uuid.uuid4().hex[:12]}"
    with GcsProxy(
        os.environ["STORAGE_EMULATOR_HOST"], rewrite_calls=2, forbidden_buckets=(FORBIDDEN,)
    ) as proxy:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        monkeypatch.setenv("VBG_STAGING_BUCKET", staging)
        reset_process()
        clients.storage().create_bucket(staging)
        yield storage_only["bucket"], staging, proxy
    reset_process()


def put(bucket: str, name: str, data: bytes) -> int:
    blob = clients.storage().bucket(bucket).blob(name)
    blob.upload_from_string(data)
    blob.reload()
    return int(blob.generation)


def seal(uris: list[str], deployment=FLASH, key_id: str = "k") -> sealing.Sealed:
    """Seal as the create path does: the URIs listed once, then the listed objects copied."""
    return sealing.seal_inputs(
        estimate.list_inputs(uris), client_uris=uris, deployment=deployment, key_id=key_id
    )


def staged(staging: str) -> dict[str, bytes]:
    return {b.name: b.download_as_bytes() for b in clients.storage().list_blobs(staging, prefix="")}


def test_every_listed_object_is_copied_once_into_a_fresh_folder_of_the_key(gcs):
    bucket, staging, proxy = gcs
    first = put(bucket, "in/a.jsonl", b"a\n")
    second = put(bucket, "in/b.jsonl", b"bb\n")
    put(bucket, "elsewhere/c.jsonl", b"c\n")
    client_uris = [f"gs://{bucket}/in/*.jsonl"]

    sealed = seal(client_uris, FLASH, "k1")

    assert sealed.sealed
    a, b = sealed.objects
    folder = a.name.rsplit("/", 1)[0]
    today = datetime.now(UTC).date().isoformat()
    assert re.fullmatch(rf"sealed/{today}/k1/[0-9a-f]{{16}}", folder), folder
    assert a == sealing.SealedObject(
        f"gs://{bucket}/in/a.jsonl", first, staging, f"{folder}/00000-a.jsonl", 2
    )
    assert b == sealing.SealedObject(
        f"gs://{bucket}/in/b.jsonl", second, staging, f"{folder}/00001-b.jsonl", 3
    )
    assert proxy.rewrites == 4  # two objects, each copied in two calls
    assert staged(staging) == {a.name: b"a\n", b.name: b"bb\n"}
    assert sealed.uris == [f"gs://{staging}/{a.name}", f"gs://{staging}/{b.name}"]
    assert sealed.input_objects() == [
        InputObject(staging, a.name, 2),
        InputObject(staging, b.name, 3),
    ]
    assert sealed.record_fields() == {
        "input_uris": client_uris,
        "sealed_inputs": [
            {
                "source": f"gs://{bucket}/in/a.jsonl",
                "generation": first,
                "uri": f"gs://{staging}/{a.name}",
                "size": 2,
            },
            {
                "source": f"gs://{bucket}/in/b.jsonl",
                "generation": second,
                "uri": f"gs://{staging}/{b.name}",
                "size": 3,
            },
        ],
    }
    assert b"".join(estimate.read_chunks(b.input_object())) == b"bb\n"

    again = seal(client_uris, FLASH, "k1")
    assert again.objects[0].name.rsplit("/", 1)[0] != folder


def test_a_copy_is_named_by_the_last_segment_of_its_source(gcs):
    bucket, _, _ = gcs
    put(bucket, "in/deep/er/a.jsonl", b"{}\n")
    put(bucket, "top.jsonl", b"{}\n")
    uris = [f"gs://{bucket}/in/deep/er/a.jsonl", f"gs://{bucket}/top.jsonl"]
    copies = seal(uris, FLASH, "k").objects
    assert [c.name.rsplit("/", 1)[1] for c in copies] == ["00000-a.jsonl", "00001-top.jsonl"]


def test_an_empty_input_is_sealed_as_empty(gcs):
    bucket, staging, _ = gcs
    put(bucket, "in/empty.jsonl", b"")
    [copy] = seal([f"gs://{bucket}/in/empty.jsonl"], FLASH, "k").objects
    assert copy.size == 0 and staged(staging) == {copy.name: b""}


def test_a_long_file_name_keeps_its_last_200_characters(gcs):
    bucket, _, _ = gcs
    long = "x" * 250 + ".jsonl"
    put(bucket, f"in/{long}", b"{}\n")
    [copy] = seal([f"gs://{bucket}/in/{long}"], FLASH, "k").objects
    assert copy.name.rsplit("/", 1)[1] == "00000-" + long[-200:]


def test_with_sealing_off_the_client_uris_run_and_nothing_is_copied(gcs, monkeypatch, capsys):
    bucket, staging, _ = gcs
    put(bucket, "in/a.jsonl", b"a\n")
    uris = [f"gs://{bucket}/in/a.jsonl"]
    off = dataclasses.replace(FLASH, seal_inputs=False)
    assert sealing.enabled(FLASH) and not sealing.enabled(off)
    capsys.readouterr()
    assert seal(uris, off, "k").uris == uris
    assert "VBG_STAGING_BUCKET is not set" not in capsys.readouterr().out  # off by choice
    monkeypatch.delenv("VBG_STAGING_BUCKET")
    reset_process()
    assert not sealing.enabled(FLASH)
    for deployment in (off, FLASH):
        sealed = seal(uris, deployment, "k")
        assert not sealed.sealed and sealed.objects == ()
        assert sealed.uris == uris
        assert [o.uri for o in sealed.input_objects()] == uris  # the client's, as listed
        assert sealed.record_fields() == {"input_uris": uris, "sealed_inputs": None}
    warnings = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    unsealed = [
        w for w in warnings if w["message"] == "inputs not sealed: VBG_STAGING_BUCKET is not set"
    ]
    assert len(unsealed) == 2 and {w["severity"] for w in unsealed} == {"WARNING"}
    assert staged(staging) == {}


def test_more_objects_than_a_job_may_name_is_a_400_before_any_copy(gcs, monkeypatch):
    bucket, staging, _ = gcs
    monkeypatch.setattr(sealing, "MAX_INPUT_OBJECTS", 2)
    for name in ("a", "b"):
        put(bucket, f"in/{name}.jsonl", b"{}\n")
    assert len(seal([f"gs://{bucket}/in/*"], FLASH, "k").objects)
    put(bucket, "in/c.jsonl", b"{}\n")
    before = staged(staging)
    with pytest.raises(ApiError) as refused:
        seal([f"gs://{bucket}/in/*"], FLASH, "k")
    assert refused.value.code == 400
    assert "names 3 objects; at most 2" in refused.value.message
    assert refused.value.envelope()["error"]["details"][0]["fieldViolations"][0]["field"] == (
        "inputConfig.gcsSource.uris"
    )
    assert staged(staging) == before


def listed(bucket: str, name: str) -> InputObject:
    blob = clients.storage().bucket(bucket).get_blob(name)
    return InputObject(bucket, name, int(blob.size), int(blob.generation))


def test_the_copy_is_of_the_listed_generation_or_a_400(gcs):
    bucket, staging, _ = gcs
    put(bucket, "in/a.jsonl", b"two rows\n")
    source = listed(bucket, "in/a.jsonl")
    put(bucket, "in/a.jsonl", b"800 rows\n" * 800)
    with pytest.raises(ApiError) as refused:
        sealing._copy(source, staging, "sealed/x/00000-a.jsonl")
    assert (refused.value.code, refused.value.param) == (400, "inputConfig.gcsSource.uris")
    assert "gs://" + bucket + "/in/a.jsonl changed or disappeared" in refused.value.message
    assert staged(staging) == {}


def test_a_copy_never_overwrites_and_other_failures_are_a_503(gcs):
    bucket, staging, _ = gcs
    put(bucket, "in/a.jsonl", b"{}\n")
    put(staging, "sealed/x/taken", b"someone else's\n")
    with pytest.raises(ApiError) as failed:
        sealing._copy(listed(bucket, "in/a.jsonl"), staging, "sealed/x/taken")
    assert failed.value.code == 503
    assert failed.value.message.startswith(f"Sealing gs://{bucket}/in/a.jsonl failed: ")
    assert staged(staging) == {"sealed/x/taken": b"someone else's\n"}


def test_an_input_the_gateway_may_not_read_is_a_403_naming_the_role(gcs):
    _, staging, _ = gcs
    source = InputObject(FORBIDDEN, "in/a.jsonl", 3, 7)
    with pytest.raises(ApiError) as refused:
        sealing._copy(source, staging, "sealed/x/00000-a.jsonl")
    assert refused.value.code == 403
    assert "roles/storage.objectViewer" in refused.value.message
