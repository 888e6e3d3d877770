terraform {
  required_version = ">= 1.5.0"

  required_providers {
    # Pinned to the versions tests/infra/test_provider_schema.py checks every resource,
    # argument and block against (the @cdktf/provider-* packages generated from them).
    google = {
      source  = "hashicorp/google"
      version = "6.50.0"
    }
    # Only for google_project_service_identity (beta-only): it creates the Pub/Sub and
    # Vertex AI service agents before IAM grants name them.
    google-beta = {
      source  = "hashicorp/google-beta"
      version = "6.50.0"
    }
    # Generates the master key when none is given.
    random = {
      source  = "hashicorp/random"
      version = "3.7.2"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}
