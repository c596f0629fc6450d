"""TigerConnect: its settings.yaml (the scheduler CSV webhook's connection) and its mapping.csv rows.

The window looks at most 30 days forward (TigerConnect's recommended maximum): a longer window is
refused at load, naming the key. The credentials are environment variables' names, read only when
a request is sent.
"""

from __future__ import annotations

from typing import Optional

from pydantic import Field, field_validator

from lb_pipelines.delivery.settings import PushDelivery
from lb_pipelines.integrations.settings_base import (
    CommonSettings,
    MappingRow,
    NonEmptyStr,
    PersonnelIdField,
    WindowSettings,
    invalid,
)

MAX_DAYS_FORWARD = 30  # TigerConnect's recommended maximum


class TigerConnectWindow(WindowSettings):
    """The common window, with days_forward capped at TigerConnect's maximum."""

    @field_validator("days_forward")
    @classmethod
    def _at_most_30_days_forward(cls, value: int) -> int:
        if value > MAX_DAYS_FORWARD:
            raise invalid(
                "window_cap",
                "{value} days is more than TigerConnect's maximum of 30; use 30 or less",
                value=value,
            )
        return value


class TigerConnectDelivery(PushDelivery):
    """TigerConnect's scheduler CSV webhook with HTTP Basic credentials (both by env name)."""

    base_url: Optional[str] = None  # the TigerConnect API host, e.g. https://<host>; no trailing path
    username_env: Optional[str] = None  # the environment variable holding the integration's username
    password_env: Optional[str] = None  # the environment variable holding its password
    group_id: Optional[str] = None  # the organization key (sent as TT-X-Organization-Key)
    integration_id: Optional[str] = None  # the scheduler integration's id (TT-X-Integration-Id)
    max_in_flight: int = Field(1, ge=1, le=16)  # uploads at once per time zone

    def connection_keys(self) -> tuple[str, ...]:
        return ("base_url", "username_env", "password_env", "group_id", "integration_id")


class TigerConnectSettings(CommonSettings):
    cadence: str = "*/10 * * * *"  # every 10 minutes; every relevant change also pushes at once
    window: TigerConnectWindow = TigerConnectWindow(days_back=0, days_forward=30)
    personnel_id_field: PersonnelIdField = "unique_id"  # where the person's TigerConnect id lives
    delivery: TigerConnectDelivery = TigerConnectDelivery()


class TigerConnectMappingRow(MappingRow):
    """Which TigerConnect job token an assignment's slots fill. One assignment may feed several
    job tokens (one row each), and one job token may be fed by several assignments."""

    job_token: NonEmptyStr
