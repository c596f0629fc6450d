"""Enterprise data warehouse zip: only the common settings; it sends everything, so no mapping."""

from __future__ import annotations

from lb_pipelines.integrations.settings_base import CommonSettings


class EdwSettings(CommonSettings):
    cadence: str = "0 2 * * *"
