"""Operations a hospital can trust: each test is a finding of the operations review, reproduced.

The tiny system (tests/tiny_system.py) at LB_NOW 2026-11-02 12:00 CST: schedule 1001
(department 1, Chicago) is published with slots 5001 (11/01, OB call, Ana 11), 5002 (11/02,
OB call, the placeholder 19), 5003 (11/02, OR day, Ben 12, no custom1 and no emp_id) and 5004
(11/03, OR day, unfilled); schedule 2001 is a draft. Six slots in all.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from lb_pipelines import cli, settings
from pipeline_helpers import run_pipeline, step_failures, write_config
from tiny_system import write_system

BIN = Path(sys.executable).parent
EPIC_SETTINGS = """
personnel_id_field: custom1
window: {days_back: 1, days_forward: 30}
delivery: {type: outbox}
"""
EPIC_MAPPING = """assignment_id,epic_team_id,team_name,role,note_prefix,team_comment,call_order
101,OCF-OB-01,OB Anesthesia,Attending,,,1
102,OCF-OR-01,OR Day,Attending,,,1
"""
KRONOS_SETTINGS = """
personnel_id_field: emp_id
pay_period: {anchor: 2026-11-01, length_days: 14}
valid_comments: [Scheduled, Call]
delivery: {type: outbox}
"""
KRONOS_MAPPING = """assignment_id,segment_type,work_rule_transfer,pay_code_edit,open_shift,business_structure,cost_center_transfer,labor_categories,comment
101,REQUIRED,,On Call,false,,,Anesthesia;Call,Call
102,REQUIRED,,,false,,,Anesthesia;OR,Scheduled
"""


@pytest.fixture
def world(tiny_source: Path, lb_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The tiny system with Epic On-Call Finder, Kronos WFD and the EDW zip configured."""
    monkeypatch.setenv("LB_BI_DIR", str(lb_env / "bi"))
    config = lb_env / "config"
    write_config(config, "epic_on_call_finder", EPIC_SETTINGS, EPIC_MAPPING)
    write_config(config, "kronos_wfd", KRONOS_SETTINGS, KRONOS_MAPPING)
    write_config(config, "edw", "enabled: true\n")
    return lb_env


@pytest.fixture
def sigterm_restored():
    previous = signal.getsignal(signal.SIGTERM)
    yield
    signal.signal(signal.SIGTERM, previous)


def ledger(warehouse: Path) -> dict[str, str]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return dict(conn.execute("SELECT integration, status FROM delivery.ledger ORDER BY delivered_at").fetchall())


def last_run(root: Path) -> dict:
    return json.loads((root / "dagster_home" / "last_run.json").read_text())


# -- 1. A killed run blocks every later run --------------------------------------------------


