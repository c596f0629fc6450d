"""The Lightning Bolt source contract as data: entities, endpoints, fields and windows.

One table of facts that the directory source, the API client, the simulator, the generator and
the raw loader all read, so that "what a record looks like" is written down once
(`shared/spec/lightning-bolt-source.md`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

FieldType = Literal["int", "str", "bool", "number", "date", "time", "timestamp", "int_list", "json"]

# DuckDB column type for each contract type. Times stay text: they are local wall-clock
# values whose meaning needs the department's time zone, which staging supplies.
DUCKDB_TYPES: dict[str, str] = {
    "int": "BIGINT",
    "str": "VARCHAR",
    "bool": "BOOLEAN",
    "number": "DOUBLE",
    "date": "DATE",
    "time": "VARCHAR",
    "timestamp": "TIMESTAMPTZ",
    "int_list": "BIGINT[]",
    "json": "JSON",
}


@dataclass(frozen=True)
class Field:
    name: str
    type: FieldType
    required: bool = True  # False: the key may be null (it must still be present or absent as null)
    # A person's name or contact, or free text that may hold one: such a value stays in the
    # warehouse and the files sent, never in an error message, a log line or run metadata.
    personal: bool = False


@dataclass(frozen=True)
class Window:
    """A closed range of calendar dates, both ends included."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"window ends ({self.end}) before it starts ({self.start})")

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"


@dataclass(frozen=True)
class Entity:
    name: str  # also the file stem (`<name>.jsonl`) and the raw table name
    endpoint: str  # path under the API base URL
    fields: tuple[Field, ...]
    key: tuple[str, ...] = ("id",)
    # How the entity is read:
    #   "full"     - every record, every time (reference data)
    #   "date"     - records whose `window_fields[0]` date lies in the window
    #   "range"    - records whose [window_fields[0], window_fields[1]] overlaps the window
    #   "since_id" - records with id greater than the last one loaded (the change log)
    read: Literal["full", "date", "range", "since_id"] = "full"
    window_fields: tuple[str, ...] = ()

    @property
    def file_name(self) -> str:
        return f"{self.name}.jsonl"

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def required_fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields if f.required)

    def in_window(self, record: dict[str, Any], window: Window) -> bool:
        """Whether a record belongs to `window`, with the same rule the API applies."""
        if self.read == "date":
            return window.start.isoformat() <= record[self.window_fields[0]] <= window.end.isoformat()
        if self.read == "range":
            first, last = self.window_fields
            return record[first] <= window.end.isoformat() and record[last] >= window.start.isoformat()
        return True


def _f(name: str, type_: FieldType = "str", required: bool = True) -> Field:
    return Field(name, type_, required)


def _opt(name: str, type_: FieldType = "str") -> Field:
    return Field(name, type_, required=False)


def _personal(name: str, required: bool = False) -> Field:
    return Field(name, "str", required=required, personal=True)


DEPARTMENTS = Entity(
    "departments",
    "/api/v1/departments",
    (_f("id", "int"), _f("name"), _f("timezone"), _f("coid"), _opt("kronos_department_id")),
)

PERSONNEL = Entity(
    "personnel",
    "/api/v1/personnel",
    (
        _f("id", "int"),
        _personal("first_name"),  # placeholders such as "Cardiology On Call" carry only a last name
        _personal("last_name", required=True),
        _personal("abbreviation"),  # initials, or a short form of the name
        _opt("emp_id"),
        _opt("unique_id"),
        _opt("custom1"),
        _opt("custom2"),
        _opt("custom3"),
        _opt("custom4"),
        _personal("email"),
        _personal("cell_phone"),
        _personal("pager"),
        _f("personnel_type"),
        _f("department_ids", "int_list"),
        _opt("home_coid"),
        _opt("away_coid"),
        _f("is_placeholder", "bool"),
        _f("active", "bool"),
        _f("updated_at", "timestamp"),
    ),
)

ASSIGNMENTS = Entity(
    "assignments",
    "/api/v1/assignments",
    (
        _f("id", "int"),
        _f("department_id", "int"),
        _f("name"),
        _opt("abbreviation"),
        _f("assignment_type"),
        _f("default_start", "time"),
        _f("default_end", "time"),
        _f("active", "bool"),
        _f("updated_at", "timestamp"),
    ),
)

SCHEDULES = Entity(
    "schedules",
    "/api/v1/schedules",
    (
        _f("id", "int"),
        _f("department_id", "int"),
        _f("start_date", "date"),
        _f("end_date", "date"),
        _f("status"),
        _opt("published_at", "timestamp"),
        _f("version", "int"),
    ),
    read="range",
    window_fields=("start_date", "end_date"),
)

SLOTS = Entity(
    "slots",
    "/api/v1/slots",
    (
        _f("id", "int"),
        _f("schedule_id", "int"),
        _f("date", "date"),
        _f("assignment_id", "int"),
        _opt("personnel_id", "int"),  # null: the slot is unfilled
        _f("start_time", "time"),
        _f("end_time", "time"),
        _personal("notes"),  # free text: "Covering for Dr. ..."
        _f("updated_at", "timestamp"),
    ),
    read="date",
    window_fields=("date",),
)

REQUESTS = Entity(
    "requests",
    "/api/v1/requests",
    (
        _f("id", "int"),
        _f("personnel_id", "int"),
        _f("start_date", "date"),
        _f("end_date", "date"),
        _f("request_type"),
        _f("status"),
        _f("created_at", "timestamp"),
        _f("updated_at", "timestamp"),
    ),
    read="range",
    window_fields=("start_date", "end_date"),
)

TALLIES = Entity(
    "tallies",
    "/api/v1/tallies",
    (
        _f("personnel_id", "int"),
        _f("tally_name"),
        _f("period_start", "date"),
        _f("period_end", "date"),
        _f("value", "number"),
    ),
    key=("personnel_id", "tally_name", "period_start"),
    read="range",
    window_fields=("period_start", "period_end"),
)

CHANGE_LOG = Entity(
    "change_log",
    "/api/v1/changelog",
    (
        _f("id", "int"),
        _f("changed_at", "timestamp"),
        _f("user"),
        _f("action"),
        _f("entity"),
        _f("entity_id", "int"),
        _opt("schedule_id", "int"),
        _opt("date", "date"),
        _opt("field"),
        _personal("old_value"),  # a changed name or pager, as much as a changed time
        _personal("new_value"),
    ),
    read="since_id",
)

VIEW_SETTINGS = Entity(
    "view_settings",
    "/api/v1/view_settings",
    (_f("id", "int"), _f("name"), _f("owner"), _f("settings", "json")),
)

ENTITIES: dict[str, Entity] = {
    e.name: e
    for e in (
        DEPARTMENTS,
        PERSONNEL,
        ASSIGNMENTS,
        SCHEDULES,
        SLOTS,
        REQUESTS,
        TALLIES,
        CHANGE_LOG,
        VIEW_SETTINGS,
    )
}

# Writable personnel fields (PATCH /api/v1/personnel/{id}), used by the demographic import.
PATCHABLE_PERSONNEL_FIELDS = (
    "unique_id",
    "custom1",
    "custom2",
    "custom3",
    "custom4",
    "email",
    "cell_phone",
    "pager",
)
