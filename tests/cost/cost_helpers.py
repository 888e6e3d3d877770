"""Job records and prediction files for the cost tests, made the way the gateway makes them."""

import json
from datetime import UTC, datetime

from local import sim_rows
from shared.core import clients
from shared.core.config import Deployment
from shared.core.keys import Caller
from shared.cost import usage
from shared.jobs import records
from tests.cost.reference import Expected, expected_cost
from tests.support import gemini_request

FLASH = Deployment(
    model_name="gemini-3.5-flash-lite",
    model="gemini-3.5-flash-lite",
    project="proj-a",
    location="global",  # no regional uplift: the reference is called without a location
)


def make_job(
    bucket: str,
    job_id: str,
    *,
    key_id: str = "a" * 16,
    alias: str = "alice",
    team: str = "Data Science",
    labels: dict | None = None,
    prefix: str = "out/",
    output_directory: str | None = None,
    create_time: str = "2025-03-04T10:00:00Z",
    deployment: Deployment = FLASH,
) -> dict:
    """A job record as passthrough writes it at create (record + output index)."""
    record = records.new_record(
        upstream_job={
            "name": f"projects/proj-a/locations/us-central1/batchPredictionJobs/{job_id}",
            "state": "JOB_STATE_PENDING",
            "createTime": create_time,
            "labels": labels or {},
        },
        request_body={
            "displayName": f"job-{job_id}",
            "outputConfig": {"gcsDestination": {"outputUriPrefix": f"gs://{bucket}/{prefix}"}},
            "inputConfig": {"gcsSource": {"uris": [f"gs://{bucket}/in/input.jsonl"]}},
        },
        caller=Caller(key_id=key_id, alias=alias, team=team),
        deployment=deployment,
        public_model=deployment.model_name,
        api_version="v1",
    )
    record["output_directory"] = output_directory
    assert records.record_created(record)
    if output_directory:
        records.index_folder(output_directory, job_id)
    return record


def prediction_bytes(
    texts: list[str], *, model: str = "gemini-3.5-flash-lite", fail: set[int] = frozenset()
) -> bytes:
    """Rows as the simulator writes them; rows at the indexes in `fail` fail."""
    now = datetime(2025, 3, 4, 10, 5, tzinfo=UTC)
    rows = [
        sim_rows.output_row(
            model, json.dumps(gemini_request(text)), now, fail="boom" if i in fail else None
        )[0]
        for i, text in enumerate(texts)
    ]
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def upload(bucket: str, name: str, data: bytes) -> int:
    """Write an object; its generation."""
    blob = clients.storage().bucket(bucket).blob(name)
    blob.upload_from_string(data, content_type="application/jsonl")
    blob.reload()
    return int(blob.generation)


def expected(
    data: bytes, model: str = "gemini-3.5-flash-lite", overrides=None, location=None
) -> Expected:
    """What the bytes should cost by the independent reference (never the parser under test);
    `location`: the job's (the regional uplift)."""
    return expected_cost(data, model, overrides, location=location)


def usage_of(data: bytes, model: str = "gemini-3.5-flash-lite") -> usage.FileUsage:
    """The parser's reading of the bytes: the input the ledger gets, never an expected figure."""
    return usage.parse_predictions([data], model=model)
