"""The dbt project, defined once (a module-level object is Dagster's cache of it).

Kept apart from the assets so `dagster-dbt project prepare-and-package --file` can import it
before a manifest exists; `make prepare` runs that, and `make run`, `make test` and CI call it.
"""

import sys
from pathlib import Path

from dagster_dbt import DagsterDbtProjectPreparer, DbtCliResource, DbtProject
from dagster_shared.record import replace

from lb_pipelines import settings


def dbt_executable() -> str:
    """The dbt installed beside this Python, so a venv works without being on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    return str(beside) if beside.exists() else "dbt"


class _VenvDbtPreparer(DagsterDbtProjectPreparer):
    """Parses with the dbt beside this Python: dagster-dbt's own preparer looks for `dbt` on PATH,
    so `lb-pipelines dev` run without the venv on PATH could not load the code."""

    def prepare(self, project: DbtProject) -> None:
        DbtCliResource(project_dir=project, dbt_executable=dbt_executable()).cli(
            ["parse", "--quiet"], target_path=project.target_path
        ).wait()


lightning_bolt_dbt = DbtProject(project_dir=settings.DBT_PROJECT_DIR, profiles_dir=settings.DBT_PROJECT_DIR)
lightning_bolt_dbt = replace(lightning_bolt_dbt, preparer=_VenvDbtPreparer())  # DbtProject takes no preparer
lightning_bolt_dbt.prepare_if_dev()  # re-parses only under `dagster dev`
