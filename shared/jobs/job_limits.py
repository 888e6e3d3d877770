"""How much one Vertex batch job may hold: the catalog's family limits, lowered per deployment.

Vertex's per-job limits are data in the price catalog (`pricing.family_limits`, each family
with its sources and what is inferred; docs/models.md): Gemini 200,000 requests and 1 GB,
gemini-embedding 1,000,000 rows and 1 GB, text-embedding 30,000 prompts. A deployment may
lower them in its `model_info` (`max_job_rows`, `max_job_bytes`: a team that wants smaller
jobs, or a test). The Vertex-native door stays one Vertex job per create, so a create over
them is refused (400 naming the limit and pointing at runs); a run (shared/runs/) splits its
input under them. One rule, read by both.
"""

from dataclasses import dataclass

from shared.core.config import Deployment
from shared.core.errors import ApiError
from shared.cost import pricing

URIS_FIELD = "inputConfig.gcsSource.uris"
RUNS_HINT = (
    "Split it into a run instead: POST /v1/gateway/runs (or `vbg run FILE --model M`) splits "
    "the input under the per-job limits, queues the pieces and merges their outputs in input "
    "order."
)


@dataclass(frozen=True)
class JobLimits:
    rows: int | None
    bytes: int | None
    noun: str = "requests"
    # Where each figure comes from: "Vertex" or "this deployment (model_info.max_job_rows)".
    rows_source: str = "Vertex"
    bytes_source: str = "Vertex"

    def problems(self, *, rows: int | None, size: int) -> list[tuple[str, int, str]]:
        """(limit name, limit, what is over) for each limit the input passes; `rows` None
        when the rows were not all counted (only the size is judged then)."""
        found = []
        if self.bytes is not None and size > self.bytes:
            found.append(("bytes", self.bytes, f"the input is {size:,} bytes"))
        if rows is not None and self.rows is not None and rows > self.rows:
            found.append(("rows", self.rows, f"the input has {rows:,} {self.noun}"))
        return found


def for_model(model: str) -> JobLimits:
    """Vertex's limits for a model (any spelling); none known (an unpriced model) is no limit."""
    try:
        family = pricing.facts(model).family
    except pricing.UnknownModelError:
        return JobLimits(None, None)
    found = pricing.family_limits(family) or {}
    limits = found.get("limits") or {}
    return JobLimits(limits.get("rows"), limits.get("bytes"), limits.get("noun") or "requests")


def _lower(vertex: int | None, cap: int | None) -> tuple[int | None, bool]:
    if cap is not None and (vertex is None or cap < vertex):
        return cap, True
    return vertex, False


def for_deployment(deployment: Deployment) -> JobLimits:
    """Vertex's limits for the deployment's model, lowered by the deployment's own caps."""
    vertex = for_model(deployment.model)
    rows, rows_capped = _lower(vertex.rows, deployment.max_job_rows)
    size, bytes_capped = _lower(vertex.bytes, deployment.max_job_bytes)
    here = "this deployment (model_info.{})"
    return JobLimits(
        rows,
        size,
        vertex.noun,
        here.format("max_job_rows") if rows_capped else "Vertex",
        here.format("max_job_bytes") if bytes_capped else "Vertex",
    )


def refuse(limits: JobLimits, *, model: str, rows: int | None, size: int) -> None:
    """400 naming each limit the input passes and pointing at runs; nothing when it fits."""
    problems = limits.problems(rows=rows, size=size)
    if not problems:
        return
    sources = {"rows": limits.rows_source, "bytes": limits.bytes_source}
    units = {"rows": limits.noun, "bytes": "bytes"}
    said = "; ".join(
        f"{over}, and one {model} batch job takes at most {limit:,} {units[name]} "
        f"(the per-job limit of {sources[name]})"
        for name, limit, over in problems
    )
    raise ApiError(
        400,
        f"{said}. {RUNS_HINT}",
        details=[
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "OVER_JOB_LIMIT",
                "domain": "vertex-batch-gateway",
                "metadata": {
                    **{f"{name}Limit": str(limit) for name, limit, _ in problems},
                    "runs": "/v1/gateway/runs",
                },
            },
            {
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [
                    {"field": URIS_FIELD, "description": f"{over}: at most {limit:,}"}
                    for _, limit, over in problems
                ],
            },
        ],
    )
