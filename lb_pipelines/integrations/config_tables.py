"""An integration's configuration in the warehouse, where dbt models join the mapping to the slots.

`config.integration_settings` holds one row per integration (its settings as JSON);
`config.<slug>__mapping` holds its mapping rows, typed from the integration's row model.
"""

from __future__ import annotations

import datetime as dt
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import duckdb

from lb_pipelines import clock
from lb_pipelines.integrations.config_files import IntegrationConfig, MappingProblem
from lb_pipelines.integrations.settings_base import MappingRow

CONFIG_SCHEMA = "config"
SETTINGS_TABLE = f"{CONFIG_SCHEMA}.integration_settings"


def _duckdb_type(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _duckdb_type(args[0])
    if origin in (Union, types.UnionType):
        return _duckdb_type(next(a for a in args if a is not type(None)))
    if origin is Literal:
        return "VARCHAR"
    if origin is list:
        return f"{_duckdb_type(args[0])}[]"
    return {int: "BIGINT", str: "VARCHAR", bool: "BOOLEAN", float: "DOUBLE", dt.date: "DATE"}[annotation]


def mapping_table(integration: str) -> str:
    return f"{CONFIG_SCHEMA}.{integration}__mapping"


def _known_assignments(conn: duckdb.DuckDBPyConnection) -> set[int] | None:
    present = conn.execute(
        "SELECT count(*) FROM information_schema.tables"
        " WHERE table_schema = 'raw' AND table_name = 'assignments'"
    ).fetchall()[0][0]
    if not present:
        return None
    return {row[0] for row in conn.execute("SELECT id FROM raw.assignments").fetchall()}


def _mapping_columns(row_model: type[MappingRow]) -> str:
    columns = [f'"{name}" {_duckdb_type(info.annotation)}' for name, info in row_model.model_fields.items()]
    return ", ".join([*columns, "mapping_line INTEGER"])


def ensure_config_tables(
    conn: duckdb.DuckDBPyConnection, integration: str, row_model: type[MappingRow] | None
) -> None:
    """The settings table and the integration's mapping table, created empty if absent, so dbt
    models can always select from them; what they hold is left as it is."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {CONFIG_SCHEMA}")
    conn.execute(
        f"""CREATE TABLE IF NOT EXISTS {SETTINGS_TABLE} (
            integration VARCHAR, enabled BOOLEAN, settings JSON,
            settings_file VARCHAR, loaded_at TIMESTAMPTZ)"""
    )
    if row_model is not None:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {mapping_table(integration)} ({_mapping_columns(row_model)})")


def write_config_to_warehouse(
    conn: duckdb.DuckDBPyConnection,
    integration: str,
    row_model: type[MappingRow] | None,
    config: IntegrationConfig | None,
) -> list[MappingProblem]:
    """Replace `config.integration_settings`'s row and `config.<integration>__mapping` for one integration.

    Both tables exist even when the integration is off, so dbt models can always select from
    them. An integration that is off (None) or disabled leaves an empty mapping table: only
    mapped assignments leave the system. Returns the mapping's problems (bad rows, and rows
    naming an assignment that `raw.assignments` does not hold) for the caller to record.
    """
    active = config is not None and config.enabled and config.mapping is not None
    problems: list[MappingProblem] = list(config.mapping.problems) if active else []
    rows: list[MappingRow] = list(config.mapping.rows) if active else []

    known = _known_assignments(conn) if rows else None
    if known is not None:
        unknown = [r for r in rows if r.assignment_id not in known]
        problems += [
            MappingProblem(
                config.mapping.file, r.mapping_line, "assignment_id",
                f"assignment_id {r.assignment_id} is not in Lightning Bolt's assignments", r.assignment_id,
            )
            for r in unknown
        ]
        rows = [r for r in rows if r.assignment_id in known]

    conn.execute("BEGIN TRANSACTION")
    try:
        ensure_config_tables(conn, integration, row_model)
        conn.execute(f"DELETE FROM {SETTINGS_TABLE} WHERE integration = ?", [integration])
        if config is not None:
            conn.execute(
                f"INSERT INTO {SETTINGS_TABLE} VALUES (?, ?, ?, ?, ?)",
                [
                    integration, config.enabled, config.settings.model_dump_json(),
                    str(config.settings_file), clock.now(),
                ],
            )
        if row_model is not None:
            fields = row_model.model_fields
            table = mapping_table(integration)
            conn.execute(f"CREATE OR REPLACE TABLE {table} ({_mapping_columns(row_model)})")
            if rows:
                conn.executemany(
                    f"INSERT INTO {table} VALUES ({', '.join('?' * (len(fields) + 1))})",
                    [[*r.model_dump().values(), r.mapping_line] for r in rows],
                )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return problems
