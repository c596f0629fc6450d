import datetime as dt

import pytest

from lb_pipelines.automation.pay_periods import pay_period_from_key, pay_period_of, pay_periods_between

ANCHOR = dt.date(2026, 1, 4)  # a Sunday; 14-day periods: Jan 4-17, Jan 18-31, ...
D = dt.date


@pytest.mark.parametrize(
    "day, start, end",
    [
        (D(2026, 1, 4), D(2026, 1, 4), D(2026, 1, 17)),
        (D(2026, 1, 17), D(2026, 1, 4), D(2026, 1, 17)),
        (D(2026, 1, 18), D(2026, 1, 18), D(2026, 1, 31)),
        # 2026-11-22 is 322 days after the anchor: period 23 starts 322 days after it
        (D(2026, 11, 22), D(2026, 11, 22), D(2026, 12, 5)),
        (D(2025, 12, 31), D(2025, 12, 21), D(2026, 1, 3)),  # before the anchor
    ],
)
def test_pay_period_of(day, start, end):
    period = pay_period_of(day, ANCHOR, 14)
    assert (period.start, period.end) == (start, end)


def test_periods_between_and_keys():
    periods = pay_periods_between(D(2026, 1, 10), D(2026, 2, 1), ANCHOR, 14)
    assert [p.key for p in periods] == ["2026-01-04", "2026-01-18", "2026-02-01"]
    assert pay_period_from_key("2026-01-18", ANCHOR, 14).end == D(2026, 1, 31)
    with pytest.raises(ValueError, match="not the first day"):
        pay_period_from_key("2026-01-19", ANCHOR, 14)
