"""Epic OpTime: its settings.yaml and its mapping.csv rows.

OpTime shows the OR snapboard which providers are scheduled, by facility (import group) and
Epic resource type. Hospitals keep each provider's Epic SER id in a Lightning Bolt custom
field (custom1 by default), as for Epic On-Call Finder. One row per assignment: a slot is one
provider working one resource type, and a second row would put the same provider into OpTime
twice for the same hours.
"""

from __future__ import annotations

import functools
import zoneinfo
from typing import ClassVar

from pydantic import field_validator

from lb_pipelines.integrations.settings_base import (
    CommonSettings,
    MappingRow,
    NonEmptyStr,
    PersonnelIdField,
    WindowSettings,
    invalid,
)


class EpicOpTimeSettings(CommonSettings):
    cadence: str = "0 * * * *"
    window: WindowSettings = WindowSettings(days_back=0, days_forward=14)
    personnel_id_field: PersonnelIdField = "custom1"


@functools.cache
def iana_time_zones() -> frozenset[str]:
    """The IANA zone names this machine knows. `localtime` is the machine's own zone, not a name."""
    return frozenset(zoneinfo.available_timezones() - {"localtime"})


class EpicOpTimeMappingRow(MappingRow):
    """Columns of mapping.csv: where in OpTime (import group, resource type) an assignment's slots go."""

    ONE_ROW_PER_ASSIGNMENT: ClassVar[bool] = True

    import_group: NonEmptyStr  # links the assignment to a facility in Epic
    resource_type_id: NonEmptyStr  # the Epic resource type (e.g. the CRNA resource type for CRNA shifts)
    role: str | None = None  # an Epic "Role", customized for each Epic customer
    timezone: str | None = None  # START/END in this zone (facilities in several zones); empty: local

    @field_validator("timezone")
    @classmethod
    def _iana_name(cls, name: str | None) -> str | None:
        if name is not None and name not in iana_time_zones():
            raise invalid(
                "timezone",
                "{name} is not an IANA time zone name (such as America/Chicago; the case matters); "
                "leave the cell empty for the department's own time",
                name=name,
            )
        return name
