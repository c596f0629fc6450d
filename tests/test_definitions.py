"""The project loads as Dagster sees it: `dagster definitions validate` and the asset graph."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

from lb_pipelines import settings
from lb_pipelines.lightning_bolt.source.contract import ENTITIES

BIN = Path(sys.executable).parent


def test_dagster_definitions_validate(lb_env):
    shutil.copyfile(settings.REPO_ROOT / "dagster.yaml", lb_env / "dagster_home" / "dagster.yaml")
    env = os.environ | {"PATH": f"{BIN}:{os.environ['PATH']}"}
    done = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-m", "lb_pipelines.definitions"],
        capture_output=True, text=True, env=env, cwd=settings.REPO_ROOT, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful" in done.stdout + done.stderr


def test_graph_has_a_raw_asset_per_entity_feeding_dbt(lb_env):
    from lb_pipelines.definitions import defs

    graph = defs.resolve_asset_graph()
    raw_keys = {dg.AssetKey(["raw", e]) for e in ENTITIES}
    assert raw_keys <= set(graph.get_all_asset_keys())
    # dbt staging reads the raw assets: lineage is visible in the UI
    slots_model = dg.AssetKey(["staging", "stg_lightning_bolt__slots"])
    assert dg.AssetKey(["raw", "slots"]) in graph.get(slots_model).parent_keys
    assert graph.get(dg.AssetKey(["raw", "slots"])).group_name == "lightning_bolt_raw"
    assert defs.resolve_job_def("full_refresh") is not None
