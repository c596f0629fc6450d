"""Epic On-Call Finder: the file asset (its rows come from the dbt model export_epic_on_call_finder)."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from lb_pipelines import clock
from lb_pipelines.integrations.epic_on_call_finder.export import INTEGRATION, build_file
from lb_pipelines.integrations.exporting import deliver_export, enabled_config, not_enabled, problems_check_spec

KEY = dg.AssetKey([INTEGRATION, "file"])


@dg.asset(
    key=KEY,
    group_name=INTEGRATION,
    deps=[dg.AssetKey(["exports", "export_epic_on_call_finder"])],
    check_specs=[problems_check_spec(KEY)],
    kinds={"csv"},
    pool="warehouse",
    description="The full Epic On-Call Finder file for the window, delivered and recorded in the ledger.",
)
def epic_on_call_finder_file(context: dg.AssetExecutionContext, warehouse: DuckDBResource) -> dg.MaterializeResult:
    config = enabled_config(INTEGRATION)
    if config is None:
        return not_enabled(INTEGRATION)
    with warehouse.get_connection() as conn:
        export = build_file(conn, config.settings, clock.now())
    return deliver_export(context, warehouse, config.settings.delivery, export)
