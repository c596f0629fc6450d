"""Pay periods: fixed-length periods counted from an anchor date (a pure rule).

A shift belongs to the pay period of its start. Periods run both ways from the anchor, so a
date before the anchor still has a period. A period's key is its first date (YYYY-MM-DD).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class PayPeriod:
    start: dt.date
    end: dt.date  # included

    @property
    def key(self) -> str:
        return self.start.isoformat()


def pay_period_of(day: dt.date, anchor: dt.date, length_days: int) -> PayPeriod:
    index = (day - anchor).days // length_days  # floor division: dates before the anchor too
    start = anchor + dt.timedelta(days=index * length_days)
    return PayPeriod(start, start + dt.timedelta(days=length_days - 1))


def pay_periods_between(first: dt.date, last: dt.date, anchor: dt.date, length_days: int) -> list[PayPeriod]:
    """Every period touching [first, last], in order."""
    periods, period = [], pay_period_of(first, anchor, length_days)
    while period.start <= last:
        periods.append(period)
        period = pay_period_of(period.end + dt.timedelta(days=1), anchor, length_days)
    return periods


def pay_period_from_key(key: str, anchor: dt.date, length_days: int) -> PayPeriod:
    start = dt.date.fromisoformat(key)
    period = pay_period_of(start, anchor, length_days)
    if period.start != start:
        raise ValueError(f"{key} is not the first day of a pay period (anchor {anchor}, {length_days} days)")
    return period
