"""Problems are history; what is open now is what the latest check found; `lb-pipelines status`.

One hand-made system, Epic On-Call Finder on, five runs of the real pipeline. By hand
(LB_NOW 2026-11-02, window 2026-11-01 .. 2026-12-02, mapping 101 -> OCF-OB-01, 102 -> OCF-OR-01):

- slot 5001 (Ana, OB call) and 5002 (the placeholder, OB call) go out: 2 rows;
- slot 5003 (Ben, OR day, 11/02 07:00) is skipped: Ben has no custom1 (person_without_vendor_id);
- slot 5004 is unfilled (a coverage gap, not a problem); 5005, 5006 are assignment 201, unmapped;
- slot 5007 names assignment 888, which Lightning Bolt does not have: one raw load problem;
- mapping.csv line 4 names assignment 999: a bad_mapping_row of the config check.

Runs 1-3 (12:00, 12:10, 12:20) find the same two problems; before run 4 Ben gets SER012 (3 rows
go out, the slot problem closes); before run 5 line 4 leaves the mapping (the config problem
closes). Runs 3-5 share one clock reading (12:20), as `make run` on the sample does: the latest
check is the last recorded, not the one with the latest time. The live warehouse is `lb.duckdb`:
the BI copy is always `warehouse.duckdb`, and its views must read there.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from lb_pipelines.cli import main
from lb_pipelines.delivery.ledger import Problem, deliver_and_record, ensure_delivery_tables, record_problems
from lb_pipelines.delivery.targets import DeliveryError, OutboxTarget
from lb_pipelines.integrations.registry import integration
from lb_pipelines.operations.status import status_report
from pipeline_helpers import run_pipeline, step_failures, write_config
from tiny_system import fresh, slot, write_system

OCF = "epic_on_call_finder"
SETTINGS = """
enabled: true
personnel_id_field: custom1
window: {days_back: 1, days_forward: 30}
delivery: {type: outbox}
"""
HEADER = "assignment_id,epic_team_id,team_name,role,note_prefix,team_comment,call_order\n"
GOOD_LINES = "101,OCF-OB-01,OB Anesthesia,Attending,,,1\n102,OCF-OR-01,OR Day,Attending,,,1\n"
BAD_LINE = "999,OCF-XX-01,Nobody,Attending,,,1\n"  # line 4

SLOT_RECORD = "slot 5003 (OCF-OR-01 11/02/2026 07:00)"
MAPPING_RECORD = "mapping.csv line 4"
CHICAGO = dt.timezone(dt.timedelta(hours=-6))
AT_1200 = dt.datetime(2026, 11, 2, 12, 0, tzinfo=CHICAGO)
AT_1220 = dt.datetime(2026, 11, 2, 12, 20, tzinfo=CHICAGO)


def key(*parts: str) -> str:
    """The problem key as specified: md5 of integration|scope|kind|record|field."""
    return hashlib.md5("|".join(parts).encode()).hexdigest()


SLOT_KEY = key(OCF, "full", "person_without_vendor_id", SLOT_RECORD, "custom1")
MAPPING_KEY = key(OCF, "config", "bad_mapping_row", MAPPING_RECORD, "assignment_id")


def system(ben_epic_id: str | None = None):
    s = fresh()
    s["personnel"][1]["custom1"] = ben_epic_id
    s["slots"].append(slot(5007, 1001, "2026-11-20", 888, None, "07:00", "15:00"))
    return s


@dataclass
class Scenario:
    root: Path
    warehouse: Path  # the live one, after run 5
    after_three: Path  # copies of the live warehouse after run 3 and after run 4
    after_fix: Path
    env: dict[str, str]


OPEN_SQL = """SELECT integration, scope, problem_key, kind, record, field, first_seen_at, last_seen_at, times_seen
              FROM marts.fct_open_problems ORDER BY scope"""


def query(database: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Scenario:
    root = tmp_path_factory.mktemp("open_problems")
    env = {
        "LB_SOURCE_DIR": str(root / "source"), "LB_WAREHOUSE": str(root / "lb.duckdb"),
        "LB_OUTBOX_DIR": str(root / "outbox"), "LB_CONFIG_DIR": str(root / "config"),
        "LB_BI_DIR": str(root / "bi"), "DAGSTER_HOME": str(root / "dagster_home"),
    }
    (root / "dagster_home").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for var, value in env.items():
            mp.setenv(var, value)
        for var in ("LB_API_URL", "LB_WINDOW_DAYS_BACK", "LB_WINDOW_DAYS_FORWARD"):
            mp.delenv(var, raising=False)
        write_system(root / "source", system())
        write_config(root / "config", OCF, SETTINGS, HEADER + GOOD_LINES + BAD_LINE)

        def run(now: str, job: str = integration(OCF).job_name):
            """The first run builds everything (marts.fct_open_problems is a view over the ledger);
            the others are the integration's own job, as its schedule runs it."""
            mp.setenv("LB_NOW", now)
            result = run_pipeline(job=job)
            assert result.success, step_failures(result)

        assert not (root / "lb.duckdb").exists()  # the first run is a first-ever run
        run("2026-11-02T12:00:00-06:00", job="full_refresh")
        for now in ("2026-11-02T12:10:00-06:00", "2026-11-02T12:20:00-06:00"):
            run(now)
        shutil.copyfile(root / "lb.duckdb", root / "after_three.duckdb")
        write_system(root / "source", system(ben_epic_id="SER012"))
        run("2026-11-02T12:20:00-06:00")
        shutil.copyfile(root / "lb.duckdb", root / "after_fix.duckdb")
        write_config(root / "config", OCF, SETTINGS, HEADER + GOOD_LINES)
        run("2026-11-02T12:20:00-06:00")
    return Scenario(root, root / "lb.duckdb", root / "after_three.duckdb", root / "after_fix.duckdb",
                    env | {"LB_NOW": "2026-11-02T12:20:00-06:00"})


