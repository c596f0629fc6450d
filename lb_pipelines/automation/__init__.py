"""What sensors, schedules and partitioned exports share (pay periods, ...)."""
