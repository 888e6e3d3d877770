"""The audit log: one structured entry per state-changing call."""

import time

from shared.api.http import Request
from shared.core import logs


def audit(request: Request, *, outcome: int, started: float, **fields) -> None:
    """One entry per state-changing call: who, what, where, how it went. Never the key."""
    caller = request.caller
    logs.info(
        "audit",
        audit=True,
        route=request.route,
        method=request.method,
        key_id=caller.key_id if caller else None,
        key_alias=caller.alias if caller else None,
        team=caller.team if caller else None,
        outcome=outcome,
        latency_ms=round((time.monotonic() - started) * 1000, 2),
        **fields,
    )
