"""What sensors, schedules and partitioned exports share (pay periods, job names, ...)."""

MAIN_JOB = "full_refresh"  # `make run`: source → raw → config → dbt → BI copy → outputs
PAY_PERIOD_JOB = "pay_period_exports"  # the outputs sent by pay period, one period per run
TRIGGER_TAG = "lb/trigger"  # who started a run; "change_log" for the change-log sensor's runs
CHANGE_LOG_TRIGGER = "change_log"
