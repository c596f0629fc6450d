"""The BI read path: after each build, a copy of the warehouse that BI users read.

DuckDB lets one process write a file and, while it does, no other process may even open it
read-only. BI users therefore never open the live warehouse: they read `warehouse.duckdb`
(and `parquet/<mart>.parquet`) in the BI folder, replaced atomically after every build, so a
query never blocks the pipeline, is never blocked by it, and never sees a half-built state.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from lb_pipelines.temp_files import remove_leftovers, temporary_path
from lb_pipelines.warehouse.sql import identifier, string_literal

log = logging.getLogger(__name__)

PUBLISHED_NAME = "warehouse.duckdb"
PUBLISHED_SCHEMAS = ("marts", "snapshots")
PARQUET_SCHEMA = "marts"  # every table and view in it gets a Parquet file


@dataclass
class Published:
    database: Path
    parquet: list[Path]
    bytes: int
    seconds: float
    removed_leftovers: list[Path] = field(default_factory=list)  # temporaries of killed publishes
    removed_parquet: list[Path] = field(default_factory=list)  # Parquet files of marts that no longer exist


def _replace_atomically(tmp: Path, final: Path) -> None:
    os.chmod(tmp, 0o444)  # a read-only copy: BI tools must not write to it
    os.replace(tmp, final)  # readers holding the old file keep reading it to the end


def publish_for_bi(warehouse: Path, bi_dir: Path) -> Published:
    """Copy the warehouse and export every mart to Parquet, each replaced in one rename."""
    started = time.perf_counter()
    parquet_dir = bi_dir / "parquet"
    parquet_dir.mkdir(parents=True, exist_ok=True)
    tmp_db = temporary_path(bi_dir / PUBLISHED_NAME)
    written: list[Path] = []
    # Holding a connection holds DuckDB's file lock: no other process writes while we copy.
    with duckdb.connect(str(warehouse)) as conn:
        # ...nor publishes this warehouse, so a temporary of ours here is a killed publish's.
        leftovers = _remove_leftovers(bi_dir, parquet_dir)
        conn.execute("CHECKPOINT")  # everything in the main file, nothing left in the WAL
        try:
            shutil.copyfile(warehouse, tmp_db)
            marts = [
                name
                for (name,) in conn.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_catalog = current_database() AND table_schema = ? ORDER BY 1",
                    [PARQUET_SCHEMA],
                ).fetchall()
            ]
            for mart in marts:
                final = parquet_dir / f"{mart}.parquet"
                tmp = temporary_path(final)
                source = f"{identifier(PARQUET_SCHEMA)}.{identifier(mart)}"
                try:
                    conn.execute(f"COPY (SELECT * FROM {source}) TO {string_literal(tmp)} (FORMAT parquet)")
                    _replace_atomically(tmp, final)
                finally:
                    tmp.unlink(missing_ok=True)
                written.append(final)
            database = bi_dir / PUBLISHED_NAME
            _replace_atomically(tmp_db, database)
        finally:
            tmp_db.unlink(missing_ok=True)
        dropped = _remove_dropped_marts(parquet_dir, {path.name for path in written})
    if leftovers or dropped:
        log.info(
            "BI publish removed %d leftover temporary file(s) and the Parquet of %d dropped mart(s): %s",
            len(leftovers), len(dropped), ", ".join(path.name for path in leftovers + dropped),
        )
    return Published(
        database, written, database.stat().st_size, time.perf_counter() - started, leftovers, dropped
    )


def _remove_leftovers(bi_dir: Path, parquet_dir: Path) -> list[Path]:
    """The temporaries a killed publish left: ours, since the caller holds the warehouse's lock."""
    removed = remove_leftovers(bi_dir, ours=lambda final: final == PUBLISHED_NAME, own_pid_too=True)
    removed += remove_leftovers(parquet_dir, ours=lambda final: final.endswith(".parquet"), own_pid_too=True)
    for old in parquet_dir.glob(".*.parquet.tmp"):  # named without a pid by earlier versions
        old.unlink(missing_ok=True)
        removed.append(old)
    return removed


def _remove_dropped_marts(parquet_dir: Path, current: set[str]) -> list[Path]:
    dropped = [
        path
        for path in parquet_dir.glob("*.parquet")
        if path.name not in current and not path.name.startswith(".") and path.is_file()
    ]
    for path in dropped:
        path.unlink(missing_ok=True)
    return dropped
