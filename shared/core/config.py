"""Configuration: environment settings and the LiteLLM-compatible model list, each read once.

Settings come from the environment (Terraform sets them on each function; the local stack
sets them for the processes it starts). `ENV_BY_FUNCTION` says which function reads which
variable: the infra contract tests hold the Terraform to it.
"""

import functools
import os
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

import yaml

from shared.core.errors import ApiError

COMMON_ENV = (
    "VBG_PROJECT",
    "VBG_FIRESTORE_DATABASE",
    "VBG_CONFIG",
    "VBG_LOG_LEVEL",
    "VBG_PRICE_CATALOG",
)
ENV_BY_FUNCTION = {
    "passthrough": (
        *COMMON_ENV,
        "VBG_MASTER_KEY",
        "VBG_EVENTS_TOPIC",
        "VBG_VERTEX_ENDPOINT",
        "VBG_MAX_BODY_BYTES",
        "VBG_STAGING_BUCKET",
    ),
    "on_job_event": (
        *COMMON_ENV,
        "VBG_ALERTS_TOPIC",
        "VBG_VERTEX_ENDPOINT",
        "VBG_STUCK_QUEUED_HOURS",
        "VBG_STUCK_RUNNING_HOURS",
        "VBG_SYNC_MAX_JOBS",
        "VBG_SYNC_CONCURRENCY",
        "VBG_ADOPT_AFTER_SECONDS",
        "VBG_SYNC_TICK_SECONDS",
        "VBG_ALERT_WEBHOOK_URL",
        "VBG_ALERT_WEBHOOK_SECRET",
        "VBG_COST_RECORDS_TOPIC",
        # The daily reconciliation with the Cloud Billing export (shared/jobs/drift.py).
        "VBG_BILLING_TABLE",
        "VBG_BOOKS_DATASET",
        "VBG_DRIFT_THRESHOLD_PCT",
        "VBG_DRIFT_THRESHOLD_USD",
        "VBG_RECONCILE_LAG_DAYS",
        # Runs (shared/runs/): the driver creates pieces, merges into the staging bucket.
        "VBG_EVENTS_TOPIC",
        "VBG_STAGING_BUCKET",
        "VBG_RUN_JOBS_PER_KEY",
        "VBG_RUN_JOBS_PER_DEPLOYMENT",
    ),
    # Budget alerts are sent when a cost lands, so from here too; the live budget stop
    # cancels a job (Vertex, then `job.cancel_requested`); staging objects are sealed outputs.
    "on_output_finalized": (
        *COMMON_ENV,
        "VBG_ALERTS_TOPIC",
        "VBG_ALERT_WEBHOOK_URL",
        "VBG_ALERT_WEBHOOK_SECRET",
        "VBG_EVENTS_TOPIC",
        "VBG_VERTEX_ENDPOINT",
        "VBG_STAGING_BUCKET",
        "VBG_COST_RECORDS_TOPIC",
    ),
}


