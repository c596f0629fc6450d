"""The change path's models: the SQL dbt compiled for this warehouse, run straight in DuckDB.

A change run (started by the change-log sensor) must rebuild the few models its integrations
read in about a second; the dbt CLI needs several seconds only to start, load its parse and
compile. So every dbt build records, beside the warehouse, the SQL it compiled for each model
and test (`<warehouse>.dbt_compiled.json`), stamped with the project's manifest. A change run
whose every selected model and test is in that record, under the manifest the code runs with,
replays it: the selected table models rebuilt in dependency order and the selected tests run,
in one transaction, rolled back when a test of severity error fails (the exports then read the
last good build, never a half-built or failing one). Views need nothing: they are the same SQL
as at the recorded build. Anything else (a node never built on this warehouse, a project
changed since, an incremental model or a snapshot) goes through dbt itself, which records the
SQL for the next change run. Full and scheduled runs always use dbt itself.

A table model that declares `meta: lb_rebuild_by_date: {column, source}` (fct_shifts: one row per
raw slot, on the slot's date) is rebuilt only for the dates loaded since its last build, never
in full, when that is exact: the last build is of this project (`raw.model_builds`), and every
load since (`raw.load_log`, ordered by load_id) of a raw entity it reads is either of its source
with a window (those dates are rebuilt) or of other data and changed nothing. A load of the
whole source, a change to reference data it reads, or no build recorded: the full rebuild.

The SQL is dbt's own output (`compiled_code`); the test wrapper is dbt's (`get_test_sql`):
failures = fail_calc, warn and error by warn_if / error_if.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import duckdb

from lb_pipelines.delivery.targets import write_atomically

RECORD_SUFFIX = ".dbt_compiled.json"
REPLAYABLE = ("table", "view")


def record_path(database: str) -> Path:
    return Path(str(database) + RECORD_SUFFIX)


def project_stamp(manifest_path: Path) -> str:
    """What the record is valid for: the manifest the code location loaded (any project change,
    a macro's included, re-prepares it)."""
    return hashlib.sha256(Path(manifest_path).read_bytes()).hexdigest()


def _node_record(node: Mapping[str, Any]) -> dict[str, Any]:
    config = node.get("config", {})
    return {
        "resource_type": node["resource_type"],
        "materialized": config.get("materialized"),
        "relation_name": node.get("relation_name"),
        "compiled_code": node["compiled_code"],
        "depends_on": list(node.get("depends_on", {}).get("nodes", [])),
        "severity": str(config.get("severity", "ERROR")).upper(),
        "fail_calc": config.get("fail_calc", "count(*)"),
        "warn_if": config.get("warn_if", "!= 0"),
        "error_if": config.get("error_if", "!= 0"),
        "rebuild_by_date": (config.get("meta") or {}).get("lb_rebuild_by_date"),
    }


def record_compiled(invocation_manifest: Path, database: str, stamp: str) -> int:
    """Keep the SQL one successful dbt invocation compiled (models and tests), merged into the
    record when it is of the same project; returns how many nodes the record holds."""
    if not invocation_manifest.exists():
        return 0
    nodes = json.loads(invocation_manifest.read_text())["nodes"]
    compiled = {
        uid: _node_record(n) for uid, n in nodes.items()
        if n.get("compiled") and n.get("compiled_code") is not None and n["resource_type"] in ("model", "test")
    }
    kept = _recorded_nodes(database, stamp) or {}
    kept.update(compiled)
    write_atomically(record_path(database), json.dumps({"stamp": stamp, "nodes": kept}).encode())
    return len(kept)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _recorded_nodes(database: str, stamp: str) -> dict[str, Any] | None:
    """The recorded nodes when the record is of this project, else None."""
    record = _read(record_path(database))
    return record["nodes"] if record and record.get("stamp") == stamp else None


def _cautious(models: set[str], tests: Mapping[str, Iterable[str]]) -> set[str]:
    """As dbt's `--indirect-selection cautious`: a test runs only when every model it reads is built."""
    return {uid for uid, parents in tests.items() if all(p in models for p in parents if p.startswith("model."))}


@dataclass(frozen=True)
class ByDate:
    """A table rebuilt by date: its date column, the raw entity its dates come from and every
    raw entity it reads (through views)."""

    column: str
    source: str
    reads: frozenset[str]


@dataclass(frozen=True)
class Replay:
    models: list[tuple[str, dict[str, Any]]]  # dependency order
    tests: list[tuple[str, dict[str, Any]]]
    stamp: str = ""
    by_date: dict[str, ByDate] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)  # tables, tests: filled by replay()
    rebuilt: dict[str, str] = field(default_factory=dict)  # table: "in full" or the dates rebuilt


