"""The raw assets through Dagster, in process: metadata, checks, failures, run config windows."""

from __future__ import annotations

import duckdb
import dagster as dg
from dagster_duckdb import DuckDBResource

from lb_pipelines import settings
from lb_pipelines.lightning_bolt.source.contract import ENTITIES
from lb_pipelines.lightning_bolt.source.resource import LightningBoltResource
from lb_pipelines.warehouse.raw_assets import raw_assets
from tiny_system import fresh, write_system


def materialize(run_config=None, selection=None):
    return dg.materialize(
        raw_assets,
        selection=selection,
        resources={
            "lightning_bolt": LightningBoltResource(),
            "warehouse": DuckDBResource(database=str(settings.warehouse_path())),
        },
        run_config=run_config,
        raise_on_error=False,
    )


def materialization(result, entity):
    [event] = result.asset_materializations_for_node(f"raw__{entity}")
    return {k: v.value for k, v in event.metadata.items()}


def test_all_raw_assets_materialize_with_metadata(tiny_source):
    result = materialize()
    assert result.success
    slots = materialization(result, "slots")
    # LB_NOW 2026-11-02 (conftest), default window 90 back and 180 forward
    assert slots["window"] == "2026-08-04..2027-05-01"
    assert (slots["rows"], slots["table_rows"], slots["problems"]) == (6, 6, 0)
    assert slots["source"] == f"directory {tiny_source}"
    assert slots["duration_s"] >= 0
    assert materialization(result, "change_log")["window"] == "since id 0"
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks and all(checks.values())
    with duckdb.connect(str(settings.warehouse_path()), read_only=True) as conn:
        for entity in ENTITIES:
            assert conn.execute(f"SELECT count(*) FROM raw.{entity}").fetchall()[0][0] > 0, entity


def test_run_config_window(tiny_source):
    assert materialize().success
    config = {"ops": {"raw__slots": {"config": {"start_date": "2026-11-20", "end_date": "2026-11-20"}}}}
    result = materialize(config, selection=[dg.AssetKey(["raw", "slots"])])
    assert result.success
    meta = materialization(result, "slots")
    assert (meta["window"], meta["rows"], meta["table_rows"]) == ("2026-11-20..2026-11-20", 1, 6)


def test_malformed_record_fails_its_asset_with_file_line_and_field(tiny_source):
    system = fresh()
    del system["slots"][1]["start_time"]
    write_system(tiny_source, system)
    result = materialize()
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "raw__slots"
    message = failure.step_failure_data.error.message
    assert "slots.jsonl line 2" in message and "'start_time'" in message and "missing" in message
    # the assets that do not depend on slots still loaded
    assert materialization(result, "requests")["rows"] == 2


def test_unknown_assignment_fails_the_check_not_the_asset(tiny_source):
    system = fresh()
    system["slots"][0]["assignment_id"] = 4242
    write_system(tiny_source, system)
    result = materialize()
    assert result.success
    meta = materialization(result, "slots")
    assert (meta["rows"], meta["problems"]) == (6, 1)
    assert "4242" in meta["problem_rows"]
    [check] = [c for c in result.get_asset_check_evaluations() if c.asset_key == dg.AssetKey(["raw", "slots"])]
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.WARN
