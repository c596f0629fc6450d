"""One Dagster asset per Lightning Bolt entity, loading it into the warehouse's `raw` schema."""


import datetime as dt
from typing import Iterable, Optional

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from lb_pipelines import clock, settings
from lb_pipelines.lightning_bolt.source import LightningBoltSource
from lb_pipelines.lightning_bolt.source.contract import ENTITIES, Window
from lb_pipelines.lightning_bolt.source.records import SourceRecordError
from lb_pipelines.lightning_bolt.source.resource import LightningBoltResource
from lb_pipelines.warehouse.raw_load import REFERENCES, last_loaded_start, load_entity

GROUP = "lightning_bolt_raw"

# Reference data first, so a slot's assignment and department are there to check it against.
UPSTREAM: dict[str, list[str]] = {
    "assignments": ["departments"],
    "schedules": ["departments"],
    "personnel": ["departments"],
    "slots": ["schedules", "assignments", "personnel", "departments"],
    "requests": ["personnel"],
    "tallies": ["personnel"],
}


def raw_asset_key(entity: str) -> dg.AssetKey:
    return dg.AssetKey(["raw", entity])


class RawLoadConfig(dg.Config):
    """The window of dates to read and replace; both empty means the default window (see `default_window`)."""

    start_date: Optional[str] = None
    end_date: Optional[str] = None


def default_window(today: dt.date, reach: Iterable[dt.date] = ()) -> Window:
    """Days back before today to days forward after it, or on to the latest date in `reach`.

    `reach` holds the last day of every schedule the source lists (and the last date already
    loaded): a schedule published eight months ahead must reach the warehouse whole, with its
    slots, or every export that promises everything misses it. The back edge stays: history
    before it is not re-read.
    """
    start = today - dt.timedelta(days=settings.window_days_back())
    forward = today + dt.timedelta(days=settings.window_days_forward())
    return Window(start, max([forward, *reach]))


def resolve_window(
    config: RawLoadConfig, source: LightningBoltSource, conn: duckdb.DuckDBPyConnection, entity: str
) -> Window:
    """The run's own window, or else the default one, reaching as far as the schedules do."""
    if config.start_date is None and config.end_date is None:
        # Every schedule (a few hundred rows): the contract has no "latest schedule" query.
        reach = [dt.date.fromisoformat(s["end_date"]) for s in source.read("schedules")]
        loaded = last_loaded_start(conn, entity)
        return default_window(clock.today(), reach + ([loaded] if loaded else []))
    if config.start_date is None or config.end_date is None:
        raise dg.Failure("give both start_date and end_date for a window, or neither for the default")
    try:
        return Window(dt.date.fromisoformat(config.start_date), dt.date.fromisoformat(config.end_date))
    except ValueError as exc:
        raise dg.Failure(f"bad window {config.start_date}..{config.end_date}: {exc}") from None


def _problems_table(problems: list[dict]) -> dg.MarkdownMetadataValue:
    lines = ["| record | field | value | reason |", "|---|---|---|---|"]
    lines += [f"| {p['record_id']} | {p['field']} | {p['value']} | {p['reason']} |" for p in problems[:20]]
    if len(problems) > 20:
        lines.append(f"| … {len(problems) - 20} more in raw.load_problems | | | |")
    return dg.MetadataValue.md("\n".join(lines))


def build_raw_asset(entity: str) -> dg.AssetsDefinition:
    spec = ENTITIES[entity]
    key = raw_asset_key(entity)
    has_references = any(e == entity for e, _, _ in REFERENCES)
    check_specs = [dg.AssetCheckSpec("references_known_records", asset=key)] if has_references else []
    window_note = {
        "full": "every record, replaced each run",
        "date": "records dated in the window; the window is replaced",
        "range": "records overlapping the window; the window is replaced",
        "since_id": "appended: only ids above the highest already loaded",
    }[spec.read]

    @dg.asset(
        key=key,
        group_name=GROUP,
        deps=[raw_asset_key(u) for u in UPSTREAM.get(entity, [])],
        check_specs=check_specs,
        kinds={"duckdb", "python"},
        description=f"Lightning Bolt `{spec.endpoint}` in `raw.{entity}`: {window_note}.",
        pool="warehouse",
    )
    def _raw_asset(
        context: dg.AssetExecutionContext,
        config: RawLoadConfig,
        lightning_bolt: LightningBoltResource,
        warehouse: DuckDBResource,
    ) -> dg.MaterializeResult:
        source = lightning_bolt.open()
        try:
            with warehouse.get_connection() as conn:
                window = resolve_window(config, source, conn, entity) if spec.read in ("date", "range") else None
                result = load_entity(conn, source, entity, window=window)
        except SourceRecordError as exc:
            raise dg.Failure(
                description=f"{entity} not loaded, nothing replaced: {exc}",
                metadata={"where": exc.where, "field": exc.field or "", "reason": exc.reason},
            ) from exc
        finally:
            close = getattr(source, "close", None)
            if close:
                close()
        metadata = {
            "rows": result.rows,
            "table_rows": result.table_rows,
            "window": str(result.window) if result.window else ("since id " + str(result.since_id) if result.since_id is not None else "all"),
            "source": result.source,
            "duration_s": round(result.seconds, 3),
            "problems": len(result.problems),
        }
        if result.problems:
            metadata["problem_rows"] = _problems_table(result.problems)
            context.log.warning(f"{entity}: {len(result.problems)} rows name records that are not loaded")
        check_results = (
            [
                dg.AssetCheckResult(
                    check_name="references_known_records",
                    passed=not result.problems,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"problems": len(result.problems), "see": "raw.load_problems"},
                )
            ]
            if has_references
            else []
        )
        return dg.MaterializeResult(metadata=metadata, check_results=check_results)

    return _raw_asset


raw_assets = [build_raw_asset(entity) for entity in ENTITIES]
