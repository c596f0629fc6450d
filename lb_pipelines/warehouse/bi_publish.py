"""The BI read path: after each build, a copy of the warehouse that BI users read.

DuckDB lets one process write a file and, while it does, no other process may even open it
read-only. BI users therefore never open the live warehouse: they read `warehouse.duckdb`
(and `parquet/<mart>.parquet`) in the BI folder, replaced atomically after every build, so a
query never blocks the pipeline, is never blocked by it, and never sees a half-built state.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

PUBLISHED_NAME = "warehouse.duckdb"
PUBLISHED_SCHEMAS = ("marts", "snapshots")


@dataclass
class Published:
    database: Path
    parquet: list[Path]
    bytes: int
    seconds: float


def _replace_atomically(tmp: Path, final: Path) -> None:
    os.chmod(tmp, 0o444)  # a read-only copy: BI tools must not write to it
    os.replace(tmp, final)  # readers holding the old file keep reading it to the end


def publish_for_bi(warehouse: Path, bi_dir: Path) -> Published:
    """Copy the warehouse and export every mart to Parquet, each replaced in one rename."""
    started = time.perf_counter()
    parquet_dir = bi_dir / "parquet"
    parquet_dir.mkdir(parents=True, exist_ok=True)
    tmp_db = bi_dir / f".{PUBLISHED_NAME}.{os.getpid()}.tmp"
    written: list[Path] = []
    # Holding a connection holds DuckDB's file lock: no other process writes while we copy.
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("CHECKPOINT")  # everything in the main file, nothing left in the WAL
        shutil.copyfile(warehouse, tmp_db)
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'marts' AND table_type = 'BASE TABLE' ORDER BY 1"
        ).fetchall()
        for (table,) in tables:
            final = parquet_dir / f"{table}.parquet"
            tmp = parquet_dir / f".{table}.parquet.tmp"
            conn.execute(f"COPY marts.\"{table}\" TO '{tmp}' (FORMAT parquet)")
            _replace_atomically(tmp, final)
            written.append(final)
    database = bi_dir / PUBLISHED_NAME
    _replace_atomically(tmp_db, database)
    return Published(database, written, database.stat().st_size, time.perf_counter() - started)
