"""Kronos Workforce Dimensions: one file per pay period and run, partitioned by pay period.

Partition keys are pay-period start dates, added to the instance from the anchor up to the
next period (`ensure_pay_periods`), so any past period can be rerun from the UI.
"""

import datetime as dt

import dagster as dg
from dagster_duckdb import DuckDBResource

from lb_pipelines import clock
from lb_pipelines.automation.pay_periods import (
    PayPeriod,
    pay_period_from_key,
    pay_period_of,
    pay_periods_between,
)
from lb_pipelines.integrations.exporting import deliver_export, enabled_config, not_enabled, problems_check_spec
from lb_pipelines.integrations.kronos_wfd.export import INTEGRATION, build_period_file
from lb_pipelines.lightning_bolt.contract import Window
from lb_pipelines.warehouse.raw_load import window_is_loaded

KEY = dg.AssetKey([INTEGRATION, "file"])
PAY_PERIODS = dg.DynamicPartitionsDefinition(name="kronos_wfd_pay_periods")
MAX_PERIODS_KEPT = 400  # about 15 years of 14-day periods


def current_pay_period(settings, today: dt.date | None = None) -> PayPeriod:
    return pay_period_of(today or clock.today(), settings.pay_period.anchor, settings.pay_period.length_days)


def ensure_pay_periods(instance: dg.DagsterInstance, settings, today: dt.date | None = None) -> PayPeriod:
    """Add partition keys from the anchor through the next period; return the current period."""
    current = current_pay_period(settings, today)
    anchor, length = settings.pay_period.anchor, settings.pay_period.length_days
    wanted = [p.key for p in pay_periods_between(anchor, current.end + dt.timedelta(days=1), anchor, length)]
    wanted = wanted[-MAX_PERIODS_KEPT:]
    have = set(instance.get_dynamic_partitions(PAY_PERIODS.name))
    missing = [k for k in wanted if k not in have]
    if missing:
        instance.add_dynamic_partitions(PAY_PERIODS.name, missing)
    return current


@dg.asset(
    key=KEY,
    group_name=INTEGRATION,
    partitions_def=PAY_PERIODS,
    deps=[dg.AssetKey(["exports", "export_kronos_wfd"])],
    check_specs=[problems_check_spec(KEY)],
    kinds={"csv"},
    pool="warehouse",
    description=(
        "The Kronos WFD file of one pay period: in full the first time, then only ADD/UPDATE/DELETE "
        "against the last file delivered for that period (a header-only file when nothing changed)."
    ),
)
def kronos_wfd_file(context: dg.AssetExecutionContext, warehouse: DuckDBResource) -> dg.MaterializeResult:
    config = enabled_config(INTEGRATION)
    if config is None:
        return not_enabled(INTEGRATION)
    settings = config.settings
    period = pay_period_from_key(context.partition_key, settings.pay_period.anchor, settings.pay_period.length_days)
    with warehouse.get_connection() as conn:
        window = Window(period.start, period.end)
        unread = [e for e in ("slots", "schedules") if not window_is_loaded(conn, e, window)]
        if unread:
            # Without the period's slots every delivered shift would look deleted.
            raise dg.Failure(
                f"pay period {period.start}..{period.end}: {' and '.join(unread)} for these dates were never "
                "loaded; load them first (raw assets with start_date/end_date covering the period). "
                "Refusing to compute a delta that would delete every shift."
            )
        export = build_period_file(conn, settings, period, clock.now())
    return deliver_export(context, warehouse, settings.delivery, export)
