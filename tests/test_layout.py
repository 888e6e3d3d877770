"""The house rules of `shared/`: packages by concern, imports one way, no loops.

Read from the source with `ast` (every import, also those inside functions), so a lazy
import cannot hide a loop or a wrong-way dependency.
"""

import ast
import re
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1] / "shared"

# What each package may import from shared/ besides itself:
# api -> openai -> runs -> jobs -> books -> cost -> core, and cli -> runs -> jobs -> books (runs
# drive jobs; jobs know nothing of runs or of the OpenAI door).
MAY_IMPORT = {
    "core": set(),
    "cost": {"core"},
    "books": {"cost", "core"},
    "jobs": {"books", "cost", "core"},
    "runs": {"jobs", "books", "cost", "core"},
    "openai": {"runs", "jobs", "books", "cost", "core"},
    "api": {"openai", "runs", "jobs", "books", "cost", "core"},
    "cli": {"runs", "jobs", "books", "cost", "core"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SHARED.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The shared modules `path` imports, by full dotted name."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("shared")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("shared"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                module_file = SHARED.parent / (candidate.replace(".", "/") + ".py")
                found.add(candidate if module_file.exists() else node.module)
    return found


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(SHARED.rglob("*.py"))}


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_module_lives_in_a_package():
    loose = [p.name for p in SHARED.glob("*.py") if p.name != "__init__.py"]
    assert loose == [], f"modules directly in shared/: {loose}; put each in its package"
    assert {p.name for p in SHARED.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(
        MAY_IMPORT
    )


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_imports_flow_one_way(package):
    wrong = []
    for module, imported in _graph().items():
        if _package(module) != package:
            continue
        for target in imported:
            other = _package(target)
            if other not in (package, *MAY_IMPORT[package]):
                wrong.append(f"{module} imports {target}")
    assert wrong == [], f"{package} may import only {sorted(MAY_IMPORT[package])}: {wrong}"


def test_no_import_loops():
    graph = _graph()
    loops = []

    def visit(node, path, on_path, done):
        on_path.add(node)
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if target in on_path:
                loops.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in done and target in graph:
                visit(target, path, on_path, done)
        path.pop()
        on_path.discard(node)
        done.add(node)

    done: set[str] = set()
    for start in sorted(graph):
        if start not in done:
            visit(start, [], set(), done)
    assert loops == [], f"import loops: {loops}"


def test_the_checker_sees_a_loop_and_a_wrong_way_import(tmp_path, monkeypatch):
    """The rules above can fail: a planted loop and a core -> api import are both found."""
    root = tmp_path / "shared"
    for package in MAY_IMPORT:
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "core" / "a.py").write_text("def f():\n    from shared.core import b\n")
    (root / "core" / "b.py").write_text("from shared.core.a import f\n")
    (root / "core" / "c.py").write_text("from shared.api import http\n")
    (root / "api" / "http.py").write_text("")
    monkeypatch.setattr(__import__(__name__, fromlist=["SHARED"]), "SHARED", root)
    with pytest.raises(AssertionError, match=re.escape("shared.core.a -> shared.core.b")):
        test_no_import_loops()
    with pytest.raises(AssertionError, match=re.escape("shared.core.c imports shared.api.http")):
        test_imports_flow_one_way("core")
