"""New Innovations duty hours: its settings.yaml and its mapping.csv rows.

The file reaches back `window.days_back` days and forward as far as anything is published, so
its window has no `days_forward`. One row per assignment: New Innovations logs one duty-hour
entry per shift.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_validator

from lb_pipelines.integrations.settings_base import (
    CommonSettings,
    MappingRow,
    NonEmptyStr,
    PersonnelIdField,
    invalid,
)
from lb_pipelines.validation import Strict


class BackWindow(Strict):
    """Which published slots go out: from today − days_back on, every later one the warehouse holds."""

    days_back: int = Field(ge=0)

    @model_validator(mode="before")
    @classmethod
    def _no_forward_edge(cls, value: Any) -> Any:
        if isinstance(value, dict) and "days_forward" in value:
            raise invalid(
                "no_forward_edge",
                "New Innovations has no forward edge (every later published slot goes out): "
                "remove days_forward {days_forward}",
                days_forward=value["days_forward"],
            )
        return value


class NewInnovationsSettings(CommonSettings):
    cadence: str = "30 5 * * *"
    # Two weeks back: a coordinator's late correction to last week's schedule still reaches the
    # residents' duty-hour logs. Keep it within the raw load's window (LB_WINDOW_DAYS_BACK).
    window: BackWindow = BackWindow(days_back=14)  # type: ignore[assignment]
    personnel_id_field: PersonnelIdField = "unique_id"


class NewInnovationsMappingRow(MappingRow):
    """Columns of mapping.csv: which New Innovations duty hour an assignment's shifts are logged as."""

    ONE_ROW_PER_ASSIGNMENT: ClassVar[bool] = True

    duty_hour_name: NonEmptyStr  # the duty-hour type New Innovations logs the shift as
    ni_assignment_name: str | None = None  # ASSIGNMENT_NAME; empty: the Lightning Bolt assignment's name
    notes: str | None = None  # fixed text put before the slot's own notes in NOTES
    location: str | None = None  # the site or unit, as New Innovations names it