# ---------------------------------------------------------------------------------------------
# The same problems, three runs


def test_three_runs_keep_three_rows_of_history_and_one_open_problem_each(scenario):
    history = query(scenario.after_three, """SELECT problem_key, scope, kind, record, field, count(*)
                                             FROM delivery.problems GROUP BY ALL ORDER BY scope""")
    assert history == [
        (MAPPING_KEY, "config", "bad_mapping_row", MAPPING_RECORD, "assignment_id", 3),
        (SLOT_KEY, "full", "person_without_vendor_id", SLOT_RECORD, "custom1", 3),
    ]
    # first seen in run 1 (12:00), last seen in run 3 (12:20), seen by all three runs
    assert query(scenario.after_three, OPEN_SQL) == [
        (OCF, "config", MAPPING_KEY, "bad_mapping_row", MAPPING_RECORD, "assignment_id", AT_1200, AT_1220, 3),
        (OCF, "full", SLOT_KEY, "person_without_vendor_id", SLOT_RECORD, "custom1", AT_1200, AT_1220, 3),
    ]


def test_every_check_is_recorded_with_what_it_found(scenario):
    # Each run checks Epic twice: its configuration (one bad line) and its delivery (one slot).
    checks = query(scenario.after_three, f"""SELECT scope, problems, count(*) FROM delivery.problem_checks
                                             WHERE integration = '{OCF}' GROUP BY ALL ORDER BY scope""")
    assert checks == [("config", 1, 3), ("full", 1, 3)]
    # a delivery's check is the delivery: same id, and the ledger mart shows what it skipped
    deliveries = query(scenario.after_three, """SELECT file_name, rows, status, problems
                                                FROM marts.fct_deliveries ORDER BY recorded_order""")
    assert deliveries == [
        ("epic_ocf_202611021200.csv", 2, "delivered", 1),
        ("epic_ocf_202611021210.csv", 2, "delivered", 1),
        ("epic_ocf_202611021220.csv", 2, "delivered", 1),
    ]


# ---------------------------------------------------------------------------------------------
# Fixed at the source: closed at the next run, kept as history


def test_a_problem_fixed_in_lightning_bolt_closes_at_the_next_run(scenario):
    assert query(scenario.after_fix, OPEN_SQL) == [
        (OCF, "config", MAPPING_KEY, "bad_mapping_row", MAPPING_RECORD, "assignment_id", AT_1200, AT_1220, 4),
    ]
    kept = query(scenario.after_fix, f"SELECT count(*) FROM delivery.problems WHERE problem_key = '{SLOT_KEY}'")
    assert kept == [(3,)]
    # run 4's delivery found nothing, with the same clock reading as run 3's
    last = query(scenario.after_fix, """SELECT rows, problems, delivered_at FROM marts.fct_deliveries
                                        ORDER BY recorded_order DESC LIMIT 1""")
    assert last == [(3, 0, AT_1220)]


