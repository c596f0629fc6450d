"""Kronos WFC files worked out by hand for a small system, through the job's file asset.

Pay periods of 14 days from 2026-01-04 (the sample's calendar): 2026-03-01..03-14 (the
spring-forward night, 03-08, inside), 2026-10-25..11-07 (the fall-back night, 11-01, inside;
"now" is 2026-11-02 12:00 CST) and 2026-11-08..11-21. One warehouse for the module (the hand-made
source loaded, the configuration written, dbt run on the models the export reads); each pay
period is then run through the `kronos_wfc_export` job with its partition key, as the UI's
"materialize partition" does. Every expected row below is worked out from the fixture.
"""

from __future__ import annotations

import csv
import io

import dagster as dg
import duckdb
import pytest

from lb_pipelines.automation.pay_period_partitions import PAY_PERIODS
from lb_pipelines.definitions import build_definitions
from lb_pipelines.integrations.config_files import ConfigError
from lb_pipelines.integrations.registry import integration
from pipeline_helpers import metadata_of, step_failures, write_config
from tiny_system import fresh, slot
from warehouse_helpers import load_system, run_dbt

SPRING, FALL, NEXT = "2026-03-01", "2026-10-25", "2026-11-08"
NOW, LATER_THAT_DAY = "2026-11-02T12:00:00-06:00", "2026-11-02T18:00:00-06:00"
MATRIX = """
include:
  - personnel_type: CRNA
    assignment_types: [Shift, Call]
  - personnel_type: Non-Exempt
    assignment_types: [Shift]
  - personnel_type: resident  # as Lightning Bolt spells it or not: case does not matter
    assignment_types: [call]
"""
SETTINGS = """
personnel_id_field: emp_id
pay_period: {anchor: 2026-01-04, length_days: 14}
delivery: {type: outbox}
""" + MATRIX
# The same day's second run: technicians (Non-Exempt) taken out of the matrix.
NARROWER = SETTINGS.replace("  - personnel_type: Non-Exempt\n    assignment_types: [Shift]\n", "")
MAPPING = """assignment_id,pay_code
101,ONCALL
102,REG
201,CALL24
301,REG
"""
HEADER = ["PERSON_NUMBER", "DATE", "START", "END", "HOURS", "PAY_CODE", "DEPARTMENT_ID", "COST_CENTER"]


def system():
    s = fresh()  # departments 1 (Chicago, COID-0101, K-ANES-01) and 2 (Phoenix, COID-0202, no Kronos id)
    s["departments"].append({"id": 3, "name": "Anesthesiology - Lakeside", "timezone": "America/Chicago",
                             "coid": "COID-0303", "kronos_department_id": "K-LAKE-03"})
    ana, ben, cy, placeholder = s["personnel"]
    ana.update(personnel_type="CRNA", home_coid="COID-0101", away_coid="COID-0202")  # emp 100011
    ben.update(personnel_type="CRNA")  # no emp_id
    cy.update(personnel_type="Resident")  # emp 100013, Phoenix
    eve = dict(ana, id=14, first_name="Eve", last_name="Stone", emp_id="100014", personnel_type="Non-Exempt",
               home_coid="COID-0101", away_coid=None)
    fay = dict(ana, id=15, first_name="Fay", last_name="Lund", emp_id="100015", personnel_type="Physician",
               home_coid="COID-0101", away_coid=None)
    gus = dict(fay, id=16, first_name="Gus", emp_id="100016", active=False)  # an inactive Physician
    s["personnel"] += [eve, fay, gus]
    # 101 OB Anesthesia Call (Call, dept 1), 102 OR Day (Shift, dept 1), 201 ED 24h (Call, dept 2)
    s["assignments"].append(dict(s["assignments"][1], id=301, department_id=3, name="Lakeside OR",
                                 default_start="07:00", default_end="19:00"))  # Shift
    sch = s["schedules"][0]
    s["schedules"] = [
        dict(sch, id=1003, department_id=1, start_date="2026-03-01", end_date="2026-03-31", status="published"),
        dict(sch, id=1001, department_id=1, start_date="2026-10-01", end_date="2026-11-30", status="published"),
        dict(sch, id=2001, department_id=2, start_date="2026-10-01", end_date="2026-11-30", status="published"),
        dict(sch, id=3001, department_id=3, start_date="2026-10-01", end_date="2026-11-30", status="published"),
        dict(sch, id=1002, department_id=1, start_date="2026-12-01", end_date="2026-12-31", status="draft",
             published_at=None),
    ]
    s["slots"] = [
        slot(6020, 1003, "2026-03-07", 101, 11, "17:00", "07:00"),  # Ana's call over the spring-forward night
        slot(6012, 1001, "2026-10-24", 101, 11, "17:00", "07:00"),  # the period before FALL
        slot(6001, 1001, "2026-10-31", 101, 11, "17:00", "07:00"),  # Ana's call over the fall-back night
        slot(6003, 3001, "2026-11-03", 301, 11, "07:00", "19:00"),  # Ana at Lakeside: her away_coid
        slot(6004, 3001, "2026-11-04", 301, 14, "07:00", "19:00"),  # Eve at Lakeside: no away_coid
        slot(6005, 1001, "2026-11-04", 101, 14, "17:00", "07:00"),  # Eve on call: Non-Exempt/Call not included
        slot(6006, 1001, "2026-11-05", 102, 15, "07:00", "15:00"),  # Fay: Physician not included
        slot(6007, 2001, "2026-11-05", 201, 13, "07:00", "07:00"),  # Cy: department 2 has no Kronos id
        slot(6008, 1001, "2026-11-06", 102, 12, "07:00", "15:00"),  # Ben: no emp_id
        slot(6015, 1001, "2026-11-05", 102, 99, "10:00", "15:00"),  # a person Lightning Bolt does not have
        slot(6016, 1001, "2026-11-06", 102, 16, "10:00", "15:00"),  # Gus, inactive: not included, no problem
        slot(6009, 1001, "2026-11-02", 101, 19, "17:00", "07:00"),  # a placeholder
        slot(6010, 1001, "2026-11-03", 102, None, "07:00", "15:00"),  # unfilled: a coverage gap
        slot(6011, 1001, "2026-11-07", 101, 11, "17:00", "07:00"),  # last day of FALL, ends in NEXT
        slot(6013, 1001, "2026-11-08", 102, 11, "07:00", "15:00"),  # first day of NEXT
        slot(6014, 1002, "2026-12-02", 102, 11, "07:00", "15:00"),  # draft schedule
    ]
    return s


