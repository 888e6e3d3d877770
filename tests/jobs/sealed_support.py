"""A sealed job for the outputs tests, made as the create path records one (TEAM contract):
Vertex writes into `gs://<staging>/outputs/<day>/<key id>/<intent id>/`, the record holds that
folder as `output_prefix`, the client's folder as `client_output_prefix`, and
`outputs_sealed: true`. The job is created through the gateway (master key, so the staging
folder passes the prefix check) and then handed to its owner, as a create by the owner
would have made it."""

import uuid

from shared.core import clients
from shared.core.config import settings
from shared.jobs import records
from tests.jobs.lifecycle_support import JOBS_PATH
from tests.jobs.test_finalize import deliver
from tests.support import MASTER_KEY, auth, gemini_request, job_body, upload_jsonl


def key_id(world, key: str) -> str:
    return world.gateway.get("/v1/gateway/me", headers=auth(key)).get_json()["id"]


def sealed_create(world, *, rows: int = 3, labels: dict | None = None, client_prefix=None):
    """(job id, per-job staging folder, client folder)."""
    bucket = world.gcp["bucket"]
    owner = key_id(world, world.key)
    intent = uuid.uuid4().hex[:16]
    folder = f"gs://{settings().staging_bucket}/outputs/2025-03-04/{owner}/{intent}/"
    client = client_prefix or f"gs://{bucket}/out/"
    name = f"in/{uuid.uuid4().hex[:8]}.jsonl"
    uri = upload_jsonl(bucket, name, [gemini_request(f"row {i} hello") for i in range(rows)])
    body = job_body(bucket, input_uri=uri, labels=labels)
    body["outputConfig"]["gcsDestination"]["outputUriPrefix"] = folder
    response = world.gateway.post(JOBS_PATH, json=body, headers=auth(MASTER_KEY))
    assert response.status_code == 200, response.get_data(as_text=True)
    job_id = response.get_json()["name"].rsplit("/", 1)[-1]
    records.mark(
        job_id,
        outputs_sealed=True,
        intent_id=intent,
        client_output_prefix=client,
        owner_key_id=owner,
        owner_alias="alice",
        team="Data Science",
    )
    return job_id, folder, client


def split(uri: str) -> tuple[str, str]:
    bucket, _, path = uri.removeprefix("gs://").partition("/")
    return bucket, path


def objects(uri: str) -> dict[str, object]:
    """name -> blob under a gs:// folder."""
    bucket, path = split(uri)
    return {b.name: b for b in clients.storage().list_blobs(bucket, prefix=path)}


def deliver_folder(client, uri: str) -> list[int]:
    """A finalize event for every object under the folder, as Eventarc sends them."""
    bucket, _ = split(uri)
    return [
        deliver(client, bucket, name, blob.generation).status_code
        for name, blob in sorted(objects(uri).items())
    ]


def read(bucket: str, name: str) -> bytes:
    return clients.storage().bucket(bucket).blob(name).download_as_bytes()
