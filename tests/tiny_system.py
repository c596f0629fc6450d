"""A hand-made Lightning Bolt system small enough to reason about: every count below is by hand.

Two departments (Chicago, Phoenix), four people (one placeholder), three assignments, two
schedules (one published, one draft), six slots, two requests, two tallies, three change-log
entries, one view setting.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

TS = "2026-10-15T09:00:00-05:00"

SYSTEM: dict[str, list[dict[str, Any]]] = {
    "departments": [
        {"id": 1, "name": "Anesthesiology - Mercy North", "timezone": "America/Chicago", "coid": "COID-0101", "kronos_department_id": "K-ANES-01"},
        {"id": 2, "name": "Emergency Medicine - Desert", "timezone": "America/Phoenix", "coid": "COID-0202", "kronos_department_id": None},
    ],
    "personnel": [
        {"id": 11, "first_name": "Ana", "last_name": "Reyes", "abbreviation": "AR", "emp_id": "100011", "unique_id": "U11", "custom1": "SER011", "custom2": None, "custom3": None, "custom4": None, "email": "ana.reyes@example.org", "cell_phone": "312-555-0111", "pager": "4011", "personnel_type": "Physician", "department_ids": [1], "home_coid": "COID-0101", "away_coid": None, "is_placeholder": False, "active": True, "updated_at": TS},
        {"id": 12, "first_name": "Ben", "last_name": "Okafor", "abbreviation": "BO", "emp_id": None, "unique_id": "U12", "custom1": None, "custom2": None, "custom3": None, "custom4": None, "email": "ben.okafor@example.org", "cell_phone": None, "pager": None, "personnel_type": "CRNA", "department_ids": [1], "home_coid": "COID-0101", "away_coid": None, "is_placeholder": False, "active": True, "updated_at": TS},
        {"id": 13, "first_name": "Cy", "last_name": "Nguyen", "abbreviation": "CN", "emp_id": "100013", "unique_id": "U13", "custom1": "SER013", "custom2": None, "custom3": None, "custom4": None, "email": None, "cell_phone": "602-555-0113", "pager": None, "personnel_type": "Resident", "department_ids": [2], "home_coid": "COID-0202", "away_coid": "COID-0101", "is_placeholder": False, "active": True, "updated_at": TS},
        {"id": 19, "first_name": None, "last_name": "Anesthesia On Call", "abbreviation": "ANOC", "emp_id": None, "unique_id": None, "custom1": None, "custom2": None, "custom3": None, "custom4": None, "email": None, "cell_phone": "312-555-0199", "pager": "4999", "personnel_type": "Physician", "department_ids": [1], "home_coid": None, "away_coid": None, "is_placeholder": True, "active": True, "updated_at": TS},
    ],
    "assignments": [
        {"id": 101, "department_id": 1, "name": "OB Anesthesia Call", "abbreviation": "OBC", "assignment_type": "Call", "default_start": "17:00", "default_end": "07:00", "active": True, "updated_at": TS},
        {"id": 102, "department_id": 1, "name": "OR Day", "abbreviation": "ORD", "assignment_type": "Shift", "default_start": "07:00", "default_end": "15:00", "active": True, "updated_at": TS},
        {"id": 201, "department_id": 2, "name": "ED 24h", "abbreviation": "ED24", "assignment_type": "Call", "default_start": "07:00", "default_end": "07:00", "active": True, "updated_at": TS},
    ],
    "schedules": [
        {"id": 1001, "department_id": 1, "start_date": "2026-11-01", "end_date": "2026-11-30", "status": "published", "published_at": TS, "version": 3},
        {"id": 2001, "department_id": 2, "start_date": "2026-11-01", "end_date": "2026-11-30", "status": "draft", "published_at": None, "version": 1},
    ],
    "slots": [
        {"id": 5001, "schedule_id": 1001, "date": "2026-11-01", "assignment_id": 101, "personnel_id": 11, "start_time": "17:00", "end_time": "07:00", "notes": None, "updated_at": TS},
        {"id": 5002, "schedule_id": 1001, "date": "2026-11-02", "assignment_id": 101, "personnel_id": 19, "start_time": "17:00", "end_time": "07:00", "notes": "Backup: pager 4411", "updated_at": TS},
        {"id": 5003, "schedule_id": 1001, "date": "2026-11-02", "assignment_id": 102, "personnel_id": 12, "start_time": "07:00", "end_time": "15:00", "notes": None, "updated_at": TS},
        {"id": 5004, "schedule_id": 1001, "date": "2026-11-03", "assignment_id": 102, "personnel_id": None, "start_time": "07:00", "end_time": "15:00", "notes": None, "updated_at": TS},
        {"id": 5005, "schedule_id": 2001, "date": "2026-11-01", "assignment_id": 201, "personnel_id": 13, "start_time": "07:00", "end_time": "07:00", "notes": None, "updated_at": TS},
        {"id": 5006, "schedule_id": 2001, "date": "2026-11-20", "assignment_id": 201, "personnel_id": 13, "start_time": "07:00", "end_time": "07:00", "notes": None, "updated_at": TS},
    ],
    "requests": [
        {"id": 7001, "personnel_id": 11, "start_date": "2026-11-10", "end_date": "2026-11-14", "request_type": "Vacation", "status": "approved", "created_at": TS, "updated_at": TS},
        {"id": 7002, "personnel_id": 12, "start_date": "2026-12-24", "end_date": "2026-12-26", "request_type": "Day Off", "status": "pending", "created_at": TS, "updated_at": TS},
    ],
    "tallies": [
        {"personnel_id": 11, "tally_name": "Calls", "period_start": "2026-11-01", "period_end": "2026-11-30", "value": 1},
        {"personnel_id": 13, "tally_name": "Total Hours", "period_start": "2026-11-01", "period_end": "2026-11-30", "value": 48.0},
    ],
    "change_log": [
        {"id": 1, "changed_at": "2026-10-01T10:00:00-05:00", "user": "scheduler.kim", "action": "create", "entity": "schedule", "entity_id": 1001, "schedule_id": 1001, "date": None, "field": None, "old_value": None, "new_value": None},
        {"id": 2, "changed_at": TS, "user": "scheduler.kim", "action": "publish", "entity": "schedule", "entity_id": 1001, "schedule_id": 1001, "date": None, "field": "status", "old_value": "draft", "new_value": "published"},
        {"id": 3, "changed_at": TS, "user": "scheduler.kim", "action": "update", "entity": "slot", "entity_id": 5002, "schedule_id": 1001, "date": "2026-11-02", "field": "personnel_id", "old_value": "11", "new_value": "19"},
    ],
    "view_settings": [
        {"id": 1, "name": "Anesthesia Daily Board", "owner": "scheduler.kim", "settings": {"departments": [1], "columns": ["assignment", "provider"]}},
    ],
}


def slot(id_, schedule, day, assignment, person, start, end, notes=None, updated_at=TS) -> dict[str, Any]:
    """A slot record for hand-made fixtures."""
    return {"id": id_, "schedule_id": schedule, "date": day, "assignment_id": assignment, "personnel_id": person,
            "start_time": start, "end_time": end, "notes": notes, "updated_at": updated_at}


def write_system(folder: Path, system: dict[str, list[dict[str, Any]]] | None = None) -> Path:
    """Write `system` (default: a fresh copy of SYSTEM) as a directory source in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for entity, records in (system or copy.deepcopy(SYSTEM)).items():
        with (folder / f"{entity}.jsonl").open("w") as out:
            for record in records:
                out.write(json.dumps(record) + "\n")
    return folder


def fresh() -> dict[str, list[dict[str, Any]]]:
    return copy.deepcopy(SYSTEM)