class ConfigError(ValueError):
    """The configuration is wrong; the message names the entry, the field and the line."""


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def _positive_number(name: str, default: str) -> Decimal:
    raw = _env(name, default)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ConfigError(f"{name}={raw!r} is not a number") from None
    if value <= 0:
        raise ConfigError(f"{name}={raw!r} must be positive")
    return value


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _choice(name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = _env(name, default) or default
    if raw not in allowed:
        raise ConfigError(f"{name}={raw!r} must be one of {', '.join(allowed)}")
    return raw


@dataclass(frozen=True)
class Settings:
    project: str
    firestore_database: str
    config_path: str
    master_key: str
    events_topic: str
    alerts_topic: str
    vertex_endpoint: str
    max_body_bytes: int
    stuck_queued_hours: Decimal
    stuck_running_hours: Decimal
    sync_max_jobs: int
    sync_concurrency: int
    alert_webhook_url: str
    staging_bucket: str = ""
    alert_webhook_secret: str = field(repr=False, default="")
    # `bundled` (the package data only) or `firestore` (bundled + the operator's catalog).
    price_catalog: str = "bundled"
    # The least severe log entry written (`logs`): Terraform's `log_level`, INFO by default.
    log_level: str = "INFO"
    # Cost records for BigQuery (shared/books/cost_records.py); empty: not published.
    cost_records_topic: str = ""
    # The daily reconciliation (shared/jobs/drift.py): the billing export table and the
    # books' dataset (empty: no run), the `drift` alert's thresholds, the day it looks at.
    billing_table: str = ""
    books_dataset: str = ""
    drift_threshold_pct: Decimal = Decimal(1)
    drift_threshold_usd: Decimal | None = None
    reconcile_lag_days: int = 3
    # A create's intent still pending this long is resolved by the sync (adopted or
    # abandoned, shared/jobs/adoption.py): longer than a create can run.
    adopt_after_seconds: Decimal = Decimal(120)
    # Runs: the most pieces submitting or running at once per key and per deployment
    # (shared/runs/drive.py); the gateway's own choice (newer Gemini models have no
    # per-project batch quota to read it from: dynamic shared quota).
    run_jobs_per_key: int = 4
    run_jobs_per_deployment: int = 16
    # The sync tick's period (Cloud Scheduler's minute): each job's backoff is counted in
    # ticks (shared/jobs/sync_schedule.py).
    sync_tick_seconds: float = 60.0


@functools.cache
def settings() -> Settings:
    """Read once per process; a bad value fails the cold start loudly, not a request later."""
    project = _env("VBG_PROJECT") or _env("GOOGLE_CLOUD_PROJECT") or "vbg-local"
    return Settings(
        project=project,
        firestore_database=_env("VBG_FIRESTORE_DATABASE", "(default)"),
        config_path=_env("VBG_CONFIG", "config.yaml"),
        master_key=_env("VBG_MASTER_KEY"),
        events_topic=_env("VBG_EVENTS_TOPIC", "batch-job-events"),
        alerts_topic=_env("VBG_ALERTS_TOPIC", "batch-job-alerts"),
        vertex_endpoint=_env("VBG_VERTEX_ENDPOINT").rstrip("/"),
        max_body_bytes=int(_positive_number("VBG_MAX_BODY_BYTES", "1048576")),
        stuck_queued_hours=_positive_number("VBG_STUCK_QUEUED_HOURS", "6"),
        stuck_running_hours=_positive_number("VBG_STUCK_RUNNING_HOURS", "24"),
        sync_max_jobs=int(_positive_number("VBG_SYNC_MAX_JOBS", "500")),
        sync_concurrency=int(_positive_number("VBG_SYNC_CONCURRENCY", "16")),
        alert_webhook_url=_env("VBG_ALERT_WEBHOOK_URL"),
        alert_webhook_secret=_env("VBG_ALERT_WEBHOOK_SECRET"),
        # The gateway-owned bucket keys cannot write: sealed inputs, uploaded files.
        staging_bucket=_env("VBG_STAGING_BUCKET").removeprefix("gs://").strip("/"),
        price_catalog=_choice("VBG_PRICE_CATALOG", "bundled", ("bundled", "firestore")),
        log_level=_choice("VBG_LOG_LEVEL", "INFO", LOG_LEVELS),
        cost_records_topic=_env("VBG_COST_RECORDS_TOPIC"),
        billing_table=_env("VBG_BILLING_TABLE"),
        books_dataset=_env("VBG_BOOKS_DATASET"),
        drift_threshold_pct=_positive_number("VBG_DRIFT_THRESHOLD_PCT", "1"),
        drift_threshold_usd=(
            _positive_number("VBG_DRIFT_THRESHOLD_USD", "1")
            if _env("VBG_DRIFT_THRESHOLD_USD")
            else None
        ),
        reconcile_lag_days=int(_positive_number("VBG_RECONCILE_LAG_DAYS", "3")),
        adopt_after_seconds=_positive_number("VBG_ADOPT_AFTER_SECONDS", "120"),
        run_jobs_per_key=int(_positive_number("VBG_RUN_JOBS_PER_KEY", "4")),
        run_jobs_per_deployment=int(_positive_number("VBG_RUN_JOBS_PER_DEPLOYMENT", "16")),
        sync_tick_seconds=float(_positive_number("VBG_SYNC_TICK_SECONDS", "60")),
    )


# --- the model list -----------------------------------------------------------------------

# LiteLLM price fields a deployment may override (USD per token, as LiteLLM writes them).
PRICE_OVERRIDE_FIELDS = (
    "input_cost_per_token",
    "output_cost_per_token",
    "input_cost_per_token_batches",
    "output_cost_per_token_batches",
    "cache_read_input_token_cost",
    "input_cost_per_audio_token",
    "input_cost_per_token_above_200k_tokens",
    "output_cost_per_token_above_200k_tokens",
    "cache_read_input_token_cost_above_200k_tokens",
    "output_cost_per_image_token",
    "input_cost_per_character",
    "regional_endpoint_uplift_multiplier",
)
LITELLM_PARAMS = ("model", "vertex_project", "vertex_location", "vertex_credentials")
# Gateway options in an entry's `model_info` (LiteLLM's free-form metadata: other keys ignored).
MODEL_INFO_OPTIONS = ("seal_inputs", "seal_outputs")
# Lower per-job caps of a deployment (`model_info`, positive integers): a create over them is
# refused like one over Vertex's own limits, and a run splits under them (shared/jobs/
# job_limits.py).
MODEL_INFO_CAPS = ("max_job_rows", "max_job_bytes")
# Sealed outputs (Vertex writes into the staging bucket; the gateway prices there and copies
# to the client's folder, shared/jobs/sealed_outputs.py): on unless a deployment says
# `model_info: {seal_outputs: false}` (issue #22 item 1).
SEAL_OUTPUTS_DEFAULT = True
ENTRY_KEYS = ("model_name", "litellm_params", "model_info")
# Sections of a LiteLLM proxy config that mean nothing to the gateway: accepted, not used,
# so that users can bring the file they already run.
# Gateway options at the top level of the file, beside model_list.
UNPRICED_MODELS = ("refuse", "allow")
IGNORED_SECTIONS = (
    "litellm_settings",
    "general_settings",
    "router_settings",
    "environment_variables",
)


@dataclass(frozen=True)
class Deployment:
    """One real place a public model name can run: a publisher model in a project+location."""

    model_name: str
    model: str
    project: str
    location: str
    credentials: str | None = None
    price_overrides: tuple[tuple[str, Decimal], ...] = ()
    index: int = 0
    # Copy inputs to the staging bucket at create (shared/jobs/sealing.py); model_info option.
    seal_inputs: bool = True
    # Vertex writes into a per-job folder of the staging bucket (shared/jobs/sealing.py).
    seal_outputs: bool = SEAL_OUTPUTS_DEFAULT
    # This deployment's lower per-job caps (model_info `max_job_rows`, `max_job_bytes`).
    max_job_rows: int | None = None
    max_job_bytes: int | None = None

    @property
    def model_resource(self) -> str:
        return (
            f"projects/{self.project}/locations/{self.location}/publishers/google/models/"
            f"{self.model}"
        )

    @property
    def label(self) -> str:
        return f"{self.project}/{self.location}/{self.model}"

    def describe(self) -> dict:
        return {
            "modelName": self.model_name,
            "model": self.model,
            "project": self.project,
            "location": self.location,
        }


@dataclass(frozen=True)
class ModelList:
    deployments: tuple[Deployment, ...]
    # `refuse`: a deployment whose model has no price fails the config at load (the
    # default); `allow`: it loads, its jobs run and are announced as unpriced (shared/cost/
    # readiness.py applies the choice, the price catalog living above this package).
    unpriced_models: str = "refuse"

    @property
    def model_names(self) -> list[str]:
        return sorted({d.model_name for d in self.deployments})

    def deployments_for(self, model_name: str) -> list[Deployment]:
        return [d for d in self.deployments if d.model_name == model_name]

    def find(self, described: dict) -> Deployment | None:
        """The deployment a job record names (its `deployment` map), if the config has it."""
        for deployment in self.deployments:
            wanted = deployment.describe()
            if all(described.get(k) == v for k, v in wanted.items()):
                return deployment
        return None

    def locations(self) -> list[tuple[str, str]]:
        """Distinct (project, location) pairs, in config order."""
        seen: dict[tuple[str, str], None] = {}
        for d in self.deployments:
            seen.setdefault((d.project, d.location), None)
        return list(seen)


def _line(node) -> int:
    return node.start_mark.line + 1


def _mapping(node, where: str) -> dict:
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{where} (line {_line(node)}) must be a mapping")
    return {key.value: (key, value) for key, value in node.value}


def _scalar(node, where: str) -> str:
    if isinstance(node, yaml.ScalarNode):
        if node.tag.endswith(":null"):
            raise ConfigError(f"{where} (line {_line(node)}) must not be empty")
        text = str(node.value).strip()
        if text:
            return text
    raise ConfigError(f"{where} (line {_line(node)}) must be a non-empty string")


def _nullable(node, where: str) -> str | None:
    """A string, or None for YAML's null."""
    if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":null"):
        return None
    return _scalar(node, where)


