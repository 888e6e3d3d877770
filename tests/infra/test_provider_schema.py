"""infra/ against the schemas of the providers it pins: what `terraform validate` would say.

The schemas come from the @cdktf/provider-* npm packages (fetched once with npm into
~/.cache/vbg, extracted once to JSON there); without npm or the registry the tests that
need them are skipped with the reason. The mutation tests feed the checker a changed copy
of the real HCL, so they show what a typo in infra/ would have produced.
"""

import re
import time
from pathlib import Path

import hcl2
import pytest

from tests.infra import provider_schema as ps

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"


@pytest.fixture(scope="module")
def schemas():
    started = time.monotonic()
    try:
        loaded = {name: ps.load_schema(name) for name in ps.PACKAGES}
    except ps.PackageUnavailable as exc:
        pytest.skip(f"provider schema unavailable: {exc}")
    print(f"provider schemas loaded in {time.monotonic() - started:.1f} s")
    return loaded


def check_files(schemas, tmp_path: Path, files: dict[str, str]) -> list[str]:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    problems, _ = ps.check_directory(tmp_path, schemas)
    return [str(p) for p in problems]


def mutated(tmp_path: Path, file: str, old: str, new: str) -> Path:
    """A copy of infra/ with one edit in one file (which must apply exactly once)."""
    for source in INFRA.glob("*.tf"):
        (tmp_path / source.name).write_text(source.read_text())
    target = tmp_path / file
    text = target.read_text()
    assert text.count(old) == 1, f"{old!r} is not once in {file}"
    target.write_text(text.replace(old, new))
    return tmp_path


# --- the real infra -----------------------------------------------------------------------


def test_infra_matches_the_provider_schemas(schemas):
    started = time.monotonic()
    problems, stats = ps.check_directory(INFRA, schemas)
    elapsed = time.monotonic() - started
    assert [str(p) for p in problems] == []
    declared = sum(
        len(named)
        for doc in ps.load_hcl(INFRA).values()
        for entry in doc.get("resource", [])
        for named in entry.values()
    )
    assert stats.resources == declared
    assert (stats.data_sources, stats.providers) == (2, 2)
    assert stats.attributes > 250 and stats.blocks > 30 and stats.references > 50
    print(f"checked {stats} in {elapsed:.1f} s")


def test_versions_tf_pins_the_checked_provider_versions(schemas):
    (terraform,) = hcl2.loads((INFRA / "versions.tf").read_text())["terraform"]
    (required,) = terraform["required_providers"]
    pinned = {
        name: ps.unquote(spec["version"])
        for name, spec in required.items()
        if not name.startswith("__")
    }
    checked = {name: schema["provider"]["version"] for name, schema in schemas.items()}
    assert pinned == checked
    for name, schema in schemas.items():
        source = ps.unquote(required[name]["source"])
        assert schema["provider"]["name"] == f"registry.terraform.io/{source}"


def test_extraction_knows_levels_and_required_arguments(schemas):
    google = schemas["google"]
    sub = google["resources"]["google_pubsub_subscription"]
    assert sub["attributes"]["name"] is True and sub["attributes"]["labels"] is False
    push = sub["blocks"]["push_config"]
    assert push["required"] is False
    assert push["block"]["attributes"]["push_endpoint"] is True
    assert "oidc_token" in push["block"]["blocks"] and "oidc_token" not in sub["blocks"]
    trigger = google["resources"]["google_eventarc_trigger"]
    assert trigger["blocks"]["matching_criteria"]["required"] is True
    function = google["resources"]["google_cloudfunctions2_function"]
    assert "uri" in function["blocks"]["service_config"]["block"]["readable"]
    assert "timeouts" in function["blocks"]
    gcs_agent = google["data_sources"]["google_storage_project_service_account"]
    assert "email_address" in gcs_agent["readable"]
    assert "google_project_service_identity" not in google["resources"]
    assert "google_project_service_identity" in schemas["google-beta"]["resources"]
    assert schemas["random"]["resources"]["random_password"]["attributes"]["length"] is True


def test_extraction_from_a_generated_module_without_npm():
    """The parser on a cut-down module in the generator's layout: runs where npm cannot."""
    module = """
"use strict";
function thingInnerToHclTerraform(struct) {
    const attrs = {
        size: {
            value: cdktf.numberToHclTerraform(struct.size),
            isBlock: false,
            type: "simple",
            storageClassType: "number",
        },
    };
    return attrs;
}
class ThingInnerOutputReference extends cdktf.ComplexObject {
    get size() {
        return this.getNumberAttribute('size');
    }
    set size(value) {
        this._size = value;
    }
}
class Thing extends cdktf.TerraformResource {
    get name() {
        return this.getStringAttribute('name');
    }
    set name(value) {
        this._name = value;
    }
    get selfLink() {
        return this.getStringAttribute('self_link');
    }
    resetInner() {
        this._inner.internalValue = undefined;
    }
    synthesizeHclAttributes() {
        const attrs = {
            name: {
                value: cdktf.stringToHclTerraform(this._name),
                isBlock: false,
                type: "simple",
                storageClassType: "string",
            },
            inner: {
                value: thingInnerToHclTerraform(this._inner.internalValue),
                isBlock: true,
                type: "list",
                storageClassType: "ThingInnerList",
            },
        };
        return attrs;
    }
}
exports.Thing = Thing;
Thing.tfResourceType = "acme_thing";
"""
    kind, type_name, block = ps.parse_module(module)
    assert (kind, type_name) == ("resources", "acme_thing")
    assert block["attributes"] == {"name": True}
    assert block["blocks"]["inner"]["required"] is False
    assert block["blocks"]["inner"]["block"]["attributes"] == {"size": True}
    assert "self_link" in block["readable"]


