"""Is every model of the model list priced? The operator's `unpriced_models` choice, applied.

The model list (`shared/core/config.py`) is parsed below the price catalog, so the check that
needs both lives here: `model_list()` is the model list the create path uses, checked against
the catalog in force (and each deployment's overrides) once per catalog version.
- `unpriced_models: refuse` (the default): a deployment whose model has no price fails the
  load with a ConfigError naming it and how to fix it (a 500 "gateway misconfigured" at the
  door: the operator's mistake, announced on the first request, never a silent $0).
- `unpriced_models: allow`: it loads; an unbudgeted key's job runs and raises the `unpriced`
  alert when its rows cannot be priced; a budgeted key's create is refused with a 4xx saying
  why (`unpriced_message`).
"""

import functools

from shared.core.config import ConfigError, Deployment, ModelList
from shared.core.config import model_list as raw_model_list
from shared.core.errors import ApiError
from shared.cost import pricing

FIX = (
    "add its price to the operator catalog (`vbg prices import` from LiteLLM's map or the "
    "Cloud Billing Catalog, then `--apply`), or give the deployment LiteLLM price fields "
    "(input_cost_per_token, output_cost_per_token, ...) in the model list"
)


def is_priced(deployment: Deployment) -> bool:
    """Whether a deployment's rows can be priced: its model is in the catalog in force, or
    its overrides price it."""
    if pricing.try_resolve(deployment.model) is not None:
        return True
    overrides = pricing.overrides_for(deployment)
    return any(name in pricing.OVERRIDE_TARGETS for name in overrides)


def unpriced(models: ModelList) -> list[Deployment]:
    return [d for d in models.deployments if not is_priced(d)]


def unpriced_message(model: str) -> str:
    """How the gateway says a model has no price, and how to fix it."""
    return f"model {model!r} has no price in the catalog ({pricing.version()}): {FIX}."


@functools.lru_cache(maxsize=4)
def _checked(catalog_version: str, models: ModelList) -> ModelList:  # noqa: ARG001 (the cache key)
    missing = unpriced(models)
    if missing and models.unpriced_models == "refuse":
        names = ", ".join(sorted({f"{d.model_name} ({d.model})" for d in missing}))
        raise ConfigError(
            f"unpriced_models is refuse and these deployments have no price: {names}; {FIX}, "
            "or set `unpriced_models: allow` to run them unpriced"
        )
    return models


def model_list() -> ModelList:
    """The model list, checked against the catalog in force (ConfigError when refused)."""
    return _checked(pricing.version(), raw_model_list())


def model_list_or_error() -> ModelList:
    """The checked model list, or a 500 in the envelope that says what is wrong."""
    try:
        return model_list()
    except ConfigError as exc:
        raise ApiError(500, f"gateway misconfigured: {exc}") from None
