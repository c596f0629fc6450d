"""What every integration promises, checked for each declaration the registry finds.

A new folder under lb_pipelines/integrations/ is picked up here without editing this file:
it must come with its docs, a sample configuration, a problems check, a group in the UI, a
job, and it must deliver on `make run` of the bundled sample.
"""

from __future__ import annotations

import duckdb
import pytest

from lb_pipelines import settings
from lb_pipelines.integrations.exporting import PROBLEMS_CHECK
from lb_pipelines.integrations.registry import integrations
from lb_pipelines.lightning_bolt.source.directory import DirectorySource
from lb_pipelines.warehouse.raw_load import load_entity

DECLARED = sorted(integrations())
SAMPLE_CONFIG = settings.REPO_ROOT / "data" / "config"


@pytest.fixture(scope="module")
def defs():
    from lb_pipelines.definitions import build_definitions

    return build_definitions()


def test_the_registry_finds_every_integration_folder():
    folders = sorted(
        p.name for p in (settings.REPO_ROOT / "lb_pipelines" / "integrations").iterdir()
        if p.is_dir() and (p / "__init__.py").exists()
    )
    assert DECLARED == folders
    # the seven file exports of the catalog are there
    assert {"epic_on_call_finder", "epic_optime", "kronos_wfc", "kronos_wfd", "new_innovations",
            "schedule_backup", "edw"} <= set(DECLARED)


@pytest.mark.parametrize("slug", DECLARED)
def test_docs_with_an_example(slug):
    declared = integrations()[slug]
    text = declared.docs_path.read_text()
    assert declared.title in text
    assert "```" in text, f"{declared.docs_path} has no example"


@pytest.mark.parametrize("slug", DECLARED)
def test_sample_configuration_loads_without_problems(slug, tmp_path):
    declared = integrations()[slug]
    config = declared.load(SAMPLE_CONFIG)
    assert config is not None and config.enabled, f"data/config/{slug}/ is missing or disabled"
    if declared.mapping_row_model is not None:
        assert config.mapping.rows, f"data/config/{slug}/mapping.csv maps nothing"
        assert config.mapping.problems == []
    conn = duckdb.connect()
    load_entity(conn, DirectorySource(settings.REPO_ROOT / "data" / "sample"), "assignments")
    assert declared.write_config(conn, config) == []  # every mapped assignment exists in the sample


@pytest.mark.parametrize("slug", DECLARED)
def test_assets_group_checks_and_job(slug, defs):
    declared = integrations()[slug]
    graph = defs.resolve_asset_graph()
    for key in declared.asset_keys:
        assert graph.get(key).group_name == slug, key
    output = graph.get(declared.output_key)
    assert output.tags.get("lb/integration") == slug
    checks = {spec.name for spec in defs.resolve_assets_def(declared.output_key).check_specs}
    assert PROBLEMS_CHECK in checks
    job = defs.resolve_job_def(declared.job_name)
    assert declared.output_key in job.asset_layer.selected_asset_keys
    assert (declared.partitioned_by is None) == (job.partitions_def is None)


def expected_status(slug: str) -> str:
    """What the sample's delivery records: a file delivered to the outbox, or a push's dry run
    (its requests file, in the outbox too)."""
    delivery = integrations()[slug].load(SAMPLE_CONFIG).settings.delivery
    return "dry_run" if delivery.type == "dry_run" else "delivered"


@pytest.mark.parametrize("slug", DECLARED)
def test_make_run_on_the_sample_delivers_it(slug, sample_make_run):
    assert sample_make_run["exit_code"] == 0, sample_make_run["summary"]
    with duckdb.connect(str(sample_make_run["warehouse"]), read_only=True) as conn:
        rows = conn.execute(
            "SELECT file_name, status, location FROM delivery.ledger WHERE integration = ? AND run_id IN "
            "(SELECT unnest($ids))".replace("?", "$slug"),
            {"slug": slug, "ids": sample_make_run["summary"]["run_ids"]},
        ).fetchall()
    assert rows and all(status == expected_status(slug) for _, status, _ in rows), rows
    for file_name, _, location in rows:
        assert location.startswith(str(sample_make_run["outbox"] / slug)), location
        assert (sample_make_run["outbox"] / slug / file_name).is_file()


