"""The production instance file (dagster-production.yaml) on a real PostgreSQL: it loads from the
DAGSTER_PG_* variables, the main job's runs land in PostgreSQL, the limits are what the file
says, and the password never shows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import dagster as dg
import pytest
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

from pipeline_helpers import run_pipeline, step_failures

PRODUCTION_YAML = Path(__file__).resolve().parents[1] / "dagster-production.yaml"


@pytest.fixture
def production_home(lb_env: Path, postgres_server, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DAGSTER_HOME (made by lb_env) holding dagster-production.yaml as dagster.yaml, and the
    DAGSTER_PG_* variables of the real server."""
    home = lb_env / "dagster_home"
    shutil.copyfile(PRODUCTION_YAML, home / "dagster.yaml")
    for var, value in postgres_server.env().items():
        monkeypatch.setenv(var, value)
    return home


@pytest.fixture
def instance(production_home: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.get() as instance:
        yield instance


def test_main_job_runs_are_stored_in_postgres(tiny_source, instance, postgres_server):
    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)

    result = run_pipeline(instance=instance)
    assert result.success, step_failures(result)

    # Read PostgreSQL itself, not through Dagster.
    with postgres_server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT status, pipeline_name FROM runs WHERE run_id = %s", (result.run_id,))
        assert cur.fetchall() == [("SUCCESS", "full_refresh")]
        cur.execute(
            "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'"
            " AND asset_key = %s",
            (result.run_id, json.dumps(["raw", "slots"])),
        )
        assert cur.fetchall() == [(1,)]
        # The steps took their turn through pool "warehouse": its one slot lives in PostgreSQL,
        # shared by every process on this instance, and is free again after the run.
        cur.execute("SELECT \"limit\" FROM concurrency_limits WHERE concurrency_key = 'warehouse'")
        assert cur.fetchall() == [(1,)]
        cur.execute("SELECT count(*) FROM concurrency_slots WHERE concurrency_key = 'warehouse' AND run_id IS NOT NULL")
        assert cur.fetchall() == [(0,)]
    conn.close()


def test_limits_come_from_the_instance_file(instance):
    concurrency = instance.get_concurrency_config()
    assert concurrency.run_queue_config.tag_concurrency_limits == [
        {"key": "lb/warehouse", "value": "write", "limit": 1}
    ]
    assert concurrency.pool_config.default_pool_limit == 1  # pool "warehouse": one writing step
    assert (instance.run_retries_enabled, instance.run_retries_max_retries) == (True, 2)
    assert instance.run_retries_retry_on_asset_or_op_failure is False  # steps have their own retries
    assert instance.run_monitoring_enabled and instance.run_monitoring_max_runtime_seconds > 0
    assert instance.telemetry_enabled is False


def test_password_never_shows(instance, postgres_server):
    # What `dagster instance info` prints, and the instance reference every run worker receives:
    # the reference names the variable, and each process reads the value from its environment.
    info, ref = instance.info_str(), dg.serialize_value(instance.get_ref())
    assert "PostgresRunStorage" in info and "DAGSTER_PG_PASSWORD" in ref
    for shown in (info, ref):
        for password in (postgres_server.password, quote(postgres_server.password)):  # as typed, as in a URL
            assert password not in shown


@pytest.mark.parametrize(("var", "value", "message"), [
    ("DAGSTER_PG_PORT", "5432x", 'Value stored in env variable "DAGSTER_PG_PORT" cannot be coerced into an int'),
    ("DAGSTER_PG_PASSWORD", None, '"DAGSTER_PG_PASSWORD" which is not set'),
])
def test_a_bad_variable_is_named_at_load(production_home, postgres_server, monkeypatch, var, value, message):
    if value is None:
        monkeypatch.delenv(var)
    else:
        monkeypatch.setenv(var, value)
    with pytest.raises(dg.DagsterInvalidConfigError) as refused:
        dg.DagsterInstance.get()
    assert message in str(refused.value)
    assert postgres_server.password not in str(refused.value)
