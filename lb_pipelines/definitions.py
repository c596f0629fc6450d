"""Assembles the project for Dagster: assets, checks and resources. Nothing else lives here."""


import dagster as dg
from dagster_duckdb import DuckDBResource

from lb_pipelines import settings
from lb_pipelines.lightning_bolt.resource import LightningBoltResource
from lb_pipelines.warehouse.bi_assets import published_warehouse
from lb_pipelines.warehouse.dbt_assets import dbt_resource, warehouse_dbt_assets
from lb_pipelines.warehouse.raw_assets import raw_assets


def warehouse_resource() -> DuckDBResource:
    return DuckDBResource(database=str(settings.warehouse_path()))


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[*raw_assets, warehouse_dbt_assets, published_warehouse],
        resources={
            "lightning_bolt": LightningBoltResource(),
            "warehouse": warehouse_resource(),
            "dbt": dbt_resource(),
        },
        # DuckDB has one writer at a time: steps that write the warehouse run one after the
        # other in the run's own process (no per-step process start-up either).
        jobs=[
            # The main job (`make run`): every asset, source to warehouse (and, as they are
            # added, exports and deliveries).
            dg.define_asset_job("full_refresh", selection=dg.AssetSelection.all()),
        ],
        executor=dg.in_process_executor,
    )


defs = build_definitions()
