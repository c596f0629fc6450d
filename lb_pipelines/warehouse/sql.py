"""Quoting for the few SQL texts built from names and paths (values always go as parameters)."""

from __future__ import annotations

from pathlib import Path


def string_literal(value: str | Path) -> str:
    """A SQL string literal, for the places DuckDB takes no parameter (COPY ... TO, read_parquet)."""
    return "'" + str(value).replace("'", "''") + "'"


def identifier(name: str) -> str:
    """A quoted SQL identifier: file column names such as "END" are keywords."""
    return '"' + name.replace('"', '""') + '"'
