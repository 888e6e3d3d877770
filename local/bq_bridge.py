"""What a Pub/Sub BigQuery subscription does, done locally: `cost-records` into a table.

The Pub/Sub emulator has no BigQuery subscriptions (nor schemas), so `CostRecordsBridge`
pulls a plain subscription of the topic and streams each message into the cost-records table
of the BigQuery emulator (local/bq_emulator.py). Like Pub/Sub with the topic's schema, it
checks every message against `cost_record.avsc` (fastavro): one that does not conform is
logged and dropped (Pub/Sub would have refused its publish); a message whose insert fails is
not acked, so it comes again (at least once, as the real subscription:
https://cloud.google.com/pubsub/docs/bigquery).

`create_books` makes what Terraform makes in production (infra/bigquery.tf): the dataset,
the table (schema from shared/books/cost_records_table.json, day-partitioned on `day`,
clustered by team and model) and the views (shared/books/views/).
"""

import base64
import json
import threading

from local.bridges import JsonLog, pubsub_call
from shared.books import cost_records, views

TABLE = "cost_records"


def create_books(client, *, project: str, dataset: str, table: str = TABLE) -> str:
    """Dataset, table and views on BigQuery (the emulator); the table's full name."""
    from google.cloud import bigquery

    client.create_dataset(f"{project}.{dataset}", exists_ok=True)
    full = f"{project}.{dataset}.{table}"
    created = bigquery.Table(
        full, schema=[bigquery.SchemaField.from_api_repr(c) for c in cost_records.table_schema()]
    )
    created.time_partitioning = bigquery.TimePartitioning(field="day")
    created.clustering_fields = ["team", "model"]
    client.create_table(created, exists_ok=True)
    for name, sql in views.queries(project=project, dataset=dataset, table=table).items():
        view = bigquery.Table(f"{project}.{dataset}.{name}")
        view.view_query = sql
        client.create_table(view, exists_ok=True)
    return full


class CostRecordsBridge:
    """Pulls `subscription` (made on `topic` by `setup`) into `table` (project.dataset.table)."""

    def __init__(
        self,
        *,
        pubsub_host: str,
        project: str,
        topic: str,
        subscription: str,
        bigquery_client,
        table: str,
        interval: float = 1.0,
        log: JsonLog | None = None,
    ):
        self.pubsub_host = pubsub_host
        self.topic_path = f"projects/{project}/topics/{topic}"
        self.subscription_path = f"projects/{project}/subscriptions/{subscription}"
        self.client = bigquery_client
        self.table = table
        self.interval = interval
        self.log = log or JsonLog(None)
        self.written = 0
        self.rejected = 0
        self._schema = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def setup(self) -> "CostRecordsBridge":
        for path, body in (
            (self.topic_path, {}),
            (self.subscription_path, {"topic": self.topic_path, "ackDeadlineSeconds": 60}),
        ):
            response = pubsub_call(self.pubsub_host, "PUT", path, body)
            if response.status_code not in (200, 409):
                response.raise_for_status()
        return self

    def start(self) -> "CostRecordsBridge":
        self._thread = threading.Thread(target=self._run, name="cost-records", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.drain()
            except Exception as exc:  # the next round tries again; the log says why
                self.log("WARNING", "cost records not written", error=repr(exc))

    def _conforms(self, row) -> bool:
        import fastavro
        from fastavro.validation import validate

        if self._schema is None:
            self._schema = fastavro.parse_schema(cost_records.avro_schema())
        return validate(row, self._schema, raise_errors=False)

    def drain(self) -> int:
        """Write every waiting message; the number of rows written."""
        written = 0
        while True:
            response = pubsub_call(
                self.pubsub_host,
                "POST",
                f"{self.subscription_path}:pull",
                {"maxMessages": 500, "returnImmediately": True},
            )
            response.raise_for_status()
            received = response.json().get("receivedMessages") or []
            if not received:
                return written
            rows, ack = [], []
            for item in received:
                ack.append(item["ackId"])
                try:
                    row = json.loads(base64.b64decode(item["message"].get("data") or ""))
                except ValueError:
                    row = None
                if not isinstance(row, dict) or not self._conforms(row):
                    self.rejected += 1
                    self.log("ERROR", "cost record does not fit the schema", body=str(row)[:300])
                    continue
                rows.append(row)
            if rows:
                errors = self.client.insert_rows_json(self.table, rows)
                if errors:
                    raise RuntimeError(f"insert into {self.table} failed: {errors[:3]}")
            self._ack(ack)
            written += len(rows)
            self.written += len(rows)

    def _ack(self, ack_ids: list[str]) -> None:
        response = pubsub_call(
            self.pubsub_host, "POST", f"{self.subscription_path}:acknowledge", {"ackIds": ack_ids}
        )
        response.raise_for_status()