def replay_for(
    database: str, stamp: str, models: Iterable[str], tests: Mapping[str, Iterable[str]]
) -> tuple[Replay | None, str]:
    """The replay of these models and of the tests (id: the nodes it reads) whose every model
    is among them, or None and why dbt itself must run."""
    nodes = _recorded_nodes(database, stamp)
    if nodes is None:
        return None, ("no compiled SQL recorded for this warehouse yet" if not record_path(database).exists()
                      else "the dbt project changed since the recorded build")
    models = set(models)
    tests = _cautious(models, tests)
    missing = sorted((models | tests) - nodes.keys())
    if missing:
        return None, f"{len(missing)} selected nodes not built on this warehouse yet (e.g. {missing[0]})"
    other = sorted(uid for uid in models if nodes[uid]["materialized"] not in REPLAYABLE)
    if other:
        return None, f"{other[0]} is {nodes[other[0]]['materialized']}, not a table or view"
    by_date = {uid: b for uid in models if (b := _by_date(uid, nodes)) is not None}
    return Replay(models=_in_dependency_order(models, nodes), tests=[(t, nodes[t]) for t in sorted(tests)],
                  stamp=stamp, by_date=by_date), ""


RAW_SOURCE = "source.lb_pipelines.lightning_bolt."
BUILDS_TABLE = "raw.model_builds"


def _by_date(uid: str, nodes: Mapping[str, Any]) -> ByDate | None:
    """How `uid` may be rebuilt by date, or None: not declared, not a table, or it reads
    something other than raw entities through views (a snapshot, another table)."""
    declared = nodes[uid].get("rebuild_by_date")
    if not declared or nodes[uid]["materialized"] != "table":
        return None
    reads: set[str] = set()
    todo, seen = list(nodes[uid]["depends_on"]), set()
    while todo:
        parent = todo.pop()
        if parent in seen:
            continue
        seen.add(parent)
        if parent.startswith(RAW_SOURCE):
            reads.add(parent.removeprefix(RAW_SOURCE))
        elif parent in nodes and nodes[parent]["materialized"] == "view":
            todo.extend(nodes[parent]["depends_on"])
        else:
            return None
    if declared["source"] not in reads:
        return None
    return ByDate(column=declared["column"], source=declared["source"], reads=frozenset(reads))


def last_load_id(conn: duckdb.DuckDBPyConnection) -> int:
    from lb_pipelines.warehouse.raw_load import LOAD_LOG_TABLE, ensure_raw_tables

    ensure_raw_tables(conn)
    return conn.execute(f"SELECT coalesce(max(load_id), 0) FROM {LOAD_LOG_TABLE}").fetchall()[0][0]


def note_builds(conn: duckdb.DuckDBPyConnection, uids: Iterable[str], stamp: str | None, load_id: int = 0) -> None:
    """Record that `uids` were built by this project from every load up to `load_id`;
    stamp None forgets them (a build under way, or one that may have failed)."""
    uids = sorted(uids)
    if not uids:
        return
    conn.execute(f"CREATE TABLE IF NOT EXISTS {BUILDS_TABLE} (unique_id VARCHAR, stamp VARCHAR, load_id BIGINT)")
    conn.execute(f"DELETE FROM {BUILDS_TABLE} WHERE unique_id IN (SELECT unnest($uids))", {"uids": uids})
    if stamp is not None:
        conn.executemany(f"INSERT INTO {BUILDS_TABLE} VALUES (?, ?, ?)", [[u, stamp, load_id] for u in uids])


