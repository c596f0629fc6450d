"""Outlook: its settings.yaml (Microsoft Graph connection) and its mapping.csv rows (four switches)."""

from __future__ import annotations

from typing import Optional

from pydantic import Field

from lb_pipelines.delivery.settings import PushDelivery
from lb_pipelines.integrations.settings_base import CommonSettings, MappingRow, PersonnelIdField, WindowSettings


class GraphDelivery(PushDelivery):
    """Microsoft Graph v1.0 with an app registration's client credentials (secret by env name)."""

    base_url: str = "https://graph.microsoft.com/v1.0"
    token_url: Optional[str] = None  # https://login.microsoftonline.com/<tenant id>/oauth2/v2.0/token
    client_id: Optional[str] = None
    client_secret_env: Optional[str] = None  # the environment variable holding the client secret
    scope: str = "https://graph.microsoft.com/.default"
    batch_size: int = Field(20, ge=1, le=20)  # Graph's $batch takes at most 20 requests
    max_in_flight: int = Field(4, ge=1, le=4)  # Graph's mailbox concurrency limit

    def connection_keys(self) -> tuple[str, ...]:
        return ("token_url", "client_id", "client_secret_env")


class OutlookSettings(CommonSettings):
    cadence: str = "0 * * * *"  # the hourly reconcile; every relevant change also pushes at once
    window: WindowSettings = WindowSettings(days_back=0, days_forward=60)
    personnel_id_field: PersonnelIdField = "unique_id"  # the person's UPN or Entra object id
    delivery: GraphDelivery = GraphDelivery()


class OutlookMappingRow(MappingRow):
    """Which assignments reach Outlook, and what their events say (one row per assignment)."""

    ONE_ROW_PER_ASSIGNMENT = True  # one event per slot and person

    send_to_outlook: bool = True
    include_schedule_notes: bool = False  # the slot's notes in the event body
    include_assignment_info: bool = True  # the assignment and department in the event body
    send_as_free: bool = False  # false: the event shows the person busy
