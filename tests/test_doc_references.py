"""Docs cannot drift (issue #24 item 10): every code reference in the README, `docs/` and the
docstrings of the project's Python files names something that exists.

What counts as a reference (anything else is prose, and is not judged):
- a path under one of the repository's folders (`shared/cost/usage.py`, `local/vertex_sim.py`,
  `docs/accounting.md`), or a `shared/` module path written from its package
  (`cost/usage.py`): the file or folder must exist;
- a file name ending in `.py` (`finalize.py`): some file of the repository has that name;
- a Markdown link to a local file (`[models](docs/models.md)`): the file exists;
- a dotted name from `shared` (`shared.cost.usage.parse_predictions`): it imports and each
  attribute after the module exists;
- `module.name` where `module` is the file name of a `shared` module and `name` is written as
  code is (`usage.parse_predictions`, `budgets.Budget`, `ledger.ROLLUP_SHARDS`,
  `ledger._Write`, or anything followed by `(`): the attribute exists in that module (in one of
  them, when several share the name). A one-word lowercase or all-capitals name without a
  call (`cost.final`, `labels.KEY`) is a field of a document or a filter, not code, and is
  not judged.
"""

import ast
import fnmatch
import importlib
import re
import subprocess
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("shared", "local", "functions", "bench", "tests", "infra", "docs")
DOCSTRING_FOLDERS = ("shared", "local", "functions", "bench", "tests")
PACKAGES = ("core", "cost", "books", "jobs", "openai", "api", "cli")

PATH = re.compile(
    r"(?<![\w./-])((?:" + "|".join(FOLDERS) + r")/[\w./*-]*[\w/])"
    r"|(?<![\w./-])((?:" + "|".join(PACKAGES) + r")/[\w/]+\.(?:py|json))\b"
)
PY_FILE = re.compile(r"(?<![\w./-])(\w+\.py)\b")
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
DOTTED = re.compile(r"(?<![\w.])(shared(?:\.\w+)+)")
MODULE_NAME = re.compile(r"(?<![\w./-])([a-z_][a-z0-9_]*)((?:\.[A-Za-z_]\w*)+)(\()?")
CODE_STYLE = re.compile(r"^(?:_\w+|[a-z0-9]+_\w+|[A-Z][a-z]\w*|[A-Z0-9]+_[A-Z0-9_]+)$")


@cache
def tracked() -> tuple[str, ...]:
    """The repository's files (git's index), so that untracked junk resolves nothing."""
    out = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return tuple(out.splitlines())


@cache
def file_names() -> frozenset[str]:
    return frozenset(Path(p).name for p in tracked())


@cache
def shared_modules() -> dict[str, tuple[str, ...]]:
    """File name of each `shared` module -> its dotted names (cli/cost.py and cost/ ...)."""
    found: dict[str, list[str]] = {}
    for path in tracked():
        if path.startswith("shared/") and path.endswith(".py"):
            dotted = path.removesuffix(".py").replace("/", ".")
            if not dotted.endswith("__init__"):
                found.setdefault(Path(path).stem, []).append(dotted)
    return {name: tuple(paths) for name, paths in found.items()}


def exists(path: str) -> bool:
    """A tracked file or folder; a glob (`tests/cost/test_pricing*.py`) matching one; a file
    made from its tracked `.example`; a module by its path without `.py`, or one of its
    attributes (`tests/support.gateway_env`)."""
    path = path.rstrip(".").removesuffix("/")
    if "*" in path:
        return any(fnmatch.fnmatchcase(p, path) for p in tracked())
    if path in tracked() or f"{path}.example" in tracked():
        return True
    if any(p.startswith(f"{path}/") for p in tracked()):
        return True
    if f"{path}.py" in tracked():
        return True
    module, _, attribute = path.rpartition(".")
    return f"{module}.py" in tracked() and resolves(module.replace("/", "."), [attribute])


def resolves(module_name: str, attributes: list[str]) -> bool:
    try:
        value = importlib.import_module(module_name)
    except ImportError:
        return False
    for attribute in attributes:
        if not hasattr(value, attribute):
            return False
        value = getattr(value, attribute)
    return True


