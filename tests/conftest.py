"""Shared fixtures: an isolated environment per test, so nothing touches the repo's data/."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests import tiny_system

from tiny_system import write_system  # noqa: E402
pytest_plugins = ["sshd", "postgres_server", "smtp_server"]

PINNED_NOW = "2026-11-02T12:00:00-06:00"


@pytest.fixture
def lb_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every LB_* path under tmp_path, the clock pinned, no API configured."""
    for var in ("LB_API_URL", "LB_CLIENT_ID", "LB_CLIENT_SECRET", "LB_WINDOW_DAYS_BACK", "LB_WINDOW_DAYS_FORWARD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LB_NOW", PINNED_NOW)
    monkeypatch.setenv("LB_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("LB_OUTBOX_DIR", str(tmp_path / "outbox"))
    monkeypatch.setenv("LB_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    (tmp_path / "dagster_home").mkdir()
    monkeypatch.setenv("LB_SOURCE_DIR", str(tmp_path / "source"))
    return tmp_path


@pytest.fixture
def tiny_source(lb_env: Path) -> Path:
    return write_system(lb_env / "source")
