"""Epic On-Call Finder: its settings.yaml and its mapping.csv rows.

Hospitals keep the Epic SER id of each provider in a Lightning Bolt custom field (custom1 by
default). An assignment may feed several Epic teams, so one assignment may have several rows.
"""

from __future__ import annotations

from pydantic import Field

from lb_pipelines.integrations.settings_base import (
    CommonSettings,
    MappingRow,
    NonEmptyStr,
    PersonnelIdField,
    WindowSettings,
)


class EpicOnCallFinderSettings(CommonSettings):
    cadence: str = "*/5 * * * *"  # plus a run on every relevant change
    window: WindowSettings = WindowSettings(days_back=1, days_forward=30)
    personnel_id_field: PersonnelIdField = "custom1"


class EpicOnCallFinderMappingRow(MappingRow):
    """Columns of mapping.csv: which Epic team (and role, call order) an assignment's slots fill."""

    epic_team_id: NonEmptyStr  # links the assignment to a team (facility) in Epic
    team_name: str | None = None  # optional, makes the mapping easier to search
    role: str | None = None  # an Epic "Role", customized for each Epic customer
    note_prefix: str | None = None  # fixed text put before the slot's notes in NOTES
    team_comment: str | None = None  # the banner across the top of the team's page
    call_order: int = Field(1, ge=1)  # the order in which on-call providers are contacted
