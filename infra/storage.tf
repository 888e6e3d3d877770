locals {
  bundle_dir  = startswith(var.bundle_dir, "/") ? var.bundle_dir : "${path.module}/${var.bundle_dir}"
  config_file = startswith(var.config_file, "/") ? var.config_file : "${path.module}/${var.config_file}"
  bundle_zip  = "${local.bundle_dir}/bundle.zip"
  # Written by `make bundle` beside the zip: the sha256 of the zip and of the config inside.
  bundle_manifest = jsondecode(file("${local.bundle_dir}/bundle.json"))
}

resource "google_storage_bucket" "source" {
  #checkov:skip=CKV_GCP_62:Access logs of a bucket that only Cloud Build reads deployment bundles from add cost and no insight; Cloud Audit Logs cover admin access.
  name     = "${var.name_prefix}-source-${var.project_id}"
  project  = var.project_id
  location = var.region
  labels   = var.labels

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  versioning {
    enabled = true
  }

  # Each code change uploads a new bundle-<sha256>.zip and deletes the previous object:
  # keep the old versions a while for rollback, then drop them.
  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.this]
}

# Named by the hash of its content: a code or config change is a new object, which
# changes the functions' source and redeploys them; no change, no redeploy.
resource "google_storage_bucket_object" "bundle" {
  name         = "bundle-${filesha256(local.bundle_zip)}.zip"
  bucket       = google_storage_bucket.source.name
  source       = local.bundle_zip
  content_type = "application/zip"

  lifecycle {
    precondition {
      condition     = local.bundle_manifest.sha256 == filesha256(local.bundle_zip)
      error_message = "build/bundle.json does not describe build/bundle.zip: run `make bundle` again."
    }
    precondition {
      condition     = local.bundle_manifest.config_sha256 == filesha256(local.config_file)
      error_message = "The bundle holds another model list than var.config_file: run `make bundle` (it reads config_file from terraform.tfvars) or `python -m local.bundle --config <file>`."
    }
  }
}

# Keys' own principals (people, their service accounts) should get read-only access
# (roles/storage.objectViewer) to output folders: whoever can write there can rewrite a
# job's predictions. The books do not move (a later generation never lowers what counts,
# and after a job's cost is final it changes nothing and raises a `tamper` alert), but the
# files people read would no longer be what Vertex wrote.
resource "google_storage_bucket" "outputs" {
  count = var.create_output_bucket ? 1 : 0
  #checkov:skip=CKV_GCP_62:Access logs of prediction outputs would cost more than the outputs; reads are by the gateway's own service accounts, visible in Data Access audit logs when enabled.
  #checkov:skip=CKV_GCP_78:Prediction files are written once by Vertex and priced on finalize; versioning would keep and bill every deleted file past the lifecycle rule.

  name     = local.created_output_bucket
  project  = var.project_id
  location = var.region
  labels   = var.labels

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  dynamic "lifecycle_rule" {
    for_each = var.output_bucket_lifecycle_days > 0 ? [var.output_bucket_lifecycle_days] : []
    content {
      condition {
        age = lifecycle_rule.value
      }
      action {
        type = "Delete"
      }
    }
  }

  depends_on = [google_project_service.this]
}

# Vertex AI writes batch outputs as its service agent. Buckets given in output_buckets are
# not touched: grant the agent access there yourself if they live in another project.
resource "google_storage_bucket_iam_member" "vertex_writes_outputs" {
  count = var.create_output_bucket ? 1 : 0

  bucket = google_storage_bucket.outputs[0].name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_project_service_identity.aiplatform.email}"
}

# Gateway-owned: sealed copies of job inputs (what Vertex runs is what was estimated and
# budgeted), sealed outputs (Vertex writes each job's files into outputs/<day>/<key>/<intent>/,
# the gateway prices them there and copies them to the client's folder) and other files the
# gateway writes. Only the gateway's functions and Vertex's service agent (outputs/ only)
# write here; keys' principals get no access at all: nothing a key holder does changes what
# the books read.
resource "google_storage_bucket" "staging" {
  #checkov:skip=CKV_GCP_62:Access logs of gateway-written copies would cost more than the copies; reads are by Vertex's service agent and the gateway's own service accounts.
  #checkov:skip=CKV_GCP_78:Sealed copies are written once and deleted by the lifecycle rule; versioning would keep and bill them past it.
  name     = local.staging_bucket
  project  = var.project_id
  location = var.region
  labels   = var.labels

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true

  lifecycle_rule {
    condition {
      age = var.staging_lifecycle_days
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.this]
}

resource "google_storage_bucket_iam_member" "vertex_reads_staging" {
  bucket = google_storage_bucket.staging.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_project_service_identity.aiplatform.email}"
}

# Sealed outputs: Vertex writes batch outputs as its service agent, and only below outputs/
# (sealed inputs and the gateway's other files stay read-only to it).
resource "google_storage_bucket_iam_member" "vertex_writes_staging_outputs" {
  bucket = google_storage_bucket.staging.name
  role   = "roles/storage.objectAdmin"
  member = "serviceAccount:${google_project_service_identity.aiplatform.email}"

  condition {
    title       = "sealed-outputs-only"
    description = "Vertex AI writes batch outputs under outputs/ of the staging bucket."
    expression  = "resource.name.startsWith(\"projects/_/buckets/${local.staging_bucket}/objects/outputs/\")"
  }
}
