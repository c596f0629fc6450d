"""Epic On-Call Finder rows worked out by hand for a small system, through the real pipeline."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import duckdb
import pytest

from pipeline_helpers import metadata_of, run_pipeline, step_failures, write_config
from tiny_system import fresh, slot, write_system

SETTINGS = """
enabled: true
personnel_id_field: custom1
window: {days_back: 1, days_forward: 30}
delivery: {type: outbox}
alerts: {to: [oncall-admins@example.org]}
"""
MAPPING = """assignment_id,epic_team_id,team_name,role,note_prefix,team_comment,call_order
101,OCF-OB-01,OB Anesthesia,Attending,OB,Call L&D first,1
101,OCF-OB-BACKUP,OB Backup,Attending,,,2
102,OCF-OR-01,OR Day,Attending,,,1
201,OCF-ED-01,ED,Physician,,,1
"""


def system():
    s = fresh()
    s["personnel"][0]["custom1"] = "SER011"  # Ana: pager 4011
    s["personnel"][1]["custom1"] = None  # Ben: no Epic id
    s["personnel"][2].update(custom1="SER013", pager=None)  # Cy: cell only
    a = s["assignments"][0]
    s["assignments"].append(dict(a, id=103, name="Admin", assignment_type="Admin", default_start="08:00", default_end="12:00"))
    sch = s["schedules"][0]
    s["schedules"] = [
        dict(sch, id=1001, department_id=1, start_date="2026-10-01", end_date="2026-11-30", status="published"),
        dict(sch, id=2001, department_id=2, start_date="2026-10-01", end_date="2026-11-30", status="published"),
        dict(sch, id=1003, department_id=1, start_date="2026-12-01", end_date="2026-12-31", status="draft", published_at=None),
    ]
    s["slots"] = [
        slot(6001, 1001, "2026-10-31", 101, 11, "17:00", "07:00", "Backup: pager 4411"),  # over the fall-back night
        slot(6002, 1001, "2026-11-02", 101, 19, "17:00", "07:00"),  # placeholder
        slot(6003, 1001, "2026-11-02", 102, None, "07:00", "15:00"),  # unfilled
        slot(6004, 1001, "2026-11-03", 102, 12, "07:00", "15:00"),  # Ben has no custom1
        slot(6005, 2001, "2026-11-04", 201, 13, "07:00", "07:00"),  # Phoenix 24 h
        slot(6006, 1003, "2026-12-05", 101, 11, "17:00", "07:00"),  # draft schedule
        slot(6007, 1001, "2026-10-29", 101, 11, "17:00", "07:00"),  # before the window
        slot(6008, 1001, "2026-11-30", 102, 11, "07:00", "15:00"),  # inside (today + 29)
        slot(6009, 1001, "2026-11-05", 103, 11, "08:00", "12:00"),  # unmapped assignment
    ]
    return s


# LB_NOW 2026-11-01 12:00 CST: today is 2026-11-01 in Chicago and in Phoenix; the window is
# 2026-10-31 .. 2026-12-01.
EXPECTED = [
    ["OCF-ED-01", "ED", "Physician", "1", "11/04/2026 07:00", "11/05/2026 07:00", "SER013", "Cy Nguyen", "602-555-0113", "", ""],
    ["OCF-OB-01", "OB Anesthesia", "Attending", "1", "10/31/2026 17:00", "11/01/2026 07:00", "SER011", "Ana Reyes", "4011", "OB - Backup: pager 4411", "Call L&D first"],
    ["OCF-OB-01", "OB Anesthesia", "Attending", "1", "11/02/2026 17:00", "11/03/2026 07:00", "", "Anesthesia On Call", "4999", "OB", "Call L&D first"],
    ["OCF-OB-BACKUP", "OB Backup", "Attending", "2", "10/31/2026 17:00", "11/01/2026 07:00", "SER011", "Ana Reyes", "4011", "Backup: pager 4411", ""],
    ["OCF-OB-BACKUP", "OB Backup", "Attending", "2", "11/02/2026 17:00", "11/03/2026 07:00", "", "Anesthesia On Call", "4999", "", ""],
    ["OCF-OR-01", "OR Day", "Attending", "1", "11/30/2026 07:00", "11/30/2026 15:00", "SER011", "Ana Reyes", "4011", "", ""],
]


@pytest.fixture(scope="module")
def delivered(tmp_path_factory):
    root = tmp_path_factory.mktemp("ocf")
    with pytest.MonkeyPatch.context() as env:
        for var, value in {
            "LB_NOW": "2026-11-01T12:00:00-06:00", "LB_SOURCE_DIR": str(root / "source"),
            "LB_WAREHOUSE": str(root / "warehouse.duckdb"), "LB_OUTBOX_DIR": str(root / "outbox"),
            "LB_CONFIG_DIR": str(root / "config"), "LB_BI_DIR": str(root / "bi"),
        }.items():
            env.setenv(var, value)
        env.delenv("LB_API_URL", raising=False)
        write_system(root / "source", system())
        write_config(root / "config", "epic_on_call_finder", SETTINGS, MAPPING)
        result = run_pipeline()
    assert result.success, step_failures(result)
    return root, result


def test_file_rows_by_hand(delivered):
    root, _ = delivered
    [path] = (root / "outbox" / "epic_on_call_finder").glob("*.csv")
    assert path.name == "epic_ocf_202611011200.csv"
    rows = list(csv.reader(io.StringIO(path.read_text())))
    assert rows[0] == ["TEAM_ID", "TEAM_NAME", "ROLE", "CALL_ORDER", "START", "END", "PROVIDER_ID",
                       "PROVIDER_NAME", "CONTACT", "NOTES", "TEAM_COMMENT"]
    assert rows[1:] == EXPECTED
    assert path.read_bytes().count(b"\r\n") == len(EXPECTED) + 1  # RFC 4180 line ends


def test_metadata_problems_and_ledger(delivered):
    root, result = delivered
    meta = metadata_of(result, ["epic_on_call_finder", "file"])
    assert (meta["rows"], meta["problems"], meta["coverage_gaps"], meta["status"]) == (6, 1, 1, "delivered")
    path = Path(meta["delivered_to"])
    import hashlib

    assert meta["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert "OCF-ED-01" in meta["preview"]
    # Run storage names people by id: names, contacts and notes are masked, and so is the team comment.
    assert "| OCF-ED-01 | ED | Physician | 1 | 11/04/2026 07:00 | 11/05/2026 07:00 | SER013 | ••• | ••• |  |  |" in meta["preview"]
    for personal in ("Cy Nguyen", "Ana Reyes", "602-555-0113", "4011", "Backup: pager 4411", "Call L&D first"):
        assert personal not in meta["preview"]
    assert "person 12 has no custom1 (the Epic provider id)" in meta["problem_rows"]
    assert "Okafor" not in meta["problem_rows"]
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as conn:
        problems = conn.execute("SELECT kind, record, field FROM delivery.problems WHERE integration = 'epic_on_call_finder'").fetchall()
        ledger = conn.execute("SELECT file_name, rows, status, sha256 FROM delivery.ledger").fetchall()
    assert problems == [("person_without_vendor_id", "slot 6004 (OCF-OR-01 11/03/2026 07:00)", "custom1")]
    assert ledger == [(path.name, 6, "delivered", meta["sha256"])]
    checks = {(c.asset_key.path[0], c.check_name): c.passed for c in result.get_asset_check_evaluations()}
    assert checks[("epic_on_call_finder", "no_problem_rows")] is False
