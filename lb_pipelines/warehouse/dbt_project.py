"""The dbt project, defined once (a module-level object is Dagster's cache of it).

Kept apart from the assets so `dagster-dbt project prepare-and-package --file` can import it
before a manifest exists; `make prepare` runs that, and `make run`, `make test` and CI call it.
"""

from dagster_dbt import DbtProject

from lb_pipelines import settings

lightning_bolt_dbt = DbtProject(project_dir=settings.DBT_PROJECT_DIR, profiles_dir=settings.DBT_PROJECT_DIR)
lightning_bolt_dbt.prepare_if_dev()  # re-parses only under `dagster dev`
