"""The published BI copy as a Dagster asset, downstream of every dbt model.

Every job that builds models (the main job, each integration's job, the pay-period job) also
publishes, so BI never reads marts older than the last full or cadence build. The change-log
sensor's runs do not: at 20,000 providers the copy takes seconds, and the next change would wait
for it (the cadence runs republish every few minutes). It runs after the run's
deliveries when both are ready (a lower step priority): a change reaches Epic first, BI next.
Its freshness policy (evaluated by the daemon) marks it in the UI when it is older than an hour:
the cadences deliver every few minutes and each run republishes, so an older copy means
automation is off or runs are failing, and BI users should know.
"""

import datetime as dt
from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from lb_pipelines import settings
from lb_pipelines.warehouse.bi_publish import publish_for_bi
from lb_pipelines.warehouse.dbt_assets import warehouse_dbt_assets

BI_MAX_AGE = dt.timedelta(hours=1)


@dg.asset(
    key=dg.AssetKey(["bi", "published_warehouse"]),
    group_name="warehouse_bi",
    deps=[warehouse_dbt_assets],
    kinds={"duckdb", "parquet"},
    pool="warehouse",
    op_tags={"dagster/priority": "-10"},  # after the run's deliveries, which are waited for
    freshness_policy=dg.FreshnessPolicy.time_window(fail_window=BI_MAX_AGE, warn_window=BI_MAX_AGE / 2),
    description=(
        "A read-only copy of the warehouse and one Parquet file per mart for BI users, replaced "
        "atomically after every build (BI never opens the live warehouse)."
    ),
)
def published_warehouse(warehouse: DuckDBResource) -> dg.MaterializeResult:
    published = publish_for_bi(Path(warehouse.database), settings.bi_dir())
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(published.database)),
            "size_mb": round(published.bytes / 2**20, 1),
            "parquet_files": len(published.parquet),
            "parquet_dir": dg.MetadataValue.path(str(published.database.parent / "parquet")),
            "duration_s": round(published.seconds, 3),
            "leftovers_removed": len(published.removed_leftovers),  # temporaries of killed publishes
            "dropped_mart_files_removed": len(published.removed_parquet),
        }
    )

