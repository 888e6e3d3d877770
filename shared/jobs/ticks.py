"""Work the doors above `jobs` do on every sync tick (the OpenAI door sends due webhooks).

As `job_end`: a door registers a hook when it is imported; `lifecycle.sync_tick` runs each
after syncing the jobs. A hook that fails is logged and the tick goes on (the next tick
runs it again); hooks are idempotent.
"""

from collections.abc import Callable

from shared.core import logs

Hook = Callable[[], object]

_HOOKS: list[Hook] = []


def register(hook: Hook) -> Hook:
    if hook not in _HOOKS:
        _HOOKS.append(hook)
    return hook


def hooks() -> tuple[Hook, ...]:
    return tuple(_HOOKS)


def run() -> dict[str, str]:
    """Each hook once; what each did (its result, or the error) by name, for the tick's log."""
    done = {}
    for hook in _HOOKS:
        name = f"{hook.__module__}.{hook.__name__}"
        try:
            done[name] = repr(hook())
        except Exception as exc:
            logs.error("tick hook failed; the next tick runs it again", hook=name, error=repr(exc))
            done[name] = f"error: {exc!r}"
    return done
