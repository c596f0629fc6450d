"""The dbt project as Dagster assets: models are assets, dbt tests are asset checks."""


import contextlib
import os
from typing import Any, Iterator, Mapping

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets
from dagster_duckdb import DuckDBResource

from lb_pipelines.delivery.ledger import ensure_delivery_tables
from lb_pipelines.warehouse.dbt_project import dbt_executable, lightning_bolt_dbt


INTEGRATIONS_PATH = "../lb_pipelines/integrations/"


class WarehouseTranslator(DagsterDbtTranslator):
    """Groups models so the UI reads source → staging → marts, and each export model with its
    integration (its folder, lb_pipelines/integrations/<slug>/, is a dbt model path)."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props.get("resource_type") == "source":
            return None
        fqn = dbt_resource_props.get("fqn", [])
        if dbt_resource_props.get("original_file_path", "").startswith(INTEGRATIONS_PATH):
            return fqn[1]  # the integration's slug
        return f"warehouse_{fqn[1]}" if len(fqn) > 2 else "warehouse"


@contextlib.contextmanager
def _warehouse_env(database: str) -> Iterator[None]:
    """dbt finds the warehouse through LB_WAREHOUSE (profiles.yml); point it at this run's file."""
    previous = os.environ.get("LB_WAREHOUSE")
    os.environ["LB_WAREHOUSE"] = str(database)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("LB_WAREHOUSE", None)
        else:
            os.environ["LB_WAREHOUSE"] = previous


@dbt_assets(
    manifest=lightning_bolt_dbt.manifest_path,
    dagster_dbt_translator=WarehouseTranslator(),
    pool="warehouse",
)
def warehouse_dbt_assets(context: dg.AssetExecutionContext, dbt: DbtCliResource, warehouse: DuckDBResource):
    with warehouse.get_connection() as conn:
        ensure_delivery_tables(conn)  # the ledger views read them, even before the first delivery
    with _warehouse_env(warehouse.database):
        # cautious: a job that builds only some models (an integration's) runs only the tests whose
        # every parent it builds, so a relationship test to a mart it left out cannot fail it.
        yield from dbt.cli(["build", "--indirect-selection", "cautious"], context=context).stream()


def dbt_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=lightning_bolt_dbt, dbt_executable=dbt_executable())
