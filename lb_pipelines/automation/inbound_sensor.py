"""One sensor per inbound integration (`<slug>_inbound_sensor`): a run per new file in its drop.

Every 15 s it looks in the folder or the SFTP directory. A file is handed to a run once it is
whole: its done marker is there (`done_marker: true`), or its size and modification time are
the same as at the look before (the cursor keeps that look). The run key is the file's name,
size and time, so one version of a file starts one run; the run itself refuses a content it
has processed before (sha256). A file whose run failed stays in the drop and is taken again
by the integration's cadence sweep or a re-execution.
"""

from __future__ import annotations

import json

import dagster as dg

from lb_pipelines.automation.switch import default_sensor_status
from lb_pipelines.integrations.config_files import ConfigError
from lb_pipelines.integrations.declaration import Integration
from lb_pipelines.integrations.inbound import open_drop, ready

INBOUND_TRIGGER = {"lb/trigger": "inbound_file"}
INTERVAL_S = 15


def inbound_sensor(integration: Integration, job) -> dg.SensorDefinition:
    slug = integration.slug
    op_name = "__".join(integration.output_key.path)

    @dg.sensor(
        name=f"{slug}_inbound_sensor",
        job=job,
        minimum_interval_seconds=INTERVAL_S,
        default_status=default_sensor_status(),
        description=f"{integration.title}: one run per new whole file in its drop.",
    )
    def _sensor(context: dg.SensorEvaluationContext):
        try:
            config = integration.load()
        except ConfigError:
            return dg.SkipReason(f"{slug}: its settings are refused (see its config asset); not looking")
        if config is None or not config.enabled:
            return dg.SkipReason(f"{slug} is off")
        inbound = config.settings.inbound
        now = open_drop(inbound, slug).listing()  # a failure fails the tick, shown in the UI
        before = {name: tuple(look) for name, look in json.loads(context.cursor).items()} if context.cursor else None
        whole = ready(now, before, inbound.done_marker)
        context.update_cursor(json.dumps({w.name: list(w.look) for w in now}))
        if not whole:
            waiting = len(now)
            return dg.SkipReason(f"{slug}: {waiting} file(s) in the drop, none new and whole" if waiting else f"{slug}: the drop is empty")
        return [
            dg.RunRequest(
                run_key=f"{slug}:{w.name}:{w.size}:{int(w.mtime * 1000)}",
                job_name=job.name,
                run_config={"ops": {op_name: {"config": {"file": w.name}}}},
                tags={**INBOUND_TRIGGER, "lb/inbound_file": w.name},
            )
            for w in whole
        ]

    return _sensor
