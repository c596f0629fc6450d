"""Every mart and every column is described, and the dbt docs site generates."""

from __future__ import annotations

import json

from lb_pipelines.warehouse.dbt_project import lightning_bolt_dbt
from tiny_system import fresh
from warehouse_helpers import load_system, run_dbt


def test_every_mart_and_column_is_described():
    manifest = json.loads(lightning_bolt_dbt.manifest_path.read_text())
    marts = [n for n in manifest["nodes"].values() if n["resource_type"] == "model" and "marts" in n["fqn"]]
    expected = {"fct_shifts", "fct_shift_history", "dim_personnel", "dim_assignments", "dim_departments",
                "fct_requests", "fct_tallies", "fct_change_log", "fct_coverage", "fct_duty_hours"}
    assert expected <= {m["name"] for m in marts}
    undocumented = [m["name"] for m in marts if not m["description"].strip()]
    undocumented += [f"{m['name']}.{c}" for m in marts for c, col in m["columns"].items() if not col["description"].strip()]
    assert undocumented == []


def test_docs_generate_and_describe_the_built_columns(lb_env):
    warehouse = load_system(lb_env / "src", fresh(), lb_env / "warehouse.duckdb")
    run_dbt(warehouse, "build")
    run_dbt(warehouse, "docs", "generate")
    catalog = json.loads((lb_env / "dbt_target" / "catalog.json").read_text())
    shifts = catalog["nodes"]["model.lb_pipelines.fct_shifts"]["columns"]
    # every column that exists in the warehouse is one the YAML describes
    manifest = json.loads((lb_env / "dbt_target" / "manifest.json").read_text())
    described = set(manifest["nodes"]["model.lb_pipelines.fct_shifts"]["columns"])
    assert {c.lower() for c in shifts} == described
