"""Schedules from each integration's `cadence` setting.

A settings file with a mistake still gets its schedule (at the model's default cadence): the
run then fails at the integration's config asset and the failure is e-mailed, instead of the
integration silently stopping. An integration that is off (no folder, or `enabled: false`)
has none. Cron times are in `LB_SCHEDULE_TIMEZONE` (default America/Chicago, the bundled
sample's zone); schedules start RUNNING only with `LB_AUTOMATION=on`.
"""

import dagster as dg

from lb_pipelines import settings
from lb_pipelines.automation.switch import default_schedule_status
from lb_pipelines.integrations.config import ConfigError, integration_spec, load_integration
from lb_pipelines.integrations.kronos_wfd.assets import ensure_pay_periods


def _cadence(integration: str) -> str | None:
    spec = integration_spec(integration)
    try:
        config = load_integration(integration)
    except ConfigError:
        return spec.settings_model.model_fields["cadence"].default
    if config is None or not config.enabled:
        return None
    return config.settings.cadence


def pay_period_schedule(integration: str, job, cadence: str) -> dg.ScheduleDefinition:
    """Runs the current pay period (adding its partition first)."""

    @dg.schedule(
        name=f"{integration}_on_cadence",
        cron_schedule=cadence,
        job=job,
        execution_timezone=settings.schedule_timezone(),
        default_status=default_schedule_status(),
    )
    def _schedule(context: dg.ScheduleEvaluationContext):
        config = load_integration(integration)
        if config is None or not config.enabled:
            return dg.SkipReason(f"{integration} is off")
        period = ensure_pay_periods(context.instance, config.settings)
        return dg.RunRequest(partition_key=period.key, run_key=None)

    return _schedule


def integration_schedules(jobs: dict, by_pay_period: set[str]) -> list:
    schedules = []
    for integration, job in jobs.items():
        cadence = _cadence(integration)
        if cadence is None:
            continue
        if integration in by_pay_period:
            schedules.append(pay_period_schedule(integration, job, cadence))
        else:
            schedules.append(
                dg.ScheduleDefinition(
                    name=f"{integration}_on_cadence",
                    cron_schedule=cadence,
                    job=job,
                    execution_timezone=settings.schedule_timezone(),
                    default_status=default_schedule_status(),
                )
            )
    return schedules
