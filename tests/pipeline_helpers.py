"""Run the project's own assets in process, on the environment a test has set up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg


def write_config(config_dir: Path, integration: str, settings_yaml: str, mapping_csv: str | None = None) -> None:
    folder = config_dir / integration
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.yaml").write_text(settings_yaml)
    if mapping_csv is not None:
        (folder / "mapping.csv").write_text(mapping_csv)


def run_pipeline(instance: dg.DagsterInstance | None = None, partition_key: str | None = None, job: str = "full_refresh"):
    """Materialize the main job (or the pay-period job) exactly as `make run` does."""
    from lb_pipelines.definitions import build_definitions

    defs = build_definitions()
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(), raise_on_error=False, partition_key=partition_key
    )
    return result


def step_failures(result) -> list[str]:
    return [f"{e.step_key}: {e.step_failure_data.error.message}" for e in result.all_events if e.is_step_failure]


def metadata_of(result, asset_key: list[str]) -> dict[str, Any]:
    events = [
        e.event_specific_data.materialization
        for e in result.all_events
        if e.is_step_materialization and e.event_specific_data.materialization.asset_key == dg.AssetKey(asset_key)
    ]
    assert events, f"{asset_key} was not materialized"
    return {k: v.value for k, v in events[-1].metadata.items()}


def evaluate_run_sensor(sensor, instance: dg.DagsterInstance, run_id: str, log=None) -> None:
    """Evaluate a run-status sensor on one run directly, without its cursor (as after a daemon tick)."""
    from dagster import DagsterEventType

    run = instance.get_run_by_id(run_id)
    succeeded = run.status == dg.DagsterRunStatus.SUCCESS
    status = DagsterEventType.RUN_SUCCESS if succeeded else DagsterEventType.RUN_FAILURE
    event = instance.get_records_for_run(run_id, of_type=status).records[0].event_log_entry.dagster_event
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor.name, dagster_event=event, dagster_instance=instance, dagster_run=run
    )
    if log is not None:
        context.log.addHandler(log)
    sensor(context)
