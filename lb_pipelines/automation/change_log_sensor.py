"""The change-log sensor: a schedule change reaches the near-real-time integrations in seconds.

At every pass of the sensor daemon (every 5 s, its shortest loop) it reads the change log after its cursor, keeps the
changes that matter to a near-real-time integration (one whose declaration's triggers include
the change log) (`change_log.matters`), and requests **one** run of the change job for all of
them: it extracts only the changed dates, rebuilds only the models those integrations read, and
delivers each. One run, not one per integration: runs that write the warehouse take turns, so a
run each would put the last integration behind all the others.

The run key names the changes handed over, so the same changes never run twice; the cursor then
moves past every change it has looked at (the others did not matter). While a change run is
still queued, the sensor holds the cursor: the changes of a burst wait for the next run and go
in one run when it starts, rather than one run each. It is not the delivery checkpoint: the
ledger is, and each integration's cadence schedule sends a full file anyway.
"""

import datetime as dt
import itertools
from typing import Any

import dagster as dg

from lb_pipelines import clock
from lb_pipelines.automation import CHANGE_LOG_TRIGGER, TRIGGER_TAG
from lb_pipelines.automation.change_log import Interest, Reference, changed_dates, matters
from lb_pipelines.automation.jobs import WAREHOUSE_WRITE_TAG
from lb_pipelines.automation.switch import default_sensor_status
from lb_pipelines.integrations.config_files import ConfigError
from lb_pipelines.integrations.registry import integrations
from lb_pipelines.lightning_bolt.source.contract import Window
from lb_pipelines.lightning_bolt.source.resource import LightningBoltResource
from lb_pipelines.lightning_bolt.source import LightningBoltSource


MAX_CHANGES_PER_TICK = 5000  # keeps a tick far inside Dagster's 60 s sensor limit
RAW_WINDOWED_BY_CHANGE = ("raw__slots", "raw__schedules")
CHANGE_JOB = "change_log_deliveries"
# The sensor daemon's loop takes 5 s at the least; an interval of 5 would skip every other pass
# (a pass starts a little under 5 s after the last tick), so the sensor asks for every pass.
TICK_SECONDS = 1
WAITING = (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED)


def near_real_time() -> list:
    """The integrations a relevant change runs at once."""
    return [i for i in integrations().values() if i.triggers.change_log]


def interests() -> list[Interest]:
    found = []
    for integration in near_real_time():
        slug = integration.slug
        try:
            config = integration.load()
        except ConfigError:
            continue  # its config asset fails and alerts; nothing to send until it is fixed
        if config is None or not config.enabled or config.mapping is None:
            continue
        s = config.settings
        mapped = frozenset(row.assignment_id for row in config.mapping.rows)
        found.append(Interest(slug, mapped, s.change_days_back, s.window.days_forward, s.personnel_id_field))
    return found


def read_reference(source: LightningBoltSource, changes: list[dict[str, Any]]) -> Reference:
    """The current records the rule needs: only the changed dates' slots are read."""
    ref = Reference(
        department_time_zone={d["id"]: d["timezone"] for d in source.read("departments")},
        assignment_department={a["id"]: a["department_id"] for a in source.read("assignments")},
        schedules={s["id"]: s for s in source.read("schedules")},
    )
    dates = sorted(changed_dates((c for c in changes if c["entity"] == "slot"), ref))
    if dates:
        window = Window(dt.date.fromisoformat(dates[0]), dt.date.fromisoformat(dates[-1]))
        ids = {c["entity_id"] for c in changes if c["entity"] == "slot"}
        ref.slots = {s["id"]: s for s in source.read("slots", window=window) if s["id"] in ids}
    return ref


def run_request(triggered: dict[str, list[dict[str, Any]]], ref: Reference) -> dg.RunRequest:
    """One run for every integration a change concerns: their outputs and what those read."""
    relevant = sorted({c["id"]: c for cs in triggered.values() for c in cs}.values(), key=lambda c: c["id"])
    dates = sorted(changed_dates(relevant, ref)) or [clock.today().isoformat()]
    window = {"start_date": dates[0], "end_date": dates[-1]}
    first, last = relevant[0]["id"], relevant[-1]["id"]
    slugs = sorted(triggered)
    from lb_pipelines.definitions import defs  # the asset graph; imported late (it builds this sensor)

    graph = defs.resolve_asset_graph()
    selection = change_selection(graph, slugs)
    return dg.RunRequest(
        run_key=f"changes:{first}-{last}:{','.join(slugs)}",
        job_name=CHANGE_JOB,
        asset_selection=selection,
        asset_check_keys=change_checks(graph, selection),
        run_config={"ops": {op: {"config": window} for op in RAW_WINDOWED_BY_CHANGE}},
        tags={TRIGGER_TAG: CHANGE_LOG_TRIGGER, "lb/changes": f"{first}-{last}", "lb/integrations": ",".join(slugs)},
    )


