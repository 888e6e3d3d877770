"""The one rule for retired models: a create on a model past its retirement date is refused.

Google retires a model version on a date and names its replacement ("Model versions and
lifecycle"); Vertex then answers 404 for it, and blocks new batch access a month before
(https://docs.cloud.google.com/vertex-ai/generative-ai/docs/learn/model-versions?hl=he). The
gateway refuses such a create itself, 400 naming the successor, so that a key holder learns
what to use instead. Rows of retired models are still priced (old jobs, reprices). The dates
and successors are catalog facts (`facts.retires`, `facts.successor`): an operator whose
Google account got an extension overrides them in the operator catalog.
"""

from collections.abc import Callable
from datetime import date

from shared.cost import pricing


def refusal(model: str, on: date) -> str | None:
    """Why a create on `model` is refused on `on`, or None (unknown models are not judged
    here: pricing and routing say what they lack)."""
    if pricing.try_resolve(model) is None:
        return None
    known = pricing.facts(model)
    if not known.retired(on):
        return None
    assert known.retires is not None
    text = f"Model {model!r} was retired on {known.retires.isoformat()}"
    if known.successor:
        text += f"; use {known.successor!r} instead"
        if known.alternatives:
            text += f" (or {', '.join(repr(a) for a in known.alternatives)})"
    return text + "."


def refuser(on: date | None = None) -> Callable[[str], str | None]:
    """The rule bound to a day (today, UTC, by default), as routing.resolve takes it."""
    day = on or pricing.today()
    return lambda model: refusal(model, day)
