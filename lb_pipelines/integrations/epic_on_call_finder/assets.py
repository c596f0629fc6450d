"""Epic On-Call Finder: the file asset (its rows come from the dbt model export_epic_on_call_finder)."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from lb_pipelines import clock
from lb_pipelines.integrations.config import load_integration
from lb_pipelines.integrations.epic_on_call_finder.export import (
    COLUMNS,
    INTEGRATION,
    ROWS_IN_WINDOW_SQL,
    file_name,
    file_rows,
)
from lb_pipelines.integrations.exporting import (
    ExportFile,
    deliver_export,
    not_enabled,
    problems_check_spec,
    query_dicts,
)

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
    config = load_integration(INTEGRATION)
    if config is None or not config.enabled:
        return not_enabled(INTEGRATION)
    settings = config.settings
    now = clock.now()
    with warehouse.get_connection() as conn:
        export_rows = query_dicts(
            conn,
            ROWS_IN_WINDOW_SQL,
            {"now": now, "days_back": settings.window.days_back, "days_forward": settings.window.days_forward},
        )
    rows, problems, gaps = file_rows(export_rows, settings.personnel_id_field)
    export = ExportFile(
        integration=INTEGRATION,
        scope="full",
        file_name=file_name(now),
        columns=COLUMNS,
        rows=rows,
        problems=problems,
        coverage_gaps=gaps,
        extra_metadata={"window": f"{settings.window.days_back} days back, {settings.window.days_forward} forward"},
    )
    return deliver_export(context, warehouse, settings.delivery, export)
