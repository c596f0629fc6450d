"""One pay-period partitioning shared by every integration that sends by pay period.

Partition keys are pay-period start dates (YYYY-MM-DD), added to the instance from the anchor
through the next period (`ensure_pay_periods`), so any past period can be rerun from the UI.
The integrations partitioned this way (Kronos WFD and WFC) share one payroll calendar: give
them the same `pay_period` settings; a key that is not the first day of an integration's own
period fails its run with that reason.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from lb_pipelines import clock
from lb_pipelines.automation.pay_periods import PayPeriod, pay_period_of, pay_periods_between

PAY_PERIODS = dg.DynamicPartitionsDefinition(name="pay_periods")
MAX_PERIODS_KEPT = 400  # about 15 years of 14-day periods


def current_pay_period(pay_period, today: dt.date | None = None) -> PayPeriod:
    """The period holding today; `pay_period` is an integration's PayPeriodSettings."""
    return pay_period_of(today or clock.today(), pay_period.anchor, pay_period.length_days)


def ensure_pay_periods(instance: dg.DagsterInstance, pay_period, today: dt.date | None = None) -> PayPeriod:
    """Add partition keys from the anchor through the next period; return the current period."""
    current = current_pay_period(pay_period, today)
    anchor, length = pay_period.anchor, pay_period.length_days
    wanted = [p.key for p in pay_periods_between(anchor, current.end + dt.timedelta(days=1), anchor, length)]
    wanted = wanted[-MAX_PERIODS_KEPT:]
    have = set(instance.get_dynamic_partitions(PAY_PERIODS.name))
    missing = [k for k in wanted if k not in have]
    if missing:
        instance.add_dynamic_partitions(PAY_PERIODS.name, missing)
    return current
