output "gateway_url" {
  description = "Base URL of the gateway: point Vertex clients' api_endpoint here."
  value       = google_cloudfunctions2_function.passthrough.service_config[0].uri
}

output "topics" {
  description = "Pub/Sub topics: job events, alerts, dead letters."
  value = {
    events      = google_pubsub_topic.events.id
    alerts      = google_pubsub_topic.alerts.id
    dead_letter = google_pubsub_topic.dead_letter.id
  }
}

output "subscriptions" {
  description = "Pub/Sub subscriptions to read: alerts for people, kept dead letters."
  value = {
    alerts_inbox     = google_pubsub_subscription.alerts_inbox.id
    dead_letter_keep = google_pubsub_subscription.dead_letter_keep.id
  }
}

output "buckets" {
  description = "Source bucket of the bundles, watched output buckets (name => location), created output bucket (or null)."
  value = {
    source  = google_storage_bucket.source.name
    watched = local.watched_buckets
    created = var.create_output_bucket ? google_storage_bucket.outputs[0].name : null
  }
}

output "service_accounts" {
  description = "Service account of each function and of the trigger identity."
  value = {
    passthrough         = google_service_account.passthrough.email
    on_job_event        = google_service_account.on_job_event.email
    on_output_finalized = google_service_account.on_output_finalized.email
    trigger             = google_service_account.trigger.email
  }
}

output "vertex_service_agent" {
  description = "Vertex AI service agent: it reads batch inputs and writes outputs; grant it access to buckets outside this module."
  value       = google_project_service_identity.aiplatform.email
}

output "bundle_object" {
  description = "The deployed source bundle (named by its sha256)."
  value       = "gs://${google_storage_bucket.source.name}/${google_storage_bucket_object.bundle.name}"
}

output "master_key_command" {
  description = "Prints the gateway master key."
  value       = "gcloud secrets versions access latest --secret=${google_secret_manager_secret.master_key.secret_id} --project=${var.project_id}"
}
