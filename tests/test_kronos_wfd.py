"""Kronos WFD deltas, day by day, through the simulator's write operations and the real pipeline.

Pay periods of 14 days from 2026-11-01: the first is 2026-11-01..2026-11-14. Every expected
row below is worked out by hand from the fixture and the changes made each day.
"""

from __future__ import annotations

import csv
import io

import dagster as dg
import duckdb
import pytest
import requests

from lb_pipelines.automation.pay_period_partitions import PAY_PERIODS
from lb_pipelines.integrations.registry import integration
from lb_pipelines.lightning_bolt.simulator import Simulator
from pipeline_helpers import metadata_of, run_pipeline, step_failures, write_config
from tiny_system import fresh, slot, write_system

PERIOD, NEXT_PERIOD = "2026-11-01", "2026-11-15"
SETTINGS = """
personnel_id_field: emp_id
pay_period: {anchor: 2026-11-01, length_days: 14}
valid_comments: [Scheduled, Call]
labor_category_delimiter: "|"
delivery: {type: outbox}
"""
MAPPING = """assignment_id,segment_type,work_rule_transfer,pay_code_edit,open_shift,business_structure,cost_center_transfer,labor_categories,comment
101,REQUIRED,,On Call,false,,,Anesthesia;Call,Call
102,REQUIRED,,,false,,,Anesthesia;OR,Scheduled
201,REQUIRED,,,false,,,Emergency,Scheduled
"""
HEADER = ["ACTION", "SLOT_ID", "PERSON_NUMBER", "SHIFT_DATE", "START", "END", "SEGMENT_TYPE", "WORK_RULE_TRANSFER",
          "PAY_CODE_EDIT", "OPEN_SHIFT", "BUSINESS_STRUCTURE", "COST_CENTER_TRANSFER", "LABOR_CATEGORIES", "COMMENT"]


def system():
    s = fresh()  # Ana 11 emp 100011, Ben 12 no emp_id, Cy 13 emp 100013 (Phoenix), 19 placeholder
    sch = s["schedules"][0]
    s["schedules"] = [
        dict(sch, id=1001, department_id=1, start_date="2026-11-01", end_date="2026-11-30", status="published"),
        dict(sch, id=2001, department_id=2, start_date="2026-11-01", end_date="2026-11-30", status="published"),
    ]
    s["slots"] = [
        slot(5001, 1001, "2026-11-02", 101, 11, "17:00", "07:00"),
        slot(5002, 1001, "2026-11-03", 102, 11, "07:00", "15:00"),
        slot(5003, 2001, "2026-11-04", 201, 13, "07:00", "07:00"),
        slot(5004, 1001, "2026-11-05", 102, None, "07:00", "15:00"),  # unfilled: a coverage gap
        slot(5005, 1001, "2026-11-06", 102, 12, "07:00", "15:00"),  # Ben: no emp_id, a problem
        slot(5006, 1001, "2026-11-20", 101, 11, "17:00", "07:00"),  # the next pay period
    ]
    return s


def row(action, slot_id, person, day, start, end, pay_code, labor, comment):
    return [action, str(slot_id), person, day, start, end, "REQUIRED", "", pay_code, "N", "", "", labor, comment]


ANA_CALL_5001 = ("5001", "100011", "2026-11-02", "2026-11-02T17:00", "2026-11-03T07:00", "On Call", "Anesthesia|Call", "Call")
ANA_OR_5002 = ("5002", "100011", "2026-11-03", "2026-11-03T07:00", "2026-11-03T15:00", "", "Anesthesia|OR", "Scheduled")
CY_ED_5003 = ("5003", "100013", "2026-11-04", "2026-11-04T07:00", "2026-11-05T07:00", "", "Emergency", "Scheduled")