# Ordered by person number, then start. COST_CENTER: Ana's home COID-0101 is department 1's
# coid (home); department 3 is COID-0303, not her home, and she has an away_coid (COID-0202);
# Eve has none there, so department 3's own COID-0303.
ANA_FALL_BACK_6001 = ["100011", "2026-10-31", "2026-10-31 17:00", "2026-11-01 07:00", "15.00", "ONCALL", "K-ANES-01", "COID-0101"]
ANA_LAKESIDE_6003 = ["100011", "2026-11-03", "2026-11-03 07:00", "2026-11-03 19:00", "12.00", "REG", "K-LAKE-03", "COID-0202"]
ANA_LAST_DAY_6011 = ["100011", "2026-11-07", "2026-11-07 17:00", "2026-11-08 07:00", "14.00", "ONCALL", "K-ANES-01", "COID-0101"]
EVE_LAKESIDE_6004 = ["100014", "2026-11-04", "2026-11-04 07:00", "2026-11-04 19:00", "12.00", "REG", "K-LAKE-03", "COID-0303"]
ANA_SPRING_FORWARD_6020 = ["100011", "2026-03-07", "2026-03-07 17:00", "2026-03-08 07:00", "13.00", "ONCALL", "K-ANES-01", "COID-0101"]
ANA_NEXT_6013 = ["100011", "2026-11-08", "2026-11-08 07:00", "2026-11-08 15:00", "8.00", "REG", "K-ANES-01", "COID-0101"]