def dates_since_build(conn: duckdb.DuckDBPyConnection, uid: str, by: ByDate, stamp: str) -> list[tuple[Any, Any]] | None:
    """The date ranges of `uid` to rebuild (merged; none when nothing it reads was loaded
    since), or None when only a full rebuild is exact."""
    conn.execute(f"CREATE TABLE IF NOT EXISTS {BUILDS_TABLE} (unique_id VARCHAR, stamp VARCHAR, load_id BIGINT)")
    built = conn.execute(f"SELECT stamp, load_id FROM {BUILDS_TABLE} WHERE unique_id = ?", [uid]).fetchall()
    if not built or built[0][0] != stamp:
        return None
    from lb_pipelines.warehouse.raw_load import LOAD_LOG_TABLE

    loads = conn.execute(
        f"SELECT entity, window_start, window_end, changed FROM {LOAD_LOG_TABLE} "
        "WHERE load_id > ? AND entity IN (SELECT unnest(?)) ORDER BY load_id",
        [built[0][1], sorted(by.reads)],
    ).fetchall()
    ranges = []
    for entity, start, end, changed in loads:
        if entity == by.source and start is not None:
            ranges.append((start, end))
        elif entity == by.source or changed is not False:
            return None  # the whole source reloaded, or reference data it reads changed
    merged: list[tuple[Any, Any]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + dt.timedelta(days=1):
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _in_dependency_order(models: set[str], nodes: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    ordered: list[str] = []
    seen: set[str] = set()

    def visit(uid: str) -> None:
        if uid in seen:
            return
        seen.add(uid)
        for parent in nodes[uid]["depends_on"]:
            if parent in models:
                visit(parent)
        ordered.append(uid)

    for uid in sorted(models):
        visit(uid)
    return [(uid, nodes[uid]) for uid in ordered]


@dataclass(frozen=True)
class TestOutcome:
    unique_id: str
    failures: int
    should_warn: bool
    should_error: bool


class ReplayTestFailed(Exception):
    """A test of severity error failed (in a replay: nothing of it was kept)."""

    def __init__(self, outcomes: list[TestOutcome], kept: bool = False) -> None:
        self.outcomes = outcomes
        failed = [o for o in outcomes if o.should_error]
        super().__init__(f"{len(failed)} dbt tests failed on the rebuilt models{'' if kept else ', nothing kept'}: "
                         + ", ".join(f"{o.unique_id} ({o.failures} failing rows)" for o in failed))


def run_tests(conn: duckdb.DuckDBPyConnection, tests: list[tuple[str, dict[str, Any]]]) -> list[TestOutcome]:
    outcomes = []
    for uid, node in tests:
        calc = node["fail_calc"]
        failures, warn, error = conn.execute(
            f"SELECT {calc} AS failures, {calc} {node['warn_if']} AS should_warn, "
            f"{calc} {node['error_if']} AS should_error FROM (\n{node['compiled_code']}\n) dbt_internal_test"
        ).fetchall()[0]
        # dbt's rule: severity error fails on error_if, else warns on warn_if; severity warn only warns
        fails = bool(error) and node["severity"] == "ERROR"
        outcomes.append(TestOutcome(uid, int(failures or 0), bool(warn) and not fails, fails))
    return outcomes


def recorded_tests(database: str, stamp: str, models: Iterable[str], tests: Mapping[str, Iterable[str]]):
    """The tests (id: the nodes it reads) whose every model is among `models` and whose SQL is
    recorded for this project: what a change run built by dbt itself then runs."""
    nodes = _recorded_nodes(database, stamp) or {}
    return [(uid, nodes[uid]) for uid in sorted(_cautious(set(models), tests)) if uid in nodes]


def replay(conn: duckdb.DuckDBPyConnection, plan: Replay) -> list[TestOutcome]:
    """Rebuild the tables and run the tests in one transaction; roll back when an error fails."""
    conn.execute("BEGIN TRANSACTION")
    try:
        started = time.perf_counter()
        loaded = last_load_id(conn)
        for uid, node in plan.models:
            if node["materialized"] == "table":
                plan.rebuilt[uid] = _rebuild(conn, uid, node, plan)
        note_builds(conn, plan.by_date, plan.stamp, loaded)
        plan.seconds["tables"] = time.perf_counter() - started
        outcomes = run_tests(conn, plan.tests)
        plan.seconds["tests"] = time.perf_counter() - started - plan.seconds["tables"]
        if any(o.should_error for o in outcomes):
            raise ReplayTestFailed(outcomes)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return outcomes


def _rebuild(conn: duckdb.DuckDBPyConnection, uid: str, node: Mapping[str, Any], plan: Replay) -> str:
    """Rebuild one table, by date when that is exact (see the module's docstring); says how."""
    by = plan.by_date.get(uid)
    ranges = dates_since_build(conn, uid, by, plan.stamp) if by is not None else None
    relation, sql = node["relation_name"], node["compiled_code"]
    if ranges is None:
        conn.execute(f"CREATE OR REPLACE TABLE {relation} AS (\n{sql}\n)")
        return "in full"
    for start, end in ranges:
        dates = {"start": start, "end": end}
        conn.execute(f'DELETE FROM {relation} WHERE "{by.column}" BETWEEN $start AND $end', dates)
        conn.execute(f'INSERT INTO {relation} SELECT * FROM (\n{sql}\n) WHERE "{by.column}" BETWEEN $start AND $end',
                     dates)
    return ", ".join(f"{s}..{e}" for s, e in ranges) or "no dates loaded since its last build"
