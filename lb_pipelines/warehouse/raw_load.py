"""Loading one Lightning Bolt entity into the warehouse's `raw` schema.

Records stream from any `LightningBoltSource` into Arrow batches and into DuckDB inside one
transaction that first removes exactly the window being replaced, so a reader never sees a
half-replaced window and a failed load leaves the previous state untouched.
"""

from __future__ import annotations

import datetime as dt
import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import duckdb
import orjson
import pyarrow as pa

from lb_pipelines import clock
from lb_pipelines.lightning_bolt.source.contract import DUCKDB_TYPES, ENTITIES, Entity, Window
from lb_pipelines.lightning_bolt.source import LightningBoltSource
from lb_pipelines.lightning_bolt.source.directory import DirectorySource
from lb_pipelines.warehouse import raw_load_sql

RAW_SCHEMA = "raw"
PROBLEMS_TABLE = f"{RAW_SCHEMA}.load_problems"
LOAD_LOG_TABLE = f"{RAW_SCHEMA}.load_log"
LOAD_SEQUENCE = f"{RAW_SCHEMA}.load_log_sequence"
# A load compares what it replaced with what it wrote when the replaced rows are this few (the
# reference data, a change run's dates); a larger window (a full reload) is taken as changed.
COMPARE_MAX_ROWS = 200_000
BATCH_SIZE = 50_000

_ARROW_TYPES: dict[str, pa.DataType] = {
    "int": pa.int64(),
    "str": pa.string(),
    "bool": pa.bool_(),
    "number": pa.float64(),
    "date": pa.string(),  # cast by DuckDB on insert: it parses ISO text faster than Python
    "time": pa.string(),
    "timestamp": pa.string(),
    "int_list": pa.list_(pa.int64()),
    "json": pa.string(),
}


@dataclass
class LoadResult:
    entity: str
    rows: int  # rows read and inserted by this load
    table_rows: int  # rows in the raw table afterwards
    window: Window | None
    since_id: int | None
    source: str
    seconds: float
    problems: list[dict[str, Any]] = field(default_factory=list)


