"""The alert sensors: a failed run, a failed check and an integration's skipped rows send e-mail.

Two run-status sensors, on by default, watch every job of this code location:

- `alert_on_run_failure` (FAILURE): one mail with the failed steps and their errors, to the
  `alerts.to` of every integration whose assets were in the run, plus `LB_ALERTS_TO`. Failed
  checks of severity ERROR (dbt tests) are listed in it. Integrations that skipped rows before
  the run failed also get their problems digest, as in a successful run.
- `alert_on_run_problems` (SUCCESS): one problems digest per integration whose
  `no_problem_rows` check failed, listing the run's rows from `delivery.problems`; and, when
  checks of severity ERROR failed although the run succeeded, one mail listing them.

Each run is handled once: the sensors' cursors move past it, and every mail sent is also
written on the run as a tag (`lb_pipelines/mailed/...`, visible in the UI), so evaluating
the same run again (a reset cursor, a test, a sensor turned off and on) sends nothing twice.
A mail that could not be sent is logged and not marked: the sensor does not come back to the run
(its cursor has moved on), but evaluating the run again sends it. The run's page shows it anyway.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

import dagster as dg
import duckdb
from dagster import DagsterEventType

from lb_pipelines import clock
from lb_pipelines import settings as paths
from lb_pipelines.alerts import digest, mail
from lb_pipelines.alerts.digest import FailedCheck, ProblemRow, RunFacts, StepFailure
from lb_pipelines.automation.switch import default_sensor_status
from lb_pipelines.delivery.ledger import SCHEMA as DELIVERY_SCHEMA
from lb_pipelines.integrations.config_files import ConfigError, load_settings
from lb_pipelines.integrations.registry import integration, integration_of
from lb_pipelines.integrations.exporting import PROBLEMS_CHECK
from lb_pipelines.warehouse.reading import read_when_free
from lb_pipelines.operations.summary import step_message

FAILURE_SENSOR = "alert_on_run_failure"
SUCCESS_SENSOR = "alert_on_run_problems"
MAILED_TAG = "lb_pipelines/mailed"  # + "/failure", "/checks", "/<integration>"

# DuckDB: while a run holds the warehouse for writing, even a read-only open fails. Try a few
# times, briefly (a sensor tick ends at 60 s), then mail the counts from the run's metadata.
WAREHOUSE_ATTEMPTS = 5
WAREHOUSE_WAIT_SECONDS = 0.5

_EVENTS = {
    DagsterEventType.STEP_FAILURE,
    DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.ASSET_CHECK_EVALUATION,
}


# ---------------------------------------------------------------------------------------------
# What happened in the run: its event log


def _key(asset_key: dg.AssetKey) -> str:
    return asset_key.to_user_string()


def _metadata_value(metadata: Any, name: str) -> Any:
    entry = (metadata or {}).get(name)
    return getattr(entry, "value", entry)


def _check_detail(evaluation: Any) -> str:
    if evaluation.description:
        return evaluation.description
    simple = {
        name: value.value
        for name, value in (evaluation.metadata or {}).items()
        if isinstance(getattr(value, "value", None), (int, float, str)) and len(str(value.value)) < 80
    }
    return ", ".join(f"{name}: {value}" for name, value in list(simple.items())[:4])


def _owner(asset: str) -> str | None:
    """The integration an asset ("config/<slug>") belongs to, if any: from the declarations."""
    return integration_of(asset.split("/"))


def read_run(
    instance: dg.DagsterInstance, run: dg.DagsterRun, failure_event: dg.DagsterEvent | None = None
) -> RunFacts:
    """The run's failed steps, failed checks, integrations and problem counts, from its event log."""
    planned: dict[str, str] = {}  # asset -> step key
    materialized: set[str] = set()
    failures: list[tuple[str, str]] = []
    checks: dict[tuple[str, str], Any] = {}  # the last evaluation of each check
    previews: dict[str, list[str]] = defaultdict(list)
    for record in instance.get_records_for_run(run.run_id, of_type=_EVENTS).records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        if event.event_type == DagsterEventType.STEP_FAILURE:
            failures.append((event.step_key or "(run)", step_message(event)))
        elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION_PLANNED:
            planned[_key(event.asset_key)] = event.step_key or ""
        elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.event_specific_data.materialization
            asset = _key(materialization.asset_key)
            materialized.add(asset)
            preview = _metadata_value(materialization.metadata, "problem_rows")
            if (slug := _owner(asset)) and isinstance(preview, str):
                previews[slug].append(f"{asset}:\n{preview}")
        else:
            evaluation = event.event_specific_data
            checks[(_key(evaluation.asset_key), evaluation.check_name)] = evaluation

    failed_checks: list[FailedCheck] = []
    problem_counts: dict[str, int] = {}
    for (asset, name), evaluation in sorted(checks.items()):
        if evaluation.passed:
            continue
        slug = _owner(asset)
        if name == PROBLEMS_CHECK and slug:
            count = _metadata_value(evaluation.metadata, "problems")
            problem_counts[slug] = problem_counts.get(slug, 0) + (count if isinstance(count, int) else 0)
        elif evaluation.severity == dg.AssetCheckSeverity.ERROR:
            failed_checks.append(FailedCheck(asset, name, _check_detail(evaluation)))

    def owned_first(asset: str) -> tuple[bool, str]:
        return _owner(asset) is None, asset

    return RunFacts(
        run_id=run.run_id,
        job_name=run.job_name,
        partition=run.tags.get("dagster/partition"),
        failed_steps=tuple(
            StepFailure(step, message, tuple(sorted(a for a, s in planned.items() if s == step)))
            for step, message in failures
        ),
        failed_checks=tuple(failed_checks),
        not_materialized=tuple(sorted(set(planned) - materialized, key=owned_first)),
        run_failure_message=failure_event.message if failure_event is not None else None,
        integrations=tuple(sorted({slug for asset in planned if (slug := _owner(asset))})),
        problem_counts=problem_counts,
        problem_previews={slug: "\n\n".join(parts) for slug, parts in previews.items()},
    )


