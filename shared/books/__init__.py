"""The books outside Firestore: spend exports, cost records for BigQuery, reconciliation with
the Cloud Billing export (docs/bigquery.md)."""
