"""Roles from the identity provider's groups, and what each role may change in the UI.

Every change the Dagster UI makes is a GraphQL mutation (or, for a few report endpoints, a
POST). `viewer` sees everything and changes nothing. `operator` runs the pipeline: launches and
re-executes runs and backfills, terminates them, switches schedules and sensors, adds a pay
period, reloads the code. `admin` may do everything, including what destroys history (deleting
runs, wiping assets, moving a sensor's cursor). A mutation this list does not know (a newer
Dagster) is admin's only: the safe side. The table in docs/operations.md is checked against this.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from lb_pipelines.ui.settings import ROLES

OPERATOR_MUTATIONS = frozenset({
    "launchRun", "launchPipelineExecution", "launchMultipleRuns", "launchRunReexecution",
    "launchPipelineReexecution", "launchPartitionBackfill", "reexecutePartitionBackfill",
    "resumePartitionBackfill", "cancelPartitionBackfill", "terminateRun", "terminatePipelineExecution",
    "terminateRuns", "startSchedule", "stopRunningSchedule", "resetSchedule", "startSensor", "stopSensor",
    "resetSensor", "scheduleDryRun", "sensorDryRun", "addDynamicPartition", "reloadRepositoryLocation",
    "reloadWorkspace", "logTelemetry", "setNuxSeen",
})
ADMIN_MUTATIONS = frozenset({
    "deleteRun", "deletePipelineRun", "wipeAssets", "setSensorCursor", "deleteDynamicPartitions",
    "setConcurrencyLimit", "deleteConcurrencyLimit", "freeConcurrencySlots", "freeConcurrencySlotsForRun",
    "setAutoMaterializePaused", "shutdownRepositoryLocation", "reportRunlessAssetEvents",
    "reportAssetCheckEvaluations", "setAppManagedComponent", "deleteAppManagedComponent",
    "refreshComponentState",
})


def role_of(groups: Iterable[str], role_of_group: Mapping[str, str]) -> str | None:
    """The highest role any of the person's groups maps to; None when none does."""
    found = {role_of_group[g] for g in groups if g in role_of_group}
    return max(found, key=ROLES.index) if found else None


def may_mutate(role: str, mutation: str) -> bool:
    if role == "admin":
        return True
    return role == "operator" and mutation in OPERATOR_MUTATIONS


def may_post(role: str) -> bool:
    """The webserver's REST report endpoints (POST /report_asset_*): they write history."""
    return role == "admin"
