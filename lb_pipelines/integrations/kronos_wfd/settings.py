"""Kronos (UKG) Workforce Dimensions: its settings.yaml and its mapping.csv rows.

One row per assignment. A row's comment must be one of the settings' `valid_comments` (the
comments UKG Dimensions knows), otherwise the configuration is refused at load; so rows are
validated with the settings in pydantic's validation context: `context={"settings": ...}`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from lb_pipelines.integrations.settings_base import (
    CommonSettings,
    MappingRow,
    NonEmptyStr,
    PayPeriodSettings,
    PersonnelIdField,
    invalid,
)

LABOR_CATEGORY_SEPARATOR = ";"  # between entries inside one mapping.csv cell
MAX_LABOR_CATEGORIES = 6
_TRUE, _FALSE = {"true", "yes", "y", "1"}, {"false", "no", "n", "0"}


class KronosWfdSettings(CommonSettings):
    cadence: str = "0 6 * * *"
    personnel_id_field: PersonnelIdField = "emp_id"
    pay_period: PayPeriodSettings
    valid_comments: list[NonEmptyStr] = Field(min_length=1)
    labor_category_delimiter: str = Field("|", min_length=1, max_length=3)


def _settings(info: ValidationInfo) -> KronosWfdSettings:
    settings = (info.context or {}).get("settings")
    if not isinstance(settings, KronosWfdSettings):
        raise TypeError("validate Kronos WFD mapping rows with context={'settings': KronosWfdSettings}")
    return settings


class KronosWfdMappingRow(MappingRow):
    """Columns of mapping.csv, in the vendor's words (UKG Dimensions shift segment properties)."""

    ONE_ROW_PER_ASSIGNMENT: ClassVar[bool] = True
    REFUSED_AT_LOAD: ClassVar[frozenset[str]] = frozenset({"lb_invalid_comment"})

    segment_type: Literal["REQUIRED", "TRANSFER", "BREAK"]
    work_rule_transfer: str | None = None
    pay_code_edit: str | None = None
    open_shift: bool = False  # create an Open Shift in Kronos when our shift overwrites one
    business_structure: str | None = None  # job transfer
    cost_center_transfer: str | None = None
    labor_categories: list[NonEmptyStr] = Field(default_factory=list, max_length=MAX_LABOR_CATEGORIES)
    comment: NonEmptyStr

    @field_validator("segment_type", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("open_shift", mode="before")
    @classmethod
    def _yes_no(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        word = value.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise invalid("bool", "{value} is not true or false (also yes/no, y/n, 1/0)", value=value)

    @field_validator("labor_categories", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [entry.strip() for entry in value.split(LABOR_CATEGORY_SEPARATOR) if entry.strip()]
        return value

    @field_validator("labor_categories")
    @classmethod
    def _no_delimiter_inside(cls, entries: list[str], info: ValidationInfo) -> list[str]:
        delimiter = _settings(info).labor_category_delimiter
        for entry in entries:
            if delimiter in entry:
                raise invalid(
                    "delimiter",
                    "{entry} contains the labor category delimiter {delimiter}; "
                    f"separate entries in this cell with {LABOR_CATEGORY_SEPARATOR!r}",
                    entry=entry,
                    delimiter=delimiter,
                )
        return entries

    @field_validator("comment")
    @classmethod
    def _valid_comment(cls, comment: str, info: ValidationInfo) -> str:
        valid = _settings(info).valid_comments
        if comment not in valid:
            listing = ", ".join(repr(c) for c in valid)
            raise invalid(
                "invalid_comment", "{comment} is not one of the valid comments in settings.yaml: " + listing,
                comment=comment,
            )
        return comment
