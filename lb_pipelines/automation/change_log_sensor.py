"""The change-log sensor: a schedule change reaches the near-real-time integrations in well under a minute.

Every 30 s it reads the change log after its cursor, keeps the changes that matter to a
near-real-time integration (one whose declaration's triggers include the change log) (`change_log.matters`), and requests one run of that integration's
job, extracting only the changed dates. The run key names the changes handed over, so the same
changes never run twice; the cursor then moves past every change it has looked at (the others
did not matter). It is not the delivery checkpoint: the ledger is, and the integration's
cadence schedule sends a full file anyway.
"""

import datetime as dt
import itertools
from typing import Any

import dagster as dg

from lb_pipelines import clock
from lb_pipelines.automation.change_log import Interest, Reference, changed_dates, matters
from lb_pipelines.automation.switch import default_sensor_status
from lb_pipelines.integrations.config_files import ConfigError
from lb_pipelines.integrations.registry import integrations
from lb_pipelines.lightning_bolt.source.contract import Window
from lb_pipelines.lightning_bolt.source.resource import LightningBoltResource
from lb_pipelines.lightning_bolt.source import LightningBoltSource

MAX_CHANGES_PER_TICK = 5000  # keeps a tick far inside Dagster's 60 s sensor limit
RAW_WINDOWED_BY_CHANGE = ("raw__slots", "raw__schedules")


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


def run_request(interest: Interest, relevant: list[dict[str, Any]], ref: Reference) -> dg.RunRequest:
    dates = sorted(changed_dates(relevant, ref)) or [clock.today().isoformat()]
    window = {"start_date": dates[0], "end_date": dates[-1]}
    first, last = relevant[0]["id"], relevant[-1]["id"]
    return dg.RunRequest(
        run_key=f"{interest.integration}:changes:{first}-{last}",
        job_name=integrations()[interest.integration].job_name,
        run_config={"ops": {op: {"config": window} for op in RAW_WINDOWED_BY_CHANGE}},
        tags={"lb/trigger": "change_log", "lb/changes": f"{first}-{last}"},
    )


def evaluate_change_log(context: dg.SensorEvaluationContext, lightning_bolt: LightningBoltResource):
    source = lightning_bolt.open()
    try:
        if context.cursor is None:
            # Start from the end of the change log: what came before is in the last full runs.
            last = max((c["id"] for c in source.read("change_log", since_id=0)), default=0)
            return dg.SensorResult(cursor=str(last), skip_reason=f"watching the change log after id {last}")
        since = int(context.cursor)
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
    requests = []
    for interest in watching:
        relevant = [c for c in changes if matters(c, ref, interest, now)]
        if relevant:
            requests.append(run_request(interest, relevant, ref))
    cursor = str(changes[-1]["id"])
    if not requests:
        return dg.SensorResult(cursor=cursor, skip_reason=f"{len(changes)} changes, none relevant")
    return dg.SensorResult(run_requests=requests, cursor=cursor)


def build_change_log_sensor(jobs: list) -> dg.SensorDefinition:
    """The sensor, targeting the near-real-time integrations' jobs (`<integration>_export`)."""

    @dg.sensor(
        name="change_log_sensor",
        minimum_interval_seconds=30,
        default_status=default_sensor_status(),
        jobs=jobs,
        description="Reads Lightning Bolt's change log and runs near-real-time integrations on relevant changes.",
    )
    def change_log_sensor(context: dg.SensorEvaluationContext, lightning_bolt: LightningBoltResource):
        return evaluate_change_log(context, lightning_bolt)

    return change_log_sensor
