# The sync tick: Vertex publishes no event when a batch job changes state, so on_job_event
# polls the non-terminal jobs once per tick. The next tick is the retry.
resource "google_cloud_scheduler_job" "sync" {
  name      = "${var.name_prefix}-sync"
  project   = var.project_id
  region    = var.region
  schedule  = var.sync_schedule
  time_zone = var.sync_time_zone

  description = "Publishes {\"type\":\"sync\"} to ${local.topics.events}: on_job_event polls Vertex for job state changes."

  pubsub_target {
    topic_name = google_pubsub_topic.events.id
    data       = base64encode(jsonencode({ type = "sync" }))
    attributes = {
      type = "sync"
    }
  }

  depends_on = [google_project_service.this]
}

# The daily reconciliation of the books with the Cloud Billing export (docs/bigquery.md):
# on_job_event compares one day and sends a `drift` alert over the threshold. Only when the
# operator names the export table.
resource "google_cloud_scheduler_job" "reconcile" {
  count     = var.billing_export_table == "" ? 0 : 1
  name      = "${var.name_prefix}-reconcile"
  project   = var.project_id
  region    = var.region
  schedule  = var.reconcile_schedule
  time_zone = "Etc/UTC"

  description = "Publishes {\"type\":\"reconcile\"} to ${local.topics.events}: the books against the billing export."

  pubsub_target {
    topic_name = google_pubsub_topic.events.id
    data       = base64encode(jsonencode({ type = "reconcile" }))
    attributes = {
      type = "reconcile"
    }
  }

  depends_on = [google_project_service.this]
}

# The run tick: queued pieces of runs wait for a concurrency slot, ended pieces for their
# merge; on_job_event advances every open run once per tick (shared/runs/drive.py).
resource "google_cloud_scheduler_job" "run_tick" {
  name      = "${var.name_prefix}-run-tick"
  project   = var.project_id
  region    = var.region
  schedule  = var.sync_schedule
  time_zone = var.sync_time_zone

  description = "Publishes {\"type\":\"run.tick\"} to ${local.topics.events}: on_job_event advances open runs."

  pubsub_target {
    topic_name = google_pubsub_topic.events.id
    data       = base64encode(jsonencode({ type = "run.tick" }))
    attributes = {
      type = "run.tick"
    }
  }

  depends_on = [google_project_service.this]
}
