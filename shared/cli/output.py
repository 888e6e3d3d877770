"""Human output of `vbg`: rich tables on stdout, progress and questions on stderr.

rich ships in the `cli` extra (`pip install 'vertex-batch-gateway[cli]'`), not with the
deployed functions, so it is imported here, lazily; `--json` output never needs it.
"""

import functools
import sys

from shared.cli.errors import CliError

STATE_STYLES = {
    "SUCCEEDED": "green",
    "PARTIALLY_SUCCEEDED": "yellow",
    "FAILED": "red",
    "CANCELLED": "yellow",
    "CANCELLING": "yellow",
    "EXPIRED": "yellow",
}


def _rich():
    try:
        import rich  # noqa: F401
    except ImportError:
        raise CliError(
            "tables and progress need rich: pip install 'vertex-batch-gateway[cli]' "
            "(or pass --json)"
        ) from None


@functools.cache
def out():
    _rich()
    from rich.console import Console

    # Piped output is not cut to 80 columns: a table row stays one line for grep.
    return Console(highlight=False) if sys.stdout.isatty() else Console(width=200, highlight=False)


@functools.cache
def err():
    _rich()
    from rich.console import Console

    if sys.stderr.isatty():
        return Console(stderr=True, highlight=False)
    return Console(stderr=True, width=200, highlight=False)


def short_state(state: str | None) -> str:
    return (state or "UNKNOWN").removeprefix("JOB_STATE_")


def styled_state(state: str | None) -> str:
    name = short_state(state)
    style = STATE_STYLES.get(name, "cyan")
    return f"[{style}]{name}[/{style}]"


def table(
    columns: list[str], rows: list[list], *, title: str | None = None, numeric=(), whole=("ID",)
) -> None:
    """A table on stdout; `numeric` columns are right-aligned, `whole` ones never cut (ids)."""
    from rich.table import Table

    shown = Table(title=title, header_style="bold")
    for column in columns:
        shown.add_column(
            column,
            justify="right" if column in numeric else "left",
            no_wrap=column in whole or column in numeric,
            min_width=len(column),
        )
    for row in rows:
        shown.add_row(*["-" if cell in (None, "") else str(cell) for cell in row])
    out().print(shown)


def facts(pairs: list[tuple[str, object]]) -> None:
    from rich.table import Table

    shown = Table.grid(padding=(0, 2))
    shown.add_column(style="dim")
    shown.add_column()
    for name, value in pairs:
        shown.add_row(name, "-" if value in (None, "") else str(value))
    out().print(shown)


def ask(question: str) -> bool:
    """A yes/no question on stderr; a closed stdin answers no."""
    err().print(f"{question} [y/N] ", end="", markup=False)
    try:
        answer = sys.stdin.readline()
    except (OSError, ValueError):
        return False
    return answer.strip().lower() in ("y", "yes")


def usd(value) -> str:
    """A USD string from the API (nine places) without the trailing zeros, at least cents."""
    if value is None:
        return "-"
    whole, _, fraction = str(value).partition(".")
    fraction = fraction.rstrip("0")
    return f"${whole}.{fraction.ljust(2, '0')}"