# ---------------------------------------------------------------------------------------------
# Who receives it: each integration's alerts.to


def integration_recipients(
    slugs: Iterable[str], *, even_if_disabled: Iterable[str] = ()
) -> tuple[list[str], list[str]]:
    """(the `alerts.to` addresses of these integrations, the integrations whose settings were refused).

    Only the settings file is read (a refused mapping does not hide the addresses). An
    integration that is off or `enabled: false` has nobody to tell, unless it is in
    `even_if_disabled` (its own step failed).
    """
    addresses: list[str] = []
    unreadable: list[str] = []
    even_if_disabled = set(even_if_disabled)
    for slug in slugs:
        try:
            loaded = load_settings(slug, integration(slug).settings_model)
        except ConfigError:
            unreadable.append(slug)
            continue
        if loaded is not None and (loaded.enabled or slug in even_if_disabled):
            addresses += loaded.alerts.to
    return addresses, unreadable


# ---------------------------------------------------------------------------------------------
# The rows: delivery.problems for this run


ProblemsByIntegration = dict[str, tuple[list[ProblemRow], int, dict[str, int]]]  # rows, total, by kind


def _query_problems(warehouse: Path, run_id: str, slugs: Sequence[str]) -> ProblemsByIntegration:
    where = "run_id = ? AND list_contains(?::VARCHAR[], integration)"
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        rows = conn.execute(
            f"""SELECT integration, kind, record, field, reason FROM {DELIVERY_SCHEMA}.problems
                WHERE {where}
                QUALIFY row_number() OVER (PARTITION BY integration ORDER BY scope, kind, record) <= ?
                ORDER BY integration, scope, kind, record""",
            [run_id, list(slugs), digest.MAX_PROBLEM_LINES],
        ).fetchall()
        kinds = conn.execute(
            f"SELECT integration, kind, count(*) FROM {DELIVERY_SCHEMA}.problems WHERE {where} GROUP BY ALL",
            [run_id, list(slugs)],
        ).fetchall()
    found: ProblemsByIntegration = {slug: ([], 0, {}) for slug in slugs}
    for slug, kind, count in kinds:
        found[slug][2][kind] = count
    for slug, *values in rows:
        found[slug][0].append(ProblemRow(*(value or "" for value in values)))
    return {slug: (listed, sum(by_kind.values()), by_kind) for slug, (listed, _, by_kind) in found.items()}


def read_problems(run_id: str, slugs: Sequence[str], log: logging.Logger) -> ProblemsByIntegration | None:
    """The run's problem rows per integration, or None when the warehouse cannot be read now."""
    warehouse = paths.warehouse_path()
    if not warehouse.exists():
        log.warning(f"the warehouse {warehouse} does not exist: problem digests give counts only")
        return None
    try:
        return read_when_free(
            lambda database: _query_problems(database, run_id, slugs), warehouse,
            attempts=WAREHOUSE_ATTEMPTS, wait_seconds=WAREHOUSE_WAIT_SECONDS,
        )
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.warning(f"delivery.problems could not be read ({first}): problem digests give counts only")
    return None


# ---------------------------------------------------------------------------------------------
# One evaluation: compose, send, remember