def test_a_run_killed_mid_step_does_not_block_the_next(world: Path):
    env = dict(os.environ)
    log = (world / "killed.log").open("w")
    first = subprocess.Popen([str(BIN / "lb-pipelines"), "run"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        holder = None
        while time.monotonic() < deadline and first.poll() is None:
            if (world / "dagster_home" / "dagster.yaml").exists():
                with dg.DagsterInstance.get() as instance:
                    slots = instance.event_log_storage.get_concurrency_info("warehouse").claimed_slots
                    if slots:
                        holder = slots[0].run_id
                        break
            time.sleep(0.05)
        assert holder, "the first run never held the warehouse slot:\n" + (world / "killed.log").read_text()[-2000:]
        first.send_signal(signal.SIGKILL)  # kill -9 while a warehouse step runs
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
        log.close()
    with dg.DagsterInstance.get() as instance:
        # what the review found: the dead run still STARTED and holding the slot
        assert instance.get_run_by_id(holder).status == dg.DagsterRunStatus.STARTED
        assert [s.run_id for s in instance.event_log_storage.get_concurrency_info("warehouse").claimed_slots] == [holder]

    started = time.monotonic()
    second = subprocess.run([str(BIN / "lb-pipelines"), "run"], env=env, capture_output=True, text=True, timeout=400)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert time.monotonic() - started < 400
    assert f"run {holder} (full_refresh) marked failed" in second.stdout
    assert "is gone: it was killed or crashed" in second.stdout
    assert last_run(world)["status"] == "SUCCESS"
    with dg.DagsterInstance.get() as instance:
        assert instance.get_run_by_id(holder).status == dg.DagsterRunStatus.FAILURE
        assert instance.event_log_storage.get_concurrency_info("warehouse").claimed_slots == []
    assert ledger(settings.warehouse_path()) == {"epic_on_call_finder": "delivered", "edw": "delivered",
                                                 "kronos_wfd": "delivered"}


# -- 2. One integration's bad settings stop everything ----------------------------------------


def test_bad_settings_fail_only_that_integration(world: Path, capsys, sigterm_restored):
    (world / "config" / "epic_on_call_finder" / "settings.yaml").write_text(EPIC_SETTINGS + "pager_style: loud\n")
    assert cli.main(["run"]) == 1
    out, err = capsys.readouterr()

    summary = last_run(world)
    main, kronos = summary["runs"]
    assert (main["job"], main["status"]) == ("full_refresh", "FAILURE")
    assert [s["step"] for s in main["failed_steps"]] == ["epic_on_call_finder__file"]
    assert "settings.yaml: pager_style: unknown key" in main["failed_steps"][0]["message"]
    assert (kronos["job"], kronos["status"]) == ("pay_period_exports", "SUCCESS")
    assert "FAILED full_refresh / epic_on_call_finder__file: epic_on_call_finder: configuration refused" in err

    # the marts were built and published for BI; the other two integrations delivered
    with duckdb.connect(str(world / "bi" / "warehouse.duckdb"), read_only=True) as bi:
        assert bi.execute("SELECT count(*) FROM marts.fct_shifts").fetchall() == [(6,)]
    assert ledger(settings.warehouse_path()) == {"edw": "delivered", "kronos_wfd": "delivered"}
    assert not (world / "outbox" / "epic_on_call_finder").exists()

    # the refusal is visible on the integration's config asset: an ERROR check with the reason
    with dg.DagsterInstance.get() as instance:
        check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey(["config", "epic_on_call_finder"]), "settings_accepted")]
        )
        [execution] = check.values()
        evaluation = execution.event.dagster_event.event_specific_data
        assert (evaluation.passed, evaluation.severity) == (False, dg.AssetCheckSeverity.ERROR)
        assert "pager_style: unknown key" in evaluation.description


# -- 3. The CLI crashes instead of reporting a failed run -------------------------------------


def test_a_failed_load_ends_with_the_summary_and_a_non_zero_exit(world: Path, capsys, sigterm_restored):
    home = world / "dagster_home"
    (home / "last_run.json").write_text(json.dumps({"status": "SUCCESS", "run_ids": ["an-earlier-run"]}))
    with (world / "source" / "slots.jsonl").open("a") as slots:
        slots.write('{"id": 5099, "schedule_id": 1001, "date": "2026-11-04", "assignment_id": "one-oh-one"}\n')

    assert cli.main(["run"]) == 1
    out, err = capsys.readouterr()
    assert "ConnectionException" not in out + err and "Traceback" not in out + err
    assert "full_refresh         run " in out and "all runs             FAILURE" in out
    failed = [line for line in err.splitlines() if line.startswith("  FAILED ")]
    assert len(failed) == 1 and failed[0].startswith("  FAILED full_refresh / raw__slots: slots not loaded, nothing replaced")
    assert "slots.jsonl line 7" in err  # the six good lines, then the bad one

    summary = last_run(world)
    assert summary["status"] == "FAILURE" and "an-earlier-run" not in summary["run_ids"]
    main, kronos = summary["runs"]
    assert [s["step"] for s in main["failed_steps"]] == ["raw__slots"]
    assert "assignment_id" in main["failed_steps"][0]["message"]
    assert (kronos["status"], kronos["note"]) == ("NOT RUN", "the warehouse was not built (raw__slots failed)")
    assert summary["tables"]["raw.slots"] == 0  # nothing replaced: the first load never happened


# -- 4. The BI copy goes stale under automation -----------------------------------------------


def test_a_scheduled_export_run_republishes_the_bi_copy(world: Path):
    from lb_pipelines.definitions import build_definitions

    defs = build_definitions()
    with dg.DagsterInstance.get() as instance:
        assert run_pipeline(instance).success

        def person_on_5004():
            with duckdb.connect(str(world / "bi" / "warehouse.duckdb"), read_only=True) as bi:
                return bi.execute("SELECT personnel_id FROM marts.fct_shifts WHERE slot_id = 5004").fetchall()

        assert person_on_5004() == [(None,)]
        slots = world / "source" / "slots.jsonl"
        records = [json.loads(line) for line in slots.read_text().splitlines()]
        for record in records:
            if record["id"] == 5004:
                record["personnel_id"] = 11  # the open OR day is filled by Ana
        slots.write_text("".join(json.dumps(r) + "\n" for r in records))

        schedule = defs.resolve_schedule_def("epic_on_call_finder_on_cadence")
        tick = schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
        [request] = tick.run_requests
        job = defs.resolve_job_def(schedule.job_name)
        result = job.execute_in_process(
            instance=instance, run_config=request.run_config, tags=request.tags, raise_on_error=False
        )
        assert result.success, step_failures(result)
        assert person_on_5004() == [(11,)]
        published = [
            e.asset_key for e in result.all_events if e.is_step_materialization
        ]
        assert dg.AssetKey(["bi", "published_warehouse"]) in published


