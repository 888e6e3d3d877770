# Topics. Google-managed encryption: checkov's CMEK check is skipped on each (the messages
# hold job ids, states and costs, no customer data; CMEK would need a KMS key ring this
# module does not own).

resource "google_pubsub_topic" "events" {
  #checkov:skip=CKV_GCP_83:Job ids, states and costs only; Google-managed encryption is enough and CMEK needs a key this module does not own.
  name                       = local.topics.events
  project                    = var.project_id
  labels                     = var.labels
  message_retention_duration = "86400s"

  depends_on = [google_project_service.this]
}

resource "google_pubsub_topic" "alerts" {
  #checkov:skip=CKV_GCP_83:Job ids, states and costs only; Google-managed encryption is enough and CMEK needs a key this module does not own.
  name                       = local.topics.alerts
  project                    = var.project_id
  labels                     = var.labels
  message_retention_duration = "604800s"

  depends_on = [google_project_service.this]
}

resource "google_pubsub_topic" "dead_letter" {
  #checkov:skip=CKV_GCP_83:Job ids, states and costs only; Google-managed encryption is enough and CMEK needs a key this module does not own.
  name    = local.topics.dead_letter
  project = var.project_id
  labels  = var.labels

  depends_on = [google_project_service.this]
}

# The Pub/Sub trigger of on_job_event. A subscription we manage instead of the function's
# event_trigger: the subscription Eventarc creates for a gen2 function cannot be given a
# dead-letter policy in Terraform (hashicorp/terraform-provider-google#25069); Google
# recommends this "direct Pub/Sub trigger" anyway. functions-framework turns the raw push
# into the same messagePublished CloudEvent, because the push path names the topic.
resource "google_pubsub_subscription" "events_to_on_job_event" {
  name    = "${local.topics.events}-to-on-job-event"
  project = var.project_id
  topic   = google_pubsub_topic.events.id
  labels  = var.labels

  ack_deadline_seconds       = min(600, var.functions["on_job_event"].timeout_seconds)
  message_retention_duration = "86400s"

  push_config {
    push_endpoint = "${google_cloudfunctions2_function.on_job_event.service_config[0].uri}/projects/${var.project_id}/topics/${local.topics.events}"

    oidc_token {
      service_account_email = google_service_account.trigger.email
      audience              = google_cloudfunctions2_function.on_job_event.service_config[0].uri
    }
  }

  # Handlers are idempotent and ack poison messages themselves: what still fails is
  # transient, retried with backoff, then parked on the dead-letter topic.
  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter.id
    max_delivery_attempts = 10
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [google_cloud_run_v2_service_iam_member.trigger_invokes["on_job_event"]]
}

# Keeps dead letters for a week so someone can look at them (and re-publish them).
resource "google_pubsub_subscription" "dead_letter_keep" {
  name    = "${local.topics.dead_letter}-keep"
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.id
  labels  = var.labels

  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  retain_acked_messages      = false

  expiration_policy {
    ttl = ""
  }
}

# Alerts for people and tools to pull (or replace with your own push subscription).
resource "google_pubsub_subscription" "alerts_inbox" {
  name    = "${local.topics.alerts}-inbox"
  project = var.project_id
  topic   = google_pubsub_topic.alerts.id
  labels  = var.labels

  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}
