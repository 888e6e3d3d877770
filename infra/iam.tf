# Least privilege: one service account per function, plus one that Eventarc and Pub/Sub
# use to invoke the event functions. tests/infra/test_infra_contract.py holds the exact
# role set of each account.

resource "google_service_account" "passthrough" {
  account_id   = "${var.name_prefix}-gateway"
  project      = var.project_id
  display_name = "Vertex Batch Gateway: passthrough (HTTP gateway)"
}

resource "google_service_account" "on_job_event" {
  account_id   = "${var.name_prefix}-events"
  project      = var.project_id
  display_name = "Vertex Batch Gateway: on_job_event (sync, lifecycle, alerts)"
}

resource "google_service_account" "on_output_finalized" {
  account_id   = "${var.name_prefix}-finalize"
  project      = var.project_id
  display_name = "Vertex Batch Gateway: on_output_finalized (output pricing)"
}

resource "google_service_account" "trigger" {
  account_id   = "${var.name_prefix}-trigger"
  project      = var.project_id
  display_name = "Vertex Batch Gateway: Eventarc and Pub/Sub push identity"
}

# --- passthrough: create/read/cancel Vertex jobs, Firestore, publish job events ----------

resource "google_project_iam_member" "passthrough" {
  for_each = toset(["roles/aiplatform.user", "roles/datastore.user"])

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.passthrough.email}"
}

resource "google_pubsub_topic_iam_member" "passthrough_publishes_events" {
  project = var.project_id
  topic   = google_pubsub_topic.events.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.passthrough.email}"
}

resource "google_secret_manager_secret_iam_member" "passthrough_reads_master_key" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.master_key.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.passthrough.email}"
}

# Pre-flight estimates read the sizes (and a bounded head) of input files.
resource "google_storage_bucket_iam_member" "passthrough_reads_inputs" {
  for_each = toset(var.input_buckets)

  bucket = each.value
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.passthrough.email}"
}

# Sealed inputs: copies written at create (and deleted when the create is refused).
resource "google_storage_bucket_iam_member" "passthrough_writes_staging" {
  bucket = google_storage_bucket.staging.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_service_account.passthrough.email}"
}

# --- on_job_event: read jobs from Vertex, Firestore, reconcile outputs, publish alerts ---

resource "google_project_iam_member" "on_job_event" {
  for_each = toset(["roles/aiplatform.user", "roles/datastore.user"])

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.on_job_event.email}"
}

# A run's driver publishes its own events (run.advance, run.merge; shared/runs/drive.py).
resource "google_pubsub_topic_iam_member" "on_job_event_publishes_events" {
  project = var.project_id
  topic   = google_pubsub_topic.events.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.on_job_event.email}"
}

resource "google_pubsub_topic_iam_member" "on_job_event_publishes_alerts" {
  project = var.project_id
  topic   = google_pubsub_topic.alerts.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.on_job_event.email}"
}

# Estimates of jobs created without one are made from their sealed inputs; reconciliation
# prices and copies sealed outputs from the per-job folders; a run's merge writes (and
# deletes) its sort buckets there (shared/runs/merge.py): objectUser.
resource "google_storage_bucket_iam_member" "on_job_event_reads_staging" {
  bucket = google_storage_bucket.staging.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.on_job_event.email}"
}

# Reconciliation reads the output folders; for sealed outputs it also writes the copies
# into the clients' folders (create, and overwrite: objectUser).
resource "google_storage_bucket_iam_member" "on_job_event_copies_outputs" {
  for_each = local.output_bucket_locations

  bucket = each.key
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.on_job_event.email}"

  depends_on = [google_storage_bucket.outputs]
}

resource "google_secret_manager_secret_iam_member" "on_job_event_reads_webhook_secret" {
  count = local.webhook_secret_enabled ? 1 : 0

  project   = var.project_id
  secret_id = google_secret_manager_secret.alert_webhook_secret[0].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.on_job_event.email}"
}

resource "google_secret_manager_secret_iam_member" "on_output_finalized_reads_webhook_secret" {
  count = local.webhook_secret_enabled ? 1 : 0

  project   = var.project_id
  secret_id = google_secret_manager_secret.alert_webhook_secret[0].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.on_output_finalized.email}"
}

# --- on_output_finalized: read prediction files, Firestore, publish budget alerts --------

# aiplatform.user: the live budget stop cancels a running job that would cross a budget.
resource "google_project_iam_member" "on_output_finalized" {
  for_each = toset(["roles/aiplatform.user", "roles/datastore.user"])

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.on_output_finalized.email}"
}

resource "google_pubsub_topic_iam_member" "on_output_finalized_publishes_alerts" {
  project = var.project_id
  topic   = google_pubsub_topic.alerts.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.on_output_finalized.email}"
}

# Prices the files Vertex writes in the output buckets (unsealed deployments) and copies
# sealed outputs there (create, and overwrite: objectUser).
resource "google_storage_bucket_iam_member" "on_output_finalized_copies_outputs" {
  for_each = local.output_bucket_locations

  bucket = each.key
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.on_output_finalized.email}"

  depends_on = [google_storage_bucket.outputs]
}

# Sealed outputs are priced, and copied from, the per-job folders of the staging bucket.
resource "google_storage_bucket_iam_member" "on_output_finalized_reads_staging" {
  bucket = google_storage_bucket.staging.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.on_output_finalized.email}"
}

# The budget stop's cancel is followed by `job.cancel_requested` (a sync of that job now).
resource "google_pubsub_topic_iam_member" "on_output_finalized_publishes_events" {
  project = var.project_id
  topic   = google_pubsub_topic.events.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.on_output_finalized.email}"
}

# --- trigger identity: receive Eventarc events, invoke the two event functions ----------

resource "google_project_iam_member" "trigger" {
  for_each = toset(["roles/eventarc.eventReceiver"])

  project = var.project_id
  role    = each.value
  member  = "serviceAccount:${google_service_account.trigger.email}"
}

resource "google_cloud_run_v2_service_iam_member" "trigger_invokes" {
  for_each = {
    on_job_event        = google_cloudfunctions2_function.on_job_event.name
    on_output_finalized = google_cloudfunctions2_function.on_output_finalized.name
  }

  project  = var.project_id
  location = var.region
  name     = each.value
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger.email}"
}

# --- the gateway's public door: only when asked; the gateway checks its own API keys -----

resource "google_cloud_run_v2_service_iam_member" "public_gateway" {
  count = var.public_gateway ? 1 : 0
  #checkov:skip=CKV_GCP_102:Public on purpose when var.public_gateway is true: callers authenticate with gateway API keys (checked in constant time by the function), not Google identities.

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.passthrough.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# --- Google service agents --------------------------------------------------------------

# Cloud Storage publishes finalize notifications to the topics Eventarc creates.
resource "google_project_iam_member" "gcs_agent_publishes" {
  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

# Pub/Sub moves undeliverable messages to the dead-letter topic: it must publish there and
# acknowledge on the source subscription.
resource "google_pubsub_topic_iam_member" "pubsub_agent_publishes_dead_letters" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letter.name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_project_service_identity.pubsub.email}"
}

resource "google_pubsub_subscription_iam_member" "pubsub_agent_acks_dead_letters" {
  project      = var.project_id
  subscription = google_pubsub_subscription.events_to_on_job_event.name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${google_project_service_identity.pubsub.email}"
}

# Pub/Sub signs the push OIDC token as the trigger account (needed in projects created
# before April 2021; harmless after).
resource "google_service_account_iam_member" "pubsub_agent_signs_push_tokens" {
  service_account_id = google_service_account.trigger.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${google_project_service_identity.pubsub.email}"
}
