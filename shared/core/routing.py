"""From what a client names as `model` to the deployments that can run it."""

import re
from collections.abc import Callable

from shared.core.config import Deployment, ModelList
from shared.core.errors import invalid_argument, permission_denied
from shared.core.keys import Caller

MODEL_PATH = re.compile(
    r"(?:projects/[^/]+/locations/[^/]+/)?(?:publishers/(?P<publisher>[^/]+)/)?"
    r"models/(?P<name>[^/@]+)(?:@.+)?"
)
PUBLISHER = "google"


def public_model_name(model: str) -> str:
    """`gemini-2.5-flash`, `publishers/google/models/gemini-2.5-flash` or the full path."""
    text = (model or "").strip()
    match = MODEL_PATH.fullmatch(text)
    if match:
        if match["publisher"] not in (None, PUBLISHER):
            raise invalid_argument(
                f"`model` {model!r}: publisher {match['publisher']!r} is not served here; the "
                f"gateway runs {PUBLISHER!r} models (publishers/google/models/NAME).",
                field="model",
            )
        return match["name"]
    if "/" in text:
        raise invalid_argument(
            f"`model` {model!r} is not a model name or a publisher model path "
            "(publishers/google/models/NAME).",
            field="model",
        )
    return text.split("@", 1)[0]


def resolve(
    model: str,
    models: ModelList,
    caller: Caller,
    *,
    refuse: Callable[[str], str | None] | None = None,
) -> list[Deployment]:
    """The deployments for a request's model, in config (failover) order, if the caller may
    use it (`Caller.may_use_model`, the one rule of model access). `refuse` (the create path
    passes the retirement rule, shared/cost/retirement.py) judges each deployment's publisher
    model: refused deployments are dropped, and when none is left the create is a 400 with
    the first refusal's reason.
    """
    if not isinstance(model, str) or not model.strip():
        raise invalid_argument("`model` is required, e.g. gemini-2.5-flash.", field="model")
    name = public_model_name(model)
    deployments = models.deployments_for(name)
    if not deployments:
        raise invalid_argument(
            f"Unknown model {name!r}. Known models: {', '.join(models.model_names)}.",
            field="model",
        )
    if not caller.may_use_model(name):
        raise permission_denied(
            f"This key may not use model {name!r}. Allowed models: {', '.join(caller.models)}."
        )
    if refuse is None:
        return deployments
    reasons = [refuse(d.model) for d in deployments]
    kept = [d for d, reason in zip(deployments, reasons, strict=True) if reason is None]
    if not kept:
        raise invalid_argument(next(r for r in reasons if r), field="model")
    return kept
