"""`lb-pipelines status`: per integration, what was last delivered and what is wrong now.

It reads the marts BI reads (`marts.fct_deliveries`, `marts.fct_open_problems`: one rule for
"open") and `raw.load_problems`. While a run holds the warehouse, DuckDB refuses even a
read-only open: it tries again briefly, then reads the published BI copy and says so. Records
are named by id only ("slot 5001 (...)", "mapping.csv line 4"), never with a reason, which may
name a person.
"""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from lb_pipelines import clock
from lb_pipelines import settings
from lb_pipelines.integrations.config_files import ConfigError, load_settings
from lb_pipelines.integrations.registry import integrations
from lb_pipelines.warehouse.bi_publish import PUBLISHED_NAME
from lb_pipelines.warehouse.reading import read_when_free

# A run holds the warehouse for seconds to minutes: wait a moment, not for the run.
WAREHOUSE_ATTEMPTS = 4
WAREHOUSE_WAIT_SECONDS = 0.5
EXAMPLES = 3  # records shown per kind of problem
OFF = "off (no settings folder)"


class StatusUnavailable(Exception):
    """Nothing to report from: the message is one line for the operator."""


@dataclass
class Delivery:
    at: dt.datetime
    status: str
    file_name: str
    rows: int | None
    where: str | None  # the location, or the target when it failed
    error: str | None
    recency: int  # 1 for the newest row of the integration


@dataclass
class ProblemKind:
    kind: str
    count: int
    scopes: list[str]
    examples: list[str]


@dataclass
class IntegrationStatus:
    last_delivery: Delivery | None = None
    last_failure: Delivery | None = None
    problems: list[ProblemKind] = field(default_factory=list)


@dataclass
class Facts:
    integrations: dict[str, IntegrationStatus]
    load_problems: dict[str, int]


# ---------------------------------------------------------------------------------------------
# Reading


_LAST_DELIVERIES = """
    SELECT integration, status = 'failed' AS failed, delivered_at, status, file_name, rows,
        coalesce(location, target), error, recency
    FROM (
        SELECT *, row_number() OVER (
            PARTITION BY integration ORDER BY delivered_at DESC, recorded_order DESC NULLS LAST) AS recency
        FROM marts.fct_deliveries)
    QUALIFY row_number() OVER (PARTITION BY integration, status = 'failed' ORDER BY recency) = 1
"""

_OPEN_PROBLEMS = f"""
    SELECT integration, kind, count(*), list(DISTINCT scope ORDER BY scope),
        list(record ORDER BY scope, record)[1:{EXAMPLES}]
    FROM marts.fct_open_problems
    GROUP BY ALL
    ORDER BY integration, kind
"""


def _table_exists(conn: duckdb.DuckDBPyConnection, schema: str, name: str) -> bool:
    return bool(
        conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [schema, name],
        ).fetchall()[0][0]
    )


def read_facts(conn: duckdb.DuckDBPyConnection) -> Facts:
    if not (_table_exists(conn, "marts", "fct_deliveries") and _table_exists(conn, "marts", "fct_open_problems")):
        raise StatusUnavailable(
            "marts.fct_deliveries and marts.fct_open_problems are not built yet: run the pipeline (lb-pipelines run)"
        )
    found: dict[str, IntegrationStatus] = {}
    for slug, failed, *values in conn.execute(_LAST_DELIVERIES).fetchall():
        delivery = Delivery(*values)
        status = found.setdefault(slug, IntegrationStatus())
        if failed:
            status.last_failure = delivery
        else:
            status.last_delivery = delivery
    for slug, kind, count, scopes, examples in conn.execute(_OPEN_PROBLEMS).fetchall():
        found.setdefault(slug, IntegrationStatus()).problems.append(ProblemKind(kind, count, scopes, examples))
    load_problems: dict[str, int] = {}
    if _table_exists(conn, "raw", "load_problems"):
        load_problems = dict(
            conn.execute("SELECT entity, count(*) FROM raw.load_problems GROUP BY ALL ORDER BY entity").fetchall()
        )
    return Facts(found, load_problems)


def _read(database: Path) -> Facts:
    with duckdb.connect(str(database), read_only=True) as conn:
        return read_facts(conn)


# ---------------------------------------------------------------------------------------------
# Saying it


