"""AnesthesiaGo's settings: the common keys with its defaults (daily at 05:15, today to today + 14,
the person's Lightning Bolt employee id), its API's base URL and the background user's API token
(an environment variable's name, read only when a request is sent), and a mapping that only says
which assignments pass through.
"""

from __future__ import annotations

from typing import ClassVar, Optional

from lb_pipelines.delivery.settings import PushDelivery
from lb_pipelines.integrations.settings_base import CommonSettings, MappingRow, PersonnelIdField, WindowSettings


class AnesthesiaGoDelivery(PushDelivery):
    """AnesthesiaGo's schedule API with a bearer token (by environment variable name)."""

    base_url: Optional[str] = None  # e.g. https://<your AnesthesiaGo host>/api; /schedule/<date> is appended
    token_env: Optional[str] = None  # the environment variable holding the background user's API token

    def connection_keys(self) -> tuple[str, ...]:
        return ("base_url", "token_env")


class AnesthesiaGoSettings(CommonSettings):
    cadence: str = "15 5 * * *"  # daily, before the OR day is planned; every relevant change also pushes
    window: WindowSettings = WindowSettings(days_back=0, days_forward=14)
    personnel_id_field: PersonnelIdField = "emp_id"  # sent as the provider's emp_id
    delivery: AnesthesiaGoDelivery = AnesthesiaGoDelivery()


class AnesthesiaGoMappingRow(MappingRow):
    """An assignment whose providers AnesthesiaGo receives; the row says nothing more."""

    ONE_ROW_PER_ASSIGNMENT: ClassVar[bool] = True  # a provider is sent once per slot
