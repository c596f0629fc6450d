"""Both ways in give the same warehouse: the raw assets read through the simulator over HTTP
(LB_API_URL set) and through the directory source produce identical raw tables."""

from __future__ import annotations

import duckdb
import dagster as dg
from dagster_duckdb import DuckDBResource

from lb_pipelines.lightning_bolt.source.contract import ENTITIES
from lb_pipelines.lightning_bolt.source.resource import LightningBoltResource
from lb_pipelines.lightning_bolt.simulator import Simulator
from lb_pipelines.warehouse.raw_assets import raw_assets


def materialize_into(path):
    result = dg.materialize(
        raw_assets,
        resources={"lightning_bolt": LightningBoltResource(page_size=2), "warehouse": DuckDBResource(database=str(path))},
    )
    assert result.success
    return result


def raw_tables(path):
    with duckdb.connect(str(path), read_only=True) as conn:
        return {e: conn.execute(f"SELECT * EXCLUDE (_loaded_at) FROM raw.{e} ORDER BY ALL").fetchall() for e in ENTITIES}


def test_api_and_directory_give_identical_raw_tables(tiny_source, lb_env, monkeypatch):
    materialize_into(lb_env / "from_directory.duckdb")
    with Simulator(tiny_source, client_id="lb-test", client_secret="not-in-any-log") as sim:
        monkeypatch.setenv("LB_API_URL", sim.url)
        monkeypatch.setenv("LB_CLIENT_ID", "lb-test")
        monkeypatch.setenv("LB_CLIENT_SECRET", "not-in-any-log")
        result = materialize_into(lb_env / "from_api.duckdb")
        # page_size 2: six slots are three pages
        assert sim.stats["requests"]["/api/v1/slots"] == 3
    assert raw_tables(lb_env / "from_api.duckdb") == raw_tables(lb_env / "from_directory.duckdb")
    [slots] = result.asset_materializations_for_node("raw__slots")
    assert slots.metadata["source"].value == f"api {sim.url}"
    # the secret is nowhere in what Dagster recorded
    assert not any("not-in-any-log" in str(e) for e in result.all_events)


def test_api_configured_without_credentials_is_a_clear_failure(tiny_source, monkeypatch):
    monkeypatch.setenv("LB_API_URL", "http://127.0.0.1:9")
    result = dg.materialize(
        raw_assets[:1],
        resources={"lightning_bolt": LightningBoltResource(), "warehouse": DuckDBResource(database=":memory:")},
        raise_on_error=False,
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "LB_CLIENT_ID and LB_CLIENT_SECRET is not set" in message
