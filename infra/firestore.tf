resource "google_firestore_database" "this" {
  project     = var.project_id
  name        = var.firestore_database
  location_id = coalesce(var.firestore_location, var.region)
  type        = "FIRESTORE_NATIVE"

  # Keys, jobs and cost records are the gateway's books: point-in-time recovery on, and
  # `terraform destroy` leaves the database (deletion_policy ABANDON, the default).
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  deletion_policy                   = "ABANDON"

  depends_on = [google_project_service.this]
}

locals {
  # Composite indexes, one per query shape in shared/ that needs one. The emulator does not
  # ask for them, production does: tests/infra/test_infra_contract.py finds the queries in
  # the code and fails naming the entry to add here. Fields: equality filters first, then
  # the inequality / order_by fields in query order.
  # Example:
  #   jobs_open_by_create_time = {
  #     collection  = "jobs"
  #     query_scope = "COLLECTION"
  #     fields = [
  #       { field_path = "terminal", order = "ASCENDING" },
  #       { field_path = "create_time", order = "DESCENDING" },
  #     ]
  #   }
  firestore_indexes = {
    # shared/jobs/intents.py pending(): creates not completed, oldest first (adoption).
    intents_pending_by_created = {
      collection  = "intents"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "state", order = "ASCENDING" },
        { field_path = "created", order = "ASCENDING" },
      ]
    }
    # shared/jobs/records.py open_jobs(): cost not final, due for a sync, longest overdue first.
    jobs_open_by_sync_due = {
      collection  = "jobs"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "cost_final", order = "ASCENDING" },
        { field_path = "sync_due", order = "ASCENDING" },
      ]
    }
    # shared/jobs/records.py unscheduled_jobs(): records from before sync_due, least recently
    # synced first.
    jobs_open_by_synced = {
      collection  = "jobs"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "cost_final", order = "ASCENDING" },
        { field_path = "synced", order = "ASCENDING" },
      ]
    }
    # shared/runs/store.py open_runs(): runs not terminal, least recently updated first.
    runs_open_by_updated = {
      collection  = "runs"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "terminal", order = "ASCENDING" },
        { field_path = "updated", order = "ASCENDING" },
      ]
    }
    # shared/runs/store.py list_visible(): one key's or one team's runs, newest first.
    runs_by_owner_created = {
      collection  = "runs"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "owner_key_id", order = "ASCENDING" },
        { field_path = "created", order = "DESCENDING" },
      ]
    }
    runs_by_team_created = {
      collection  = "runs"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "team", order = "ASCENDING" },
        { field_path = "created", order = "DESCENDING" },
      ]
    }
    # shared/jobs/records.py list_visible(): one key's, one team's or all jobs, newest first,
    # optionally in one state (GET /v1/gateway/jobs, the console's list).
    jobs_by_owner_created = {
      collection  = "jobs"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "owner_key_id", order = "ASCENDING" },
        { field_path = "create_time", order = "DESCENDING" },
      ]
    }
    jobs_by_owner_state_created = {
      collection  = "jobs"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "owner_key_id", order = "ASCENDING" },
        { field_path = "state", order = "ASCENDING" },
        { field_path = "create_time", order = "DESCENDING" },
      ]
    }
    jobs_by_team_created = {
      collection  = "jobs"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "team", order = "ASCENDING" },
        { field_path = "create_time", order = "DESCENDING" },
      ]
    }
    jobs_by_team_state_created = {
      collection  = "jobs"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "state", order = "ASCENDING" },
        { field_path = "team", order = "ASCENDING" },
        { field_path = "create_time", order = "DESCENDING" },
      ]
    }
    jobs_by_state_created = {
      collection  = "jobs"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "state", order = "ASCENDING" },
        { field_path = "create_time", order = "DESCENDING" },
      ]
    }
    # shared/cost/ledger.py daily_rows() / label_rows(): one key, team or label over a range of days.
    daily_by_key_id_day = {
      collection  = "spend_daily"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "key_id", order = "ASCENDING" },
        { field_path = "day", order = "ASCENDING" },
      ]
    }
    daily_by_team_day = {
      collection  = "spend_daily"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "team", order = "ASCENDING" },
        { field_path = "day", order = "ASCENDING" },
      ]
    }
    labels_by_key_id_day = {
      collection  = "spend_labels"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "key_id", order = "ASCENDING" },
        { field_path = "day", order = "ASCENDING" },
      ]
    }
    labels_by_team_day = {
      collection  = "spend_labels"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "team", order = "ASCENDING" },
        { field_path = "day", order = "ASCENDING" },
      ]
    }
    labels_by_label_day = {
      collection  = "spend_labels"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "label", order = "ASCENDING" },
        { field_path = "day", order = "ASCENDING" },
      ]
    }
    # shared/openai/batches.py _page(): a key's files and batches by creation time,
    # newest first by default (files take `order` and `purpose` too).
    openai_batches_by_owner_newest = {
      collection  = "openai_batches"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "owner_key_id", order = "ASCENDING" },
        { field_path = "created_ns", order = "DESCENDING" },
      ]
    }
    openai_files_by_owner_newest = {
      collection  = "openai_files"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "owner_key_id", order = "ASCENDING" },
        { field_path = "created_ns", order = "DESCENDING" },
      ]
    }
    # shared/openai/webhooks.py: due deliveries, oldest first (deliver_due), and an
    # endpoint's delivery log, newest first (list_deliveries).
    webhook_deliveries_due = {
      collection  = "webhook_deliveries"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "status", order = "ASCENDING" },
        { field_path = "next_attempt_at", order = "ASCENDING" },
      ]
    }
    webhook_deliveries_by_endpoint_newest = {
      collection  = "webhook_deliveries"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "endpoint_id", order = "ASCENDING" },
        { field_path = "created_ns", order = "DESCENDING" },
      ]
    }
    # shared/openai/batches.py expire_overdue(): open batches past their window.
    openai_batches_open_overdue = {
      collection  = "openai_batches"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "open", order = "ASCENDING" },
        { field_path = "expires_at", order = "ASCENDING" },
      ]
    }
    # shared/openai/uploads.py drop_stale(): pending Uploads past their hour.
    uploads_pending_stale = {
      collection  = "uploads"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "status", order = "ASCENDING" },
        { field_path = "expires_at", order = "ASCENDING" },
      ]
    }
    openai_files_by_owner_oldest = {
      collection  = "openai_files"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "owner_key_id", order = "ASCENDING" },
        { field_path = "created_ns", order = "ASCENDING" },
      ]
    }
    openai_files_by_owner_purpose_newest = {
      collection  = "openai_files"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "owner_key_id", order = "ASCENDING" },
        { field_path = "purpose", order = "ASCENDING" },
        { field_path = "created_ns", order = "DESCENDING" },
      ]
    }
    openai_files_by_owner_purpose_oldest = {
      collection  = "openai_files"
      query_scope = "COLLECTION"
      fields = [
        { field_path = "owner_key_id", order = "ASCENDING" },
        { field_path = "purpose", order = "ASCENDING" },
        { field_path = "created_ns", order = "ASCENDING" },
      ]
    }
  }

  # Collection-group queries on a single field need that field indexed with collection
  # group scope (automatic single-field indexes are collection-scoped only).
  # Example: outputs_by_created = { collection = "outputs", field = "created" }
  firestore_collection_group_fields = {
    # shared/runs/store.py active_count(): pieces of any run submitting or running, per key
    # and per deployment (the runs' concurrency limits).
    run_pieces_owner      = { collection = "pieces", field = "owner_key_id" }
    run_pieces_deployment = { collection = "pieces", field = "deployment_label" }
    run_pieces_state      = { collection = "pieces", field = "state" }
  }
}

