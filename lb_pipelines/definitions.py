"""Assembles the project for Dagster: assets, checks, jobs, schedules, sensors and resources.

Nothing else lives here, and no integration is named here: each is found from its folder's
declaration (`integrations/registry.py`) and turned into assets by its kind's factory.
"""

import dagster as dg

from lb_pipelines.alerts import alert_sensors
from lb_pipelines.automation import MAIN_JOB, PAY_PERIOD_JOB
from lb_pipelines.automation.change_log_sensor import build_change_log_sensor, change_job
from lb_pipelines.automation.inbound_sensor import inbound_sensor
from lb_pipelines.automation.jobs import WAREHOUSE_WRITE_TAG, integration_job
from lb_pipelines.automation.pay_period_partitions import PAY_PERIODS
from lb_pipelines.automation.schedules import integration_schedules
from lb_pipelines.integrations.assets import integration_assets
from lb_pipelines.integrations.config_assets import config_assets
from lb_pipelines.integrations.registry import integrations
from lb_pipelines.lightning_bolt.source.resource import LightningBoltResource
from lb_pipelines.operations.summary import console
from lb_pipelines.warehouse.bi_assets import published_warehouse
from lb_pipelines.warehouse.dbt_assets import dbt_resource, warehouse_dbt_assets
from lb_pipelines.warehouse.raw_assets import raw_assets
from lb_pipelines.warehouse.resource import warehouse_resource

def pay_period_outputs() -> list[dg.AssetKey]:
    """The outputs sent by pay period: not in the main job, run per period."""
    return [i.output_key for i in integrations().values() if i.partitioned_by == "pay_period"]


def build_definitions() -> dg.Definitions:
    declared = list(integrations().values())
    bi = dg.AssetSelection.assets(published_warehouse)  # every run that builds models republishes
    jobs = {i.slug: integration_job(i, also=bi) for i in declared}
    by_pay_period = dg.AssetSelection.assets(*pay_period_outputs())
    changes = change_job()  # not the BI copy: see change_log_sensor.change_selection
    return dg.Definitions(
        assets=[
            *raw_assets,
            *config_assets(),
            warehouse_dbt_assets,
            published_warehouse,
            *(asset for i in declared for asset in integration_assets(i)),
        ],
        loggers={"console": console},  # stack traces stay on the run's page, not on the terminal
        resources={
            "lightning_bolt": LightningBoltResource(),
            "warehouse": warehouse_resource(),
            "dbt": dbt_resource(),
        },
        jobs=[
            # The main job (`make run`): source → raw → config → dbt → BI copy → outputs.
            dg.define_asset_job(MAIN_JOB, selection=dg.AssetSelection.all() - by_pay_period, tags=WAREHOUSE_WRITE_TAG),
            # One pay period of the payroll exports (run for the current period after the main job).
            dg.define_asset_job(
                PAY_PERIOD_JOB, selection=by_pay_period | bi, partitions_def=PAY_PERIODS, tags=WAREHOUSE_WRITE_TAG
            ),
            *jobs.values(),
            changes,
        ],
        schedules=integration_schedules(declared, jobs),
        sensors=[
            build_change_log_sensor(changes),
            *(inbound_sensor(i, jobs[i.slug]) for i in declared if i.triggers.inbound_file),
            *alert_sensors(),
        ],
        # DuckDB has one writer at a time: steps that write the warehouse run one after the
        # other in the run's own process (no per-step process start-up either).
        executor=dg.in_process_executor,
    )


defs = build_definitions()
