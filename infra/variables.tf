variable "project_id" {
  description = "Project that hosts the gateway: functions, Firestore, Pub/Sub, buckets."
  type        = string
}

variable "region" {
  description = "Region of the functions, the source bucket and the scheduler job."
  type        = string
  default     = "us-central1"
}

variable "name_prefix" {
  description = "Prefix of every named resource, so that two gateways can share a project."
  type        = string
  default     = "vbg"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,14}$", var.name_prefix))
    error_message = "name_prefix: 2-15 characters, lowercase letters, digits and dashes, starting with a letter."
  }
}

variable "config_file" {
  description = "Path to the model list YAML (LiteLLM model_list). `make bundle` ships it in the bundle as config.yaml; the plan fails if the bundle holds another version."
  type        = string
  default     = "../config.yaml"
}

variable "bundle_dir" {
  description = "Directory where `make bundle` wrote bundle.zip and bundle.json."
  type        = string
  default     = "../build"
}

variable "output_buckets" {
  description = "Existing buckets where Vertex writes prediction outputs: each gets a finalize trigger in its own location (region or multi-region, lowercase, e.g. us-central1 or us)."
  type = list(object({
    name     = string
    location = string
  }))
  default = []
}

variable "input_buckets" {
  description = "Buckets holding batch inputs: the gateway reads their sizes for pre-flight estimates (object viewer for the passthrough function)."
  type        = list(string)
  default     = []
}

variable "create_output_bucket" {
  description = "Create an output bucket (<prefix>-outputs-<project>) in var.region, watched like output_buckets, with Vertex AI's service agent allowed to write to it."
  type        = bool
  default     = true
}

variable "output_bucket_lifecycle_days" {
  description = "Delete objects in the created output bucket after this many days (0 keeps them forever). Cost records live in Firestore, not in the files."
  type        = number
  default     = 30

  validation {
    condition     = var.output_bucket_lifecycle_days >= 0
    error_message = "output_bucket_lifecycle_days must be 0 (keep) or a positive number of days."
  }
}

variable "staging_lifecycle_days" {
  description = "Delete sealed input copies (and other gateway-owned staging files) this many days after they were written. Keep it longer than your longest queued-plus-running job."
  type        = number
  default     = 30

  validation {
    condition     = var.staging_lifecycle_days >= 1
    error_message = "staging_lifecycle_days must be at least 1 day."
  }
}

variable "sync_schedule" {
  description = "Cron schedule of the sync tick that polls Vertex for state changes of non-terminal jobs."
  type        = string
  default     = "* * * * *"
}

variable "sync_time_zone" {
  description = "Time zone of sync_schedule."
  type        = string
  default     = "Etc/UTC"
}

variable "stuck_queued_hours" {
  description = "Alert when a job stays queued or pending longer than this."
  type        = number
  default     = 6
}

variable "stuck_running_hours" {
  description = "Alert when a job stays running longer than this."
  type        = number
  default     = 24
}

variable "public_gateway" {
  description = "Let anyone on the internet call the gateway (allUsers run.invoker). The gateway checks its own API keys; false means callers also need a Google identity with run.invoker."
  type        = bool
  default     = true
}

variable "alert_webhook_url" {
  description = "Optional URL that receives every alert as a JSON POST (besides the batch-job-alerts topic). Empty: no webhook."
  type        = string
  default     = ""
}

variable "alert_webhook_secret" {
  description = "Optional secret for signing webhook calls; stored in Secret Manager. Null: none."
  type        = string
  default     = null
  sensitive   = true
}

variable "master_key" {
  description = "The gateway master key (administers API keys); stored in Secret Manager. Null: a random one is generated (read it with the command in the master_key_command output)."
  type        = string
  default     = null
  sensitive   = true
}

variable "firestore_database" {
  description = "Firestore database id; created here in Native mode."
  type        = string
  default     = "(default)"
}

variable "firestore_location" {
  description = "Firestore location (a region or a multi-region such as nam5 or eur3). Null: var.region."
  type        = string
  default     = null
}

