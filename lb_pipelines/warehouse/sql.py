"""Quoting for the few SQL texts built from names and paths (values always go as parameters)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any


def string_literal(value: str | Path) -> str:
    """A SQL string literal, for the places DuckDB takes no parameter (COPY ... TO, read_parquet)."""
    return "'" + str(value).replace("'", "''") + "'"


def identifier(name: str) -> str:
    """A quoted SQL identifier: file column names such as "END" are keywords."""
    return '"' + name.replace('"', '""') + '"'


def copied_bytes(conn: Any, select: str, options: str, params: Any = None) -> tuple[bytes, int]:
    """(bytes, rows) of `COPY (select) TO <a temporary file> (options)`: DuckDB writes the file."""
    with tempfile.TemporaryDirectory(prefix="lb_copy_") as tmp:
        path = Path(tmp) / "copy"
        rows = conn.execute(f"COPY ({select}) TO {string_literal(path)} ({options})", params).fetchall()[0][0]
        return path.read_bytes(), rows