def _deployment(node, index: int) -> Deployment:
    where = f"model_list[{index}]"
    entry = _mapping(node, where)
    for name, (key, _) in entry.items():
        if name not in ENTRY_KEYS:
            raise ConfigError(
                f"{where}: unknown field {name!r} at line {_line(key)}; "
                f"expected {', '.join(ENTRY_KEYS)}"
            )
    if "model_name" not in entry:
        raise ConfigError(f"{where} (line {_line(node)}): model_name is required")
    if "litellm_params" not in entry:
        raise ConfigError(f"{where} (line {_line(node)}): litellm_params is required")
    model_name = _scalar(entry["model_name"][1], f"{where}.model_name")
    params_node = entry["litellm_params"][1]
    params = _mapping(params_node, f"{where}.litellm_params")
    overrides = _price_overrides(params, where)
    for required in ("model", "vertex_project", "vertex_location"):
        if required not in params:
            raise ConfigError(
                f"{where}.litellm_params (line {_line(params_node)}): {required} is required"
            )
    model = _publisher_model(params["model"][1], where)
    credentials = None
    if "vertex_credentials" in params:
        credentials = _nullable(
            params["vertex_credentials"][1], f"{where}.litellm_params.vertex_credentials"
        )
    options = _model_info(entry, where)
    return Deployment(
        model_name=model_name,
        model=model,
        project=_scalar(params["vertex_project"][1], f"{where}.litellm_params.vertex_project"),
        location=_scalar(params["vertex_location"][1], f"{where}.litellm_params.vertex_location"),
        credentials=credentials,
        price_overrides=tuple(overrides),
        index=index,
        seal_inputs=bool(options["seal_inputs"]),
        seal_outputs=bool(options["seal_outputs"]),
        max_job_rows=options.get("max_job_rows"),
        max_job_bytes=options.get("max_job_bytes"),
    )