def test_a_fixed_mapping_line_closes_the_config_problem(scenario):
    assert query(scenario.warehouse, OPEN_SQL) == []
    history = query(scenario.warehouse, "SELECT problem_key, count(*) FROM delivery.problems GROUP BY ALL ORDER BY 2")
    assert sorted(history) == sorted([(SLOT_KEY, 3), (MAPPING_KEY, 4)])


def test_problems_of_an_integration_turned_off_are_not_open(scenario, tmp_path):
    copy = tmp_path / "off.duckdb"
    shutil.copyfile(scenario.after_three, copy)
    with duckdb.connect(str(copy)) as conn:
        conn.execute(f"UPDATE config.integration_settings SET enabled = false WHERE integration = '{OCF}'")
    assert query(copy, OPEN_SQL) == []
    with duckdb.connect(str(copy)) as conn:
        conn.execute(f"DELETE FROM config.integration_settings WHERE integration = '{OCF}'")
    assert query(copy, OPEN_SQL) == []


def test_a_scope_not_checked_again_stays_open(scenario, tmp_path):
    # A check of another pay period says nothing about this one.
    copy = tmp_path / "periods.duckdb"
    shutil.copyfile(scenario.after_fix, copy)
    with duckdb.connect(str(copy)) as conn:
        record_problems(conn, OCF, "2026-10-25", "r-old", [Problem("person_without_vendor_id", "slot 1", "custom1", "x")])
        record_problems(conn, OCF, "2026-11-08", "r-new", [])
    opened = query(copy, "SELECT scope, record, times_seen FROM marts.fct_open_problems ORDER BY scope")
    assert opened == [("2026-10-25", "slot 1", 1), ("config", MAPPING_RECORD, 4)]


# ---------------------------------------------------------------------------------------------
# The BI copy


def test_the_marts_read_in_the_bi_copy_of_a_warehouse_named_otherwise(scenario):
    bi = scenario.root / "bi" / "warehouse.duckdb"
    assert scenario.warehouse.name != bi.name
    # published after run 5's delivery: five deliveries, nothing open
    assert query(bi, "SELECT count(*), max(rows) FROM marts.fct_deliveries") == [(5, 3)]
    assert query(bi, "SELECT count(*) FROM marts.fct_open_problems") == [(0,)]


# ---------------------------------------------------------------------------------------------
# lb-pipelines status


def _environment(monkeypatch, scenario, warehouse: Path) -> None:
    for var, value in scenario.env.items():
        monkeypatch.setenv(var, value)
    monkeypatch.setenv("LB_WAREHOUSE", str(warehouse))


def test_status_says_the_last_delivery_and_what_is_open(scenario, monkeypatch, capsys):
    _environment(monkeypatch, scenario, scenario.after_three)
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    outbox = scenario.root / "outbox" / OCF
    assert lines[0] == f"warehouse {scenario.after_three}"
    assert f"{OCF}: enabled" in lines
    assert (f"  last delivery:  2026-11-02 12:20 -0600  delivered  epic_ocf_202611021220.csv  2 rows  "
            f"-> {outbox / 'epic_ocf_202611021220.csv'}") in lines
    assert "  last failure" not in out
    assert "  open problems:  2" in lines
    assert f"    bad_mapping_row               1  [config]  {MAPPING_RECORD}" in lines
    assert f"    person_without_vendor_id      1  [full]  {SLOT_RECORD}" in lines
    assert lines[-1] == "raw load problems: 1 (slots 1; see raw.load_problems)"
    # ids only: nobody's name, phone or e-mail
    for personal in ("Ana", "Ben", "Okafor", "Reyes", "555", "@", "has no"):
        assert personal not in out


def test_status_shows_a_failure_newer_than_the_last_delivery(scenario, tmp_path, monkeypatch):
    _environment(monkeypatch, scenario, tmp_path / "failed.duckdb")
    shutil.copyfile(scenario.warehouse, tmp_path / "failed.duckdb")
    blocked = tmp_path / "not_a_folder"
    blocked.write_text("")  # the outbox is a file: the delivery fails

    @contextlib.contextmanager
    def connect():
        with duckdb.connect(str(tmp_path / "failed.duckdb")) as conn:
            yield conn

    monkeypatch.setenv("LB_NOW", "2026-11-02T12:30:00-06:00")
    with pytest.raises(DeliveryError):
        deliver_and_record(connect, OutboxTarget(blocked), integration=OCF, scope="full",
                           file_name="epic_ocf_202611021230.csv", content=b"x", rows=1, run_id="r6")
    report = status_report(tmp_path / "failed.duckdb", tmp_path / "no_bi").splitlines()
    assert any(line.startswith("  last delivery:  2026-11-02 12:20 -0600  delivered  epic_ocf_202611021220.csv  3 rows")
               for line in report)
    assert any(line.startswith("  last failure:   2026-11-02 12:30 -0600  epic_ocf_202611021230.csv to outbox: outbox: "
                               f"could not write {blocked}") for line in report)
    assert "  open problems:  none" in report  # the failed check found no problem either