class Day:
    """One day of the test: pin the clock, run the pipeline, read the new file."""

    def __init__(self, root, sim, instance, monkeypatch):
        self.root, self.sim, self.instance, self.env = root, sim, instance, monkeypatch
        token = requests.post(f"{sim.url}/oauth/token", data={
            "grant_type": "client_credentials", "client_id": "lb-test", "client_secret": "s3cret"}).json()
        self.auth = {"Authorization": f"Bearer {token['access_token']}"}

    def write(self, method, path, body=None):
        response = requests.request(method, f"{self.sim.url}{path}", json=body, headers=self.auth, timeout=10)
        assert response.status_code in (200, 201, 204), response.text
        return response

    def run(self, now, period=PERIOD):
        """What the integration's schedule runs: its own job (extract, its models, its file) for the period."""
        self.env.setenv("LB_NOW", now)
        self.instance.add_dynamic_partitions(PAY_PERIODS.name, [period])
        return run_pipeline(self.instance, partition_key=period, job=integration("kronos_wfd").job_name)

    def files(self):
        return sorted((self.root / "outbox" / "kronos_wfd").glob("kronos_wfd_*.csv"))

    def rows(self, path):
        rows = list(csv.reader(io.StringIO(path.read_text())))
        assert rows[0] == HEADER
        return rows[1:]


@pytest.fixture
def day(tmp_path, monkeypatch):
    for var, value in {
        "LB_WAREHOUSE": str(tmp_path / "warehouse.duckdb"), "LB_OUTBOX_DIR": str(tmp_path / "outbox"),
        "LB_CONFIG_DIR": str(tmp_path / "config"), "LB_BI_DIR": str(tmp_path / "bi"),
        "LB_CLIENT_ID": "lb-test", "LB_CLIENT_SECRET": "s3cret",
    }.items():
        monkeypatch.setenv(var, value)
    write_system(tmp_path / "source", system())
    write_config(tmp_path / "config", "kronos_wfd", SETTINGS, MAPPING)
    with Simulator(tmp_path / "source", client_id="lb-test", client_secret="s3cret") as sim:
        monkeypatch.setenv("LB_API_URL", sim.url)
        yield Day(tmp_path, sim, dg.DagsterInstance.ephemeral(), monkeypatch)


