"""What `lb-pipelines run` says at the end, whatever happened: per run SUCCESS or FAILURE, each
failed step once with its message, where things are, and `last_run.json` saying the same."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import dagster as dg


def step_message(event: dg.DagsterEvent) -> str:
    """A failed step's message in the pipeline's own words (a `dg.Failure`'s description), without
    Dagster's wrappers and without the traceback (that stays on the run's page)."""
    data = event.step_failure_data
    if data.user_failure_data is not None and data.user_failure_data.description:
        return data.user_failure_data.description
    error = data.error
    if error is None:
        return event.message or "the step failed"
    while error.cause is not None and error.message.startswith("dagster._core.errors."):
        error = error.cause  # Dagster's wrapper around the asset's own exception
    message = error.message
    if error.cause is not None:
        message += f"\ncaused by: {error.cause.message}"
    return message.strip()


@dataclass
class RunOutcome:
    """One run as the summary reports it."""

    job: str
    run_id: str | None
    status: str  # SUCCESS | FAILURE | NOT RUN
    failed_steps: list[tuple[str, str]] = field(default_factory=list)  # (step, message)
    note: str | None = None  # why it did not run, or what failed outside any step

    def as_json(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "run_id": self.run_id,
            "status": self.status,
            "failed_steps": [{"step": s, "message": m} for s, m in self.failed_steps],
            **({"note": self.note} if self.note else {}),
        }


def outcome_of(job: str, result: Any) -> RunOutcome:
    """From `execute_in_process`'s result."""
    failures = [(e.step_key or "(run)", step_message(e)) for e in result.all_events if e.is_step_failure]
    note = None
    if not result.success and not failures:
        run_failures = [e.message for e in result.all_events if e.event_type_value == "PIPELINE_FAILURE"]
        note = run_failures[-1] if run_failures else "the run failed outside any step"
    return RunOutcome(job, result.run_id, "SUCCESS" if result.success else "FAILURE", failures, note)


def first_lines(text: str, lines: int = 8) -> list[str]:
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return kept[:lines] + ([f"… ({len(kept) - lines} more lines on the run's page)"] if len(kept) > lines else [])


def write_last_run(path: Path, summary: dict[str, Any]) -> None:
    """`last_run.json`, replaced whole: a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    tmp.replace(path)


def failure_lines(outcomes: Iterable[RunOutcome]) -> list[str]:
    lines = []
    for outcome in outcomes:
        for step, message in outcome.failed_steps:
            body = first_lines(message)
            lines.append(f"  FAILED {outcome.job} / {step}: {body[0] if body else ''}")
            lines += [f"      {line}" for line in body[1:]]
        if outcome.note:
            lines.append(f"  {outcome.status} {outcome.job}: {outcome.note}")
    return lines


class _NoStackTraces(logging.Filter):
    """A failed step's log line without its stack trace (the run's page keeps it): a failure reads
    as one message on a terminal or in the journal, not as pages of Dagster internals."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "\nStack Trace:" in message:
            record.msg, record.args = message.split("\nStack Trace:")[0].rstrip(), ()
        return True


@dg.logger(
    {"log_level": dg.Field(str, is_required=False, default_value="INFO"), "name": dg.Field(str, is_required=False, default_value="dagster")},
    description="Dagster's console logger, without stack traces (they stay on the run's page).",
)
def console(init_context) -> logging.Logger:
    from dagster._utils.log import create_console_logger

    log = create_console_logger(init_context.logger_config["name"], init_context.logger_config["log_level"])
    log.addFilter(_NoStackTraces())
    return log
