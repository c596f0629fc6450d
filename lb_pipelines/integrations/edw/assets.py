"""Enterprise data warehouse: every entity as CSV with a Frictionless datapackage.json, zipped."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from lb_pipelines import clock
from lb_pipelines.integrations.config import load_integration
from lb_pipelines.integrations.edw.export import build_edw_zip
from lb_pipelines.integrations.exporting import ExportFile, deliver_export, not_enabled, problems_check_spec
from lb_pipelines.lightning_bolt.contract import ENTITIES
from lb_pipelines.warehouse.raw_assets import raw_asset_key

INTEGRATION = "edw"
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
    config = load_integration(INTEGRATION)
    if config is None or not config.enabled:
        return not_enabled(INTEGRATION)
    with warehouse.get_connection() as conn:
        package = build_edw_zip(conn, clock.today())
    export = ExportFile(
        integration=INTEGRATION,
        scope="full",
        file_name=package.file_name,
        columns=["file", "rows"],
        rows=sorted(package.row_counts.items()),
        content=package.content,
        row_count=sum(package.row_counts.values()),
        extra_metadata={"files": len(package.row_counts)},
    )
    return deliver_export(context, warehouse, config.settings.delivery, export)