def _price_overrides(params: dict, where: str) -> list[tuple[str, Decimal]]:
    """The price overrides among `litellm_params` (a number each, not negative); any other
    field must be one LiteLLM's params the gateway reads."""
    overrides = []
    for name, (key, value) in params.items():
        field_where = f"{where}.litellm_params.{name}"
        if name in PRICE_OVERRIDE_FIELDS:
            raw = _scalar(value, field_where)
            try:
                price = Decimal(raw)
            except InvalidOperation:
                raise ConfigError(
                    f"{field_where} (line {_line(value)}) must be a number, got {raw!r}"
                ) from None
            if price < 0:
                raise ConfigError(f"{field_where} (line {_line(value)}) must not be negative")
            overrides.append((name, price))
        elif name not in LITELLM_PARAMS:
            raise ConfigError(
                f"{where}.litellm_params: unknown field {name!r} at line {_line(key)}; "
                f"expected {', '.join(LITELLM_PARAMS + PRICE_OVERRIDE_FIELDS)}"
            )
    return overrides


def _publisher_model(node, where: str) -> str:
    """`litellm_params.model`: a publisher model, `vertex_ai/` (or `vertex_ai_beta/`) allowed
    in front as LiteLLM writes it."""
    model = _scalar(node, f"{where}.litellm_params.model")
    if "/" in model:
        provider, _, model = model.partition("/")
        if provider not in ("vertex_ai", "vertex_ai_beta") or not model:
            raise ConfigError(
                f"{where}.litellm_params.model (line {_line(node)}): "
                f"expected vertex_ai/<publisher model>, got {provider}/{model}"
            )
    return model