variable "log_level" {
  description = "Log level of the functions (DEBUG, INFO, WARNING, ERROR)."
  type        = string
  default     = "INFO"
}

variable "functions" {
  description = "Sizing per function. No minimum instances: nothing runs, nothing is billed, at rest."
  type = map(object({
    memory          = optional(string, "512Mi")
    cpu             = optional(string, "1")
    timeout_seconds = optional(number, 60)
    max_instances   = optional(number, 10)
    concurrency     = optional(number, 1)
  }))
  default = {
    passthrough = {
      memory          = "512Mi"
      timeout_seconds = 60
      max_instances   = 20
      concurrency     = 8
    }
    on_job_event = {
      memory          = "512Mi"
      timeout_seconds = 300
      max_instances   = 5
    }
    on_output_finalized = {
      memory          = "1Gi"
      timeout_seconds = 540
      max_instances   = 20
    }
  }

  validation {
    condition     = length(setsubtract(["passthrough", "on_job_event", "on_output_finalized"], keys(var.functions))) == 0
    error_message = "functions must size passthrough, on_job_event and on_output_finalized."
  }
}

variable "sync_max_jobs" {
  description = "Most non-terminal jobs one sync tick reads from Vertex."
  type        = number
  default     = 500
}

variable "run_jobs_per_key" {
  description = "Most pieces of runs one key has submitting or running at once (more wait in the queue)."
  type        = number
  default     = 4
}

variable "run_jobs_per_deployment" {
  description = "Most pieces of runs one deployment has submitting or running at once (more wait in the queue)."
  type        = number
  default     = 16
}

variable "sync_tick_seconds" {
  description = "Seconds between sync ticks (the period of sync_schedule); each open job is read every tick soon after it moves, then every 2 and 5 ticks."
  type        = number
  default     = 60
}

variable "sync_concurrency" {
  description = "Parallel Vertex reads during one sync tick."
  type        = number
  default     = 16
}

variable "max_body_bytes" {
  description = "Largest request body the gateway accepts."
  type        = number
  default     = 1048576
}

variable "labels" {
  description = "Labels put on every resource that takes them."
  type        = map(string)
  default     = {}
}

variable "vertex_endpoint" {
  description = "Base URL that replaces every Vertex AI regional endpoint (e.g. a Private Service Connect endpoint). Empty: the regional endpoints of each deployment."
  type        = string
  default     = ""
}

variable "books_dataset" {
  description = "BigQuery dataset of the books: the cost_records table and its views (docs/bigquery.md)."
  type        = string
  default     = "vbg_books"

  validation {
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_]{0,1023}$", var.books_dataset))
    error_message = "A dataset id is letters, digits and underscores."
  }
}

variable "books_location" {
  description = "Location of the books dataset (BigQuery multi-region or region)."
  type        = string
  default     = "US"
}

variable "billing_export_table" {
  description = "The Cloud Billing detailed export table, PROJECT.DATASET.TABLE (gcp_billing_export_resource_v1_...); empty: no daily reconciliation."
  type        = string
  default     = ""

  validation {
    condition     = var.billing_export_table == "" || can(regex("^[A-Za-z0-9][A-Za-z0-9_:.-]*\\.[A-Za-z0-9_]+\\.[A-Za-z0-9_$-]+$", var.billing_export_table))
    error_message = "billing_export_table is PROJECT.DATASET.TABLE."
  }
}

variable "reconcile_schedule" {
  description = "When the daily reconciliation runs (cron, UTC)."
  type        = string
  default     = "30 6 * * *"
}

variable "drift_threshold_pct" {
  description = "The `drift` alert fires when a day's |billed - booked| is over this percent of the books."
  type        = number
  default     = 1
}

variable "drift_threshold_usd" {
  description = "The `drift` alert also fires when a day's |billed - booked| is over this many USD (null: percent only)."
  type        = number
  default     = null
}

variable "reconcile_lag_days" {
  description = "The day reconciled is this many days back: the billing export arrives late."
  type        = number
  default     = 3
}
