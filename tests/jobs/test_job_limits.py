"""Per-job limits: the catalog's by family, lowered (never raised) by a deployment's caps."""

import pytest

from shared.core.config import ConfigError, Deployment, parse_model_list
from shared.core.errors import ApiError
from shared.jobs import job_limits
from shared.jobs.job_limits import JobLimits

GIB = 1 << 30


def deployment(model="gemini-3.5-flash-lite", **caps) -> Deployment:
    return Deployment(model_name=model, model=model, project="p", location="global", **caps)


def test_vertex_limits_by_family_from_the_catalog():
    # Figures typed from the catalog's sources (docs/models.md): Gemini 200K requests and
    # 1 GB; gemini-embedding 1M rows; text-embedding 30,000 prompts, no byte limit.
    assert job_limits.for_model("gemini-3.5-flash-lite") == JobLimits(200_000, GIB, "requests")
    assert job_limits.for_model("publishers/google/models/gemini-3.1-pro-preview").rows == 200_000
    assert job_limits.for_model("gemini-embedding-001").rows == 1_000_000
    assert job_limits.for_model("text-embedding-005") == JobLimits(30_000, None, "prompts")
    assert job_limits.for_model("no-such-model") == JobLimits(None, None)


def test_a_cap_lowers_and_never_raises():
    lowered = job_limits.for_deployment(deployment(max_job_rows=10, max_job_bytes=GIB * 2))
    assert (lowered.rows, lowered.bytes) == (10, GIB)
    assert lowered.rows_source == "this deployment (model_info.max_job_rows)"
    assert lowered.bytes_source == "Vertex"
    embedding = job_limits.for_deployment(deployment("text-embedding-005", max_job_bytes=5))
    assert (embedding.rows, embedding.bytes, embedding.bytes_source) == (
        30_000,
        5,
        "this deployment (model_info.max_job_bytes)",
    )
    assert job_limits.for_deployment(deployment()) == job_limits.for_model("gemini-3.5-flash-lite")


def test_refuse_names_each_limit_and_points_at_runs():
    limits = JobLimits(2, 100, rows_source="this deployment (model_info.max_job_rows)")
    job_limits.refuse(limits, model="m", rows=2, size=100)  # at both limits: fits
    job_limits.refuse(limits, model="m", rows=None, size=100)
    with pytest.raises(ApiError) as caught:
        job_limits.refuse(limits, model="m", rows=3, size=101)
    error = caught.value
    assert error.code == 400
    assert "the input is 101 bytes, and one m batch job takes at most 100 bytes" in error.message
    assert "the input has 3 requests" in error.message
    assert "(the per-job limit of this deployment (model_info.max_job_rows))" in error.message
    assert "POST /v1/gateway/runs" in error.message
    assert error.details[0]["metadata"] == {
        "bytesLimit": "100",
        "rowsLimit": "2",
        "runs": "/v1/gateway/runs",
    }


CONFIG = """
model_list:
  - model_name: m
    litellm_params: {{model: vertex_ai/gemini-3.5-flash-lite, vertex_project: p,
                     vertex_location: global}}
    model_info: {{max_job_rows: {rows}}}
"""


def test_caps_are_read_from_model_info():
    (only,) = parse_model_list(CONFIG.format(rows=1000)).deployments
    assert (only.max_job_rows, only.max_job_bytes) == (1000, None)
    for bad in ("0", "-3", "1.5", "yes", "'12'"):
        with pytest.raises(ConfigError, match=r"max_job_rows .* must be a positive integer"):
            parse_model_list(CONFIG.format(rows=bad))