def scalar(conn: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> Any:
    """One value. fetchall, not fetchone: DuckDB 2 keeps a half-read result open on the connection."""
    return conn.execute(sql, params).fetchall()[0][0]


def window_is_loaded(conn: duckdb.DuckDBPyConnection, entity: str, window: Window) -> bool:
    """Whether one load of `entity` read every date of `window` (a load without a window reads all)."""
    return bool(
        scalar(
            conn,
            f"""SELECT count(*) FROM {LOAD_LOG_TABLE} WHERE entity = $entity
                AND (window_start IS NULL OR (window_start <= $start AND window_end >= $end))""",
            {"entity": entity, "start": window.start, "end": window.end},
        )
    )


def table_name(entity: str) -> str:
    return f"{RAW_SCHEMA}.{entity}"


def last_loaded_start(conn: duckdb.DuckDBPyConnection, entity: str) -> dt.date | None:
    """The latest date on which a loaded row of a windowed `entity` starts (None: nothing loaded).

    A window reaching this far re-reads every row loaded from its start on, so a far schedule
    that the source has since deleted or shortened is deleted here too, not left behind.
    """
    ensure_raw_tables(conn)
    first = ENTITIES[entity].window_fields[0]
    return scalar(conn, f'SELECT max("{first}") FROM {table_name(entity)}')


def ensure_raw_tables(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the raw schema, one table per entity and the problems table, if absent."""
    conn.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
    for spec in ENTITIES.values():
        columns = ", ".join(f'"{f.name}" {DUCKDB_TYPES[f.type]}' for f in spec.fields)
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {table_name(spec.name)} ({columns}, _loaded_at TIMESTAMPTZ)"
        )
    conn.execute(
        f"""CREATE TABLE IF NOT EXISTS {PROBLEMS_TABLE} (
            entity VARCHAR, record_id VARCHAR, field VARCHAR, value VARCHAR,
            reason VARCHAR, detected_at TIMESTAMPTZ)"""
    )
    # Which windows have been loaded: an export for a past period checks its dates were read.
    conn.execute(
        f"""CREATE TABLE IF NOT EXISTS {LOAD_LOG_TABLE} (
            entity VARCHAR, window_start DATE, window_end DATE, since_id BIGINT,
            rows BIGINT, source VARCHAR, loaded_at TIMESTAMPTZ)"""
    )
    # load_id orders the loads (loaded_at cannot: LB_NOW pins it); changed says whether the load
    # altered the rows it replaced (NULL: not compared). A change run's models read both
    # (compiled_models.py) to rebuild only the dates loaded since their last build.
    conn.execute(f"CREATE SEQUENCE IF NOT EXISTS {LOAD_SEQUENCE}")
    conn.execute(f"ALTER TABLE {LOAD_LOG_TABLE} ADD COLUMN IF NOT EXISTS load_id BIGINT")
    conn.execute(f"ALTER TABLE {LOAD_LOG_TABLE} ADD COLUMN IF NOT EXISTS changed BOOLEAN")


def _window_predicate(spec: Entity) -> str:
    """SQL for "this row belongs to the window", the same rule as `Entity.in_window`."""
    if spec.read == "date":
        return f'"{spec.window_fields[0]}" BETWEEN $start AND $end'
    first, last = spec.window_fields
    return f'"{first}" <= $end AND "{last}" >= $start'


def _replaced_rows(spec: Entity, windowed: Window | None) -> str:
    """SQL for the rows a load replaces: its window's, or all of them."""
    return _window_predicate(spec) if windowed is not None else "true"


def _window_params(windowed: Window | None) -> dict[str, Any]:
    return {"start": windowed.start, "end": windowed.end} if windowed is not None else {}


def _changed(conn: duckdb.DuckDBPyConnection, target: str, replaced: str, windowed: Window | None) -> bool:
    """Whether the rows now in the replaced part differ from those before (as multisets)."""
    after = f"SELECT * EXCLUDE (_loaded_at) FROM {target} WHERE {replaced}"
    return bool(scalar(
        conn,
        f"SELECT EXISTS ({after} EXCEPT ALL SELECT * FROM _lb_before) "
        f"OR EXISTS (SELECT * FROM _lb_before EXCEPT ALL {after})",
        _window_params(windowed),
    ))


def _batches(records: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    iterator = iter(records)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _to_arrow(spec: Entity, batch: list[dict[str, Any]]) -> pa.Table:
    columns = {}
    for f in spec.fields:
        values = [r.get(f.name) for r in batch]
        if f.type == "json":
            values = [None if v is None else orjson.dumps(v).decode() for v in values]
        columns[f.name] = pa.array(values, type=_ARROW_TYPES[f.type])
    return pa.table(columns)


def _insert_sql(spec: Entity) -> str:
    casts = ", ".join(
        f'CAST("{f.name}" AS {DUCKDB_TYPES[f.type]})' if f.type in ("date", "timestamp", "json") else f'"{f.name}"'
        for f in spec.fields
    )
    return f"INSERT INTO {table_name(spec.name)} SELECT {casts}, $loaded_at FROM _lb_batch"


def load_entity(
    conn: duckdb.DuckDBPyConnection,
    source: LightningBoltSource,
    entity: str,
    window: Window | None = None,
    loaded_at: dt.datetime | None = None,
    batch_size: int = BATCH_SIZE,
) -> LoadResult:
    """Replace `entity`'s rows in `window` (all rows for reference data) with what `source` holds.

    The change log is appended instead: only ids above the highest already loaded are read.
    """
    spec = ENTITIES[entity]
    started = time.perf_counter()
    loaded_at = loaded_at or clock.now()
    ensure_raw_tables(conn)
    target = table_name(entity)

    since_id = None
    if spec.read == "since_id":
        since_id = scalar(conn, f"SELECT coalesce(max(id), 0) FROM {target}")
    windowed = window if spec.read in ("date", "range") else None

    rows = 0
    insert = _insert_sql(spec)
    # A directory's file is read and checked by DuckDB itself (raw_load_sql.py); a file with a bad
    # record, and every other source, goes record by record below.
    checked = (
        raw_load_sql.read_checked(conn, spec, source.path / spec.file_name)
        if isinstance(source, DirectorySource) and raw_load_sql.sql_loadable(spec) else None
    )
    conn.execute("BEGIN TRANSACTION")
    try:
        replaced = _replaced_rows(spec, windowed)
        before = scalar(conn, f"SELECT count(*) FROM {target} WHERE {replaced}", _window_params(windowed))
        compared = spec.read != "since_id" and before <= COMPARE_MAX_ROWS
        if compared and before:
            conn.execute(f"CREATE OR REPLACE TEMP TABLE _lb_before AS SELECT * EXCLUDE (_loaded_at) FROM {target} "
                         f"WHERE {replaced}", _window_params(windowed))
        if spec.read == "full":
            conn.execute(f"DELETE FROM {target}")
        elif windowed is not None:
            conn.execute(
                f"DELETE FROM {target} WHERE {_window_predicate(spec)}",
                {"start": windowed.start, "end": windowed.end},
            )
        elif spec.read in ("date", "range"):
            conn.execute(f"DELETE FROM {target}")  # no window: the whole entity is replaced
        if checked is not None:
            kept = [_window_predicate(spec)] if windowed is not None else []
            kept += ['"id" > $since_id'] if since_id is not None else []
            rows = scalar(
                conn,
                f"INSERT INTO {target} SELECT *, $loaded_at FROM {raw_load_sql.ROWS}"
                + (f" WHERE {' AND '.join(kept)}" if kept else ""),
                {"loaded_at": loaded_at}
                | ({"start": windowed.start, "end": windowed.end} if windowed is not None else {})
                | ({"since_id": since_id} if since_id is not None else {}),
            )
        else:
            for batch in _batches(source.read(entity, window=windowed, since_id=since_id), batch_size):
                conn.register("_lb_batch", _to_arrow(spec, batch))
                conn.execute(insert, {"loaded_at": loaded_at})
                conn.unregister("_lb_batch")
                rows += len(batch)
        changed = (_changed(conn, target, replaced, windowed) if before else rows > 0) if compared else None
        conn.execute(
            f"""INSERT INTO {LOAD_LOG_TABLE} (entity, window_start, window_end, since_id, rows, source,
                loaded_at, load_id, changed) VALUES (?, ?, ?, ?, ?, ?, ?, nextval('{LOAD_SEQUENCE}'), ?)""",
            [entity, windowed and windowed.start, windowed and windowed.end, since_id, rows,
             source.description, loaded_at, changed],
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    finally:
        if checked is not None:
            raw_load_sql.drop_checked(conn)
        conn.execute("DROP TABLE IF EXISTS _lb_before")

    problems = record_reference_problems(conn, entity, loaded_at)
    table_rows = scalar(conn, f"SELECT count(*) FROM {target}")
    return LoadResult(
        entity=entity,
        rows=rows,
        table_rows=table_rows,
        window=windowed,
        since_id=since_id,
        source=source.description,
        seconds=time.perf_counter() - started,
        problems=problems,
    )


# (entity, field, referenced entity): a value that names no loaded record is a problem.
# Slots reach their department through the assignment and the schedule, checked separately.
REFERENCES: tuple[tuple[str, str, str], ...] = (
    ("slots", "schedule_id", "schedules"),
    ("slots", "assignment_id", "assignments"),
    ("slots", "personnel_id", "personnel"),
    ("assignments", "department_id", "departments"),
    ("schedules", "department_id", "departments"),
    ("requests", "personnel_id", "personnel"),
    ("tallies", "personnel_id", "personnel"),
)

# A slot's department is named by its assignment and by its schedule; either may be unknown.
# Two plain joins, not one join on an OR: DuckDB runs an OR condition as a nested loop.
_SLOT_DEPARTMENT_SQL = " UNION ALL ".join(
    f"""SELECT 'slots', CAST(s.id AS VARCHAR), 'department_id', CAST(x.department_id AS VARCHAR),
               'slot''s {via} ' || x.id || ' names department ' || x.department_id
               || ', which is not in departments'
        FROM raw.slots s JOIN raw.{table} x ON x.id = s.{key}
        WHERE x.department_id NOT IN (SELECT id FROM raw.departments)"""
    for via, table, key in (("assignment", "assignments", "assignment_id"), ("schedule", "schedules", "schedule_id"))
)


def _affected_by(entity: str) -> list[str]:
    """The entities whose reference problems can change when `entity` is reloaded."""
    affected = {entity} | {e for e, _, ref in REFERENCES if ref == entity}
    if entity in ("departments", "assignments", "schedules"):
        affected.add("slots")
    return sorted(affected)


def _problem_queries(entity: str) -> list[str]:
    key = " || '/' || ".join(f"CAST(t.{k} AS VARCHAR)" for k in ENTITIES[entity].key)
    queries = [
        f"""SELECT '{entity}', {key}, '{fld}', CAST(t.{fld} AS VARCHAR),
                   '{fld} ' || t.{fld} || ' is not in {ref}'
            FROM {table_name(entity)} t
            WHERE t.{fld} IS NOT NULL AND t.{fld} NOT IN (SELECT id FROM {table_name(ref)})"""
        for e, fld, ref in REFERENCES
        if e == entity
    ]
    if entity == "slots":
        queries.append(_SLOT_DEPARTMENT_SQL)
    return queries


def record_reference_problems(
    conn: duckdb.DuckDBPyConnection, entity: str, detected_at: dt.datetime
) -> list[dict[str, Any]]:
    """Rewrite the problems of `entity` (and of what refers to it) from what is loaded now.

    Returns `entity`'s own problems. The rows stay loaded: a slot naming an unknown assignment
    is still a slot that someone has to look at, so it is counted and shown, never dropped.
    """
    for affected in _affected_by(entity):
        conn.execute(f"DELETE FROM {PROBLEMS_TABLE} WHERE entity = $entity", {"entity": affected})
        queries = _problem_queries(affected)
        if queries:
            union = " UNION ALL ".join(queries)
            conn.execute(f"INSERT INTO {PROBLEMS_TABLE} SELECT *, $at FROM ({union})", {"at": detected_at})
    rows = conn.execute(
        f"SELECT entity, record_id, field, value, reason FROM {PROBLEMS_TABLE} "
        "WHERE entity = $entity ORDER BY record_id, field",
        {"entity": entity},
    ).fetchall()
    return [dict(zip(("entity", "record_id", "field", "value", "reason"), r)) for r in rows]
