"""Assembles the project for Dagster: assets, checks, jobs, schedules, sensors and resources.

Nothing else lives here.
"""

import dagster as dg

from lb_pipelines import settings
from lb_pipelines.alerts import alert_sensors
from lb_pipelines.automation.change_log_sensor import NEAR_REAL_TIME, build_change_log_sensor
from lb_pipelines.automation.jobs import WAREHOUSE_WRITE_TAG, integration_job
from lb_pipelines.automation.schedules import integration_schedules
from lb_pipelines.integrations.config_assets import config_assets
from lb_pipelines.integrations.edw.assets import edw_zip
from lb_pipelines.integrations.epic_on_call_finder.assets import epic_on_call_finder_file
from lb_pipelines.integrations.kronos_wfd.assets import PAY_PERIODS, kronos_wfd_file
from lb_pipelines.lightning_bolt.resource import LightningBoltResource
from lb_pipelines.operations.summary import console
from lb_pipelines.warehouse.bi_assets import published_warehouse
from lb_pipelines.warehouse.dbt_assets import dbt_resource, warehouse_dbt_assets
from lb_pipelines.warehouse.raw_assets import raw_assets
from lb_pipelines.warehouse.resource import warehouse_resource

PARTITIONED_BY_PAY_PERIOD = [kronos_wfd_file]


def build_definitions() -> dg.Definitions:
    bi = dg.AssetSelection.assets(published_warehouse)  # every run that builds models republishes
    integration_jobs = {
        "epic_on_call_finder": integration_job("epic_on_call_finder", epic_on_call_finder_file, also=bi),
        "kronos_wfd": integration_job("kronos_wfd", kronos_wfd_file, PAY_PERIODS, also=bi),
        "edw": integration_job("edw", edw_zip, also=bi),
    }
    return dg.Definitions(
        assets=[
            *raw_assets,
            *config_assets(),
            warehouse_dbt_assets,
            published_warehouse,
            epic_on_call_finder_file,
            edw_zip,
            *PARTITIONED_BY_PAY_PERIOD,
        ],
        loggers={"console": console},  # stack traces stay on the run's page, not on the terminal
        resources={
            "lightning_bolt": LightningBoltResource(),
            "warehouse": warehouse_resource(),
            "dbt": dbt_resource(),
        },
        jobs=[
            # The main job (`make run`): source → raw → config → dbt → BI copy → file exports.
            dg.define_asset_job(
                "full_refresh",
                selection=dg.AssetSelection.all() - dg.AssetSelection.assets(*PARTITIONED_BY_PAY_PERIOD),
                tags=WAREHOUSE_WRITE_TAG,
            ),
            # One pay period of the payroll exports (run for the current period after full_refresh).
            dg.define_asset_job(
                "pay_period_exports",
                selection=dg.AssetSelection.assets(*PARTITIONED_BY_PAY_PERIOD) | bi,
                partitions_def=PAY_PERIODS,
                tags=WAREHOUSE_WRITE_TAG,
            ),
            *integration_jobs.values(),
        ],
        schedules=integration_schedules(integration_jobs, by_pay_period={"kronos_wfd"}),
        sensors=[build_change_log_sensor([integration_jobs[i] for i in NEAR_REAL_TIME]), *alert_sensors()],
        # DuckDB has one writer at a time: steps that write the warehouse run one after the
        # other in the run's own process (no per-step process start-up either).
        executor=dg.in_process_executor,
    )


defs = build_definitions()