# -- 5. `make dev` delivers --------------------------------------------------------------------


def test_schedules_and_sensors_are_stopped_unless_automation_is_on(lb_env, monkeypatch):
    from lb_pipelines.definitions import build_definitions

    write_config(lb_env / "config", "edw", "enabled: true\n")
    monkeypatch.delenv("LB_AUTOMATION", raising=False)
    monkeypatch.delenv("LB_SCHEDULE_TIMEZONE", raising=False)
    defs = build_definitions()
    stopped = {s.name: s.default_status for s in [*defs.schedules, *defs.sensors]}
    assert stopped["edw_on_cadence"] == dg.DefaultScheduleStatus.STOPPED
    assert {stopped[n] for n in ("change_log_sensor", "alert_on_run_failure", "alert_on_run_problems")} == {
        dg.DefaultSensorStatus.STOPPED
    }
    assert defs.resolve_schedule_def("edw_on_cadence").execution_timezone == "America/Chicago"

    monkeypatch.setenv("LB_AUTOMATION", "on")
    monkeypatch.setenv("LB_SCHEDULE_TIMEZONE", "America/Phoenix")
    defs = build_definitions()
    assert defs.resolve_schedule_def("edw_on_cadence").default_status == dg.DefaultScheduleStatus.RUNNING
    assert defs.resolve_sensor_def("change_log_sensor").default_status == dg.DefaultSensorStatus.RUNNING
    assert defs.resolve_schedule_def("edw_on_cadence").execution_timezone == "America/Phoenix"

    monkeypatch.setenv("LB_AUTOMATION", "sometimes")
    with pytest.raises(ValueError, match="LB_AUTOMATION='sometimes' is neither on nor off"):
        settings.automation_on()


def test_the_dev_entry_point_loads_without_the_venv_on_path_and_automation_off(lb_env, monkeypatch):
    import requests
    from test_webserver import free_port

    monkeypatch.delenv("LB_AUTOMATION", raising=False)
    env = {k: v for k, v in os.environ.items() if k != "LB_CONFIG_DIR"}  # the bundled sample configuration
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"  # no .venv/bin: dbt must be found beside the Python
    port = free_port()
    log = (lb_env / "dev.log").open("w")
    proc = subprocess.Popen(
        [str(BIN / "lb-pipelines"), "dev", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    query = """{ repositoriesOrError { ... on RepositoryConnection { nodes {
        schedules { name scheduleState { status } } sensors { name sensorState { status } } } } }
        workspaceOrError { ... on Workspace { locationEntries { locationOrLoadError { __typename
        ... on PythonError { message } } } } } }"""
    try:
        deadline, data = time.monotonic() + 150, None
        while time.monotonic() < deadline:
            try:
                answer = requests.post(f"http://127.0.0.1:{port}/graphql", json={"query": query}, timeout=10).json()
                states = [e["locationOrLoadError"] for e in answer["data"]["workspaceOrError"]["locationEntries"]]
                if states and all(s for s in states):
                    data = answer["data"]
                    break
            except (requests.ConnectionError, KeyError, TypeError):
                pass
            time.sleep(0.5)
        assert data, "the UI did not answer:\n" + (lb_env / "dev.log").read_text()[-3000:]
        [state] = [e["locationOrLoadError"] for e in data["workspaceOrError"]["locationEntries"]]
        assert state["__typename"] == "RepositoryLocation", state
        [repository] = data["repositoriesOrError"]["nodes"]
        statuses = {s["name"]: s["scheduleState"]["status"] for s in repository["schedules"]}
        statuses |= {s["name"]: s["sensorState"]["status"] for s in repository["sensors"]}
        assert statuses["epic_on_call_finder_on_cadence"] == "STOPPED"
        assert statuses["change_log_sensor"] == "STOPPED"
        assert set(statuses.values()) == {"STOPPED"}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
