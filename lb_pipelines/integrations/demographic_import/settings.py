"""Settings of the demographic import: which column is the key, which fields it may change, where
files arrive, and whether the changes are sent (PATCH) or only written down (dry run)."""

from __future__ import annotations

from typing import Annotated, Literal, Union

import phonenumbers
from pydantic import Field, field_validator, model_validator

from lb_pipelines.integrations.inbound import FolderInbound, Inbound
from lb_pipelines.integrations.settings_base import CommonSettings, invalid
from lb_pipelines.lightning_bolt.source.contract import PATCHABLE_PERSONNEL_FIELDS
from lb_pipelines.validation import Strict

UpdatableField = Literal["unique_id", "custom1", "custom2", "custom3", "custom4", "email", "cell_phone", "pager"]
assert set(UpdatableField.__args__) == set(PATCHABLE_PERSONNEL_FIELDS)


class HttpPatch(Strict):
    """PATCH /api/v1/personnel/{id} through the Lightning Bolt API client (LB_API_URL and its credentials)."""

    type: Literal["http"]


class DryRunPatch(Strict):
    """Write the PATCHes that would be sent and the report to the outbox; apply and move nothing."""

    type: Literal["dry_run"] = "dry_run"


class DemographicImportSettings(CommonSettings):
    # A sweep for files the sensor did not start (a failed run's file is tried again here).
    cadence: str = "15 * * * *"
    personnel_id_field: Literal["unique_id", "custom1", "custom2", "custom3", "custom4", "emp_id"] = "unique_id"
    update_fields: list[UpdatableField] = Field(default_factory=lambda: ["email", "cell_phone", "pager"], min_length=1)
    inbound: Inbound = FolderInbound()
    delivery: Annotated[Union[HttpPatch, DryRunPatch], Field(discriminator="type")] = DryRunPatch()  # type: ignore[assignment]
    phone_region: str = "US"  # how a number without +country code is read
    phone_format: Literal["dashed", "e164", "national", "international"] = "dashed"  # 312-555-0111

    @field_validator("phone_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise invalid("region", "{value} is not a region code phone numbers know (e.g. US, CA, GB)", value=value)
        return value.upper()

    @field_validator("update_fields")
    @classmethod
    def _each_once(cls, fields: list[str]) -> list[str]:
        twice = sorted({f for f in fields if fields.count(f) > 1})
        if twice:
            raise invalid("duplicate", "{twice} listed more than once", twice=", ".join(twice))
        return fields

    @model_validator(mode="after")
    def _key_not_updated(self) -> "DemographicImportSettings":
        if self.personnel_id_field in self.update_fields:
            raise ValueError(
                f"update_fields must not include the key column {self.personnel_id_field} (personnel_id_field): "
                "a row is matched on it"
            )
        return self