def _when(at: dt.datetime) -> str:
    """In the pipeline clock's zone (LB_NOW's offset, else UTC), like every other time it writes."""
    return at.astimezone(clock.now().tzinfo).strftime("%Y-%m-%d %H:%M %z")


def _state(slug: str) -> str:
    """What the settings folder says now (the warehouse shows what the last run loaded)."""
    spec = integrations().get(slug)
    if spec is None:
        return "not an integration of this build"
    try:
        loaded = load_settings(slug, spec.settings_model)
    except ConfigError as exc:
        return f"settings refused ({', '.join(key for key, _ in exc.errors)}): its exports send nothing"
    if loaded is None:
        return OFF
    return "enabled" if loaded.enabled else "disabled (enabled: false)"


def _delivery_line(d: Delivery) -> str:
    rows = f"{d.rows} rows" if d.rows is not None else "rows unknown"
    return f"{_when(d.at)}  {d.status}  {d.file_name}  {rows}  -> {d.where or '(nowhere)'}"


def _integration_lines(slug: str, state: str, status: IntegrationStatus) -> list[str]:
    lines = [f"{slug}: {state}"]
    last, failure = status.last_delivery, status.last_failure
    lines.append(f"  last delivery:  {_delivery_line(last)}" if last else "  last delivery:  none recorded")
    if failure and (last is None or failure.recency < last.recency):
        error = (failure.error or "").strip().splitlines()[0][:160] if failure.error else "no error recorded"
        lines.append(f"  last failure:   {_when(failure.at)}  {failure.file_name} to {failure.where}: {error}")
    total = sum(p.count for p in status.problems)
    lines.append(f"  open problems:  {total or 'none'}")
    width = max((len(p.kind) for p in status.problems), default=0)
    for p in status.problems:
        more = f", ... ({p.count - len(p.examples)} more)" if p.count > len(p.examples) else ""
        scopes = ", ".join(p.scopes)
        lines.append(f"    {p.kind:<{width}}  {p.count:>5}  [{scopes}]  {'; '.join(p.examples)}{more}")
    return lines


def render(facts: Facts, source: str) -> str:
    """Every integration with a settings folder, then any other the ledger or the problems know."""
    states = {slug: _state(slug) for slug in [*integrations(), *sorted(set(facts.integrations) - set(integrations()))]}
    shown = [slug for slug, state in states.items() if state != OFF or slug in facts.integrations]
    lines = [source, ""]
    for slug in shown:
        lines += _integration_lines(slug, states[slug], facts.integrations.get(slug, IntegrationStatus()))
    off = [slug for slug in states if slug not in shown]
    if off:
        lines.append(f"off, nothing recorded: {', '.join(off)}")
    total = sum(facts.load_problems.values())
    by_entity = ", ".join(f"{entity} {n}" for entity, n in facts.load_problems.items())
    lines.append(f"raw load problems: {total}" + (f" ({by_entity}; see raw.load_problems)" if total else ""))
    return "\n".join(lines)


def status_report(warehouse: Path, bi_dir: Path) -> str:
    """The report, from the live warehouse or, while a run holds it, from the BI copy."""
    if not warehouse.exists():
        raise StatusUnavailable(f"no warehouse at {warehouse} yet: run the pipeline first (lb-pipelines run)")
    try:
        facts = read_when_free(_read, warehouse, attempts=WAREHOUSE_ATTEMPTS, wait_seconds=WAREHOUSE_WAIT_SECONDS)
        return render(facts, f"warehouse {warehouse}")
    except duckdb.IOException as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    copy = bi_dir / PUBLISHED_NAME
    if not copy.exists():
        raise StatusUnavailable(
            f"the warehouse {warehouse} cannot be read now ({reason}) and no BI copy is published at {copy}"
        )
    published = dt.datetime.fromtimestamp(copy.stat().st_mtime, tz=dt.timezone.utc)
    return render(
        _read(copy),
        f"the warehouse {warehouse} is in use by a run: as of the BI copy published at {_when(published)} ({copy})",
    )


def main_status() -> int:
    try:
        print(status_report(settings.warehouse_path(), settings.bi_dir()))
    except StatusUnavailable as exc:
        print(f"lb-pipelines status: {exc}", file=sys.stderr)
        return 1
    return 0

