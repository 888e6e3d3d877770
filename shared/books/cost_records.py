"""Cost records as rows for BigQuery: the `cost-records` topic, its schema, and the rows.

Every cost record of a job (one per output file generation, `kind: file`) and the job's
totals (`kind: job`) are published to the `cost-records` topic (`VBG_COST_RECORDS_TOPIC`;
empty: not published), whose Pub/Sub schema (Avro, JSON encoding) is `cost_record.avsc`; a
BigQuery subscription writes each message into the table whose schema is
`cost_records_table.json` (Terraform, infra/bigquery.tf). No gateway code writes to
BigQuery. Both files are generated from `FIELDS` (`python -m shared.books.cost_records`) and
a test holds them to it.

When they are published: a file's row as soon as it is booked (best effort: a lost one is
published again at the job's end); at the job's end, before `cost_final` is set, every file
row again and the job's totals (`final: true`), and whenever the totals of an ended job
change while it is not final (the floor's estimated rows: `estimated: true`). A failed
publish at the end raises, so the job is not final until its rows are out.

Pub/Sub's BigQuery subscriptions deliver at least once
(https://cloud.google.com/pubsub/docs/bigquery): the table can hold a row twice. Each row
carries `record_id` (a file row: the ledger's record id, from `bucket/object#generation`; a
job row: derived from the job id and its totals), and the views (`views/*.sql`) count each
`record_id` once and each job by its latest job row: duplicates change no sum.

Times and days are strings in the messages: for a topic field of type string and a table
column of type TIMESTAMP or DATE, the value must be in that type's format (same source).
"""

import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from shared.core import clients, logs
from shared.core.config import settings
from shared.cost import ledger
from shared.cost.usage import COUNTER_FIELDS

PUBLISH_TIMEOUT = 30
HERE = Path(__file__).resolve().parent
AVRO_FILE = HERE / "cost_record.avsc"
TABLE_FILE = HERE / "cost_records_table.json"

# (name, Avro type, BigQuery type, description). Strings where a value may be absent: the
# Avro JSON encoding would need every nullable value wrapped in its union branch.
IDENTITY = (
    ("record_id", "string", "STRING", "one per row; a duplicate delivery repeats it"),
    ("kind", "string", "STRING", "file (one output file generation) or job (its totals)"),
    ("job_id", "string", "STRING", "the Vertex numeric job id"),
    ("vertex_job_name", "string", "STRING", "projects/P/locations/L/batchPredictionJobs/ID"),
    ("project", "string", "STRING", "the Vertex project the job ran in"),
    ("location", "string", "STRING", "the Vertex location"),
    ("model", "string", "STRING", "the public model name"),
    ("vertex_model", "string", "STRING", "the publisher model Vertex ran"),
    ("key_id", "string", "STRING", "the gateway key that created the job"),
    ("key_alias", "string", "STRING", "its alias"),
    ("team", "string", "STRING", "its team"),
    ("day", "string", "DATE", "the spend day: the UTC day of the job's create time"),
    ("time", "string", "TIMESTAMP", "when the row was published"),
    ("uri", "string", "STRING", "the file (file rows)"),
    ("generation", "long", "INTEGER", "the file's generation (file rows)"),
    ("file_set", "string", "STRING", "final or incremental (file rows)"),
    ("counted", "boolean", "BOOLEAN", "the file counts in the job's totals"),
    ("tamper", "string", "STRING", "why a file was flagged (tamper reason), else empty"),
    ("catalog_version", "string", "STRING", "the price catalog version(s) that priced it"),
    ("estimated", "boolean", "BOOLEAN", "holds rows booked at the estimate (the floor)"),
    ("final", "boolean", "BOOLEAN", "the job's cost is final (job rows)"),
)
COUNTERS = (*COUNTER_FIELDS, *ledger.ESTIMATED_FIELDS)
FIELDS = (
    *IDENTITY,
    *(
        (name, "long", "INTEGER", "counter" if name != "cost_nanos" else "nano-dollars")
        for name in COUNTERS
    ),
)
LABELS_FIELD = "labels"


def avro_schema() -> dict:
    fields: list[dict[str, object]] = [
        {"name": name, "type": avro, "doc": doc} for name, avro, _, doc in FIELDS
    ]
    fields.append(
        {
            "name": LABELS_FIELD,
            "doc": "the job's labels",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Label",
                    "fields": [
                        {"name": "key", "type": "string"},
                        {"name": "value", "type": "string"},
                    ],
                },
            },
        }
    )
    return {"type": "record", "name": "CostRecord", "namespace": "vbg", "fields": fields}


def table_schema() -> list[dict]:
    columns: list[dict[str, object]] = [
        {"name": name, "type": bq, "mode": "REQUIRED", "description": doc}
        for name, _, bq, doc in FIELDS
    ]
    columns.append(
        {
            "name": LABELS_FIELD,
            "type": "RECORD",
            "mode": "REPEATED",
            "description": "the job's labels",
            "fields": [
                {"name": "key", "type": "STRING", "mode": "REQUIRED"},
                {"name": "value", "type": "STRING", "mode": "REQUIRED"},
            ],
        }
    )
    return columns


