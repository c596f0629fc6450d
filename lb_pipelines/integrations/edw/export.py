"""The enterprise data warehouse export: one CSV per entity and a Frictionless Data Package, zipped.

Everything the warehouse has loaded goes out, every status: this feeds a hospital's own
warehouse, not an on-call system. `datapackage.json` declares each file's fields and types, its
row count, byte size and sha256, so BI tools load the files typed and `frictionless validate
datapackage.json` proves that nothing was cut short or altered on the way.

Cells as written: dates `YYYY-MM-DD`; timestamps ISO 8601 in UTC (`2026-10-15T14:00:00Z`);
lists (a person's `department_ids`) as JSON array text (`[1,2]`, Table Schema `array` of
`integer`); view settings as JSON object text (Table Schema `object`); null as an empty cell.
The same warehouse content gives the same bytes: rows in key order, zip entries in a fixed order
with a fixed timestamp.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from lb_pipelines.integrations.exporting import ExportFile

INTEGRATION = "edw"

# The column layout, in one place: a customer adjusts a file by editing its query. The query reads
# the typed raw tables; each file's Table Schema is read from the query's result columns.
_SCHEDULE_FIELDS = ("department_id", "start_date", "end_date", "status", "published_at", "version")


@dataclass(frozen=True)
class EdwFile:
    name: str  # the file in the zip; its resource name is the name without `.csv`
    query: str
    key: tuple[str, ...]  # rows are ordered by it, and it is the schema's primaryKey


def _all_of(table: str) -> str:
    return f"SELECT * EXCLUDE (_loaded_at) FROM raw.{table}"


EDW_FILES: tuple[EdwFile, ...] = (
    EdwFile(
        "schedules.csv",  # one row per slot, with its schedule's fields beside it
        "SELECT slot.* EXCLUDE (_loaded_at), "
        + ", ".join(f"schedule.{f} AS schedule_{f}" for f in _SCHEDULE_FIELDS)
        + " FROM raw.slots slot LEFT JOIN raw.schedules schedule ON schedule.id = slot.schedule_id",
        ("id",),
    ),
    EdwFile("requests.csv", _all_of("requests"), ("id",)),
    EdwFile("assignments.csv", _all_of("assignments"), ("id",)),
    EdwFile("personnel.csv", _all_of("personnel"), ("id",)),
    EdwFile("departments.csv", _all_of("departments"), ("id",)),
    EdwFile("tallies.csv", _all_of("tallies"), ("personnel_id", "tally_name", "period_start")),
    EdwFile("change_logs.csv", _all_of("change_log"), ("id",)),
    EdwFile("view_settings.csv", _all_of("view_settings"), ("id",)),
)

# DuckDB column type -> (Table Schema field, how the CSV cell is written from column {c}).
_UTC_ISO = "replace(CAST({c} AT TIME ZONE 'UTC' AS VARCHAR), ' ', 'T') || 'Z'"
_FIELD_TYPES: dict[str, tuple[dict[str, Any], str]] = {
    "BIGINT": ({"type": "integer"}, "{c}"),
    "INTEGER": ({"type": "integer"}, "{c}"),
    "VARCHAR": ({"type": "string"}, "{c}"),
    "BOOLEAN": ({"type": "boolean"}, "{c}"),
    "DOUBLE": ({"type": "number"}, "{c}"),
    "DATE": ({"type": "date"}, "{c}"),
    "TIMESTAMP WITH TIME ZONE": ({"type": "datetime"}, _UTC_ISO),
    "BIGINT[]": ({"type": "array", "arrayItem": {"type": "integer"}}, "CAST(to_json({c}) AS VARCHAR)"),
    "JSON": ({"type": "object"}, "CAST({c} AS VARCHAR)"),
}

PACKAGE_FILE = "datapackage.json"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can say: no build time inside the file
_ZIP_LEVEL = 1  # a third of the time of the default level for a zip ~35% larger (measured)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class EdwExport:
    file_name: str
    content: bytes
    row_counts: dict[str, int]  # rows per CSV file in the zip
    sha256: str  # of `content`


def file_name(day: dt.date) -> str:
    return f"lb_edw_{day:%Y%m%d}.zip"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _layout(conn: duckdb.DuckDBPyConnection, spec: EdwFile) -> tuple[list[dict[str, Any]], str]:
    """The Table Schema fields of `spec` and the SELECT that writes its cells, in key order."""
    fields, cells = [], []
    for name, duck_type, *_ in conn.execute(f"DESCRIBE {spec.query}").fetchall():
        if duck_type not in _FIELD_TYPES:
            raise ValueError(f"{spec.name}: column {name!r} has type {duck_type}, which the export cannot write")
        field, cell = _FIELD_TYPES[duck_type]
        fields.append({"name": name, **field})
        cells.append(f"{cell.format(c=_quote(name))} AS {_quote(name)}")
    order = ", ".join(_quote(k) for k in spec.key)
    return fields, f"SELECT {', '.join(cells)} FROM ({spec.query}) ORDER BY {order}"


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            sha.update(chunk)
    return sha.hexdigest()


def _write_csv(conn: duckdb.DuckDBPyConnection, spec: EdwFile, folder: Path) -> dict[str, Any]:
    """Write one CSV into `folder`; returns its Data Package resource."""
    fields, select = _layout(conn, spec)
    path = folder / spec.name
    target = str(path).replace("'", "''")
    rows = conn.execute(f"COPY ({select}) TO '{target}' (FORMAT csv, HEADER, DELIMITER ',', QUOTE '\"')")
    return {
        "name": spec.name.removesuffix(".csv"),
        "path": spec.name,
        "profile": "tabular-data-resource",
        "format": "csv",
        "mediatype": "text/csv",
        "encoding": "utf-8",
        "rows": rows.fetchall()[0][0],
        "bytes": path.stat().st_size,
        "hash": f"sha256:{_digest(path)}",
        "schema": {"fields": fields, "primaryKey": list(spec.key)},
    }


def _zip_entry(archive: zipfile.ZipFile, path: Path) -> None:
    info = zipfile.ZipInfo(path.name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info._compresslevel = _ZIP_LEVEL  # the public name, compress_level, comes with Python 3.13
    info.create_system = 3  # Unix, on every platform
    info.external_attr = 0o644 << 16
    info.file_size = path.stat().st_size  # lets zipfile choose ZIP64 up front for a huge file
    with path.open("rb") as source, archive.open(info, "w") as entry:
        shutil.copyfileobj(source, entry, _CHUNK)


def build_edw_zip(conn: duckdb.DuckDBPyConnection, day: dt.date) -> EdwExport:
    """The zip of every raw table as CSV plus `datapackage.json`, named for `day`."""
    # Rows leave COPY in ORDER BY order only while DuckDB preserves insertion order.
    preserving = conn.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0]
    conn.execute("SET preserve_insertion_order = true")
    try:
        with tempfile.TemporaryDirectory(prefix="lb_edw_") as tmp:
            folder = Path(tmp)
            resources = [_write_csv(conn, spec, folder) for spec in EDW_FILES]
            package = {
                "name": "lb-edw",
                "title": f"Lightning Bolt enterprise data warehouse export, {day.isoformat()}",
                "profile": "tabular-data-package",
                "resources": resources,
            }
            (folder / PACKAGE_FILE).write_text(json.dumps(package, indent=2) + "\n", encoding="utf-8")
            zip_path = folder / file_name(day)
            with zipfile.ZipFile(zip_path, "w") as archive:
                for name in (PACKAGE_FILE, *(spec.name for spec in EDW_FILES)):
                    _zip_entry(archive, folder / name)
            content = zip_path.read_bytes()
    finally:
        conn.execute(f"SET preserve_insertion_order = {'true' if preserving else 'false'}")
    return EdwExport(
        file_name=file_name(day),
        content=content,
        row_counts={r["path"]: r["rows"] for r in resources},
        sha256=hashlib.sha256(content).hexdigest(),
    )


def build_file(conn: duckdb.DuckDBPyConnection, day: dt.date) -> ExportFile:
    """The zip as the file to deliver, with a preview of the rows in each CSV."""
    package = build_edw_zip(conn, day)
    return ExportFile(
        integration=INTEGRATION,
        scope="full",
        file_name=package.file_name,
        content=package.content,
        rows=sum(package.row_counts.values()),
        preview_table=(["file", "rows"], sorted(package.row_counts.items())),
        extra_metadata={"files": len(package.row_counts)},
    )
