"""`make mutate`: mutmut on the rules that guard money and access, then the verdict.

Starts the emulators once (the tests reuse them through `VBG_TEST_*_PORT`, see
tests/conftest.py), runs `mutmut run` on the functions named in `tests/mutation/targets.toml`,
and reads every result back: a surviving mutant fails the run unless `equivalent.toml` lists
it (by function and the mutated line) with the reason it cannot change behaviour.
Prints the score before (every survivor counts) and after the listed equivalents.

    python -m tests.mutation.run [--keep] [--max-children N] [GLOB ...]

`--keep` reuses mutants/ and mutmut's cached verdicts (only changed functions rerun).
"""

import argparse
import ast
import fnmatch
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from local.processes import firestore_emulator, free_port, pubsub_emulator, storage_emulator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MUTMUT = [sys.executable, "-m", "mutmut"]
STATUS_LINE = re.compile(r"^\s*(\S+__mutmut_\d+): (.+)$")


@dataclass(frozen=True)
class Equivalent:
    function: str  # a mutmut function name or glob: shared.core.keys.x_authenticate
    line: str  # the mutated line as mutmut shows it, stripped
    reason: str


def load_targets() -> list[str]:
    return tomllib.loads((HERE / "targets.toml").read_text())["functions"]


def mutable_functions() -> list[str]:
    """mutmut's names of the functions in `only_mutate` (module.x_f, module.xǁClassǁm)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    names = []
    for path in config["only_mutate"]:
        module = path.removesuffix(".py").replace("/", ".")
        for node in ast.parse((ROOT / path).read_text()).body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names.append(f"{module}.x_{node.name}")
            elif isinstance(node, ast.ClassDef):
                names += [
                    f"{module}.xǁ{node.name}ǁ{m.name}"
                    for m in node.body
                    if isinstance(m, ast.FunctionDef | ast.AsyncFunctionDef)
                ]
    return names


def unmatched(targets: list[str]) -> list[str]:
    """The targets that name no function mutmut mutates: renamed or moved code (a defect)."""
    names = mutable_functions()
    return [t for t in targets if not fnmatch.filter(names, t.split("__mutmut_")[0])]


def load_equivalents() -> list[Equivalent]:
    entries = tomllib.loads((HERE / "equivalent.toml").read_text()).get("equivalent", [])
    return [Equivalent(e["function"], e["line"].strip(), e["reason"]) for e in entries]


def function_of(mutant: str) -> str:
    return mutant.rsplit("__mutmut_", 1)[0]


def mutated_line(mutant: str) -> str:
    """The added line(s) of mutmut's diff for one mutant, stripped and joined (for a
    deletion, "deleted: " and the removed line)."""
    diff = subprocess.run(
        [*MUTMUT, "show", mutant], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    lines = diff.splitlines()
    added = [x[1:].strip() for x in lines if x.startswith("+") and not x.startswith("+++")]
    if added:
        return " / ".join(added)
    removed = [x[1:].strip() for x in lines if x.startswith("-") and not x.startswith("---")]
    return "deleted: " + " / ".join(removed)


def results() -> dict[str, str]:
    out = subprocess.run(
        [*MUTMUT, "results", "--all=true"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    found = {}
    for line in out.splitlines():
        match = STATUS_LINE.match(line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def in_targets(mutant: str, targets: list[str]) -> bool:
    return any(
        fnmatch.fnmatchcase(mutant, p if "__mutmut_" in p else p + "__mutmut_*") for p in targets
    )


def start_emulators(log_dir: Path) -> tuple[list, dict[str, str]]:
    servers = {
        "firestore": firestore_emulator(free_port(), log_dir),
        "pubsub": pubsub_emulator(free_port(), "vbg-test", log_dir),
        "storage": storage_emulator(free_port(), log_dir),
    }
    started = []
    for server in servers.values():
        started.append(server.start())
    for server in started:
        server.wait_ready(timeout=120)
    env = {f"VBG_TEST_{name.upper()}_PORT": str(s.port) for name, s in servers.items()}
    return started, env


def verdict(targets: list[str], equivalents: list[Equivalent]) -> int:
    statuses = {m: s for m, s in results().items() if in_targets(m, targets)}
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    survivors = sorted(m for m, s in statuses.items() if s in ("survived", "no tests"))
    explained, unexplained = [], []
    for mutant in survivors:
        line = mutated_line(mutant)
        match = next(
            (
                e
                for e in equivalents
                if fnmatch.fnmatchcase(function_of(mutant), e.function) and e.line == line
            ),
            None,
        )
        (explained if match else unexplained).append((mutant, line, match))
    tested = sum(n for s, n in counts.items() if s not in ("skipped", "not checked"))
    killed = sum(n for s, n in counts.items() if s in ("killed", "timeout", "segfault"))
    print("\nmutation report")
    print("  statuses: " + ", ".join(f"{s} {n}" for s, n in sorted(counts.items())))
    if tested:
        print(f"  score: {killed}/{tested} killed = {100 * killed / tested:.1f}%")
        after = killed + len(explained)
        print(
            f"  score with the {len(explained)} listed equivalent mutants: "
            f"{after}/{tested} = {100 * after / tested:.1f}%"
        )
    for mutant, line, match in explained:
        print(f"  equivalent {mutant}: {line}\n      because {match.reason}")
    for mutant, line, _ in unexplained:
        print(f"  SURVIVED {mutant}: {line}")
    not_checked = sorted(m for m, s in statuses.items() if s == "not checked")
    for mutant in not_checked:
        print(f"  NOT CHECKED {mutant}")
    return 1 if unexplained or not_checked else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("globs", nargs="*", help="mutmut function globs (default: targets.toml)")
    parser.add_argument("--keep", action="store_true", help="reuse mutants/ and its verdicts")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--report-only", action="store_true", help="only read the results")
    args = parser.parse_args(argv)
    targets = args.globs or load_targets()
    missing = unmatched(targets)
    if missing:
        print("these targets name no function in only_mutate: " + ", ".join(missing))
        return 2
    equivalents = load_equivalents()
    if args.report_only:
        return verdict(targets, equivalents)
    if not args.keep:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    log_dir = Path(tempfile.mkdtemp(prefix="vbg-mutate-"))
    servers, env = start_emulators(log_dir)
    try:
        subprocess.run(
            [*MUTMUT, "run", "--max-children", str(args.max_children)]
            + [p if "__mutmut_" in p else p + "__mutmut_*" for p in targets],
            cwd=ROOT,
            env={**os.environ, **env},
            check=False,
        )
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(log_dir, ignore_errors=True)
    return verdict(targets, equivalents)


if __name__ == "__main__":
    sys.exit(main())