# --- what it catches ----------------------------------------------------------------------


def test_catches_a_misspelt_attribute(schemas, tmp_path):
    directory = mutated(
        tmp_path, "pubsub.tf", "max_delivery_attempts = 10", "max_delivery_attempt  = 10"
    )
    problems = [str(p) for p in ps.check_directory(directory, schemas)[0]]
    assert problems == [
        "pubsub.tf: google_pubsub_subscription.events_to_on_job_event.dead_letter_policy: "
        "no argument max_delivery_attempt at dead_letter_policy "
        "(did you mean max_delivery_attempts?)"
    ]


def test_catches_a_misplaced_block(schemas, tmp_path):
    """oidc_token moved from push_config up to the subscription itself."""
    block = re.search(
        r"\n    oidc_token \{.*?\n    \}\n", (INFRA / "pubsub.tf").read_text(), re.S
    ).group(0)
    directory = mutated(tmp_path, "pubsub.tf", block, "\n")
    text = (directory / "pubsub.tf").read_text()
    moved = block.replace("\n    ", "\n  ")
    anchor = "  # Handlers are idempotent"
    (directory / "pubsub.tf").write_text(text.replace(anchor, moved.lstrip("\n") + anchor, 1))
    problems = [str(p) for p in ps.check_directory(directory, schemas)[0]]
    assert problems == [
        "pubsub.tf: google_pubsub_subscription.events_to_on_job_event: "
        "no block oidc_token at the top level; it exists at push_config"
    ]


def test_catches_unknown_types_references_and_missing_arguments(schemas, tmp_path):
    problems = check_files(
        schemas,
        tmp_path,
        {
            "main.tf": """
resource "google_pubsub_topics" "a" {
  name = "a"
}
data "google_storage_project_service_acount" "b" {}
resource "google_pubsub_subscription" "c" {
  name = "c"
  expiration_policy {}
}
resource "google_pubsub_topic" "d" {
  name            = "d"
  schema_settings = {}
  labels { x = "y" }
}
output "e" {
  value = google_pubsub_topic.d.self_lnk
}
""",
        },
    )
    assert problems == [
        "main.tf: google_pubsub_topics.a: google has no resource type google_pubsub_topics"
        " (did you mean google_pubsub_topic?)",
        "main.tf: google_pubsub_subscription.c.expiration_policy: required argument ttl is missing",
        "main.tf: google_pubsub_subscription.c: required argument topic is missing",
        "main.tf: google_pubsub_topic.d: schema_settings is a block, written here as an"
        " argument (`schema_settings = ...`)",
        "main.tf: google_pubsub_topic.d: labels is an argument, written here as a block"
        " (`labels { ... }`)",
        "main.tf: data.google_storage_project_service_acount.b: google has no data source"
        " google_storage_project_service_acount"
        " (did you mean google_storage_project_service_account?)",
        "main.tf: google_pubsub_topic.d.self_lnk: google_pubsub_topic.d has no attribute self_lnk",
    ]


def test_meta_arguments_dynamic_blocks_and_timeouts(schemas, tmp_path):
    good = """
resource "google_project_service_identity" "a" {
  provider   = google-beta
  count      = 1
  service    = "pubsub.googleapis.com"
  depends_on = [google_pubsub_topic.t]
  timeouts {
    create = "5m"
  }
  lifecycle {
    create_before_destroy = true
    ignore_changes        = [project]
  }
}
resource "google_pubsub_topic" "t" {
  for_each = toset(["x"])
  name     = each.key
  dynamic "message_storage_policy" {
    for_each = ["europe-west1"]
    iterator = region
    content {
      allowed_persistence_regions = [region.value]
    }
  }
}
resource "random_password" "p" {
  length = 12
}
"""
    assert check_files(schemas, tmp_path, {"main.tf": good}) == []
    bad = (
        good.replace("create_before_destroy", "create_before_destroyy")
        .replace("allowed_persistence_regions", "allowed_regions")
        .replace("length = 12", "lenght = 12")
    )
    assert check_files(schemas, tmp_path, {"main.tf": bad}) == [
        "main.tf: google_project_service_identity.a.lifecycle: create_before_destroyy is not a"
        " lifecycle argument",
        "main.tf: google_pubsub_topic.t.message_storage_policy: no argument allowed_regions at"
        " message_storage_policy (did you mean allowed_persistence_regions?)",
        "main.tf: google_pubsub_topic.t.message_storage_policy: required argument"
        " allowed_persistence_regions is missing",
        "main.tf: random_password.p: no argument lenght at the top level (did you mean length?)",
        "main.tf: random_password.p: required argument length is missing",
    ]


def test_beta_only_resource_needs_the_beta_provider(schemas, tmp_path):
    beta_only = 'resource "google_project_service_identity" "a" {\n  service = "x"\n}\n'
    assert check_files(schemas, tmp_path, {"main.tf": beta_only}) == [
        "main.tf: google_project_service_identity.a: google has no resource type"
        " google_project_service_identity (did you mean google_project_service?)",
    ]


def test_without_npm_the_fetch_says_why(monkeypatch, tmp_path):
    monkeypatch.setattr(ps.shutil, "which", lambda name: None)
    with pytest.raises(ps.PackageUnavailable, match="npm is not installed"):
        ps.load_schema("google", cache=tmp_path)
    assert not any(tmp_path.rglob("*.json"))