def change_selection(graph, slugs: list[str]) -> list[dg.AssetKey]:
    """The integrations' outputs and everything upstream of them: the raw entities, their
    configuration and only the models they read. Not the BI copy: at 20,000 providers its copy
    of the warehouse takes seconds, holding the warehouse while the next change waits; every
    full and cadence run republishes it (every 5 minutes for Epic by default)."""
    outputs = [integrations()[slug].output_key for slug in slugs]
    upstream = dg.AssetSelection.assets(*outputs).upstream().resolve(graph)
    return sorted(upstream, key=lambda k: k.to_user_string())


def change_checks(graph, selection: list[dg.AssetKey]) -> list[dg.AssetCheckKey]:
    """The checks of the selection but dbt's tests: the change run's model step runs those
    itself and fails naming any that fails (warehouse/dbt_assets.py), without the hundred
    check events that would cost seconds of the change's way out."""
    from lb_pipelines.warehouse.dbt_assets import warehouse_dbt_assets

    models = set(warehouse_dbt_assets.keys)
    return sorted((c for key in selection if key not in models for c in graph.get(key).check_keys),
                  key=lambda c: c.to_user_string())


def waiting_change_run(instance: dg.DagsterInstance) -> str | None:
    """A change run that has not started yet: new changes wait for the run after it."""
    runs = instance.get_run_records(
        dg.RunsFilter(job_name=CHANGE_JOB, statuses=list(WAITING), tags={TRIGGER_TAG: CHANGE_LOG_TRIGGER}), limit=1
    )
    return runs[0].dagster_run.run_id if runs else None


def evaluate_change_log(context: dg.SensorEvaluationContext, lightning_bolt: LightningBoltResource):
    source = lightning_bolt.open()
    try:
        if context.cursor is None:
            # Start from the end of the change log: what came before is in the last full runs.
            last = max((c["id"] for c in source.read("change_log", since_id=0)), default=0)
            return dg.SensorResult(cursor=str(last), skip_reason=f"watching the change log after id {last}")
        since = int(context.cursor)
        waiting = waiting_change_run(context.instance)
        if waiting:
            return dg.SkipReason(f"run {waiting} has not started yet; changes after id {since} go in the next run")
        changes = list(itertools.islice(source.read("change_log", since_id=since), MAX_CHANGES_PER_TICK))
        if not changes:
            return dg.SkipReason(f"no changes after id {since}")
        watching = interests()
        ref = read_reference(source, changes) if watching else Reference()
    finally:
        close = getattr(source, "close", None)
        if close:
            close()
    now = clock.now()
    triggered = {}
    for interest in watching:
        relevant = [c for c in changes if matters(c, ref, interest, now)]
        if relevant:
            triggered[interest.integration] = relevant
    cursor = str(changes[-1]["id"])
    if not triggered:
        return dg.SensorResult(cursor=cursor, skip_reason=f"{len(changes)} changes, none relevant")
    return dg.SensorResult(run_requests=[run_request(triggered, ref)], cursor=cursor)


def change_job():
    """Every near-real-time integration's output and its upstream; each run selects a subset."""
    declared = near_real_time()
    outputs = [i.output_key for i in declared]
    assert not any(i.partitioned_by for i in declared), "a change run covers no partition"
    return dg.define_asset_job(
        CHANGE_JOB,
        selection=dg.AssetSelection.assets(*outputs).upstream(),
        tags=WAREHOUSE_WRITE_TAG,
        description="Started by the change-log sensor: the changed dates, the models the triggered "
        "integrations read, and their deliveries (each run selects the integrations its changes concern).",
    )


def build_change_log_sensor(job) -> dg.SensorDefinition:
    """The sensor, targeting the change job (`change_log_deliveries`)."""

    @dg.sensor(
        name="change_log_sensor",
        minimum_interval_seconds=TICK_SECONDS,
        default_status=default_sensor_status(),
        job=job,
        description="Reads Lightning Bolt's change log and runs near-real-time integrations on relevant changes.",
    )
    def change_log_sensor(context: dg.SensorEvaluationContext, lightning_bolt: LightningBoltResource):
        return evaluate_change_log(context, lightning_bolt)

    return change_log_sensor