def test_deltas_day_by_day(day):
    # Day 1: the first file of the period is full (every row an ADD); the gap and Ben are not rows.
    first = day.run("2026-11-02T08:00:00-06:00")
    assert first.success, step_failures(first)
    [day1] = day.files()
    assert day1.name == "kronos_wfd_20261101_202611020800.csv"
    assert day.rows(day1) == [row("ADD", *ANA_CALL_5001), row("ADD", *ANA_OR_5002), row("ADD", *CY_ED_5003)]
    meta = metadata_of(first, ["kronos_wfd", "file"])
    assert (meta["full_file"], meta["ADD"], meta["problems"], meta["coverage_gaps"]) == (True, 3, 1, 1)

    # Day 2: add a slot, change a time, unassign a person, unpublish a schedule.
    day.write("POST", "/api/v1/slots", {"schedule_id": 1001, "date": "2026-11-07", "assignment_id": 101, "personnel_id": 11})
    day.write("POST", "/api/v1/slots/5002/move", {"end_time": "16:00"})
    day.write("POST", "/api/v1/slots/5001/unassign")
    day.write("POST", "/api/v1/schedules/2001/unpublish")
    second = day.run("2026-11-03T08:00:00-06:00")
    assert second.success, step_failures(second)
    day2 = day.files()[-1]
    assert day.rows(day2) == [
        row("DELETE", *ANA_CALL_5001),  # unassigned: the old row goes out as a DELETE
        row("DELETE", *CY_ED_5003),  # its schedule was unpublished
        row("UPDATE", "5002", "100011", "2026-11-03", "2026-11-03T07:00", "2026-11-03T16:00", "", "Anesthesia|OR", "Scheduled"),
        row("ADD", "5007", "100011", "2026-11-07", "2026-11-07T17:00", "2026-11-08T07:00", "On Call", "Anesthesia|Call", "Call"),
    ]
    meta = metadata_of(second, ["kronos_wfd", "file"])
    assert (meta["full_file"], meta["ADD"], meta["UPDATE"], meta["DELETE"]) == (False, 1, 1, 2)

    # Day 3: a change, but the delivery fails (the outbox path is a file): nothing advances.
    day.write("POST", "/api/v1/slots/5007/move", {"start_time": "18:00"})
    blocked = day.root / "blocked"
    blocked.write_text("not a folder")
    day.env.setenv("LB_OUTBOX_DIR", str(blocked / "outbox"))
    third = day.run("2026-11-04T08:00:00-06:00")
    assert not third.success
    assert any("could not write" in failure for failure in step_failures(third)), step_failures(third)
    day.env.setenv("LB_OUTBOX_DIR", str(day.root / "outbox"))

    # Day 4: another change. First a dry run (records what would be sent, advances nothing),
    # then the real delivery: the same rows, and day 3's change is carried along.
    day.write("POST", "/api/v1/slots/5004/assign", {"personnel_id": 11})
    day.env.setenv("LB_CONFIG_DIR", str(day.root / "config_dry_run"))
    write_config(day.root / "config_dry_run", "kronos_wfd", SETTINGS.replace("{type: outbox}", "{type: dry_run}"), MAPPING)
    dry = day.run("2026-11-05T08:00:00-06:00")
    assert dry.success, step_failures(dry)
    day.env.setenv("LB_CONFIG_DIR", str(day.root / "config"))
    fourth = day.run("2026-11-05T09:00:00-06:00")
    assert fourth.success, step_failures(fourth)
    day4 = day.files()[-1]
    expected_day4 = [
        row("UPDATE", "5007", "100011", "2026-11-07", "2026-11-07T18:00", "2026-11-08T07:00", "On Call", "Anesthesia|Call", "Call"),
        row("ADD", "5004", "100011", "2026-11-05", "2026-11-05T07:00", "2026-11-05T15:00", "", "Anesthesia|OR", "Scheduled"),
    ]
    assert day.rows(day4) == expected_day4
    [dry_file] = (day.root / "outbox" / "kronos_wfd" / "dry_run").glob("*.csv")
    assert day.rows(dry_file) == expected_day4  # the same state gives the same rows

    # Nothing changed since: a header-only file, so the receiving job sees the run. A second run
    # in the same minute gets its own name: it never replaces a delivered delta file.
    fifth = day.run("2026-11-05T10:00:00-06:00")
    assert fifth.success
    again = day.run("2026-11-05T10:00:00-06:00")
    assert again.success
    names = [f.name for f in day.files()]
    assert "kronos_wfd_20261101_202611051000.csv" in names and "kronos_wfd_20261101_202611051000_2.csv" in names
    assert day.rows(day.root / "outbox" / "kronos_wfd" / "kronos_wfd_20261101_202611051000.csv") == []
    assert day.rows(day.root / "outbox" / "kronos_wfd" / "kronos_wfd_20261101_202611051000_2.csv") == []
    assert day.rows(day4) == expected_day4  # the earlier file is still there, untouched

    with duckdb.connect(str(day.root / "warehouse.duckdb"), read_only=True) as conn:
        ledger = conn.execute("SELECT status, rows FROM delivery.ledger WHERE scope = ? ORDER BY delivered_at",
                              [PERIOD]).fetchall()
    assert ledger == [("delivered", 3), ("delivered", 4), ("failed", 1), ("dry_run", 2), ("delivered", 2),
                      ("delivered", 0), ("delivered", 0)]

    # A new pay period starts with a full file.
    sixth = day.run("2026-11-16T08:00:00-06:00", period=NEXT_PERIOD)
    assert sixth.success, step_failures(sixth)
    new_period = [f for f in day.files() if f.name.startswith("kronos_wfd_20261115_")]
    assert [day.rows(f) for f in new_period] == [[
        row("ADD", "5006", "100011", "2026-11-20", "2026-11-20T17:00", "2026-11-21T07:00", "On Call", "Anesthesia|Call", "Call"),
    ]]


def test_a_period_that_was_never_loaded_is_refused(day):
    day.env.setenv("LB_WINDOW_DAYS_BACK", "0")
    result = day.run("2026-11-02T08:00:00-06:00", period="2026-10-18")  # before the loaded window
    assert not result.success
    assert any("never loaded" in failure and "Refusing" in failure for failure in step_failures(result))
