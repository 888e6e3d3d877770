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
