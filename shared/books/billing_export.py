"""Google's Cloud Billing detailed usage cost export, as the reconciliation reads it.

The table `gcp_billing_export_resource_v1_<BILLING_ACCOUNT_ID>` holds one row per charge:
`service {id, description}`, `sku {id, description}`, `usage_start_time`, `usage_end_time`,
`project {id, number, name, labels, ancestry_numbers, ancestors}`, `labels` and
`system_labels` (repeated `{key, value}`), `location {location, country, region, zone}`,
`resource {name, global_name}`, `export_time`, `cost` (FLOAT, in the billing account's
`currency`), `currency_conversion_rate` (from USD to that currency), `usage {amount, unit,
amount_in_pricing_units, pricing_unit}`, `credits` (repeated `{name, amount, full_name, id,
type}`), `invoice {month}`, `cost_type`, `cost_at_list`, `price`, `tags`, `transaction_type`,
`seller_name`, `adjustment_info`, `subscription`
(https://cloud.google.com/billing/docs/how-to/export-data-bigquery-tables/detailed-usage and
the standard-usage page it extends). `SCHEMA` is that table as the tests build it in the
BigQuery emulator.

Money: `cost` is a FLOAT in the export. Each row's value is read as the shortest decimal that
prints the float (`repr`), divided by the row's conversion rate when the currency is not USD,
and rounded to a whole nano-dollar, one row at a time, in `Decimal`; sums are integers.

What reaches the export for a Vertex batch job (see docs/bigquery.md for the argument): the
service (`Vertex AI`, inferred from the console's service name: `VERTEX_SERVICE`), the SKU
per model and kind of token, the project and the time of use. Google documents that labels
of online calls (`generateContent`, `rawPredict`) are forwarded to billing, with at most
1,000 unique values per key over the billing account's life, past which the key "might be
dropped without notice" (https://cloud.google.com/vertex-ai/generative-ai/docs/multimodal/add-labels-to-api-calls);
we found no page saying a BatchPredictionJob's labels reach the export. So a job is matched
to its charges only where the export carries its `vbg-intent` label; the rest is compared per
day, project and model.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from shared.core import clients

VERTEX_SERVICE = "Vertex AI"
INTENT_LABEL = "vbg-intent"
NANOS = Decimal(10**9)


def _field(name: str, kind: str, mode: str = "NULLABLE", fields: list | None = None) -> dict:
    out: dict[str, object] = {"name": name, "type": kind, "mode": mode}
    if fields:
        out["fields"] = fields
    return out


_KEY_VALUE = [_field("key", "STRING"), _field("value", "STRING")]
SCHEMA = [
    _field("billing_account_id", "STRING"),
    _field("service", "RECORD", fields=[_field("id", "STRING"), _field("description", "STRING")]),
    _field("sku", "RECORD", fields=[_field("id", "STRING"), _field("description", "STRING")]),
    _field("usage_start_time", "TIMESTAMP"),
    _field("usage_end_time", "TIMESTAMP"),
    _field(
        "project",
        "RECORD",
        fields=[
            _field("id", "STRING"),
            _field("number", "STRING"),
            _field("name", "STRING"),
            _field("labels", "RECORD", "REPEATED", _KEY_VALUE),
            _field("ancestry_numbers", "STRING"),
        ],
    ),
    _field("labels", "RECORD", "REPEATED", _KEY_VALUE),
    _field("system_labels", "RECORD", "REPEATED", _KEY_VALUE),
    _field(
        "location",
        "RECORD",
        fields=[
            _field("location", "STRING"),
            _field("country", "STRING"),
            _field("region", "STRING"),
            _field("zone", "STRING"),
        ],
    ),
    _field(
        "resource", "RECORD", fields=[_field("name", "STRING"), _field("global_name", "STRING")]
    ),
    _field("export_time", "TIMESTAMP"),
    _field("cost", "FLOAT"),
    _field("currency", "STRING"),
    _field("currency_conversion_rate", "FLOAT"),
    _field(
        "usage",
        "RECORD",
        fields=[
            _field("amount", "FLOAT"),
            _field("unit", "STRING"),
            _field("amount_in_pricing_units", "FLOAT"),
            _field("pricing_unit", "STRING"),
        ],
    ),
    _field(
        "credits",
        "RECORD",
        "REPEATED",
        [
            _field("name", "STRING"),
            _field("amount", "FLOAT"),
            _field("full_name", "STRING"),
            _field("id", "STRING"),
            _field("type", "STRING"),
        ],
    ),
    _field("invoice", "RECORD", fields=[_field("month", "STRING")]),
    _field("cost_type", "STRING"),
    _field("cost_at_list", "FLOAT"),
]


@dataclass(frozen=True)
class Charge:
    """One export row, as the reconciliation needs it; money in integer nano-dollars (USD)."""

    day: str
    project: str
    sku: str
    nanos: int
    credit_nanos: int
    intent: str | None


def usd_nanos(amount, currency: str | None, rate) -> int:
    """A FLOAT amount of the billing currency as whole USD nano-dollars (half to even)."""
    value = Decimal(repr(float(amount or 0)))
    if (currency or "USD") != "USD":
        value = value / Decimal(repr(float(rate)))
    return int((value * NANOS).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _label(labels, key: str) -> str | None:
    for label in labels or ():
        if label.get("key") == key:
            return label.get("value")
    return None


QUERY = """
SELECT
  DATE(usage_start_time) AS day,
  project.id AS project,
  sku.description AS sku,
  cost,
  currency,
  currency_conversion_rate,
  labels,
  credits
FROM `{table}`
WHERE service.description = @service
  AND usage_start_time >= @start
  AND usage_start_time < @end
"""


def charges(*, table: str, start: date, end: date, service: str = VERTEX_SERVICE) -> list[Charge]:
    """The service's charges used from `start` to `end` (UTC days, both included)."""
    from google.cloud import bigquery

    config = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ScalarQueryParameter("service", "STRING", service),
            bigquery.ScalarQueryParameter("start", "TIMESTAMP", f"{start.isoformat()}T00:00:00Z"),
            bigquery.ScalarQueryParameter(
                "end", "TIMESTAMP", f"{(end + timedelta(days=1)).isoformat()}T00:00:00Z"
            ),
        ]
    )
    rows = clients.bigquery().query(QUERY.format(table=table), job_config=config).result()
    return [
        Charge(
            day=str(row["day"]),
            project=row["project"] or "",
            sku=row["sku"] or "",
            nanos=usd_nanos(row["cost"], row["currency"], row["currency_conversion_rate"]),
            credit_nanos=sum(
                usd_nanos(c.get("amount"), row["currency"], row["currency_conversion_rate"])
                for c in row["credits"] or ()
            ),
            intent=_label(row["labels"], INTENT_LABEL),
        )
        for row in rows
    ]
