"""Schedule backup: its settings.yaml. It backs up everything, so there is no mapping.csv.

The backup is what a unit reads when Lightning Bolt cannot be reached (downtime), so every
published slot goes out, of every assignment. A hospital that keeps one backup per site may
name the departments it wants; by default every department is in it.
"""

from __future__ import annotations

from pydantic import Field, PositiveInt, field_validator

from lb_pipelines.integrations.settings_base import CommonSettings, WindowSettings, invalid


class ScheduleBackupSettings(CommonSettings):
    cadence: str = "0 5 * * *"  # daily; "*/10 * * * *" keeps the backup at most ten minutes old
    window: WindowSettings = WindowSettings(days_back=0, days_forward=3)
    # Lightning Bolt department ids to back up; empty (the default) backs up every department.
    departments: list[PositiveInt] = Field(default_factory=list)

    @field_validator("departments")
    @classmethod
    def _each_once(cls, ids: list[int]) -> list[int]:
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise invalid("duplicate", "department {ids} is listed more than once", ids=repeated[0])
        return ids
