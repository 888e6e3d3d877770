"""The views over the cost-records table: one SQL file each in `views/`, `${project}`,
`${dataset}` and `${table}` filled in (Terraform's `templatefile` reads the same files).

`job_costs` (each job by its latest totals row) and `file_costs` (each file generation once)
undo at-least-once delivery; the `daily_spend_by_*` views sum `job_costs` by the spend day
(the UTC day of the job's create time, as the spend API does) and team, key, model or label.
"""

from pathlib import Path
from string import Template

FOLDER = Path(__file__).resolve().parent / "views"
# Dependency order: the daily views read job_costs.
NAMES = (
    "job_costs",
    "file_costs",
    "daily_spend_by_team",
    "daily_spend_by_key",
    "daily_spend_by_model",
    "daily_spend_by_label",
)


def queries(*, project: str, dataset: str, table: str) -> dict[str, str]:
    """View name -> its SQL for this table, in the order they can be created."""
    values = {"project": project, "dataset": dataset, "table": table}
    return {
        name: Template((FOLDER / f"{name}.sql").read_text()).substitute(values) for name in NAMES
    }
