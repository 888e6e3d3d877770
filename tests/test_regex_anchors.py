"""A pattern that must describe a whole string is matched whole (issue #22 item 13).

`$` also matches just before a final newline: `re.match(r"^[a-z]+$", "team\\n")` passes, and so
did label keys with a trailing newline. So no regex in `shared/`, `local/` or `functions/`
ends in `$`: whole strings are checked with `fullmatch` (or anchored with `\\Z`). Read from
the source with `ast`, as `test_layout.py` reads imports.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RE_FUNCTIONS = {"compile", "match", "search", "fullmatch", "sub", "subn", "split", "findall"}


def _tail(node: ast.expr) -> str | None:
    """The constant text a pattern expression ends with (`"a" + r"b$"` -> `b$`), if any."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _tail(node.right)
    return None


def dollar_anchored(source: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "re"
            and node.func.attr in RE_FUNCTIONS
            and node.args
        ):
            tail = _tail(node.args[0])
            if tail and tail.endswith("$") and not tail.endswith("\\$"):
                found.append((node.lineno, tail))
    return found


def test_the_check_finds_what_it_is_for():
    assert dollar_anchored('import re\nX = re.compile(r"^[a-z]+$")') == [(2, "^[a-z]+$")]
    assert dollar_anchored('import re\nre.match("a" + r"b$", s)') == [(2, "b$")]
    assert dollar_anchored('import re\nre.fullmatch(r"[a-z]+", s); re.sub(r"\\$", "", s)') == []


def test_no_pattern_ends_in_a_dollar():
    found = [
        f"{path.relative_to(ROOT)}:{line}: {pattern!r}"
        for folder in ("shared", "local", "functions")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for line, pattern in dollar_anchored(path.read_text())
    ]
    assert found == [], "use fullmatch (or \\Z): `$` also matches before a final newline"
