"""Whether schedules and sensors start RUNNING: `LB_AUTOMATION` (off unless set to on).

A schedule's or sensor's default status only matters until someone switches it in the UI; the
instance remembers that choice from then on.
"""

import dagster as dg

from lb_pipelines import settings


def default_sensor_status() -> dg.DefaultSensorStatus:
    return dg.DefaultSensorStatus.RUNNING if settings.automation_on() else dg.DefaultSensorStatus.STOPPED


def default_schedule_status() -> dg.DefaultScheduleStatus:
    return dg.DefaultScheduleStatus.RUNNING if settings.automation_on() else dg.DefaultScheduleStatus.STOPPED
