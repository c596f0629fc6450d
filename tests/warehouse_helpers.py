"""Build a warehouse from a hand-made system and run dbt on it, as the pipeline does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb

from lb_pipelines import settings
from lb_pipelines.delivery.ledger import ensure_delivery_tables
from lb_pipelines.integrations.registry import integrations
from lb_pipelines.lightning_bolt.source.contract import ENTITIES
from lb_pipelines.lightning_bolt.source.directory import DirectorySource
from lb_pipelines.warehouse.raw_load import load_entity
from tiny_system import write_system

DBT = Path(sys.executable).parent / "dbt"


def load_system(folder: Path, system: dict[str, list[dict[str, Any]]], warehouse: Path) -> Path:
    """Write `system` as a directory source under `folder` and load all of it into `warehouse`."""
    source = DirectorySource(write_system(folder, system))
    with duckdb.connect(str(warehouse)) as conn:
        for entity in ENTITIES:
            load_entity(conn, source, entity)
        for declared in integrations().values():  # every integration off: empty config tables for dbt
            declared.write_config(conn, None)
        ensure_delivery_tables(conn)  # as the dbt asset does: the ledger views read them
    return warehouse


def run_dbt(warehouse: Path, *args: str) -> subprocess.CompletedProcess:
    """Run dbt on `warehouse`; fails the test with dbt's output if dbt fails."""
    target = warehouse.parent / "dbt_target"
    env = os.environ | {"LB_WAREHOUSE": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    done = subprocess.run(
        [str(DBT), *args, "--project-dir", str(settings.DBT_PROJECT_DIR),
         "--profiles-dir", str(settings.DBT_PROJECT_DIR), "--target-path", str(target),
         "--log-path", str(target)],
        capture_output=True, text=True, env=env, cwd=settings.DBT_PROJECT_DIR, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    return done


def query(warehouse: Path, sql: str, params: Any = None) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.execute(sql, params).fetchall()
