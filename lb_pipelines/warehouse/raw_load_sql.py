"""The directory source's load in SQL: DuckDB reads and checks the JSON Lines file itself.

Python parsing and checking every record (records.py) costs about ten times DuckDB's own
`read_json` at 20,000 providers × 365 days. Here DuckDB's `read_json` parses each line once,
keeping each field as its JSON text, then checks every field of every record against the
contract in SQL (the same rules as `check_record`, never
looser) and inserts the typed rows, in the load's transaction. When any line fails a check,
nothing of the SQL pass is inserted and the file is read again the Python way, which stops at
the first bad record with its file, line, field and reason: Python only for the record that
failed, and the same error either way.

Entities with a free-form JSON field (view settings, small) keep the Python path: how their
JSON is written back is Python's (`orjson.dumps`), and it stays the one way.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from lb_pipelines.lightning_bolt.source.contract import DUCKDB_TYPES, Entity
from lb_pipelines.warehouse.sql import string_literal

# JSON integers: DuckDB's json_type calls a positive one UBIGINT (however large) and a negative
# one BIGINT; a JSON 1.0 or true is not one. The contract's ids fit a BIGINT.
_INTEGER = "(json_type({v}) IN ('BIGINT', 'UBIGINT') AND try_cast({v} AS BIGINT) IS NOT NULL)"
_DATE = r"^\d{4}-\d{2}-\d{2}$"
_TIME = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
# With an offset, as the contract says; Python's fromisoformat accepts more shapes (those fall
# back to it), never fewer.
_TIMESTAMP = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([+-]\d{2}:\d{2}|Z)$"
ROWS = "_lb_rows"  # the checked, typed rows of one file, until the load inserts them


def sql_loadable(spec: Entity) -> bool:
    return all(f.type != "json" for f in spec.fields)


def _check(field_type: str, v: str) -> str:
    """SQL true when the JSON value `v` (not null) is of the contract's type."""
    t = f"json_type({v})"
    text = f"json_extract_string({v}, '$')"
    return {
        "int": _INTEGER.format(v=v),
        "str": f"{t} = 'VARCHAR'",
        "bool": f"{t} = 'BOOLEAN'",
        "number": f"{t} IN ('BIGINT', 'UBIGINT', 'DOUBLE')",
        "date": f"({t} = 'VARCHAR' AND regexp_full_match({text}, '{_DATE}') AND try_cast({text} AS DATE) IS NOT NULL)",
        "time": f"({t} = 'VARCHAR' AND regexp_full_match({text}, '{_TIME}'))",
        "timestamp": f"({t} = 'VARCHAR' AND regexp_full_match({text}, '{_TIMESTAMP}') "
                     f"AND try_cast({text} AS TIMESTAMPTZ) IS NOT NULL)",
        "int_list": f"({t} = 'ARRAY' AND len(list_filter(json_extract({v}, '$[*]'), "
                    f"lambda x: NOT {_INTEGER.format(v='x')})) = 0)",
    }[field_type]


def _typed(field_type: str, v: str) -> str:
    text = f"json_extract_string({v}, '$')"
    if field_type in ("str", "time"):
        return text
    if field_type in ("date", "timestamp"):
        return f"CAST({text} AS {DUCKDB_TYPES[field_type]})"
    return f"CAST({v} AS {DUCKDB_TYPES[field_type]})"


def read_checked(conn: duckdb.DuckDBPyConnection, spec: Entity, file: Path) -> int | None:
    """Read `file` into the temporary table of typed rows when every record meets the contract;
    None when any does not (the caller reads it the Python way, which names the first). Runs
    before the load's transaction: a DuckDB error inside one would abort it."""
    if not file.is_file():
        return None  # the directory source says which file is missing
    with file.open("rb") as head:
        if head.read(3) == b"\xef\xbb\xbf":
            return None  # a byte-order mark: JSON Lines has none, and Python's reader says so
    # One parse of each line by DuckDB's reader, each field kept as its JSON text (a JSON null and
    # a missing key are both NULL, as for Python); a malformed line or one that is not an object
    # is an error here, and Python then names it.
    fields = "{" + ", ".join(f"{string_literal(f.name)}: 'JSON'" for f in spec.fields) + "}"
    checks = " AND ".join(
        f'("{f.name}" IS NOT NULL AND {_check(f.type, chr(34) + f.name + chr(34))})' if f.required else
        f'("{f.name}" IS NULL OR {_check(f.type, chr(34) + f.name + chr(34))})'
        for f in spec.fields
    )
    typed = ", ".join(f'{_typed(f.type, chr(34) + f.name + chr(34))} AS "{f.name}"' for f in spec.fields)
    try:
        conn.execute(
            f"""CREATE OR REPLACE TEMP TABLE _lb_checked AS SELECT * FROM read_json({string_literal(str(file))},
                format = 'newline_delimited', records = true, columns = {fields})"""
        )
        if conn.execute(f"SELECT count(*) FROM _lb_checked WHERE NOT ({checks})").fetchall()[0][0]:
            return None
        conn.execute(f"CREATE OR REPLACE TEMP TABLE {ROWS} AS SELECT {typed} FROM _lb_checked")
        return conn.execute(f"SELECT count(*) FROM {ROWS}").fetchall()[0][0]
    except duckdb.Error:
        return None  # a malformed line, or one that is not an object: Python names it
    finally:
        conn.execute("DROP TABLE IF EXISTS _lb_checked")


def drop_checked(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {ROWS}")
