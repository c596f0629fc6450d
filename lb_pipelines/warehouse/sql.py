"""Quoting for the few SQL texts built from names and paths (values always go as parameters),
and files DuckDB writes itself (COPY), so no row passes through Python."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any, Iterator


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


@contextlib.contextmanager
def insertion_order_kept(conn: Any) -> Iterator[None]:
    """Rows leave COPY in ORDER BY order only while DuckDB preserves insertion order."""
    preserving = conn.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0]
    conn.execute("SET preserve_insertion_order = true")
    try:
        yield
    finally:
        conn.execute(f"SET preserve_insertion_order = {'true' if preserving else 'false'}")


def csv_file(conn: Any, select: str, params: Any = None) -> tuple[bytes, int]:
    """(bytes, rows) of `select` as RFC 4180 CSV: a header, CRLF line ends, quotes only where
    needed, UTF-8, NULL as an empty cell. DuckDB writes it (COPY), so no row passes through Python."""
    with insertion_order_kept(conn):
        return copied_bytes(conn, select, "FORMAT csv, HEADER, DELIMITER ',', QUOTE '\"', NEW_LINE '\r\n'", params)