resource "google_firestore_index" "this" {
  for_each = local.firestore_indexes

  project     = var.project_id
  database    = google_firestore_database.this.name
  collection  = each.value.collection
  query_scope = each.value.query_scope

  dynamic "fields" {
    for_each = each.value.fields
    content {
      field_path   = fields.value.field_path
      order        = lookup(fields.value, "order", null)
      array_config = lookup(fields.value, "array_config", null)
    }
  }
}

resource "google_firestore_field" "collection_group" {
  for_each = local.firestore_collection_group_fields

  project    = var.project_id
  database   = google_firestore_database.this.name
  collection = each.value.collection
  field      = each.value.field

  index_config {
    indexes {
      order       = "ASCENDING"
      query_scope = "COLLECTION_GROUP"
    }
    indexes {
      order       = "DESCENDING"
      query_scope = "COLLECTION_GROUP"
    }
  }
}

# shared/openai/webhooks.py: Firestore's TTL deletes a webhook delivery at its `expire_at`
# (30 days after it was made, well past its last retry), so the log does not grow forever.
resource "google_firestore_field" "webhook_deliveries_ttl" {
  project    = var.project_id
  database   = google_firestore_database.this.name
  collection = "webhook_deliveries"
  field      = "expire_at"

  ttl_config {}
}