def rows_of(content: bytes) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))
    assert rows[0] == HEADER
    return rows[1:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The warehouse built once, then: FALL (the current period), SPRING and NEXT by partition,
    and FALL again later the same day with a narrower matrix. Each file's bytes as delivered."""
    root = tmp_path_factory.mktemp("kronos_wfc")
    outbox = root / "outbox" / "kronos_wfc"
    done: dict = {"root": root, "outbox": outbox}
    with pytest.MonkeyPatch.context() as env:
        for var, value in {
            "LB_NOW": NOW, "LB_WAREHOUSE": str(root / "warehouse.duckdb"),
            "LB_OUTBOX_DIR": str(root / "outbox"), "LB_CONFIG_DIR": str(root / "config"), "LB_BI_DIR": str(root / "bi"),
        }.items():
            env.setenv(var, value)
        env.delenv("LB_API_URL", raising=False)
        write_config(root / "config", "kronos_wfc", SETTINGS, MAPPING)
        # The warehouse as the main job leaves it, built directly: the source loaded whole, the
        # configuration written, and the models this export reads.
        warehouse = load_system(root / "source", system(), root / "warehouse.duckdb")
        declared = integration("kronos_wfc")
        with duckdb.connect(str(warehouse)) as conn:
            assert declared.write_config(conn, declared.load()) == []
        run_dbt(warehouse, "run", "--select", "+export_kronos_wfc")
        run_dbt(warehouse, "test", "--select", "export_kronos_wfc")  # the model's own data tests
        instance = dg.DagsterInstance.ephemeral()
        instance.add_dynamic_partitions(PAY_PERIODS.name, [SPRING, FALL, NEXT])
        job = build_definitions().resolve_job_def("kronos_wfc_export")

        def run(period: str, name: str, label: str | None = None):
            # The job's file asset, for one pay period (the factory checks its slots were loaded).
            result = job.execute_in_process(instance=instance, partition_key=period, raise_on_error=False,
                                            asset_selection=[dg.AssetKey(["kronos_wfc", "file"])])
            assert result.success, step_failures(result)
            done[period, label or name] = (result, (outbox / name).read_bytes())

        run(FALL, "kronos_wfc_20261025_20261102.csv")
        run(SPRING, "kronos_wfc_20260301_20261102.csv")
        run(NEXT, "kronos_wfc_20261108_20261102.csv")
        env.setenv("LB_NOW", LATER_THAT_DAY)
        write_config(root / "config", "kronos_wfc", NARROWER)
        run(FALL, "kronos_wfc_20261025_20261102.csv", label="later")
    return done


def test_the_current_period_by_hand(runs):
    result, content = runs[FALL, "kronos_wfc_20261025_20261102.csv"]
    assert rows_of(content) == [ANA_FALL_BACK_6001, ANA_LAKESIDE_6003, ANA_LAST_DAY_6011, EVE_LAKESIDE_6004]
    assert content.count(b"\r\n") == 5  # RFC 4180 line ends, header included
    meta = metadata_of(result, ["kronos_wfc", "file"])
    assert (meta["rows"], meta["problems"], meta["coverage_gaps"], meta["status"]) == (4, 3, 1, "delivered")
    # 6009 the placeholder; 6005, 6006 and 6016 left out by the matrix
    assert (meta["placeholders_left_out"], meta["left_out_by_inclusion_matrix"]) == (1, 3)
    assert meta["pay_period"] == "2026-10-25..2026-11-07"


def test_the_inclusion_matrix_decides(runs):
    rows = rows_of(runs[FALL, "kronos_wfc_20261025_20261102.csv"][1])
    people_dates = {(r[0], r[1]) for r in rows}
    assert ("100011", "2026-10-31") in people_dates  # CRNA / Call: included
    assert ("100014", "2026-11-04") in people_dates  # Non-Exempt / Shift at Lakeside: included
    assert "2026-11-04 17:00" not in {r[2] for r in rows}  # Eve on call (6005): Non-Exempt / Call is not
    assert "100015" not in {r[0] for r in rows}  # Physician: not listed at all
    # The same day, Non-Exempt taken out of the settings: Eve's shift goes too, at file time.
    later = rows_of(runs[FALL, "later"][1])
    assert later == [ANA_FALL_BACK_6001, ANA_LAKESIDE_6003, ANA_LAST_DAY_6011]
    meta = metadata_of(runs[FALL, "later"][0], ["kronos_wfc", "file"])
    assert meta["left_out_by_inclusion_matrix"] == 4  # and 6004
    assert meta["inclusion_matrix"] == "CRNA: Shift, Call; resident: call"


def test_hours_are_real_elapsed_across_daylight_saving(runs):
    fall = {r[1]: r[4] for r in rows_of(runs[FALL, "kronos_wfc_20261025_20261102.csv"][1])}
    assert fall["2026-10-31"] == "15.00"  # 17:00 CDT -> 07:00 CST: one hour more
    assert fall["2026-11-03"] == "12.00"  # an ordinary 07:00-19:00
    [spring] = rows_of(runs[SPRING, "kronos_wfc_20260301_20261102.csv"][1])
    assert spring[4] == "13.00"  # 17:00 CST -> 07:00 CDT: one hour less


def test_cost_center_three_cases(runs):
    by_slot_day = {r[1]: r for r in rows_of(runs[FALL, "kronos_wfc_20261025_20261102.csv"][1])}
    # Department 1 (COID-0101) is Ana's home: her home_coid, although she has an away_coid.
    assert by_slot_day["2026-10-31"][7] == "COID-0101"
    # Department 3 (COID-0303) is not Ana's home, and she has away_coid COID-0202: that.
    assert by_slot_day["2026-11-03"][7] == "COID-0202"
    # Department 3 is not Eve's home (COID-0101) and she has no away_coid: the department's coid.
    assert by_slot_day["2026-11-04"][7] == "COID-0303"


def test_problems_are_rows_skipped_while_the_rest_goes_out(runs):
    result, content = runs[FALL, "kronos_wfc_20261025_20261102.csv"]
    assert len(rows_of(content)) == 4
    with duckdb.connect(str(runs["root"] / "warehouse.duckdb"), read_only=True) as conn:
        problems = conn.execute(
            "SELECT kind, record, field, reason FROM delivery.problems "
            "WHERE integration = 'kronos_wfc' AND scope = ? AND run_id = ?", [FALL, result.run_id]
        ).fetchall()
    assert problems == [  # in start order: 6007 at 14:00 UTC on the 5th, 6015 at 16:00 UTC, 6008 on the 6th
        ("missing_department_id", "slot 6007 (2026-11-05)", "kronos_department_id",
         "department 2 has no kronos_department_id (the Kronos DEPARTMENT_ID)"),
        ("person_not_exportable", "slot 6015 (2026-11-05)", "personnel_id",
         "personnel_id 99 is not in Lightning Bolt's personnel"),
        ("person_without_vendor_id", "slot 6008 (2026-11-06)", "emp_id",
         "person 12 has no emp_id (the Kronos person number)"),
    ]
    meta = metadata_of(result, ["kronos_wfc", "file"])
    assert "Okafor" not in meta["problem_rows"] and "Nguyen" not in meta["problem_rows"]
    checks = {(c.asset_key.path[0], c.check_name): c.passed for c in result.get_asset_check_evaluations()}
    assert checks[("kronos_wfc", "no_problem_rows")] is False


def test_a_shift_belongs_to_the_period_of_its_start(runs):
    fall = rows_of(runs[FALL, "kronos_wfc_20261025_20261102.csv"][1])
    following = rows_of(runs[NEXT, "kronos_wfc_20261108_20261102.csv"][1])
    assert ANA_LAST_DAY_6011 in fall  # starts 11-07, the period's last day, ends 11-08
    assert following == [ANA_NEXT_6013]  # not 6011 again
    assert "2026-10-24" not in {r[1] for r in fall}  # 6012 starts the day before the period


def test_a_past_period_rerun_through_its_partition(runs):
    result, content = runs[SPRING, "kronos_wfc_20260301_20261102.csv"]
    assert rows_of(content) == [ANA_SPRING_FORWARD_6020]
    meta = metadata_of(result, ["kronos_wfc", "file"])
    assert (meta["pay_period"], meta["rows"], meta["problems"]) == ("2026-03-01..2026-03-14", 1, 0)
    assert result.dagster_run.tags["dagster/partition"] == SPRING


def test_a_second_run_on_the_same_day_replaces_that_days_file(runs):
    later_content = runs[FALL, "later"][1]
    names = sorted(p.name for p in runs["outbox"].glob("kronos_wfc_20261025_*.csv"))
    assert names == ["kronos_wfc_20261025_20261102.csv"]  # one file: 18:00 replaced 12:00
    assert (runs["outbox"] / names[0]).read_bytes() == later_content
    with duckdb.connect(str(runs["root"] / "warehouse.duckdb"), read_only=True) as conn:
        ledger = conn.execute(
            "SELECT file_name, rows, status FROM delivery.ledger "
            "WHERE integration = 'kronos_wfc' AND scope = ? ORDER BY delivered_at", [FALL]
        ).fetchall()
    assert ledger == [("kronos_wfc_20261025_20261102.csv", 4, "delivered"),
                      ("kronos_wfc_20261025_20261102.csv", 3, "delivered")]


@pytest.mark.parametrize("include, key, reason", [
    ("include: []", "include", "at least 1"),
    ("", "include", "required key is missing"),
    ("include: [{personnel_type: CRNA, assignment_types: []}]", "include[0].assignment_types", "at least 1"),
    ("include: [{personnel_type: CRNA, assignment_types: [Shift, shift]}]", "include[0].assignment_types",
     "'shift' is listed twice"),
    ("include: [{personnel_type: CRNA, assignment_types: [Shift]},"
     " {personnel_type: crna, assignment_types: [Call]}]", "include", "personnel_type 'crna' has two entries"),
    ("include: [{personnel_type: CRNA, assignment_type: [Shift]}]", "include[0].assignment_type",
     "unknown key"),
])
def test_the_matrix_is_validated(tmp_path, include, key, reason):
    write_config(tmp_path, "kronos_wfc", "pay_period: {anchor: 2026-01-04}\n" + include + "\n", MAPPING)
    with pytest.raises(ConfigError) as refused:
        integration("kronos_wfc").load(tmp_path)
    assert any(k == key and reason in r for k, r in refused.value.errors), refused.value.errors
