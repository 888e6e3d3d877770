"""A sealed job for the outputs tests, made by the create path (sealed outputs are the
default): Vertex writes into `gs://<staging>/outputs/<day>/<key id>/<intent id>/` (the
record's `output_prefix`), the client asked for `client_output_prefix`."""

from shared.core import clients
from shared.jobs import records
from tests.jobs.test_finalize import deliver


def sealed_create(world, *, rows: int = 3, labels: dict | None = None):
    """(job id, per-job staging folder, client folder)."""
    job_id = world.create(rows=rows, labels=labels)
    record = records.get(job_id)
    assert record["outputs_sealed"] is True, record
    return job_id, record["output_prefix"], record["client_output_prefix"]


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
