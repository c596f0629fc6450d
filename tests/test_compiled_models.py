"""The change path's replay of the SQL dbt compiled: when it may replay, in which order, and that
a failing test keeps nothing. Small hand-made records; the replay in a real change run is in
tests/test_change_log_sensor.py."""

from __future__ import annotations

import datetime as dt
import json

import duckdb
import pytest

from lb_pipelines.lightning_bolt.source.contract import Window
from lb_pipelines.lightning_bolt.source.directory import DirectorySource
from lb_pipelines.warehouse import compiled_models as cm
from lb_pipelines.warehouse.raw_load import load_entity
from tiny_system import fresh, write_system
from warehouse_helpers import load_system, run_dbt


def node(sql, materialized="table", relation=None, depends_on=(), resource_type="model", **config):
    return {"resource_type": resource_type, "compiled": True, "compiled_code": sql, "relation_name": relation,
            "config": {"materialized": materialized, **config}, "depends_on": {"nodes": list(depends_on)}}


RAW = "model.p.raw_counts"  # a view over raw.slots
DAILY = "model.p.daily"  # a table over the view
EXPORT = "model.p.export"  # a table over the table
UNIQUE = "test.p.unique_daily_day"
POSITIVE = "test.p.positive_export_n"
NODES = {
    RAW: node("select day, n from raw.slots", "view", '"wh"."main"."raw_counts"'),
    DAILY: node('select day, sum(n) as n from "wh"."main"."raw_counts" group by day', "table",
                '"wh"."main"."daily"', [RAW]),
    EXPORT: node('select day, n from "wh"."main"."daily" where n > 0', "table", '"wh"."main"."export"', [DAILY]),
    UNIQUE: node('select day from "wh"."main"."daily" group by day having count(*) > 1', "test",
                 resource_type="test", depends_on=[DAILY], severity="ERROR", fail_calc="count(*)",
                 warn_if="!= 0", error_if="!= 0"),
    POSITIVE: node('select * from "wh"."main"."export" where n > 100', "test", resource_type="test",
                   depends_on=[EXPORT], severity="WARN", fail_calc="count(*)", warn_if="!= 0", error_if="!= 0"),
}


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA raw; CREATE TABLE raw.slots (day INT, n INT); INSERT INTO raw.slots VALUES (1, 2), (1, 3), (2, 4)")
        conn.execute(f"CREATE VIEW main.raw_counts AS {NODES[RAW]['compiled_code']}")
        conn.execute(f"CREATE TABLE main.daily AS {NODES[DAILY]['compiled_code']}")
        conn.execute(f"CREATE TABLE main.export AS {NODES[EXPORT]['compiled_code']}")
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"nodes": NODES}))
    assert cm.record_compiled(manifest, str(path), "stamp-1") == 5
    return path


TESTS = {UNIQUE: [DAILY], POSITIVE: [EXPORT]}


def test_a_recorded_selection_replays_in_dependency_order(warehouse):
    plan, why_not = cm.replay_for(str(warehouse), "stamp-1", [EXPORT, RAW, DAILY], TESTS)
    assert why_not == ""
    assert [uid for uid, _ in plan.models] == [RAW, DAILY, EXPORT]  # parents first, whatever the order asked
    assert [uid for uid, _ in plan.tests] == [POSITIVE, UNIQUE]


@pytest.mark.parametrize("stamp, models, tests, reason", [
    ("stamp-2", [DAILY], {}, "the dbt project changed since the recorded build"),
    ("stamp-1", [DAILY, "model.p.new"], {}, "1 selected nodes not built on this warehouse yet"),
])
def test_what_goes_to_dbt_itself(warehouse, stamp, models, tests, reason):
    plan, why_not = cm.replay_for(str(warehouse), stamp, models, tests)
    assert plan is None and why_not.startswith(reason)