def test_status_reads_the_bi_copy_while_a_run_holds_the_warehouse(scenario):
    holder = subprocess.Popen(  # another process writing: DuckDB refuses even a read-only open
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "sys.stdin.read()", str(scenario.warehouse)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        done = subprocess.run(
            [sys.executable, "-m", "lb_pipelines.cli", "status"], capture_output=True, text=True, timeout=120,
            env=os.environ | scenario.env,
        )
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert done.returncode == 0, done.stderr
    bi = scenario.root / "bi" / "warehouse.duckdb"
    published = dt.datetime.fromtimestamp(bi.stat().st_mtime, tz=CHICAGO).strftime("%Y-%m-%d %H:%M -0600")
    lines = done.stdout.splitlines()
    assert lines[0] == (f"the warehouse {scenario.warehouse} is in use by a run: "
                        f"as of the BI copy published at {published} ({bi})")
    assert any(line.startswith("  last delivery:  2026-11-02 12:20 -0600  delivered  epic_ocf_202611021220.csv  3 rows")
               for line in lines)
    assert "  open problems:  none" in lines


def test_status_without_a_warehouse_says_so_in_one_line(lb_env, capsys):
    assert main(["status"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"lb-pipelines status: no warehouse at {lb_env / 'warehouse.duckdb'} yet: run the pipeline first "
        "(lb-pipelines run)\n"
    )


# ---------------------------------------------------------------------------------------------
# A warehouse from before problem keys


def test_old_problems_table_is_migrated_not_refused(tmp_path):
    with duckdb.connect(str(tmp_path / "old.duckdb")) as conn:
        conn.execute("CREATE SCHEMA delivery")
        conn.execute("""CREATE TABLE delivery.problems (integration VARCHAR, scope VARCHAR, run_id VARCHAR,
                        kind VARCHAR, record VARCHAR, field VARCHAR, reason VARCHAR, detected_at TIMESTAMPTZ)""")
        conn.execute("""INSERT INTO delivery.problems VALUES
            ('kronos_wfd', '2026-11-01', 'r1', 'person_without_vendor_id', 'slot 5005 (2026-11-06)', 'emp_id', 'x',
             '2026-11-02 08:00:00-06'),
            ('kronos_wfd', '2026-11-01', 'r1', 'person_not_exportable', 'slot 5006 (2026-11-07)', 'personnel_id', 'y',
             '2026-11-02 08:00:00-06'),
            ('kronos_wfd', 'config', 'r1', 'bad_mapping_row', 'mapping.csv line 3', NULL, 'z',
             '2026-11-02 08:00:00-06')""")
        ensure_delivery_tables(conn)
        ensure_delivery_tables(conn)  # once only
        keys = conn.execute("SELECT problem_key FROM delivery.problems ORDER BY scope, record").fetchall()
        checks = conn.execute("""SELECT scope, run_id, problems FROM delivery.problem_checks
                                 ORDER BY scope""").fetchall()
        numbers = conn.execute("SELECT list(check_number ORDER BY check_number) FROM delivery.problem_checks").fetchall()
        record_problems(conn, "kronos_wfd", "config", "r2", [Problem("bad_mapping_row", "mapping.csv line 3", None, "z")])
        again = conn.execute("""SELECT count(DISTINCT problem_key), count(*) FROM delivery.problems
                                WHERE scope = 'config'""").fetchall()
    assert keys == [
        (key("kronos_wfd", "2026-11-01", "person_without_vendor_id", "slot 5005 (2026-11-06)", "emp_id"),),
        (key("kronos_wfd", "2026-11-01", "person_not_exportable", "slot 5006 (2026-11-07)", "personnel_id"),),
        (key("kronos_wfd", "config", "bad_mapping_row", "mapping.csv line 3", ""),),
    ]
    # each old (run, scope) became one check, open until that scope is checked again
    assert checks == [("2026-11-01", "r1", 2), ("config", "r1", 1)]
    assert numbers == [([1, 2],)]
    assert again == [(1, 2)]  # found again after the migration: the same key