def resolves_dotted(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        return resolves(".".join(parts[:cut]), parts[cut:])
    return False


def stale_references(text: str, where: Path) -> list[str]:  # noqa: C901 (one branch per kind of reference)
    """The references in `text` that name nothing (see the module docstring)."""
    stale = []
    for match in PATH.finditer(text):
        path = match.group(1) or f"shared/{match.group(2)}"
        if not exists(path):
            stale.append(match.group(0))
    for match in PY_FILE.finditer(text):
        if match.group(1) not in file_names():
            stale.append(match.group(1))
    if where.suffix == ".md":
        for match in LINK.finditer(text):
            target = match.group(1)
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (where.parent / target).resolve().exists():
                stale.append(target)
    for match in DOTTED.finditer(text):
        if not resolves_dotted(match.group(1).rstrip(".")):
            stale.append(match.group(1))
    modules = shared_modules()
    for match in MODULE_NAME.finditer(text):
        name, attributes, call = match.group(1), match.group(2).split(".")[1:], match.group(3)
        if name not in modules or name == "shared":
            continue
        if attributes[0] in ("py", "md", "json", "jsonl", "yaml", "toml", "txt", "tf", "js"):
            continue
        if not (call or CODE_STYLE.match(attributes[0])):
            continue
        if not any(resolves(dotted, attributes[:1]) for dotted in modules[name]):
            stale.append(match.group(0).rstrip("("))
    return stale


def documents() -> list[tuple[str, Path, str]]:
    """(where, file, text): every Markdown file's text and every docstring."""
    found = []
    for path in tracked():
        full = ROOT / path
        if path.endswith(".md") and (path == "README.md" or path.startswith("docs/")):
            found.append((path, full, full.read_text()))
        elif path.endswith(".py") and path.split("/", 1)[0] in DOCSTRING_FOLDERS:
            tree = ast.parse(full.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef):
                    doc = ast.get_docstring(node, clean=False)
                    if doc:
                        found.append((f"{path}:{getattr(node, 'lineno', 1)}", full, doc))
    return found


def test_every_reference_in_the_docs_and_docstrings_names_something_that_exists():
    stale = {}
    for where, path, text in documents():
        found = stale_references(text, path)
        if found:
            stale[where] = found
    assert stale == {}


@pytest.mark.parametrize(
    "planted",
    [
        "see shared/cost/usages.py",
        "see `cost/ledgers.py`",
        "the parser (`usage.parse_prediction_rows`)",
        "as `budgets.BudgetLimit` does",
        "`ledger.ROLLUP_SHARD`",
        "shared.cost.usage.parse_predictionz",
        "shared.costs.usage",
        "finalise.py",
        "ledger.planned(",
        "the [guide](docs/no-such-guide.md)",
        "local/vertex_simulator.py",
    ],
)
def test_a_planted_stale_reference_is_caught(planted):
    where = ROOT / "README.md"
    assert stale_references(f"Some prose; {planted}; more prose.", where) != []


@pytest.mark.parametrize(
    "prose",
    [
        "see shared/cost/usage.py and `cost/usage.py`, `finalize.py`, docs/accounting.md",
        "`usage.parse_predictions`, `budgets.Budget`, `ledger.ROLLUP_SHARDS`, ledger.plan(",
        "shared.cost.usage.parse_predictions and shared.cost.usage.FileUsage.to_dict",
        "its `cost.final` is false; `labels.KEY` filters; `errors.data`",
        "jobs/{job_id}/outputs/{record_id}, keys/{sha}, gs://bucket/out/predictions.jsonl",
        "the [guide](docs/accounting.md#cost) and [Google](https://cloud.google.com/x.md)",
        "e.g. 3.5, i.e. x, a.b, routes.py",
    ],
)
def test_what_exists_or_is_prose_is_not_flagged(prose):
    assert stale_references(prose, ROOT / "README.md") == []


def test_readme_fits_one_screen():
    """Issue #24 item 9: a newcomer reads the README in one screen (60 lines); the reference
    lives in docs/, linked from it."""
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 60, f"README.md has {len(lines)} lines; move reference material to docs/"
