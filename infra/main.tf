data "google_project" "this" {
  project_id = var.project_id
}

locals {
  project_number = data.google_project.this.number

  topics = {
    events       = "batch-job-events"
    alerts       = "batch-job-alerts"
    dead_letter  = "batch-job-events-dead-letter"
    cost_records = "cost-records"
  }

  created_output_bucket = "${var.name_prefix}-outputs-${var.project_id}"
  staging_bucket        = "${var.name_prefix}-staging-${var.project_id}"

  # The clients' output buckets: the given ones and the created one. Unsealed deployments'
  # Vertex writes here; sealed outputs are copied here by the gateway.
  output_bucket_locations = merge(
    { for b in var.output_buckets : b.name => lower(b.location) },
    var.create_output_bucket ? { (local.created_output_bucket) = lower(var.region) } : {},
  )

  # Every bucket whose finalize events are priced: the output buckets and the staging
  # bucket (sealed outputs: Vertex writes each job's files into a per-job folder there).
  watched_buckets = merge(
    local.output_bucket_locations,
    { (local.staging_bucket) = lower(var.region) },
  )

  webhook_secret_enabled = nonsensitive(var.alert_webhook_secret != null && var.alert_webhook_secret != "")

  # The model list ships inside the bundle; the function runs from the bundle root.
  config_in_bundle = "config.yaml"

  common_env = {
    VBG_PROJECT            = var.project_id
    VBG_FIRESTORE_DATABASE = var.firestore_database
    VBG_CONFIG             = local.config_in_bundle
    VBG_LOG_LEVEL          = var.log_level
    # Prices: the bundled catalog overlaid by the operator's (Firestore price_catalogs).
    VBG_PRICE_CATALOG = "firestore"
  }

  # Plain environment per function: shared/core/config.py ENV_BY_FUNCTION is the contract
  # (tests/infra/test_infra_contract.py holds this file to it). Secrets are in
  # local.secret_env_* below.
  env_passthrough = merge(local.common_env, {
    VBG_EVENTS_TOPIC    = local.topics.events
    VBG_VERTEX_ENDPOINT = var.vertex_endpoint
    VBG_MAX_BODY_BYTES  = tostring(var.max_body_bytes)
    VBG_STAGING_BUCKET  = google_storage_bucket.staging.name
  })

  env_on_job_event = merge(local.common_env, {
    VBG_ALERTS_TOPIC        = local.topics.alerts
    VBG_VERTEX_ENDPOINT     = var.vertex_endpoint
    VBG_STUCK_QUEUED_HOURS  = tostring(var.stuck_queued_hours)
    VBG_STUCK_RUNNING_HOURS = tostring(var.stuck_running_hours)
    VBG_SYNC_MAX_JOBS       = tostring(var.sync_max_jobs)
    VBG_SYNC_CONCURRENCY    = tostring(var.sync_concurrency)
    VBG_SYNC_TICK_SECONDS   = tostring(var.sync_tick_seconds)
    VBG_ALERT_WEBHOOK_URL   = var.alert_webhook_url
    VBG_COST_RECORDS_TOPIC  = local.topics.cost_records
    VBG_BILLING_TABLE       = var.billing_export_table
    VBG_BOOKS_DATASET       = "${var.project_id}.${var.books_dataset}"
    VBG_DRIFT_THRESHOLD_PCT = tostring(var.drift_threshold_pct)
    VBG_DRIFT_THRESHOLD_USD = var.drift_threshold_usd == null ? "" : tostring(var.drift_threshold_usd)
    VBG_RECONCILE_LAG_DAYS  = tostring(var.reconcile_lag_days)
    # A pending create intent is adopted or abandoned once no create can still be running.
    VBG_ADOPT_AFTER_SECONDS = tostring(2 * var.functions["passthrough"].timeout_seconds)
    # Runs: the driver creates pieces (events) and merges through the staging bucket.
    VBG_EVENTS_TOPIC            = local.topics.events
    VBG_STAGING_BUCKET          = google_storage_bucket.staging.name
    VBG_RUN_JOBS_PER_KEY        = tostring(var.run_jobs_per_key)
    VBG_RUN_JOBS_PER_DEPLOYMENT = tostring(var.run_jobs_per_deployment)
  })

  env_on_output_finalized = merge(local.common_env, {
    VBG_ALERTS_TOPIC       = local.topics.alerts
    VBG_ALERT_WEBHOOK_URL  = var.alert_webhook_url
    VBG_EVENTS_TOPIC       = local.topics.events
    VBG_VERTEX_ENDPOINT    = var.vertex_endpoint
    VBG_STAGING_BUCKET     = google_storage_bucket.staging.name
    VBG_COST_RECORDS_TOPIC = local.topics.cost_records
  })

  # Secret environment per function: variable name => secret id (version "latest").
  secret_env_passthrough = {
    VBG_MASTER_KEY = "${var.name_prefix}-master-key"
  }

  secret_env_on_job_event = local.webhook_secret_enabled ? {
    VBG_ALERT_WEBHOOK_SECRET = "${var.name_prefix}-alert-webhook-secret"
  } : {}

  secret_env_on_output_finalized = local.secret_env_on_job_event
}
