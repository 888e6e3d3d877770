"""`make mutate`'s lists stay true as the code moves: a target that names no function would
silently mutate nothing."""

import tomllib

from tests.mutation import run


def test_every_target_names_a_function_mutmut_mutates():
    assert run.unmatched(run.load_targets()) == []


def test_unmatched_finds_a_moved_function():
    assert run.unmatched(["shared.jobs.submit.x__under", "shared.core.gcs_paths.x_under"]) == [
        "shared.jobs.submit.x__under"
    ]


def test_every_equivalent_names_a_target_function():
    entries = tomllib.loads((run.HERE / "equivalent.toml").read_text())["equivalent"]
    targets = run.load_targets()
    for entry in entries:
        assert run.unmatched([entry["function"]]) == [], entry
        assert any(
            run.fnmatch.fnmatchcase(f, t)
            for f in run.fnmatch.filter(run.mutable_functions(), entry["function"])
            for t in targets
        ), entry


RULE_TEST_WORDS = (
    "pricing",
    "ledger",
    "sealing",
    "budget",
    "submit",
    "keys",
    "gcs_paths",
    "http",
    "route",
)


def test_the_rule_tests_are_in_mutmuts_selection():
    """mutmut runs only the listed tests: a rule test left out lets its mutants survive."""
    config = tomllib.loads((run.ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    selected = [s.rstrip("/") for s in config["pytest_add_cli_args_test_selection"]]
    rule_tests = sorted(
        str(path.relative_to(run.ROOT))
        for word in RULE_TEST_WORDS
        for path in run.ROOT.glob(f"tests/*/test_{word}*.py")
    )
    assert len(rule_tests) >= len(RULE_TEST_WORDS)
    missing = [t for t in rule_tests if t not in selected and t.rsplit("/", 1)[0] not in selected]
    assert missing == []
