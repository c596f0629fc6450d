"""lb-pipelines: Lightning Bolt schedules into a DuckDB warehouse and out to every downstream system."""
