"""The published BI copy as a Dagster asset, downstream of every dbt model."""

from pathlib import Path

import dagster as dg
from dagster_duckdb import DuckDBResource

from lb_pipelines import settings
from lb_pipelines.warehouse.bi_publish import publish_for_bi
from lb_pipelines.warehouse.dbt_assets import warehouse_dbt_assets


@dg.asset(
    key=dg.AssetKey(["bi", "published_warehouse"]),
    group_name="warehouse_bi",
    deps=[warehouse_dbt_assets],
    kinds={"duckdb", "parquet"},
    pool="warehouse",
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
        }
    )
