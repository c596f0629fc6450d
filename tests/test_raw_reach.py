"""The raw load reaches as far as the schedules do (issue 10, point 4).

The tiny system plus, by hand: schedule 1002 published for June 2027 (211..240 days after the
pinned 2026-11-02, past the 180-day default) with three slots, the last on its last day; and
schedule 901 of July 2026 with one slot, both before the back edge (2026-11-02 - 90 days =
2026-08-04). Forward edge without the rule: 2026-11-02 + 180 days = 2027-05-01.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import duckdb

from lb_pipelines import settings
from lb_pipelines.lightning_bolt.simulator import Simulator
from lb_pipelines.lightning_bolt.source.contract import Window
from lb_pipelines.lightning_bolt.source.directory import DirectorySource
from lb_pipelines.warehouse.raw_assets import default_window
from lb_pipelines.warehouse.raw_load import last_loaded_start, load_entity
from test_raw_assets import materialization, materialize
from test_raw_via_api import materialize_into, raw_tables
from tiny_system import TS, fresh, slot, write_system

NOV_2 = dt.date(2026, 11, 2)
FAR_SCHEDULE = {"id": 1002, "department_id": 1, "start_date": "2027-06-01", "end_date": "2027-06-30",
                "status": "published", "published_at": TS, "version": 1}
FAR_SLOTS = [
    slot(5101, 1002, "2027-06-01", 101, 11, "17:00", "07:00"),
    slot(5102, 1002, "2027-06-15", 102, 12, "07:00", "15:00"),
    slot(5103, 1002, "2027-06-30", 101, 19, "17:00", "07:00"),  # 240 days ahead
]
OLD_SCHEDULE = {"id": 901, "department_id": 1, "start_date": "2026-07-01", "end_date": "2026-07-31",
                "status": "published", "published_at": TS, "version": 2}
OLD_SLOT = slot(4001, 901, "2026-07-15", 101, 11, "17:00", "07:00")
REACHED = "2026-08-04..2027-06-30"


def with_far_and_old(folder):
    system = fresh()
    system["schedules"] += [FAR_SCHEDULE, OLD_SCHEDULE]
    system["slots"] += [*FAR_SLOTS, OLD_SLOT]
    return write_system(folder, system)


def ids(entity, path=None):
    with duckdb.connect(str(path or settings.warehouse_path()), read_only=True) as conn:
        return [r[0] for r in conn.execute(f"SELECT id FROM raw.{entity} ORDER BY id").fetchall()]


def test_default_window_reaches_the_last_schedule(lb_env):
    assert default_window(NOV_2) == Window(dt.date(2026, 8, 4), dt.date(2027, 5, 1))
    assert default_window(NOV_2, [dt.date(2026, 11, 30)]) == Window(dt.date(2026, 8, 4), dt.date(2027, 5, 1))
    reach = [dt.date(2026, 7, 31), dt.date(2027, 6, 30), dt.date(2026, 11, 30)]
    assert default_window(NOV_2, reach) == Window(dt.date(2026, 8, 4), dt.date(2027, 6, 30))


def test_last_loaded_start_is_the_latest_first_date(tiny_source):
    conn = duckdb.connect()
    assert last_loaded_start(conn, "slots") is None  # nothing loaded yet
    for entity in ("slots", "schedules", "requests", "tallies"):
        load_entity(conn, DirectorySource(tiny_source), entity)
    found = {e: last_loaded_start(conn, e) for e in ("slots", "schedules", "requests", "tallies")}
    assert found == {"slots": dt.date(2026, 11, 20), "schedules": dt.date(2026, 11, 1),
                     "requests": dt.date(2026, 12, 24), "tallies": dt.date(2026, 11, 1)}


def test_a_schedule_eight_months_ahead_is_loaded_whole(tiny_source):
    with_far_and_old(tiny_source)
    result = materialize()
    assert result.success
    assert ids("schedules") == [1001, 1002, 2001]
    assert ids("slots") == [5001, 5002, 5003, 5004, 5005, 5006, 5101, 5102, 5103]
    for entity in ("schedules", "slots", "requests", "tallies"):
        assert materialization(result, entity)["window"] == REACHED, entity
    slots = materialization(result, "slots")
    assert (slots["rows"], slots["table_rows"], slots["problems"]) == (9, 9, 0)


def test_a_run_with_its_own_window_replaces_only_that_window(tiny_source):
    with_far_and_old(tiny_source)
    assert materialize().success
    # as the change-log sensor asks: raw__slots and raw__schedules, one day
    day = {"config": {"start_date": "2026-11-02", "end_date": "2026-11-02"}}
    result = materialize({"ops": {"raw__slots": day, "raw__schedules": day}},
                         selection=[dg.AssetKey(["raw", "slots"]), dg.AssetKey(["raw", "schedules"])])
    assert result.success
    slots, schedules = materialization(result, "slots"), materialization(result, "schedules")
    assert (slots["window"], slots["rows"], slots["table_rows"]) == ("2026-11-02..2026-11-02", 2, 9)
    assert (schedules["window"], schedules["rows"], schedules["table_rows"]) == ("2026-11-02..2026-11-02", 2, 3)
    assert ids("slots")[-3:] == [5101, 5102, 5103]


def test_a_far_schedule_deleted_at_the_source_leaves_the_warehouse(tiny_source):
    with_far_and_old(tiny_source)
    assert materialize().success
    write_system(tiny_source)  # the tiny system again: 1002 and its slots are gone
    result = materialize()
    assert result.success
    assert ids("schedules") == [1001, 2001]
    assert ids("slots") == [5001, 5002, 5003, 5004, 5005, 5006]
    # the window reached the rows loaded before (a slot on 2027-06-30, a schedule from 2027-06-01)
    assert materialization(result, "slots")["window"] == REACHED
    assert materialization(result, "schedules")["window"] == "2026-08-04..2027-06-01"
    # and with nothing far left, back to the forward setting
    assert materialization(materialize(), "slots")["window"] == "2026-08-04..2027-05-01"


def test_the_api_reaches_as_far_as_the_directory(tiny_source, lb_env, monkeypatch):
    with_far_and_old(tiny_source)
    materialize_into(lb_env / "from_directory.duckdb")
    with Simulator(tiny_source, client_id="lb-test", client_secret="secret") as sim:
        monkeypatch.setenv("LB_API_URL", sim.url)
        monkeypatch.setenv("LB_CLIENT_ID", "lb-test")
        monkeypatch.setenv("LB_CLIENT_SECRET", "secret")
        result = materialize_into(lb_env / "from_api.duckdb")
    assert materialization(result, "slots")["window"] == REACHED
    assert ids("slots", lb_env / "from_api.duckdb")[-3:] == [5101, 5102, 5103]
    assert raw_tables(lb_env / "from_api.duckdb") == raw_tables(lb_env / "from_directory.duckdb")
