"""Alert e-mails: failed runs, failed checks and each integration's skipped rows, to its administrators.

`mail` sends (SMTP settings from `LB_SMTP_*` only), `digest` composes (pure functions),
`sensors` decides what a finished run calls for and sends it once.
"""

from lb_pipelines.alerts.sensors import alert_sensors

__all__ = ["alert_sensors"]
