"""The change-log sensor: relevant changes → one run with the right job, key and window;
irrelevant ones (draft, outside the window, unmapped) → none; the run it asks for delivers."""

from __future__ import annotations

import csv
import datetime as dt
import io

import dagster as dg
import pytest

from lb_pipelines.automation.change_log import Interest, Reference, matters
from lb_pipelines.lightning_bolt.source.resource import LightningBoltResource
from pipeline_helpers import run_pipeline, step_failures, write_config
from tiny_system import TS, fresh, slot, write_system

NOW = dt.datetime(2026, 11, 2, 12, tzinfo=dt.timezone(dt.timedelta(hours=-6)))  # window 11-01..12-02
EPIC = Interest("epic_on_call_finder", frozenset({101}), 1, 30, "custom1")


def change(id_, entity, entity_id, *, action="update", schedule_id=None, date=None, field=None, old=None, new=None):
    return {"id": id_, "changed_at": TS, "user": "scheduler.kim", "action": action, "entity": entity,
            "entity_id": entity_id, "schedule_id": schedule_id, "date": date, "field": field,
            "old_value": old, "new_value": new}


REF = Reference(
    slots={
        5002: {"id": 5002, "schedule_id": 1001, "date": "2026-11-02", "assignment_id": 101},
        5003: {"id": 5003, "schedule_id": 1001, "date": "2026-11-02", "assignment_id": 102},
        5005: {"id": 5005, "schedule_id": 2001, "date": "2026-11-01", "assignment_id": 101},
        5010: {"id": 5010, "schedule_id": 1002, "date": "2026-12-20", "assignment_id": 101},
    },
    schedules={
        1001: {"id": 1001, "status": "published", "department_id": 1, "start_date": "2026-11-01", "end_date": "2026-11-30"},
        1002: {"id": 1002, "status": "published", "department_id": 1, "start_date": "2026-12-01", "end_date": "2026-12-31"},
        2001: {"id": 2001, "status": "draft", "department_id": 2, "start_date": "2026-11-01", "end_date": "2026-11-30"},
        3001: {"id": 3001, "status": "published", "department_id": 1, "start_date": "2027-02-01", "end_date": "2027-02-28"},
    },
    department_time_zone={1: "America/Chicago", 2: "America/Phoenix"},
    assignment_department={101: 1, 102: 1, 201: 2},
)


@pytest.mark.parametrize(
    "c, expected",
    [
        (change(4, "slot", 5002, schedule_id=1001, date="2026-11-02", field="personnel_id", old="19", new="11"), True),
        (change(5, "slot", 5005, schedule_id=2001, date="2026-11-01", field="personnel_id"), False),  # draft
        (change(6, "slot", 5010, schedule_id=1002, date="2026-12-20", field="personnel_id"), False),  # outside
        (change(7, "slot", 5003, schedule_id=1001, date="2026-11-02", field="personnel_id"), False),  # unmapped
        # moved from an unmapped to a mapped assignment
        (change(8, "slot", 5003, schedule_id=1001, date="2026-11-02", field="assignment_id", old="102", new="101"), True),
        # moved into the window from outside it
        (change(9, "slot", 5010, schedule_id=1002, date="2026-12-20", field="date", old="2026-12-20", new="2026-12-01"), True),
        # a deleted slot's assignment is unknown: safe side
        (change(10, "slot", 5999, action="delete", schedule_id=1001, date="2026-11-03"), True),
        (change(11, "schedule", 1002, action="publish", field="status", old="draft", new="published"), True),
        (change(12, "schedule", 3001, action="publish", field="status"), False),  # outside the window
        (change(13, "personnel", 11, field="pager", old="4011", new="4012"), True),
        (change(14, "personnel", 11, field="email"), False),  # not in the Epic file
        (change(15, "request", 7001, field="status"), False),
    ],
)
def test_which_changes_matter(c, expected):
    assert matters(c, REF, EPIC, NOW) is expected


SETTINGS = "personnel_id_field: custom1\nwindow: {days_back: 1, days_forward: 30}\n"
MAPPING = "assignment_id,epic_team_id,team_name,role,note_prefix,team_comment,call_order\n101,OCF-OB-01,OB,Attending,,,1\n"


def system():
    s = fresh()
    s["personnel"][0]["custom1"] = "SER011"
    s["schedules"].append(dict(s["schedules"][0], id=1002, start_date="2026-12-01", end_date="2026-12-31"))
    slots = {r["id"]: r for r in s["slots"]}
    slots[5002].update(personnel_id=11, updated_at="2026-11-02T11:00:00-06:00")  # the change of id 4
    s["slots"] = list(slots.values()) + [slot(5010, 1002, "2026-12-20", 101, 11, "17:00", "07:00")]
    s["change_log"] += [
        change(4, "slot", 5002, schedule_id=1001, date="2026-11-02", field="personnel_id", old="19", new="11"),
        change(5, "slot", 5005, schedule_id=2001, date="2026-11-01", field="notes"),  # draft schedule
        change(6, "slot", 5010, schedule_id=1002, date="2026-12-20", field="notes"),  # outside the window
        change(7, "slot", 5003, schedule_id=1001, date="2026-11-02", field="notes"),  # OR Day: unmapped
    ]
    return s


