"""The settings every integration shares, and the base of each integration's mapping rows.

Each integration subclasses `CommonSettings` (with its own defaults and options) and, when it
has a mapping.csv, `MappingRow` (with its columns). Validation errors name the key and the
value in the words of someone editing the file.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from lb_pipelines.delivery.settings import Delivery, OutboxDelivery
from lb_pipelines.validation import NonEmptyStr, Strict, invalid, is_valid_cron

__all__ = [
    "AlertSettings", "CommonSettings", "MappingRow", "NonEmptyStr", "PayPeriodSettings",
    "PersonnelIdField", "WindowSettings", "invalid",
]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


class WindowSettings(Strict):
    """Which slots leave the system: today − days_back to today + days_forward, both included."""

    days_back: int = Field(ge=0)
    days_forward: int = Field(ge=0)


class AlertSettings(Strict):
    """Who hears about problems and failures: one e-mail per integration run."""

    to: list[str] = Field(default_factory=list)

    @field_validator("to")
    @classmethod
    def _plausible_addresses(cls, addresses: list[str]) -> list[str]:
        for address in addresses:
            if not _EMAIL.match(address):
                raise invalid("email", "{address} is not a plausible e-mail address", address=address)
        return addresses


class PayPeriodSettings(Strict):
    """Fixed-length pay periods counted from an anchor date (the first day of any period)."""

    anchor: dt.date
    length_days: int = Field(14, ge=1, le=31)


PersonnelIdField = Literal["unique_id", "custom1", "custom2", "custom3", "custom4", "emp_id"]


class CommonSettings(Strict):
    """The keys every integration's settings.yaml shares; each integration subclasses it with its defaults."""

    enabled: bool = True
    cadence: str  # cron, exactly as a Dagster schedule accepts it
    window: WindowSettings = WindowSettings(days_back=0, days_forward=30)
    personnel_id_field: PersonnelIdField = "unique_id"
    delivery: Delivery = OutboxDelivery()
    alerts: AlertSettings = AlertSettings()

    @property
    def change_days_back(self) -> int:
        """How far back a schedule change still concerns this integration (the change-log sensor)."""
        return self.window.days_back

    @field_validator("cadence")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not is_valid_cron(value):
            raise invalid("cron", "{value} is not a valid cron expression", value=value)
        return value

    @field_validator("window", mode="before")
    @classmethod
    def _window_over_defaults(cls, value: Any) -> Any:
        """`window: {days_back: 2}` keeps the integration's own days_forward."""
        default = cls.model_fields["window"].default
        if isinstance(value, dict) and isinstance(default, WindowSettings):
            return default.model_dump() | value
        return value


class MappingRow(BaseModel):
    """One row of an integration's mapping.csv; each integration subclasses it with its columns."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    ONE_ROW_PER_ASSIGNMENT: ClassVar[bool] = False  # True where the vendor allows no one-to-many
    # Kinds of error (pydantic error types) that refuse the whole file instead of skipping the row.
    REFUSED_AT_LOAD: ClassVar[frozenset[str]] = frozenset()

    assignment_id: int = Field(gt=0)
    _mapping_line: int | None = PrivateAttr(None)

    @property
    def mapping_line(self) -> int | None:
        """The physical line of mapping.csv this row came from."""
        return self._mapping_line

    @classmethod
    def columns(cls) -> list[str]:
        return list(cls.model_fields)

    @classmethod
    def required_columns(cls) -> list[str]:
        return [name for name, info in cls.model_fields.items() if info.is_required()]
