resource "random_password" "master_key" {
  count = nonsensitive(var.master_key == null) ? 1 : 0

  length  = 48
  special = false
}

resource "google_secret_manager_secret" "master_key" {
  #checkov:skip=CKV_GCP_125:Automatic (Google-managed) replication; CMEK would need a KMS key this module does not own.
  secret_id = local.secret_env_passthrough["VBG_MASTER_KEY"]
  project   = var.project_id
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.this]
}

resource "google_secret_manager_secret_version" "master_key" {
  secret      = google_secret_manager_secret.master_key.id
  secret_data = coalesce(var.master_key, try(random_password.master_key[0].result, null))
}

resource "google_secret_manager_secret" "alert_webhook_secret" {
  count = local.webhook_secret_enabled ? 1 : 0
  #checkov:skip=CKV_GCP_125:Automatic (Google-managed) replication; CMEK would need a KMS key this module does not own.

  secret_id = "${var.name_prefix}-alert-webhook-secret"
  project   = var.project_id
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.this]
}

resource "google_secret_manager_secret_version" "alert_webhook_secret" {
  count = local.webhook_secret_enabled ? 1 : 0

  secret      = google_secret_manager_secret.alert_webhook_secret[0].id
  secret_data = var.alert_webhook_secret
}