@pytest.fixture
def source(tiny_source, lb_env):
    write_system(tiny_source, system())
    write_config(lb_env / "config", "epic_on_call_finder", SETTINGS, MAPPING)
    return tiny_source


class Tick:
    """What the daemon gets from one evaluation: validated like the daemon does it."""

    def __init__(self, data):
        self.run_requests = data.run_requests or []
        self.cursor = data.cursor
        self.skip_reason = data.skip_message


def evaluate(cursor, instance=None):
    from lb_pipelines.definitions import build_definitions

    sensor = build_definitions().get_sensor_def("change_log_sensor")
    context = dg.build_sensor_context(
        cursor=cursor, instance=instance or dg.DagsterInstance.ephemeral(),
        resources={"lightning_bolt": LightningBoltResource()},
    )
    return Tick(sensor.evaluate_tick(context))


def run_as_the_daemon_does(defs, request, instance):
    """The requested run with exactly its selection: its assets and its checks (not dbt's tests)."""
    job = defs.resolve_job_def(request.job_name).get_subset(
        asset_selection=set(request.asset_selection), asset_check_selection=set(request.asset_check_keys))
    return job.execute_in_process(instance=instance, run_config=request.run_config, tags=request.tags,
                                  raise_on_error=False)


def test_relevant_change_requests_one_run(source):
    result = evaluate("3")
    [request] = result.run_requests
    assert request.job_name == "change_log_deliveries"
    assert request.run_key == "changes:4-4:epic_on_call_finder"
    window = {"start_date": "2026-11-02", "end_date": "2026-11-02"}  # only the changed date is extracted
    assert request.run_config == {"ops": {"raw__slots": {"config": window}, "raw__schedules": {"config": window}}}
    assert result.cursor == "7"  # past every change looked at
    selected = {k.to_user_string() for k in request.asset_selection}
    # Epic's output, what it reads, and the BI copy; no other integration, no model Epic does not read
    assert {"epic_on_call_finder/file", "raw/slots", "marts/fct_shifts"} <= selected
    assert not {"edw/file", "tigerconnect/pushed", "marts/fct_duty_hours", "marts/fct_coverage"} & selected
    assert "bi/published_warehouse" not in selected  # the cadence runs republish it
    # the integration's own checks, not dbt's tests (the model step runs those itself)
    checks = {c.to_user_string() for c in request.asset_check_keys}
    assert "epic_on_call_finder/file:no_problem_rows" in checks
    assert not any(":unique_" in c or ":not_null_" in c for c in checks), checks


def test_one_change_for_two_integrations_is_one_run_for_both(source, lb_env):
    write_config(lb_env / "config", "perfectserve", "window: {days_back: 0, days_forward: 30}\n",
                 "assignment_id,team_id,role,priority\n101,OB-TEAM,Attending,1\n")
    [request] = evaluate("3").run_requests
    assert request.run_key == "changes:4-4:epic_on_call_finder,perfectserve"
    assert request.tags["lb/integrations"] == "epic_on_call_finder,perfectserve"
    selected = {k.to_user_string() for k in request.asset_selection}
    assert {"epic_on_call_finder/file", "perfectserve/pushed"} <= selected


def test_changes_wait_while_a_change_run_is_queued_then_go_in_one_run(source):
    """A burst: the second tick finds the first run still queued, holds the cursor, and the
    tick after it started hands every change since in one run."""
    instance = dg.DagsterInstance.ephemeral()
    first = evaluate("3", instance)
    [request] = first.run_requests
    run = instance.create_run_for_job(
        job_def=__import__("lb_pipelines.definitions", fromlist=["defs"]).defs.resolve_job_def(request.job_name),
        run_config=request.run_config, tags=request.tags, status=dg.DagsterRunStatus.NOT_STARTED,  # queued, not yet launched
        asset_selection=frozenset(request.asset_selection),
    )
    held = evaluate("3", instance)
    assert held.run_requests == [] and held.cursor == "3" and run.run_id in held.skip_reason  # not moved
    instance.report_run_canceled(run)  # no longer waiting (started, finished or canceled)
    [again] = evaluate("3", instance).run_requests
    assert again.run_key == request.run_key


