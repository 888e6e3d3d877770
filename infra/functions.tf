# One bundle, three functions. Nothing runs at rest: min_instance_count is 0 everywhere.

locals {
  source = {
    bucket = google_storage_bucket.source.name
    object = google_storage_bucket_object.bundle.name
  }
}

resource "google_cloudfunctions2_function" "passthrough" {
  #checkov:skip=CKV_GCP_124:The gateway is an internet-facing API by design (clients outside GCP call it with gateway keys); var.public_gateway=false still requires run.invoker on top.
  name        = "${var.name_prefix}-passthrough"
  project     = var.project_id
  location    = var.region
  description = "Vertex-native batchPredictionJobs API and /v1/gateway routes (HTTP)."
  labels      = var.labels

  build_config {
    runtime     = "python312"
    entry_point = "passthrough"
    source {
      storage_source {
        bucket = local.source.bucket
        object = local.source.object
      }
    }
  }

  service_config {
    available_memory                 = var.functions["passthrough"].memory
    available_cpu                    = var.functions["passthrough"].cpu
    timeout_seconds                  = var.functions["passthrough"].timeout_seconds
    max_instance_count               = var.functions["passthrough"].max_instances
    max_instance_request_concurrency = var.functions["passthrough"].concurrency
    min_instance_count               = 0
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.passthrough.email
    environment_variables            = local.env_passthrough

    dynamic "secret_environment_variables" {
      for_each = local.secret_env_passthrough
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        # The version itself, not "latest": a new master key is then a new revision, so
        # every instance holds the same key (`latest` is read once per instance start).
        version = google_secret_manager_secret_version.master_key.version
      }
    }
  }

  depends_on = [
    google_secret_manager_secret_version.master_key,
    google_secret_manager_secret_iam_member.passthrough_reads_master_key,
  ]
}

# Triggered by the push subscription events_to_on_job_event (pubsub.tf), not by an
# event_trigger: see there why. Internal ingress: only Pub/Sub reaches it.
resource "google_cloudfunctions2_function" "on_job_event" {
  name        = "${var.name_prefix}-on-job-event"
  project     = var.project_id
  location    = var.region
  description = "Job state sync, transitions, reconciliation and alerts (Pub/Sub ${local.topics.events})."
  labels      = var.labels

  build_config {
    runtime     = "python312"
    entry_point = "on_job_event"
    source {
      storage_source {
        bucket = local.source.bucket
        object = local.source.object
      }
    }
  }

  service_config {
    available_memory                 = var.functions["on_job_event"].memory
    available_cpu                    = var.functions["on_job_event"].cpu
    timeout_seconds                  = var.functions["on_job_event"].timeout_seconds
    max_instance_count               = var.functions["on_job_event"].max_instances
    max_instance_request_concurrency = var.functions["on_job_event"].concurrency
    min_instance_count               = 0
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.on_job_event.email
    environment_variables            = local.env_on_job_event

    dynamic "secret_environment_variables" {
      for_each = local.secret_env_on_job_event
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        # Pinned like the master key: a new webhook secret rolls out as a new revision.
        version = one(google_secret_manager_secret_version.alert_webhook_secret[*].version)
      }
    }
  }

  depends_on = [
    google_secret_manager_secret_version.alert_webhook_secret,
    google_secret_manager_secret_iam_member.on_job_event_reads_webhook_secret,
  ]
}

# Triggered by one Eventarc trigger per watched bucket (below): a function holds a single
# event_trigger, and buckets in several locations each need a trigger in their location.
resource "google_cloudfunctions2_function" "on_output_finalized" {
  name        = "${var.name_prefix}-on-output-finalized"
  project     = var.project_id
  location    = var.region
  description = "Prices every row of each prediction file Vertex writes (GCS object finalized)."
  labels      = var.labels

  build_config {
    runtime     = "python312"
    entry_point = "on_output_finalized"
    source {
      storage_source {
        bucket = local.source.bucket
        object = local.source.object
      }
    }
  }

  service_config {
    available_memory                 = var.functions["on_output_finalized"].memory
    available_cpu                    = var.functions["on_output_finalized"].cpu
    timeout_seconds                  = var.functions["on_output_finalized"].timeout_seconds
    max_instance_count               = var.functions["on_output_finalized"].max_instances
    max_instance_request_concurrency = var.functions["on_output_finalized"].concurrency
    min_instance_count               = 0
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.on_output_finalized.email
    environment_variables            = local.env_on_output_finalized

    dynamic "secret_environment_variables" {
      for_each = local.secret_env_on_output_finalized
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        # Pinned like the master key: a new webhook secret rolls out as a new revision.
        version = one(google_secret_manager_secret_version.alert_webhook_secret[*].version)
      }
    }
  }

  depends_on = [
    google_secret_manager_secret_version.alert_webhook_secret,
    google_secret_manager_secret_iam_member.on_output_finalized_reads_webhook_secret,
  ]
}

# GCS finalize -> on_output_finalized, one trigger per watched bucket (the output buckets
# and the staging bucket, where sealed outputs land), in the bucket's location. Eventarc retries failed deliveries with backoff for 24 hours (the handler is
# idempotent per object generation); on_job_event reconciles outputs at the terminal state.
resource "google_eventarc_trigger" "output_finalized" {
  for_each = local.watched_buckets

  name            = "${var.name_prefix}-finalized-${substr(sha256(each.key), 0, 12)}"
  project         = var.project_id
  location        = each.value
  service_account = google_service_account.trigger.email
  labels          = var.labels

  matching_criteria {
    attribute = "type"
    value     = "google.cloud.storage.object.v1.finalized"
  }

  matching_criteria {
    attribute = "bucket"
    value     = each.key
  }

  destination {
    cloud_run_service {
      service = google_cloudfunctions2_function.on_output_finalized.name
      region  = var.region
    }
  }

  depends_on = [
    google_storage_bucket.outputs,
    google_storage_bucket.staging,
    google_project_iam_member.gcs_agent_publishes,
    google_project_iam_member.trigger,
    google_cloud_run_v2_service_iam_member.trigger_invokes,
  ]
}
