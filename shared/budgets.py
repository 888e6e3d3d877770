"""Budgets: admit or refuse a create by its estimate. (Placeholder until the budgets issue.)"""


def admit(*, caller, deployment, body) -> dict | None:
    return None


def release(*, caller, estimate) -> None:
    return None


def committed(*, caller, job_id, estimate) -> None:
    return None
