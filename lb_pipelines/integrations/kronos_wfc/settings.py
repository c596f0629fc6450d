"""Kronos Workforce Central: its settings.yaml and its mapping.csv rows.

Kronos WFC takes the hours of people paid by the hour, so the settings say who: the inclusion
matrix lists, for each personnel type, the assignment types whose shifts go to payroll
(a CRNA's shifts and calls, a technician's shifts; no physician). Anything not listed stays out.
Types are the words Lightning Bolt uses, compared without regard to case or surrounding spaces.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator

from lb_pipelines.integrations.settings_base import (
    CommonSettings,
    MappingRow,
    NonEmptyStr,
    PayPeriodSettings,
    PersonnelIdField,
    invalid,
)
from lb_pipelines.validation import Strict


def _folded(value: str) -> str:
    """How types are compared: "crna " is "CRNA"."""
    return value.strip().lower()  # as DuckDB's lower() in the file's SQL


class Inclusion(Strict):
    """One personnel type and the assignment types whose shifts go out for it."""

    personnel_type: NonEmptyStr
    assignment_types: list[NonEmptyStr] = Field(min_length=1)

    @field_validator("assignment_types")
    @classmethod
    def _each_once(cls, types: list[str]) -> list[str]:
        seen: set[str] = set()
        for assignment_type in types:
            if _folded(assignment_type) in seen:
                raise invalid("duplicate", "{type} is listed twice", type=assignment_type)
            seen.add(_folded(assignment_type))
        return types


class KronosWfcSettings(CommonSettings):
    cadence: str = "0 6 * * *"
    personnel_id_field: PersonnelIdField = "emp_id"
    pay_period: PayPeriodSettings
    include: list[Inclusion] = Field(min_length=1)  # the inclusion matrix

    @field_validator("include")
    @classmethod
    def _each_personnel_type_once(cls, entries: list[Inclusion]) -> list[Inclusion]:
        seen: set[str] = set()
        for entry in entries:
            if _folded(entry.personnel_type) in seen:
                raise invalid(
                    "duplicate",
                    "personnel_type {type} has two entries; list all its assignment_types in one",
                    type=entry.personnel_type,
                )
            seen.add(_folded(entry.personnel_type))
        return entries

    @property
    def included_pairs(self) -> list[list[str]]:
        """The matrix as [personnel_type, assignment_type] pairs, folded as the file's SQL compares them."""
        return [
            [_folded(entry.personnel_type), _folded(assignment_type)]
            for entry in self.include
            for assignment_type in entry.assignment_types
        ]


class KronosWfcMappingRow(MappingRow):
    """Columns of mapping.csv: the Kronos pay code an assignment's hours are paid under."""

    # One shift is paid once: a second row would send the same hours twice.
    ONE_ROW_PER_ASSIGNMENT: ClassVar[bool] = True

    pay_code: NonEmptyStr
