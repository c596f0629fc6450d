"""Composing the alert e-mails: pure functions from what happened in a run to subject and body.

Written for the hospital's integration analyst: what failed or was skipped, in the words of
the pipeline (step, asset, problem row), and where to look next. Nothing here reads the
instance, the warehouse or the environment, so every message can be tested by hand.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from lb_pipelines.alerts.mail import Mail, unique_addresses

PREFIX = "[lb-pipelines]"
MAX_PROBLEM_LINES = 200  # rows listed in one digest; the rest are counted
MAX_ERROR_LINES = 12  # lines of one step's error message
MAX_LINE = 300  # characters of one line
MAX_LISTED_ASSETS = 20

# What an analyst does about each kind of problem row (kinds from delivery.problems).
KIND_HINTS = {
    "person_without_vendor_id": "fill in the person's id in Lightning Bolt, in the field named on the row "
    "(the integration's personnel_id_field)",
    "person_not_exportable": "check the person in Lightning Bolt (unknown or inactive): the reason names it",
    "bad_mapping_row": "correct or remove that line of the integration's mapping.csv{where}",
    "unknown_person": "the slot names a person Lightning Bolt does not have: reassign the slot",
    "inactive_person": "reassign the slot or reactivate the person",
    "unknown_department_in_settings": "correct the departments list in the integration's settings.yaml",
}


@dataclass(frozen=True)
class StepFailure:
    step_key: str
    message: str  # the error as the step reported it
    assets: tuple[str, ...] = ()  # asset keys ("config/<slug>") the step materializes


@dataclass(frozen=True)
class FailedCheck:
    asset: str  # "marts/fct_shifts"
    check_name: str
    detail: str = ""  # the check's description or its metadata, one line


@dataclass(frozen=True)
class ProblemRow:
    kind: str
    record: str
    field: str
    reason: str


@dataclass(frozen=True)
class RunFacts:
    """What the alerts need to know about one finished run (read from its event log)."""

    run_id: str
    job_name: str
    partition: str | None = None
    failed_steps: tuple[StepFailure, ...] = ()
    failed_checks: tuple[FailedCheck, ...] = ()  # failed, severity ERROR
    not_materialized: tuple[str, ...] = ()  # planned in the run, never materialized
    run_failure_message: str | None = None  # for a run that failed outside any step
    integrations: tuple[str, ...] = ()  # whose assets were in the run
    problem_counts: dict[str, int] = field(default_factory=dict)  # integration -> rows skipped
    problem_previews: dict[str, str] = field(default_factory=dict)  # the assets' problem_rows tables

    @property
    def short_id(self) -> str:
        return short_id(self.run_id)


def short_id(run_id: str) -> str:
    """The first block of the run id, as the Dagster UI shows it."""
    return run_id[:8]


def first_lines(text: str, lines: int = MAX_ERROR_LINES, width: int = MAX_LINE) -> list[str]:
    """The start of an error message: blank lines dropped, long lines cut, the rest counted."""
    kept = [line.rstrip() for line in text.strip().splitlines() if line.strip()]
    cut = [line if len(line) <= width else line[: width - 1] + "…" for line in kept[:lines]]
    if len(kept) > lines:
        cut.append(f"… ({len(kept) - lines} more lines on the run page)")
    return cut


def run_page(run_id: str, ui_url: str | None = None) -> str:
    """The run's page in the Dagster UI: a full link when the UI's address is known."""
    path = f"/runs/{run_id}"
    return f"{ui_url.rstrip('/')}{path}" if ui_url else path


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _section(title: str, lines: Iterable[str]) -> list[str]:
    lines = list(lines)
    return ["", title, "-" * len(title), *lines] if lines else []


def _listed(items: Sequence[str], limit: int = MAX_LISTED_ASSETS) -> list[str]:
    lines = [f"  - {item}" for item in items[:limit]]
    if len(items) > limit:
        lines.append(f"  … and {len(items) - limit} more")
    return lines


def _where(facts: RunFacts, ui_url: str | None, *extra: str) -> list[str]:
    lines = [f"Run id:     {facts.run_id}", f"Job:        {facts.job_name}"]
    if facts.partition:
        lines.append(f"Partition:  {facts.partition}")
    page = run_page(facts.run_id, ui_url)
    lines.append(f"Dagster UI: {page} (the run's page: every step's log and full error)")
    return _section("Where to look", [*lines, *extra])


def _check_lines(checks: Sequence[FailedCheck]) -> list[str]:
    return [f"  - {c.asset}: {c.check_name}" + (f" ({c.detail})" if c.detail else "") for c in checks]


def _recipients_note(unreadable: Sequence[str]) -> list[str]:
    return _section(
        "Recipients",
        [
            f"  - {slug}: its settings.yaml was refused, so its alerts.to could not be read; "
            "this mail went to the administrators in LB_ALERTS_TO instead."
            for slug in unreadable
        ],
    )


def failure_mail(
    facts: RunFacts, to: Iterable[str], *, unreadable: Sequence[str] = (), ui_url: str | None = None
) -> Mail:
    """The mail for a failed run: each failed step with the start of its error, and where to look.

    `unreadable`: integrations whose settings could not be read for their alerts.to.
    """
    steps: list[str] = []
    for step in facts.failed_steps:
        more = f" and {len(step.assets) - 3} more" if len(step.assets) > 3 else ""
        assets = ", ".join(step.assets[:3]) + more
        steps.append(f"Step {step.step_key}" + (f" (asset {assets})" if assets else "") + ":")
        steps += [f"    {line}" for line in first_lines(step.message)]
    if not steps:
        message = facts.run_failure_message or "no step failed; see the run page"
        steps = [f"    {line}" for line in first_lines(message)]
    body = [
        f"The Dagster job {facts.job_name} failed (run {facts.short_id}).",
        "Steps after a failed step did not run: their files were not delivered in this run.",
        *_section("What failed", steps),
        *_section("Failed checks (severity ERROR)", _check_lines(facts.failed_checks)),
        *_section("Not materialized in this run", _listed(facts.not_materialized)),
        *_recipients_note(unreadable),
        *_where(facts, ui_url),
        "",
        "Fix the cause, then re-execute the run from its page (or wait for the next scheduled run).",
    ]
    subject = f"{PREFIX} FAILED: {facts.job_name} run {facts.short_id}"
    return Mail(subject, "\n".join(body) + "\n", unique_addresses(to))


def checks_mail(
    facts: RunFacts, to: Iterable[str], *, unreadable: Sequence[str] = (), ui_url: str | None = None
) -> Mail:
    """The mail for a run that succeeded but has failed checks of severity ERROR."""
    count = len(facts.failed_checks)
    body = [
        f"The Dagster job {facts.job_name} finished (run {facts.short_id}), "
        f"but {_plural(count, 'check')} of severity ERROR failed.",
        "The data these checks guard may be wrong; what was delivered in this run went out as it was.",
        *_section("Failed checks", _check_lines(facts.failed_checks)),
        *_recipients_note(unreadable),
        *_where(facts, ui_url),
    ]
    subject = f"{PREFIX} CHECKS FAILED: {facts.job_name} run {facts.short_id}"
    return Mail(subject, "\n".join(body) + "\n", unique_addresses(to))


def _row_line(row: ProblemRow) -> str:
    line = f"  - {row.kind} | {row.record} | {row.field} | {row.reason}"
    return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"


def problems_mail(
    facts: RunFacts,
    integration: str,
    to: Iterable[str],
    *,
    rows: Sequence[ProblemRow] | None,
    total: int | None = None,
    kinds: dict[str, int] | None = None,
    config_folder: str | None = None,
    ui_url: str | None = None,
) -> Mail:
    """One integration's problems digest for one run: every skipped row (up to a cap), and what to do.

    `rows` are the run's rows from delivery.problems (at most MAX_PROBLEM_LINES are listed);
    `total` and `kinds` count all of them when `rows` is only the first part. `rows=None` means
    the warehouse could not be read: the digest then gives the count from the asset's metadata
    and its preview table, and the query that lists them all.
    """
    rows_known = rows is not None
    if total is None:
        total = len(rows) if rows_known else facts.problem_counts.get(integration, 0)
    if kinds is None and rows_known:
        kinds = dict(Counter(row.kind for row in rows))
    query = (
        f"SELECT * FROM delivery.problems WHERE run_id = '{facts.run_id}' AND integration = '{integration}'"
    )
    body = [
        f"{integration} skipped {_plural(total, 'row')} in run {facts.short_id} (job {facts.job_name}).",
        "Rows that could not go out were left out of what it sends (an integration that still sends a "
        "row with a problem, such as the schedule backup, says so on its page); the other rows were not "
        "held back by them.",
        "Each stays out until its cause is fixed; the first run after the fix sends it.",
    ]
    if kinds:
        body += _section("By kind", [f"  {kind}: {count}" for kind, count in sorted(kinds.items())])
    if rows_known:
        listed = [_row_line(row) for row in rows[:MAX_PROBLEM_LINES]]
        if total > len(listed):
            listed.append(f"  … and {total - len(listed)} more (all of them: the query below)")
        body += _section("Rows (kind | record | field | reason)", listed)
    else:
        preview = facts.problem_previews.get(integration)
        body += _section(
            "Rows",
            [
                "  The rows could not be read from the warehouse for this mail (see the log of the",
                "  alert sensor's tick; usually a run was writing to it).",
                *(["  The first rows, as shown on the asset:", "", preview] if preview else []),
            ],
        )
    where = f" ({config_folder.rstrip('/')}/{integration}/mapping.csv)" if config_folder else ""
    hints = [f"  {kind}: {KIND_HINTS[kind].format(where=where)}"
             for kind in sorted(kinds or {}) if kind in KIND_HINTS]
    body += _section("What to do", hints)
    body += _where(facts, ui_url, f"Warehouse:  {query}")
    subject = f"{PREFIX} {integration}: {_plural(total, 'problem row')} in run {facts.short_id}"
    return Mail(subject, "\n".join(body) + "\n", unique_addresses(to))