def _common(job_id: str, job: dict, now: datetime) -> dict:
    deployment = job.get("deployment") or {}
    return {
        "job_id": job_id,
        "vertex_job_name": job.get("name") or "",
        "project": deployment.get("project") or "",
        "location": deployment.get("location") or "",
        "model": job.get("model") or "",
        "vertex_model": deployment.get("model") or "",
        "key_id": job.get("owner_key_id") or "",
        "key_alias": job.get("owner_alias") or "",
        "team": job.get("team") or "",
        "day": ledger.spend_day(job),
        "time": now.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        LABELS_FIELD: [
            {"key": str(k), "value": str(v)} for k, v in sorted((job.get("labels") or {}).items())
        ],
    }


def _counters(source: dict) -> dict[str, int]:
    return {name: int(source.get(name) or 0) for name in COUNTERS}


def file_row(*, job_id: str, job: dict, record: dict, now: datetime | None = None) -> dict:
    """The row of one cost record (`ledger` output record, as stored)."""
    return {
        **_common(job_id, job, now or datetime.now(UTC)),
        "record_id": record["id"],
        "kind": "file",
        "uri": record.get("uri") or "",
        "generation": int(record.get("generation") or 0),
        "file_set": record.get("group") or ledger.FINAL,
        "counted": bool(record.get("counted", True)) and not record.get("superseded"),
        "tamper": str((record.get("tamper") or {}).get("reason") or ""),
        "catalog_version": record.get("catalog_version") or "",
        "estimated": False,
        "final": bool(job.get("cost_final")),
        **_counters(record.get("counters") or {}),
    }


def job_row(
    *, job_id: str, job: dict, final: bool, catalog_versions=(), now: datetime | None = None
) -> dict:
    """The row of a job's totals: the job's `cost` map (the counted set plus the floor)."""
    counters = _counters(job.get("cost") or {})
    identity = json.dumps([job_id, final, counters], sort_keys=True)
    return {
        **_common(job_id, job, now or datetime.now(UTC)),
        "record_id": "job-" + hashlib.sha256(identity.encode()).hexdigest(),
        "kind": "job",
        "uri": "",
        "generation": 0,
        "file_set": job.get("cost_basis") or "",
        "counted": True,
        "tamper": "",
        "catalog_version": ",".join(sorted({v for v in catalog_versions if v})),
        "estimated": counters["estimated_rows"] > 0,
        "final": final,
        **counters,
    }


def rows_of_job(job_id: str, *, final: bool) -> list[dict]:
    """Every file row of the job and its totals row, read from the books."""
    cost = ledger.job_cost(job_id)
    if cost is None:
        return []
    job = cost["job"]
    now = datetime.now(UTC)
    files = [file_row(job_id=job_id, job=job, record=r, now=now) for r in cost["records"]]
    versions = [r.get("catalog_version") for r in cost["records"]]
    return [
        *files,
        job_row(job_id=job_id, job=job, final=final, catalog_versions=versions, now=now),
    ]


def enabled() -> bool:
    return bool(settings().cost_records_topic)


def publish(rows: list[dict]) -> None:
    """Publish each row as one message (JSON, the schema's encoding); raises on failure."""
    if not enabled() or not rows:
        return
    topic = clients.topic_path(settings().cost_records_topic)
    futures = [
        clients.publisher().publish(
            topic,
            json.dumps(row, separators=(",", ":")).encode(),
            kind=row["kind"],
            job_id=row["job_id"],
        )
        for row in rows
    ]
    for future in futures:
        future.result(timeout=PUBLISH_TIMEOUT)


def publish_file(*, job_id: str, job: dict, bucket: str, name: str, generation: int) -> None:
    """Best effort, right after a file is booked: the job's end publishes it again."""
    if not enabled():
        return
    try:
        record = ledger.get_record(job_id, bucket, name, generation)
        if record is not None:
            record["id"] = ledger.record_id(bucket, name, generation)
            publish([file_row(job_id=job_id, job=job, record=record)])
    except Exception as exc:
        logs.warning(
            "cost record not published; the job's end sends it",
            job_id=job_id,
            uri=f"gs://{bucket}/{name}",
            error=repr(exc),
        )


def publish_job(job_id: str, *, final: bool) -> None:
    """At the job's end (and when an ended job's totals change): every row of the job.
    Raises when Pub/Sub fails, so that the caller does not mark the job final."""
    if enabled():
        publish(rows_of_job(job_id, final=final))


def write_schema_files() -> None:
    AVRO_FILE.write_text(json.dumps(avro_schema(), indent=2) + "\n")
    TABLE_FILE.write_text(json.dumps(table_schema(), indent=2) + "\n")


if __name__ == "__main__":
    write_schema_files()
    sys.exit(0)