def test_nothing_recorded_or_an_incremental_model_goes_to_dbt_itself(warehouse, tmp_path):
    assert cm.replay_for(str(tmp_path / "other.duckdb"), "stamp-1", [DAILY], {})[0] is None
    manifest = tmp_path / "more.json"
    manifest.write_text(json.dumps({"nodes": {"model.p.inc": node("select 1", "incremental", '"wh"."main"."inc"')}}))
    cm.record_compiled(manifest, str(warehouse), "stamp-1")  # merged: the same project
    plan, why_not = cm.replay_for(str(warehouse), "stamp-1", [DAILY, "model.p.inc"], {})
    assert plan is None and "incremental" in why_not
    assert cm.replay_for(str(warehouse), "stamp-1", [DAILY], {})[0] is not None  # the rest was kept


def test_a_test_reading_a_model_not_rebuilt_is_left_out_as_dbt_cautious_does(warehouse):
    plan, _ = cm.replay_for(str(warehouse), "stamp-1", [DAILY], TESTS)
    assert [uid for uid, _ in plan.tests] == [UNIQUE]  # POSITIVE reads export, not rebuilt here


def test_a_record_of_another_project_is_replaced_not_merged(warehouse, tmp_path):
    manifest = tmp_path / "new.json"
    manifest.write_text(json.dumps({"nodes": {DAILY: NODES[DAILY]}}))
    assert cm.record_compiled(manifest, str(warehouse), "stamp-2") == 1
    assert cm.replay_for(str(warehouse), "stamp-2", [EXPORT], {})[0] is None


def test_replay_rebuilds_the_tables_from_raw_and_runs_the_tests(warehouse):
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("INSERT INTO raw.slots VALUES (2, 200)")  # the change
        plan, _ = cm.replay_for(str(warehouse), "stamp-1", [RAW, DAILY, EXPORT], TESTS)
        outcomes = cm.replay(conn, plan)
        assert conn.execute("SELECT day, n FROM main.export ORDER BY day").fetchall() == [(1, 5), (2, 204)]
    by_id = {o.unique_id: o for o in outcomes}
    assert (by_id[UNIQUE].failures, by_id[UNIQUE].should_error) == (0, False)
    # severity warn: day 2's 204 > 100 warns, never fails
    assert (by_id[POSITIVE].failures, by_id[POSITIVE].should_warn, by_id[POSITIVE].should_error) == (1, True, False)


def test_a_failing_error_test_keeps_nothing(warehouse, tmp_path):
    manifest = tmp_path / "bad.json"
    bad = dict(NODES[DAILY], compiled_code='select day, n from "wh"."main"."raw_counts"')  # day 1 twice
    manifest.write_text(json.dumps({"nodes": {DAILY: bad}}))
    cm.record_compiled(manifest, str(warehouse), "stamp-1")
    with duckdb.connect(str(warehouse)) as conn:
        plan, _ = cm.replay_for(str(warehouse), "stamp-1", [RAW, DAILY], TESTS)
        with pytest.raises(cm.ReplayTestFailed, match="unique_daily_day"):
            cm.replay(conn, plan)
        assert conn.execute("SELECT day, n FROM main.daily ORDER BY day").fetchall() == [(1, 5), (2, 4)]  # as before


# --- A table rebuilt by date: fct_shifts of the real project on the hand-made system ---------

SHIFTS = "model.lb_pipelines.fct_shifts"
NOV_1, NOV_2 = dt.date(2026, 11, 1), dt.date(2026, 11, 2)


@pytest.fixture
def built(lb_env, tmp_path):
    """The tiny system loaded and built by dbt, its SQL recorded and fct_shifts' build noted, as
    the pipeline's dbt step leaves them."""
    warehouse = load_system(tmp_path / "source", fresh(), tmp_path / "warehouse.duckdb")
    run_dbt(warehouse, "run", "--select", "+fct_shifts")
    cm.record_compiled(tmp_path / "dbt_target" / "manifest.json", str(warehouse), "stamp-1")
    nodes = json.loads((tmp_path / "dbt_target" / "manifest.json").read_text())["nodes"]
    upstream = {SHIFTS}
    todo = [SHIFTS]
    while todo:
        for parent in nodes[todo.pop()]["depends_on"]["nodes"]:
            if parent.startswith("model.") and parent not in upstream:
                upstream.add(parent)
                todo.append(parent)
    with duckdb.connect(str(warehouse)) as conn:
        cm.note_builds(conn, [SHIFTS], "stamp-1", cm.last_load_id(conn))
    return warehouse, sorted(upstream)