def _mailed(tags: dict[str, str], what: str) -> bool:
    return f"{MAILED_TAG}/{what}" in tags


def compose(
    facts: RunFacts, *, failed: bool, mailed: dict[str, str], problems: ProblemsByIntegration | None,
    admins: Sequence[str], ui_url: str | None = None, config_folder: str | None = None,
) -> list[tuple[str, mail.Mail]]:
    """The mails a run calls for, each with the tag that marks it sent; none already sent."""
    mails: list[tuple[str, mail.Mail]] = []
    if failed and not _mailed(mailed, "failure"):
        own = {_owner(asset) for step in facts.failed_steps for asset in step.assets} - {None}
        to, unreadable = integration_recipients(facts.integrations, even_if_disabled=own)
        failure = digest.failure_mail(facts, [*to, *admins], unreadable=unreadable, ui_url=ui_url)
        mails.append(("failure", failure))
    if not failed and facts.failed_checks and not _mailed(mailed, "checks"):
        slugs = {_owner(check.asset) for check in facts.failed_checks} - {None}
        to, unreadable = integration_recipients(sorted(slugs))
        checks = digest.checks_mail(facts, [*to, *admins], unreadable=unreadable, ui_url=ui_url)
        mails.append(("checks", checks))
    for slug in sorted(facts.problem_counts):
        if _mailed(mailed, slug):
            continue
        to, unreadable = integration_recipients([slug], even_if_disabled=[slug])
        rows, total, kinds = problems[slug] if problems else (None, None, None)
        if not total:  # not read, or (oddly) no row stored for the run: the count from the check
            rows, total, kinds = None, None, None
        mails.append((slug, digest.problems_mail(
            facts, slug, [*to, *admins], rows=rows, total=total, kinds=kinds,
            config_folder=config_folder, ui_url=ui_url,
        )))
    return mails


def alert_for_run(
    instance: dg.DagsterInstance, run: dg.DagsterRun, log: logging.Logger,
    *, failed: bool, failure_event: dg.DagsterEvent | None = None,
) -> list[mail.Mail]:
    """Send what this run calls for and mark it on the run; returns the mails that went out."""
    try:
        smtp = mail.smtp_settings()
    except ValueError as exc:
        log.error(f"alert e-mails not sent: {exc}")
        return []
    if smtp is None:
        mail.alerts_off_notice(log)
        return []
    current = instance.get_run_by_id(run.run_id) or run  # tags as stored now, not as when the tick began
    facts = read_run(instance, current, failure_event)
    pending = [slug for slug in facts.problem_counts if not _mailed(current.tags, slug)]
    problems = read_problems(run.run_id, pending, log) if pending else {}
    mails = compose(
        facts, failed=failed, mailed=dict(current.tags), problems=problems, admins=mail.admin_recipients(),
        ui_url=os.environ.get("LB_DAGSTER_UI_URL", "").strip() or None,
        config_folder=str(paths.config_dir()),
    )
    sent = mail.send_mails([m for _, m in mails], smtp=smtp, log=log)
    stamp = clock.now().isoformat(timespec="seconds")
    tags = {f"{MAILED_TAG}/{what}": stamp for (what, _), ok in zip(mails, sent) if ok}
    if tags:
        instance.add_run_tags(run.run_id, tags)
    return [m for (_, m), ok in zip(mails, sent) if ok]


def _evaluate(context: dg.RunStatusSensorContext, *, failed: bool) -> None:
    # An alert must never fail the tick (that would hide the next runs' alerts too): log instead.
    try:
        alert_for_run(
            context.instance, context.dagster_run, context.log,
            failed=failed, failure_event=context.dagster_event if failed else None,
        )
    except Exception:
        context.log.exception(f"alerts for run {context.dagster_run.run_id} failed")


@dg.run_failure_sensor(
    name=FAILURE_SENSOR,
    default_status=default_sensor_status(),
    description="E-mails each failed run (failed steps and their errors) to the integrations' "
    "alerts.to and LB_ALERTS_TO, and the problem digests of integrations that skipped rows.",
)
def alert_on_run_failure(context: dg.RunFailureSensorContext) -> None:
    _evaluate(context, failed=True)


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    name=SUCCESS_SENSOR,
    default_status=default_sensor_status(),
    description="E-mails one problems digest per integration that skipped rows in a run, and the "
    "run's failed checks of severity ERROR.",
)
def alert_on_run_problems(context: dg.RunStatusSensorContext) -> None:
    _evaluate(context, failed=False)


def alert_sensors() -> list[dg.SensorDefinition]:
    return [alert_on_run_failure, alert_on_run_problems]
