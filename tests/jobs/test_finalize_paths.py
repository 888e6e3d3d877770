"""Which object belongs to which job: the pure path logic of shared/jobs/finalize.py."""

from datetime import UTC, datetime

import pytest

from shared.cost.ledger import counted_group
from shared.jobs.finalize import (
    DirectoryPending,
    choose_job,
    is_prediction_file,
    output_file,
    parent_folders,
)

DIR = "gs://b/out/prediction-model-2025-03-04T10:00:00.000000Z/"


def job(output_directory=None, created="2025-03-04T09:00:00", prefix="gs://b/out/"):
    return {
        "output_prefix": prefix,
        "output_directory": output_directory,
        "create_time": datetime.fromisoformat(created).replace(tzinfo=UTC),
    }


@pytest.mark.parametrize(
    ("name", "counts"),
    [
        ("a/predictions.jsonl", True),
        ("a/predictions_00001.jsonl", True),
        ("predictions.jsonl", True),
        ("a/errors_stats_00001.jsonl", False),
        ("a/predictions.jsonl.tmp", False),
        ("a/my-predictions.jsonl", False),
    ],
)
def test_only_predictions_files_count(name, counts):
    assert is_prediction_file(name) is counts


def test_parent_folders_deepest_first():
    assert parent_folders("b", "x/y/predictions.jsonl") == ["gs://b/x/y/", "gs://b/x/", "gs://b/"]
    assert parent_folders("b", "predictions.jsonl") == ["gs://b/"]


def test_recorded_directory_wins_over_pending_jobs():
    candidates = {"1": job(output_directory=DIR.rstrip("/")), "2": job()}
    assert choose_job(candidates, DIR) == "1"


def test_a_job_whose_directory_is_elsewhere_does_not_own_it():
    assert choose_job({"1": job(output_directory="gs://b/out/prediction-x/")}, DIR) is None


def test_single_pending_job_owns_a_prediction_folder_under_its_prefix():
    assert choose_job({"1": job()}, DIR) == "1"
    assert choose_job({"1": job()}, "gs://b/out/other/") is None
    assert choose_job({"1": job(prefix="gs://b/else/")}, DIR) is None


def test_jobs_created_after_the_folder_timestamp_are_dropped():
    candidates = {"1": job(), "2": job(created="2025-03-05T00:00:00")}
    assert choose_job(candidates, DIR) == "1"


def test_several_pending_jobs_raise_a_transient_error():
    with pytest.raises(DirectoryPending):
        choose_job({"1": job(), "2": job(created="2025-03-04T09:30:00")}, DIR)


@pytest.mark.parametrize(
    ("name", "found"),
    [
        ("o/pm/predictions.jsonl", ("final", "o/pm/")),
        ("o/pm/predictions_00002.jsonl", ("final", "o/pm/")),
        ("o/pm/incremental_predictions/predictions_00000.jsonl", ("incremental", "o/pm/")),
        ("o/pm/incremental_predictions/x/part-1.jsonl", ("incremental", "o/pm/")),
        ("o/pm/incremental_predictions_00001.jsonl", ("incremental", "o/pm/")),
        ("o/pm/incremental_predictions/predictions.jsonl.tmp", None),
        ("o/pm/errors_stats_00001.jsonl", None),
    ],
)
def test_final_and_incremental_output_files(name, found):
    assert output_file(name) == found


def test_the_final_set_counts_once_it_bills_at_least_the_incremental_set():
    def sets(final, incremental):
        return {
            "final": {"cost_nanos": final[0], "rows": final[1]},
            "incremental": {"cost_nanos": incremental[0], "rows": incremental[1]},
        }

    assert counted_group(sets((0, 0), (0, 0))) == "final"
    assert counted_group(sets((0, 0), (5, 1))) == "incremental"
    assert counted_group(sets((4, 9), (5, 1))) == "incremental"
    assert counted_group(sets((5, 1), (5, 1))) == "final"
    assert counted_group(sets((6, 1), (5, 3))) == "final"
    assert counted_group(sets((0, 3), (0, 2))) == "final"  # unpriced rows: by row count
    assert counted_group(sets((0, 0), (0, 1))) == "incremental"
    assert counted_group(sets((0, 3), (1, 1))) == "incremental"  # cost before rows
    assert counted_group(sets((5, 1), (5, 2))) == "incremental"
    assert counted_group({"incremental": {"cost_nanos": 1, "rows": 1}}) == "incremental"