def _load(warehouse, system, entity, window=None):
    source = DirectorySource(write_system(warehouse.parent / "source", system))
    with duckdb.connect(str(warehouse)) as conn:
        load_entity(conn, source, entity, window=window)
        return conn.execute("SELECT changed FROM raw.load_log ORDER BY load_id DESC LIMIT 1").fetchall()[0][0]


def _replay(warehouse, models):
    plan, why_not = cm.replay_for(str(warehouse), "stamp-1", models, {})
    assert why_not == ""
    with duckdb.connect(str(warehouse)) as conn:
        cm.replay(conn, plan)
        relation = plan.models[-1][1]["relation_name"]
        full = f"SELECT * FROM ({plan.models[-1][1]['compiled_code']})"
        # the oracle: the same SQL over the whole of raw, as dbt itself would build it
        differ = conn.execute(f"SELECT count(*) FROM ((SELECT * FROM {relation} EXCEPT ALL {full}) "
                              f"UNION ALL ({full} EXCEPT ALL SELECT * FROM {relation}))").fetchall()[0][0]
        people = dict(conn.execute(f"SELECT slot_id, personnel_id FROM {relation}").fetchall())
    return plan.rebuilt[SHIFTS], differ, people


def test_only_the_dates_loaded_since_the_last_build_are_rebuilt(built):
    warehouse, models = built
    system = fresh()
    system["slots"][2]["personnel_id"] = 11  # slot 5003, 2 Nov: Ben → Ana
    system["slots"][0]["personnel_id"] = 12  # slot 5001, 1 Nov: changed in the source, not loaded yet
    assert _load(warehouse, system, "slots", Window(NOV_2, NOV_2)) is True
    for entity in ("departments", "assignments", "personnel", "schedules"):  # as a change run reloads them
        assert _load(warehouse, system, entity) is False  # reloaded, nothing changed
    rebuilt, differ, people = _replay(warehouse, models)
    assert (rebuilt, differ) == ("2026-11-02..2026-11-02", 0)
    assert (people[5003], people[5001]) == (11, 11)  # 1 Nov is as loaded: not yet re-read

    # another job loads 1 Nov without building: the next replay takes it in
    _load(warehouse, system, "slots", Window(NOV_1, NOV_1))
    rebuilt, differ, people = _replay(warehouse, models)
    assert (rebuilt, differ, people[5001]) == ("2026-11-01..2026-11-01", 0, 12)

    rebuilt, differ, _ = _replay(warehouse, models)
    assert (rebuilt, differ) == ("no dates loaded since its last build", 0)


@pytest.mark.parametrize("entity, change", [
    ("personnel", lambda s: s["personnel"][1].update(is_placeholder=True)),  # Ben: fct_shifts.is_placeholder
    ("schedules", lambda s: s["schedules"][1].update(status="published")),  # every slot of it
    ("slots", lambda s: None),  # the whole source reloaded, no window
])
def test_a_change_it_cannot_place_by_date_rebuilds_it_in_full(built, entity, change):
    warehouse, models = built
    system = fresh()
    change(system)
    _load(warehouse, system, entity)
    rebuilt, differ, _ = _replay(warehouse, models)
    assert (rebuilt, differ) == ("in full", 0)


def test_no_build_noted_for_this_project_rebuilds_it_in_full(built):
    warehouse, models = built
    with duckdb.connect(str(warehouse)) as conn:
        cm.note_builds(conn, [SHIFTS], None)  # what the dbt step does before dbt runs
    _load(warehouse, fresh(), "slots", Window(NOV_2, NOV_2))
    assert _replay(warehouse, models)[:2] == ("in full", 0)
    with duckdb.connect(str(warehouse)) as conn:
        cm.note_builds(conn, [SHIFTS], "stamp-0", 0)  # built by another version of the project
    assert _replay(warehouse, models)[:2] == ("in full", 0)
