"""Vocera: each mapped team's list published as a document for the feed service to serve, with the
pushed state, differences only, drift and dry run. The scenario and the lists by hand are the
secure-messaging tests' (tests/on_call_scenario.py), at 2026-11-10 06:00 CST.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from lb_pipelines.integrations.registry import integration
from on_call_scenario import CY_DAY, FIRST_LISTS, MAPPING, entry, system
from pipeline_helpers import metadata_of, step_failures, write_config
from warehouse_helpers import load_system, run_dbt

NOW = "2026-11-10T06:00:00-06:00"
SLUG = "vocera"
CHANGE_LOG_RUN = {"lb/trigger": "change_log"}


def settings_yaml(kind: str = "http") -> str:
    return f"window: {{days_back: 0, days_forward: 1}}\ndelivery: {{type: {kind}}}\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("vocera")
    with pytest.MonkeyPatch.context() as env:
        for var, value in {
            "LB_NOW": NOW, "LB_WAREHOUSE": str(root / "warehouse.duckdb"), "LB_OUTBOX_DIR": str(root / "outbox"),
            "LB_CONFIG_DIR": str(root / "config"), "LB_BI_DIR": str(root / "bi"),
        }.items():
            env.setenv(var, value)
        env.delenv("LB_API_URL", raising=False)
        write_config(root / "config", SLUG, settings_yaml(), MAPPING)
        world = {"root": root, "env": env, "teams": root / "outbox" / "vocera" / "teams"}
        rebuild(world, system())
        from lb_pipelines.definitions import build_definitions

        world["job"] = build_definitions().resolve_job_def(f"{SLUG}_export")
        yield world


def rebuild(world, the_system) -> None:
    root = world["root"]
    warehouse = load_system(root / "source", the_system, root / "warehouse.duckdb")
    declared = integration(SLUG)
    with duckdb.connect(str(warehouse)) as conn:
        assert declared.write_config(conn, declared.load()) == []
    run_dbt(warehouse, "run", "--select", f"+export_{SLUG}")


def publish(world, tags=None):
    result = world["job"].execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False, tags=tags or {},
        asset_selection=[dg.AssetKey([SLUG, "pushed"])],
    )
    assert result.success, step_failures(result)
    return metadata_of(result, [SLUG, "pushed"])


def documents(world) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(world["teams"].glob("*.json"))}


def mtimes(world) -> dict[str, int]:
    return {p.stem: p.stat().st_mtime_ns for p in world["teams"].glob("*.json")}


def test_first_publish_writes_one_document_per_team_by_hand(world):
    meta = publish(world, CHANGE_LOG_RUN)
    assert documents(world) == FIRST_LISTS
    assert (meta["created"], meta["teams"], meta["on_call_now"]) == (3, 3, 2)
    with duckdb.connect(str(world["root"] / "warehouse.duckdb"), read_only=True) as conn:
        ledger = conn.execute("SELECT object_key, method, path, outcome FROM delivery.request_ledger "
                              "WHERE integration = 'vocera' ORDER BY 1").fetchall()
    assert ledger == [("T-ED", "PUT", "/vocera/teams/T-ED.json", "accepted"),
                      ("T-LD", "PUT", "/vocera/teams/T-LD.json", "accepted"),
                      ("T-OB", "PUT", "/vocera/teams/T-OB.json", "accepted")]


def test_no_change_rewrites_nothing(world):
    before = mtimes(world)
    meta = publish(world)  # the reconcile reads each document back
    assert (meta["unchanged"], meta["requests_sent"], meta["drift_found"]) == (3, 0, 0)
    assert mtimes(world) == before


def test_a_swap_rewrites_only_its_team(world):
    rebuild(world, system(people={6002: 12}))
    before = mtimes(world)
    meta = publish(world, CHANGE_LOG_RUN)
    assert meta["updated"] == 1
    after = mtimes(world)
    assert [t for t in after if after[t] != before[t]] == ["T-OB"]
    assert documents(world)["T-OB"]["oncall"][1] == entry(2, "Day", 2, 102, *CY_DAY, "U12")


def test_a_document_edited_or_removed_by_hand_is_drift_and_restored(world):
    wanted = documents(world)
    (world["teams"] / "T-LD.json").write_text('{"team_id": "T-LD", "oncall": []}')
    (world["teams"] / "T-ED.json").unlink()
    meta = publish(world)
    assert meta["drift_found"] == 2 and meta["requests_sent"] == 2
    assert documents(world) == wanted


def test_dry_run_writes_what_it_would_publish(world):
    rebuild(world, system())
    write_config(world["root"] / "config", SLUG, settings_yaml("dry_run"), MAPPING)
    try:
        before = mtimes(world)
        meta = publish(world, CHANGE_LOG_RUN)
    finally:
        write_config(world["root"] / "config", SLUG, settings_yaml(), MAPPING)
    assert mtimes(world) == before
    lines = [json.loads(line) for line in Path(meta["file"]).read_text().splitlines()]
    assert [(r["method"], r["path"], r["body"]) for r in lines] == [
        ("PUT", "/vocera/teams/T-OB.json", FIRST_LISTS["T-OB"])
    ]
