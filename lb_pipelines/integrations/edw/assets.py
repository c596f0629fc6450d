"""Enterprise data warehouse: every entity as CSV with a Frictionless datapackage.json, zipped."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from lb_pipelines import clock
from lb_pipelines.integrations.edw.export import INTEGRATION, build_file
from lb_pipelines.integrations.exporting import deliver_export, enabled_config, not_enabled, problems_check_spec
from lb_pipelines.lightning_bolt.contract import ENTITIES
from lb_pipelines.warehouse.raw_assets import raw_asset_key

KEY = dg.AssetKey([INTEGRATION, "file"])


@dg.asset(
    key=KEY,
    group_name=INTEGRATION,
    deps=[raw_asset_key(e) for e in ENTITIES] + [dg.AssetKey(["config", INTEGRATION])],
    check_specs=[problems_check_spec(KEY)],
    kinds={"csv", "zip"},
    pool="warehouse",
    description="lb_edw_YYYYMMDD.zip: every Lightning Bolt entity as CSV, described by a Frictionless Data Package.",
)
def edw_zip(context: dg.AssetExecutionContext, warehouse: DuckDBResource) -> dg.MaterializeResult:
    config = enabled_config(INTEGRATION)
    if config is None:
        return not_enabled(INTEGRATION)
    with warehouse.get_connection() as conn:
        export = build_file(conn, clock.today())
    return deliver_export(context, warehouse, config.settings.delivery, export)
