# The books in BigQuery (docs/bigquery.md). The functions publish every cost record and each
# job's totals to `cost-records` (shared/books/cost_records.py); a BigQuery subscription
# writes the topic into a table. No gateway code writes to BigQuery. The topic's schema and
# the table's columns are files the code generates and a test holds to it.

resource "google_pubsub_schema" "cost_record" {
  name       = "${var.name_prefix}-cost-record"
  project    = var.project_id
  type       = "AVRO"
  definition = file("${path.module}/../shared/books/cost_record.avsc")

  depends_on = [google_project_service.this]
}

resource "google_pubsub_topic" "cost_records" {
  #checkov:skip=CKV_GCP_83:Job ids, labels and costs only; Google-managed encryption is enough and CMEK needs a key this module does not own.
  name                       = local.topics.cost_records
  project                    = var.project_id
  labels                     = var.labels
  message_retention_duration = "604800s"

  schema_settings {
    schema   = google_pubsub_schema.cost_record.id
    encoding = "JSON"
  }
}

resource "google_bigquery_dataset" "books" {
  #checkov:skip=CKV_GCP_81:Job ids, labels and costs only; Google-managed encryption is enough and CMEK needs a key this module does not own.
  dataset_id    = var.books_dataset
  project       = var.project_id
  location      = var.books_location
  friendly_name = "Vertex Batch Gateway books"
  description   = "Cost records of the gateway's jobs (docs/bigquery.md)."
  labels        = var.labels

  depends_on = [google_project_service.this]
}

# One row per cost record and per job total; the spend day (the UTC day of the job's create
# time) is the partition, so a month's spend reads a month of partitions.
resource "google_bigquery_table" "cost_records" {
  #checkov:skip=CKV_GCP_80:Job ids, labels and costs only; Google-managed encryption is enough and CMEK needs a key this module does not own.
  project             = var.project_id
  dataset_id          = google_bigquery_dataset.books.dataset_id
  table_id            = "cost_records"
  description         = "Cost records and job totals, from the cost-records topic."
  labels              = var.labels
  deletion_protection = true
  schema              = file("${path.module}/../shared/books/cost_records_table.json")
  clustering          = ["team", "model"]

  time_partitioning {
    type  = "DAY"
    field = "day"
  }
}

locals {
  books_view_vars = {
    project = var.project_id
    dataset = var.books_dataset
    table   = "cost_records"
  }
  # Views of one row per job and per file (at-least-once delivery undone), then the daily
  # spend views that read job_costs (shared/books/views.py, the same SQL files).
  books_base_views  = toset(["job_costs", "file_costs"])
  books_daily_views = toset(["daily_spend_by_team", "daily_spend_by_key", "daily_spend_by_model", "daily_spend_by_label"])
}

resource "google_bigquery_table" "books_base_views" {
  for_each            = local.books_base_views
  project             = var.project_id
  dataset_id          = google_bigquery_dataset.books.dataset_id
  table_id            = each.key
  labels              = var.labels
  deletion_protection = false

  view {
    query          = templatefile("${path.module}/../shared/books/views/${each.key}.sql", local.books_view_vars)
    use_legacy_sql = false
  }

  depends_on = [google_bigquery_table.cost_records]
}

resource "google_bigquery_table" "books_daily_views" {
  for_each            = local.books_daily_views
  project             = var.project_id
  dataset_id          = google_bigquery_dataset.books.dataset_id
  table_id            = each.key
  labels              = var.labels
  deletion_protection = false

  view {
    query          = templatefile("${path.module}/../shared/books/views/${each.key}.sql", local.books_view_vars)
    use_legacy_sql = false
  }

  depends_on = [google_bigquery_table.books_base_views]
}

# The Pub/Sub service agent writes the table: "the Pub/Sub service agent or a custom service
# account must have permission to write to the specific BigQuery table"
# (https://cloud.google.com/pubsub/docs/create-bigquery-subscription); BigQuery Data Editor
# on the table alone is our choice of the narrowest grant that writes rows.
resource "google_bigquery_table_iam_member" "pubsub_agent_writes_cost_records" {
  project    = var.project_id
  dataset_id = google_bigquery_dataset.books.dataset_id
  table_id   = google_bigquery_table.cost_records.table_id
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${google_project_service_identity.pubsub.email}"
}

# The topic's schema maps each field to its column (use_topic_schema); delivery is at least
# once, so the views count each record_id once. Undeliverable rows go to the dead letters.
resource "google_pubsub_subscription" "cost_records_to_bigquery" {
  name    = "${local.topics.cost_records}-to-bigquery"
  project = var.project_id
  topic   = google_pubsub_topic.cost_records.id
  labels  = var.labels

  message_retention_duration = "604800s"

  bigquery_config {
    table            = "${var.project_id}.${google_bigquery_dataset.books.dataset_id}.${google_bigquery_table.cost_records.table_id}"
    use_topic_schema = true
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = 10
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_bigquery_table_iam_member.pubsub_agent_writes_cost_records]
}

resource "google_pubsub_subscription_iam_member" "pubsub_agent_acks_cost_records_dead_letters" {
  project      = var.project_id
  subscription = google_pubsub_subscription.cost_records_to_bigquery.name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${google_project_service_identity.pubsub.email}"
}

resource "google_pubsub_topic_iam_member" "on_job_event_publishes_cost_records" {
  project = var.project_id
  topic   = google_pubsub_topic.cost_records.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.on_job_event.email}"
}

resource "google_pubsub_topic_iam_member" "on_output_finalized_publishes_cost_records" {
  project = var.project_id
  topic   = google_pubsub_topic.cost_records.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.on_output_finalized.email}"
}

# The daily reconciliation reads the books and the billing export: BigQuery jobs in this
# project, the books dataset, and the export table (the operator's billing project may be
# another one: the grant is made there when this account may set it, else by its owner).
resource "google_project_iam_member" "on_job_event_runs_queries" {
  project = var.project_id
  role    = "roles/bigquery.jobUser"
  member  = "serviceAccount:${google_service_account.on_job_event.email}"
}

resource "google_bigquery_dataset_iam_member" "on_job_event_reads_books" {
  project    = var.project_id
  dataset_id = google_bigquery_dataset.books.dataset_id
  role       = "roles/bigquery.dataViewer"
  member     = "serviceAccount:${google_service_account.on_job_event.email}"
}

locals {
  billing_table_parts = split(".", var.billing_export_table)
}

resource "google_bigquery_table_iam_member" "on_job_event_reads_billing_export" {
  count      = var.billing_export_table == "" ? 0 : 1
  project    = local.billing_table_parts[0]
  dataset_id = local.billing_table_parts[1]
  table_id   = local.billing_table_parts[2]
  role       = "roles/bigquery.dataViewer"
  member     = "serviceAccount:${google_service_account.on_job_event.email}"
}
