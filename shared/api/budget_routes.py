"""Budget routes: estimate a create, see one's budgets, set team budgets (master key)."""

from shared.api.http import Reply, Request
from shared.core import keys, logs, routing, times
from shared.core.errors import invalid_argument, not_found
from shared.cost import estimate, readiness
from shared.jobs import create_request, submit
from shared.jobs.budgets import Budget, budgets_for, now, status, team_record, team_ref


def estimate_route(request: Request) -> Reply:
    """The create body's estimate and how it stands against the caller's budgets."""
    caller = request.key_holder
    parsed = create_request.parse(request.json_body())
    deployments = routing.resolve(parsed.model, readiness.model_list_or_error(), caller)
    uris, _ = submit.check_buckets(caller, parsed)
    record = estimate.estimate_request(deployments[0], uris=uris)
    at = now()
    expected = record["cost_nanos"]["expected"]
    view = estimate.record_view(record)
    view["budgets"] = [status(b, at, expected) for b in budgets_for(caller)]
    view["budget"] = next(iter(view["budgets"]), None)
    return Reply(200, view)


def own_budget(request: Request) -> Reply:
    """The calling key's budgets (its own and its team's) and where they stand."""
    at = now()
    return Reply(200, {"budgets": [status(b, at) for b in budgets_for(request.key_holder)]})


def _team_view(team: str, record: dict | None) -> dict:
    record = record or {}
    view = {
        "team": team,
        "budgetUsd": record.get("budget_usd"),
        "budgetPeriod": record.get("budget_period") or "none",
        "updateTime": times.iso(record.get("updated")),
    }
    if record.get("budget_usd") not in (None, ""):
        budget = Budget("team", team, team, record["budget_usd"], record["budget_period"])
        view["status"] = status(budget, now())
    return view


def put_team(request: Request, team: str) -> Reply:
    keys.check_team(team)
    body = request.json_body()
    unknown = set(body) - {"budgetUsd", "budgetPeriod"}
    if unknown:
        raise invalid_argument(
            f"Unknown field(s) {', '.join(sorted(unknown))}; a team has budgetUsd, budgetPeriod."
        )
    amount, period = keys.budget_fields(body, {})
    record = {"team": team, "budget_usd": amount, "budget_period": period, "updated": now()}
    team_ref(team).set(record)
    logs.info("audit", audit=True, route=request.route, team=team, budget_usd=amount)
    return Reply(200, _team_view(team, record))


def get_team(request: Request, team: str) -> Reply:  # noqa: ARG001 (a handler takes its route's parameters)
    keys.check_team(team)
    record = team_record(team)
    if record is None:
        raise not_found(f"Team {team!r} has no budget set; PUT one first.")
    return Reply(200, _team_view(team, record))
