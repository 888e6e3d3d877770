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
