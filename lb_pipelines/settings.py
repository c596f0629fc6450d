"""Where things are: every path and switch of the interface spec, read from the environment.

Defaults keep everything inside the repo's `data/` folder so `make run` works on a fresh clone.
Read lazily (functions, not constants) so a test or a CLI can set the environment first.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT / "data"
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"

# How far around today the raw load reads windowed entities (slots, schedules, requests,
# tallies) when a run does not name its own window. Wide enough for every integration's
# default window and the current and previous pay periods. Forward is a floor, not a limit:
# the window reaches on to the last day of any schedule the source lists
# (`warehouse.raw_assets.default_window`).
DEFAULT_WINDOW_DAYS_BACK = 90
DEFAULT_WINDOW_DAYS_FORWARD = 180


def _path(var: str, default: Path) -> Path:
    value = os.environ.get(var, "").strip()
    return Path(value).expanduser().resolve() if value else default


def source_dir() -> Path:
    return _path("LB_SOURCE_DIR", DATA_DIR / "sample")


def api_url() -> str | None:
    return os.environ.get("LB_API_URL", "").strip() or None


def config_dir() -> Path:
    return _path("LB_CONFIG_DIR", DATA_DIR / "config")


def warehouse_path() -> Path:
    return _path("LB_WAREHOUSE", DATA_DIR / "warehouse.duckdb")


def bi_dir() -> Path:
    """Where BI users read: a published copy of the warehouse and Parquet per mart."""
    return _path("LB_BI_DIR", DATA_DIR / "bi")


def outbox_dir() -> Path:
    return _path("LB_OUTBOX_DIR", DATA_DIR / "outbox")


def inbound_dir() -> Path:
    """Where other systems drop files for us: one folder per inbound integration (the demographic import)."""
    return _path("LB_INBOUND_DIR", DATA_DIR / "inbound")


def dagster_home() -> Path:
    return _path("DAGSTER_HOME", DATA_DIR / "dagster_home")


def _int(var: str, default: int) -> int:
    value = os.environ.get(var, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{var}={value!r} is not a whole number of days") from None
    if number < 0:
        raise ValueError(f"{var}={value!r} must not be negative")
    return number


def window_days_back() -> int:
    return _int("LB_WINDOW_DAYS_BACK", DEFAULT_WINDOW_DAYS_BACK)


def window_days_forward() -> int:
    return _int("LB_WINDOW_DAYS_FORWARD", DEFAULT_WINDOW_DAYS_FORWARD)


# The bundled sample's home zone (its as-of time is US Central); cron times are read in it
# unless LB_SCHEDULE_TIMEZONE names another.
DEFAULT_SCHEDULE_TIMEZONE = "America/Chicago"
_ON, _OFF = {"on", "true", "yes", "1"}, {"off", "false", "no", "0", ""}


def automation_on() -> bool:
    """`LB_AUTOMATION=on`: schedules and sensors start RUNNING. Off by default, so that opening
    the UI on a laptop (`make dev`) delivers nothing by itself; production turns it on."""
    value = os.environ.get("LB_AUTOMATION", "").strip().lower()
    if value not in _ON | _OFF:
        raise ValueError(f"LB_AUTOMATION={value!r} is neither on nor off")
    return value in _ON


def schedule_timezone() -> str:
    """The IANA zone cadence crons are read in (`LB_SCHEDULE_TIMEZONE`)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    zone = os.environ.get("LB_SCHEDULE_TIMEZONE", "").strip() or DEFAULT_SCHEDULE_TIMEZONE
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"LB_SCHEDULE_TIMEZONE={zone!r} is not an IANA time zone (e.g. America/Chicago)") from None
    return zone
