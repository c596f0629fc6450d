import datetime as dt

import pytest

from lb_pipelines import clock


def test_pinned_clock(monkeypatch):
    monkeypatch.setenv("LB_NOW", "2026-03-08T01:30:00-06:00")
    assert clock.now() == dt.datetime(2026, 3, 8, 7, 30, tzinfo=dt.timezone.utc)
    assert clock.today() == dt.date(2026, 3, 8)
    # 07:30 UTC is 00:30 on the 8th in Phoenix (UTC-7, no daylight saving)
    assert clock.today("America/Phoenix") == dt.date(2026, 3, 8)
    monkeypatch.setenv("LB_NOW", "2026-03-08T05:30:00+00:00")
    assert clock.today("America/Phoenix") == dt.date(2026, 3, 7)
    assert clock.today("America/New_York") == dt.date(2026, 3, 8)


def test_real_clock_when_unpinned(monkeypatch):
    monkeypatch.delenv("LB_NOW", raising=False)
    before = dt.datetime.now(dt.timezone.utc)
    assert before <= clock.now() <= dt.datetime.now(dt.timezone.utc)


@pytest.mark.parametrize("value, words", [("yesterday", "not an ISO 8601"), ("2026-03-08T01:30:00", "no UTC offset")])
def test_bad_pin_is_a_clear_error(monkeypatch, value, words):
    monkeypatch.setenv("LB_NOW", value)
    with pytest.raises(clock.ClockError, match=words):
        clock.now()
