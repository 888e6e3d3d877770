"""Work the doors above `jobs` do when a job ends, before its cost is marked final.

`jobs` knows nothing of the packages that import it (the OpenAI door translates a batch's
files when its job ends): each registers a hook here when it is imported, and
`lifecycle.finish_job` runs them after the terminal alert and before `cost_final`, so a hook
that raises is retried by the next tick. A hook must be idempotent (events come at least
once) and is given the job record; the entry points import every door
(`functions/main.py`), so every function process has the same hooks.
"""

from collections.abc import Callable

Hook = Callable[[dict], object]

_HOOKS: list[Hook] = []


def register(hook: Hook) -> Hook:
    """Add `hook` once (a module imported twice registers once); usable as a decorator."""
    if hook not in _HOOKS:
        _HOOKS.append(hook)
    return hook


def hooks() -> tuple[Hook, ...]:
    return tuple(_HOOKS)


def run(record: dict) -> None:
    """Each hook in registration order; the first that raises stops the rest (retried)."""
    for hook in _HOOKS:
        hook(record)