# One of each engine: the team-list vendors (PerfectServe, Amtelco, Voalte, Epic Secure Chat) are
# one declaration (`team_list_push`) with a different SHAPE, so PerfectServe stands for all four.
SAME_ENGINE_AS_PERFECTSERVE = {"amtelco", "voalte", "epic_secure_chat"}
NEAR_REAL_TIME = sorted(slug for slug, i in integrations().items()
                        if i.triggers.change_log and slug not in SAME_ENGINE_AS_PERFECTSERVE)


@pytest.mark.parametrize("slug", NEAR_REAL_TIME)
def test_its_own_job_delivers_on_a_fresh_warehouse(slug, lb_env, monkeypatch):
    """What the change-log sensor starts: the integration's job alone, before any full run. Its
    dbt step builds only the models the integration needs, so a test on a mart it does not build
    must not fail it."""
    import dagster as dg

    from lb_pipelines.definitions import build_definitions

    monkeypatch.setenv("LB_SOURCE_DIR", str(settings.REPO_ROOT / "data" / "sample"))
    monkeypatch.setenv("LB_CONFIG_DIR", str(SAMPLE_CONFIG))
    monkeypatch.setenv("LB_NOW", "2026-11-22T07:00:00-06:00")  # the sample's as-of
    declared = integrations()[slug]
    result = build_definitions().resolve_job_def(declared.job_name).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False
    )
    failures = [e.step_key for e in result.all_events if e.is_step_failure]
    assert result.success, failures
    with duckdb.connect(str(lb_env / "warehouse.duckdb"), read_only=True) as conn:
        statuses = conn.execute(
            "SELECT status FROM delivery.ledger WHERE integration = ? AND run_id = ?", [slug, result.run_id]
        ).fetchall()
    assert statuses and {s for (s,) in statuses} == {expected_status(slug)}


def test_the_bi_copy_shows_every_delivery_of_make_run(sample_make_run):
    """The BI copy is taken after each run's deliveries, the pay-period run's included."""
    ids = {"ids": sample_make_run["summary"]["run_ids"]}
    sql = "SELECT integration, file_name, status FROM delivery.ledger WHERE run_id IN (SELECT unnest($ids)) ORDER BY ALL"
    with duckdb.connect(str(sample_make_run["warehouse"]), read_only=True) as conn:
        live = conn.execute(sql, ids).fetchall()
    with duckdb.connect(str(sample_make_run["root"] / "bi" / "warehouse.duckdb"), read_only=True) as conn:
        published = conn.execute(sql, ids).fetchall()
    assert {i for i, _, _ in live} == set(DECLARED)
    assert published == live


def test_a_delivery_of_several_files_passes_the_ledger_tests(sample_make_run, tmp_path):
    """The schedule backup sends a CSV and a workbook under one delivery id: the next build's
    dbt tests (a second `make run` on the same warehouse) must not call that a duplicate."""
    import shutil
    import subprocess

    from lb_pipelines.warehouse.dbt_project import dbt_executable

    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(sample_make_run["warehouse"], warehouse)
    wal = sample_make_run["warehouse"].with_name(warehouse.name + ".wal")
    if wal.exists():  # what the last run wrote after DuckDB's last checkpoint
        shutil.copyfile(wal, warehouse.with_name(wal.name))
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        files = conn.execute("SELECT count(DISTINCT file_name) FROM delivery.ledger WHERE integration = "
                             "'schedule_backup' GROUP BY delivery_id").fetchall()
    assert files == [(2,)]
    dbt = subprocess.run(
        [dbt_executable(), "test", "--select", "fct_deliveries", "--profiles-dir", ".",
         "--target-path", str(tmp_path / "target")],
        cwd=settings.DBT_PROJECT_DIR, env={**__import__("os").environ, "LB_WAREHOUSE": str(warehouse)},
        capture_output=True, text=True,
    )
    assert dbt.returncode == 0, dbt.stdout[-2000:]
    assert "PASS=3" in dbt.stdout, dbt.stdout[-2000:]
