"""Schedules from each integration's `cadence` setting.

A settings file with a mistake still gets its schedule (at the model's default cadence): the
run then fails at the integration's config asset and the failure is e-mailed, instead of the
integration silently stopping. An integration that is off (no folder, or `enabled: false`)
has none. Cron times are in `LB_SCHEDULE_TIMEZONE` (default America/Chicago, the bundled
sample's zone); schedules start RUNNING only with `LB_AUTOMATION=on`.
"""

import dagster as dg

from lb_pipelines import settings
from lb_pipelines.automation.pay_period_partitions import ensure_pay_periods
from lb_pipelines.automation.switch import default_schedule_status
from lb_pipelines.integrations.config_files import ConfigError
from lb_pipelines.integrations.declaration import Integration


def _cadence(integration: Integration) -> str | None:
    try:
        config = integration.load()
    except ConfigError:
        return integration.settings_model.model_fields["cadence"].default
    if config is None or not config.enabled:
        return None
    return config.settings.cadence


def pay_period_schedule(integration: Integration, job, cadence: str) -> dg.ScheduleDefinition:
    """Runs the current pay period (adding its partition first)."""

    @dg.schedule(
        name=f"{integration.slug}_on_cadence",
        cron_schedule=cadence,
        job=job,
        execution_timezone=settings.schedule_timezone(),
        default_status=default_schedule_status(),
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        config = integration.load()
        if config is None or not config.enabled:
            return dg.SkipReason(f"{integration.slug} is off")
        period = ensure_pay_periods(context.instance, config.settings.pay_period)
        return dg.RunRequest(partition_key=period.key, run_key=None)

    return _schedule


def integration_schedules(declared: list[Integration], jobs: dict) -> list:
    """A schedule for each integration whose triggers include its cadence (jobs: by slug)."""
    schedules = []
    for integration in declared:
        cadence = _cadence(integration) if integration.triggers.cadence else None
        if cadence is None:
            continue
        job = jobs[integration.slug]
        if integration.partitioned_by == "pay_period":
            schedules.append(pay_period_schedule(integration, job, cadence))
        else:
            schedules.append(
                dg.ScheduleDefinition(
                    name=f"{integration.slug}_on_cadence",
                    cron_schedule=cadence,
                    job=job,
                    execution_timezone=settings.schedule_timezone(),
                    default_status=default_schedule_status(),
                )
            )
    return schedules