def _model_info(entry: dict, where: str) -> dict[str, bool | int]:
    """The deployment's switches (`model_info`), each true or false, defaults where unset;
    its lower per-job caps (`MODEL_INFO_CAPS`), positive integers, where set."""
    options: dict[str, bool | int] = {"seal_inputs": True, "seal_outputs": SEAL_OUTPUTS_DEFAULT}
    if "model_info" not in entry:
        return options
    info = _mapping(entry["model_info"][1], f"{where}.model_info")
    for option in MODEL_INFO_OPTIONS:
        if option not in info:
            continue
        node = info[option][1]
        if not (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":bool")):
            raise ConfigError(
                f"{where}.model_info.{option} (line {_line(node)}) must be true or false"
            )
        options[option] = node.value.lower() in ("true", "yes", "on")
    for cap in MODEL_INFO_CAPS:
        if cap not in info:
            continue
        node = info[cap][1]
        if not (
            isinstance(node, yaml.ScalarNode)
            and node.tag.endswith(":int")
            and node.value.isdigit()
            and 0 < int(node.value) < 1 << 62
        ):
            raise ConfigError(
                f"{where}.model_info.{cap} (line {_line(node)}) must be a positive integer"
            )
        options[cap] = int(node.value)
    return options


def parse_model_list(text: str, source: str = "<config>") -> ModelList:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if root is None:
        raise ConfigError(f"{source}: empty; it needs a model_list")
    top = _mapping(root, source)
    for name, (key, _) in top.items():
        if name not in ("model_list", "unpriced_models") and name not in IGNORED_SECTIONS:
            raise ConfigError(
                f"{source}: unknown top-level key {name!r} at line {_line(key)}; "
                f"expected model_list or unpriced_models (LiteLLM sections "
                f"{', '.join(IGNORED_SECTIONS)} are accepted and ignored)"
            )
    unpriced = "refuse"
    if "unpriced_models" in top:
        node = top["unpriced_models"][1]
        unpriced = _scalar(node, f"{source}: unpriced_models") or ""
        if unpriced not in UNPRICED_MODELS:
            raise ConfigError(
                f"{source}: unpriced_models (line {_line(node)}) must be one of "
                f"{', '.join(UNPRICED_MODELS)}, got {unpriced!r}"
            )
    if "model_list" not in top:
        raise ConfigError(f"{source}: model_list is required")
    entries = top["model_list"][1]
    if not isinstance(entries, yaml.SequenceNode) or not entries.value:
        raise ConfigError(f"{source}: model_list (line {_line(entries)}) must be a non-empty list")
    try:
        deployments = tuple(_deployment(node, i) for i, node in enumerate(entries.value))
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return ModelList(deployments, unpriced_models=unpriced)


@functools.cache
def model_list() -> ModelList:
    path = settings().config_path
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigError(f"cannot read the model list {path!r} (VBG_CONFIG): {exc}") from None
    return parse_model_list(text, source=path)


def model_list_or_error() -> ModelList:
    """The model list, or a 500 in the envelope that says what is wrong with the config."""
    try:
        return model_list()
    except ConfigError as exc:
        raise ApiError(500, f"gateway misconfigured: {exc}") from None
