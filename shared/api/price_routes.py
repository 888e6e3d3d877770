"""The price catalog over HTTP (master key): what is in force, one model's rates and sources,
and imports (LiteLLM's map, the Cloud Billing Catalog) shown as a diff and applied only when
asked. `vbg prices` calls these routes.
"""

from shared.api.http import Reply, Request
from shared.core import logs
from shared.core.errors import ApiError, invalid_argument, not_found
from shared.cost import catalog, importers, price_views, pricing, reprice
from shared.jobs import records


def list_prices(request: Request) -> Reply:
    """Every model of the catalog in force, its rates on a day, retirement and sources."""
    return Reply(200, price_views.catalog_view(request.args.get("at")))


def get_price(request: Request, model: str) -> Reply:
    """One model: the rates in force (batch and online, at a location and day) and sources."""
    args = request.args
    return Reply(200, price_views.model_view(model, args.get("at"), args.get("location")))


SOURCES = ("litellm", "billing")
# An import carries a LiteLLM map (its Vertex entries: `vbg prices` sends only those) or
# Billing Catalog pages; the whole map (~1.5 MB) fits too.
IMPORT_MAX_BODY = 8 * 1024 * 1024
MAX_NOTE = 500
MAX_FILTER = 200


def import_limit() -> int:
    return IMPORT_MAX_BODY


def import_prices(request: Request) -> Reply:
    """Read a LiteLLM map or Billing Catalog pages, show the diff, apply only when asked."""
    body = request.json_body()
    unknown = set(body) - {"source", "document", "models", "apply", "note"}
    if unknown:
        raise invalid_argument(
            f"Unknown field(s) {', '.join(sorted(unknown))}; an import has source, document, "
            "models, apply, note."
        )
    source = body.get("source")
    if source not in SOURCES:
        raise invalid_argument(f"`source` must be one of {', '.join(SOURCES)}.", field="source")
    only = body.get("models")
    if only is not None and (
        not isinstance(only, list)
        or len(only) > MAX_FILTER
        or not all(isinstance(m, str) and importers.MODEL_NAME.fullmatch(m) for m in only)
    ):
        raise invalid_argument(
            f"`models` is a list of at most {MAX_FILTER} model names.", field="models"
        )
    apply = body.get("apply", False)
    if not isinstance(apply, bool):
        raise invalid_argument("`apply` is true or false.", field="apply")
    note = body.get("note", "")
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise invalid_argument(f"`note` is text of at most {MAX_NOTE} characters.", field="note")
    as_of = pricing.today().isoformat()
    document = body.get("document")
    skipped: list[str] = []
    try:
        if source == "litellm":
            imported = importers.from_litellm(document, as_of=as_of, only=set(only or ()) or None)
            origin = "litellm"
        else:
            imported, skipped = importers.from_billing_catalog(document, as_of=as_of)
            if only:
                imported = {k: v for k, v in imported.items() if k in set(only)}
            origin = "billing_catalog"
        in_force = catalog.current().table["models"]
        proposed = importers.proposal(in_force, imported, origin=origin)
        catalog.validate_models(proposed)
    except (importers.ImportError_, catalog.CatalogError) as exc:
        raise invalid_argument(str(exc), field="document") from None
    changes = importers.diff(in_force, proposed)
    applied = None
    if apply:
        wanted = {c["model"]: proposed[c["model"]] for c in changes if c["status"] != "unchanged"}
        if wanted:
            try:
                applied = catalog.apply(
                    wanted, author=request.key_holder.alias, note=note, origin=origin
                )
            except catalog.CatalogError as exc:
                raise ApiError(400, str(exc), status="FAILED_PRECONDITION") from None
            logs.info("audit", audit=True, route=request.route, catalog_version=applied)
    return Reply(
        200,
        {
            "catalogVersion": pricing.version(),
            "source": source,
            "diff": changes,
            "skipped": skipped[:200],
            "applied": applied,
        },
    )


def reprice_job(request: Request, job_id: str) -> Reply:
    """Reprice a job's counted files with the catalog in force; the difference is booked as
    one recorded adjustment (shared/cost/reprice.py). Master key only: it changes books."""
    body = request.json_body()
    unknown = set(body) - {"note"}
    if unknown:
        raise invalid_argument(
            f"Unknown field(s) {', '.join(sorted(unknown))}; a reprice has note."
        )
    note = body.get("note", "")
    if not isinstance(note, str) or len(note) > MAX_NOTE:
        raise invalid_argument(f"`note` is text of at most {MAX_NOTE} characters.", field="note")
    job = records.get(job_id)
    if job is None:
        raise not_found(f"Job {job_id} not found.")
    try:
        result = reprice.reprice(job_id, job, author=request.key_holder.alias, note=note)
    except reprice.RepriceError as exc:
        raise ApiError(400, str(exc), status="FAILED_PRECONDITION") from None
    logs.info(
        "audit", audit=True, route=request.route, job_id=job_id, reprice=result["changeNanos"]
    )
    return Reply(200, result)
