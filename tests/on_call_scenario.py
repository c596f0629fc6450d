"""The on-call scenario the secure-messaging tests share (see test_secure_messaging.py's docstring):
the hand-made system, the mapping, and the lists worked out by hand at 2026-11-10 06:00 CST."""

from __future__ import annotations

from tiny_system import fresh, slot

MAPPING = """assignment_id,team_id,role,priority
101,T-OB,Attending,1
101,T-LD,Anesthesia,1
102,T-OB,Day,2
201,T-ED,Attending,1
"""
PLACEHOLDER = {"name": "Anesthesia On Call", "pager": "4999", "phone": "312-555-0199"}


def entry(position, role, order, assignment, start, end, who):
    e = {"position": position, "role": role, "call_order": order, "assignment_id": assignment,
         "start": start, "end": end, "time_zone": "America/Chicago"}
    e.update({"placeholder": who} if isinstance(who, dict) else {"user_id": who})
    return e


ANA_NIGHT = ("2026-11-09T23:00:00Z", "2026-11-10T13:00:00Z")  # 6001
CY_DAY = ("2026-11-10T13:00:00Z", "2026-11-10T21:00:00Z")  # 6002
NEXT_NIGHT = ("2026-11-10T23:00:00Z", "2026-11-11T13:00:00Z")  # 6003
FIRST_LISTS = {
    "T-ED": {"team_id": "T-ED", "oncall": []},
    "T-LD": {"team_id": "T-LD", "oncall": [
        entry(1, "Anesthesia", 1, 101, *ANA_NIGHT, "U11"),
        entry(2, "Anesthesia", 1, 101, *NEXT_NIGHT, PLACEHOLDER),
    ]},
    "T-OB": {"team_id": "T-OB", "oncall": [
        entry(1, "Attending", 1, 101, *ANA_NIGHT, "U11"),
        entry(2, "Day", 2, 102, *CY_DAY, "U13"),
        entry(3, "Attending", 1, 101, *NEXT_NIGHT, PLACEHOLDER),
    ]},
}


def system(**people):
    """The system, with slot -> person overrides (`people={6002: 12}`)."""
    s = fresh()
    persons = {6001: 11, 6002: 13, 6003: 19, 6004: None} | people.get("people", {})
    s["slots"] = [
        slot(6001, 1001, "2026-11-09", 101, persons[6001], "17:00", "07:00"),
        slot(6002, 1001, "2026-11-10", 102, persons[6002], "07:00", "15:00"),
        slot(6003, 1001, "2026-11-10", 101, persons[6003], "17:00", "07:00"),
        slot(6004, 1001, "2026-11-11", 102, persons[6004], "07:00", "15:00"),
        slot(6005, 2001, "2026-11-10", 201, 13, "07:00", "07:00"),  # a draft schedule: never out
    ]
    return s