def test_irrelevant_changes_request_nothing_but_move_the_cursor(source):
    result = evaluate("4")
    assert result.run_requests == []
    assert result.cursor == "7"
    assert "none relevant" in result.skip_reason


def test_the_same_changes_give_the_same_run_key_and_nothing_after_them(source):
    assert [r.run_key for r in evaluate("3").run_requests] == [r.run_key for r in evaluate("3").run_requests]
    after = evaluate("7")
    assert after.run_requests == [] and "no changes after id 7" in after.skip_reason


def test_first_tick_starts_at_the_end_of_the_change_log(source):
    result = evaluate(None)
    assert result.run_requests == [] and result.cursor == "7"


def test_the_requested_run_delivers_the_change(source, lb_env, monkeypatch):
    instance = dg.DagsterInstance.ephemeral()
    system_before = system()
    system_before["slots"] = [dict(r, personnel_id=19) if r["id"] == 5002 else r for r in system_before["slots"]]
    write_system(source, system_before)
    assert run_pipeline(instance).success  # the warehouse as it stood before the change
    write_system(source, system())  # the change of id 4: slot 5002 from the placeholder to Ana
    [request] = evaluate("3", instance).run_requests
    from lb_pipelines.definitions import build_definitions

    result = run_as_the_daemon_does(build_definitions(), request, instance)
    assert result.success, step_failures(result)
    # the models came from the SQL dbt compiled at the full build (compiled_models.py), not the dbt CLI
    built = {m.asset_key.to_user_string(): m.metadata.get("built_by") for m in result.get_asset_materialization_events()
             for m in [m.event_specific_data.materialization]}
    assert built["marts/fct_shifts"].value == "compiled SQL replay (change run)"
    # only the changed dates' shifts were rebuilt: the reference data reloaded unchanged
    window = request.run_config["ops"]["raw__slots"]["config"]
    rebuilt = {m.asset_key.to_user_string(): m.metadata.get("rebuilt") for m in result.get_asset_materialization_events()
               for m in [m.event_specific_data.materialization]}
    assert rebuilt["marts/fct_shifts"].value == f"{window['start_date']}..{window['end_date']}"
    latest = sorted((lb_env / "outbox" / "epic_on_call_finder").glob("*.csv"))[-1]
    rows = list(csv.DictReader(io.StringIO(latest.read_text())))
    nov2 = [r for r in rows if r["START"] == "11/02/2026 17:00"]
    assert [(r["PROVIDER_ID"], r["PROVIDER_NAME"]) for r in nov2] == [("SER011", "Ana Reyes")]


def test_a_change_run_whose_rebuilt_models_fail_a_test_keeps_and_sends_nothing(source, lb_env):
    """A duplicated slot id among the changed dates: the replayed models fail dbt's unique test,
    the rebuild is rolled back, the run fails naming the test, and no Epic file goes out."""
    from lb_pipelines.definitions import build_definitions

    instance = dg.DagsterInstance.ephemeral()
    assert run_pipeline(instance).success  # the full build records the compiled SQL
    sent = sorted((lb_env / "outbox" / "epic_on_call_finder").glob("*.csv"))
    broken = system()
    broken["slots"].append(next(dict(r) for r in broken["slots"] if r["id"] == 5002))  # slot 5002 twice
    write_system(source, broken)
    [request] = evaluate("3", instance).run_requests
    result = run_as_the_daemon_does(build_definitions(), request, instance)
    assert not result.success
    [failure] = step_failures(result)
    assert "unique_stg_lightning_bolt__slots_slot_id" in failure and "nothing kept" in failure, failure
    assert sorted((lb_env / "outbox" / "epic_on_call_finder").glob("*.csv")) == sent


def test_a_replay_that_cannot_run_falls_back_to_dbt_and_still_delivers(source, lb_env):
    """A view the recorded SQL reads was dropped by hand: the replay is rolled back, dbt itself
    rebuilds the models, and the change still reaches the Epic file."""
    import duckdb

    from lb_pipelines import settings
    from lb_pipelines.definitions import build_definitions

    instance = dg.DagsterInstance.ephemeral()
    assert run_pipeline(instance).success
    with duckdb.connect(str(settings.warehouse_path())) as conn:
        conn.execute("DROP VIEW intermediate.int_slots__timed")
    [request] = evaluate("3", instance).run_requests
    result = run_as_the_daemon_does(build_definitions(), request, instance)
    assert result.success, step_failures(result)
    built = {m.event_specific_data.materialization.asset_key.to_user_string():
             m.event_specific_data.materialization.metadata.get("built_by")
             for m in result.get_asset_materialization_events()}
    assert built["marts/fct_shifts"] is None  # built by dbt, not replayed
    assert "epic_on_call_finder/file" in built  # and the run went on to deliver
    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM intermediate.int_slots__timed").fetchall()[0][0] > 0
