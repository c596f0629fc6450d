"""Alert e-mails, received by a real SMTP server on 127.0.0.1: expected values worked out by hand.

The sensors are evaluated against real runs of the project's main job on the tiny system:
through `evaluate_tick` with a cursor (as the daemon does) and directly on one run (as after
a reset cursor), and the messages are read back from the server.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from lb_pipelines.alerts import digest, mail, sensors
from lb_pipelines.alerts.digest import FailedCheck, ProblemRow, RunFacts, StepFailure
from lb_pipelines.alerts.sensors import alert_on_run_failure, alert_on_run_problems
from lb_pipelines.delivery.ledger import Problem, record_problems
from pipeline_helpers import evaluate_run_sensor as _invoke
from pipeline_helpers import run_pipeline, step_failures, write_config
from tiny_system import write_system

RUN_ID = "1e9ea5bd-1023-4c4e-b6ba-acdb526c8620"
ADMINS = "admins@example.org"
ONCALL = "oncall-admins@example.org"
EDW_TEAM = "edw-team@example.org"

EPIC_SETTINGS = f"""
enabled: true
personnel_id_field: custom1
window: {{days_back: 1, days_forward: 30}}
alerts: {{to: [{ONCALL}]}}
"""
# 101 and 102 are the tiny system's assignments; 999 is not: a problem row of the config.
EPIC_MAPPING = """assignment_id,epic_team_id,team_name,role,note_prefix,team_comment,call_order
101,OCF-OB-01,OB Anesthesia,Attending,OB,Call L&D first,1
102,OCF-OR-01,OR Day,Attending,,,1
999,OCF-XX-01,Nobody,Attending,,,1
"""
EDW_SETTINGS = f"alerts: {{to: [{EDW_TEAM}]}}\n"


class _Records(logging.Handler):
    """Keeps what a sensor logged (its tick logger is not part of Python's logger tree)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def text(self) -> str:
        return "\n".join(f"{r.levelname} {r.getMessage()}" for r in self.records)


def _tick(sensor: dg.SensorDefinition, instance: dg.DagsterInstance, cursor: str | None,
          log: _Records | None = None):
    """One tick as the daemon evaluates it: the runs after `cursor`, and the new cursor."""
    context = dg.build_sensor_context(instance=instance, cursor=cursor)
    if log is not None:
        context.log.addHandler(log)
    return sensor.evaluate_tick(context)


def _mailed_tags(instance: dg.DagsterInstance, run_id: str) -> set[str]:
    return {key for key in instance.get_run_by_id(run_id).tags if key.startswith(sensors.MAILED_TAG)}


# ---------------------------------------------------------------------------------------------
# Composing: pure functions, small hand-made cases


def test_an_assets_owner_comes_from_the_declarations():
    from lb_pipelines.integrations.registry import integration_of, integrations

    for slug, declared in integrations().items():
        assert integration_of(declared.config_key) == slug
        assert integration_of(declared.output_key) == slug
        for key in declared.model_keys:
            assert integration_of(key) == slug
    assert integration_of(["epic_on_call_finder", "file"]) == "epic_on_call_finder"
    assert integration_of(["exports", "export_kronos_wfd"]) == "kronos_wfd"
    assert integration_of(["marts", "fct_shifts"]) is None
    assert integration_of(["config", "integration_settings"]) is None  # every integration writes it
    assert integration_of(["config", "no_such_integration"]) is None
    assert integration_of([]) is None


def test_failure_mail_by_hand():
    facts = RunFacts(
        run_id=RUN_ID,
        job_name="full_refresh",
        failed_steps=(StepFailure("edw__file", "edw: lb_edw_20261102.zip was not delivered: timed out\n\nretry?",
                                  ("edw/file",)),),
        failed_checks=(FailedCheck("marts/fct_shifts", "not_null_fct_shifts_start_at", "failed_row_count: 2"),),
        not_materialized=("edw/file",),
    )
    sent = digest.failure_mail(facts, [EDW_TEAM, ADMINS, "EDW-Team@example.org"], ui_url="http://dagster:3000/")
    assert sent.subject == "[lb-pipelines] FAILED: full_refresh run 1e9ea5bd"
    assert sent.to == (EDW_TEAM, ADMINS)  # once each, whatever the case
    lines = sent.body.splitlines()
    assert lines[0] == "The Dagster job full_refresh failed (run 1e9ea5bd)."
    step = lines.index("Step edw__file (asset edw/file):")
    assert lines[step + 1 : step + 3] == ["    edw: lb_edw_20261102.zip was not delivered: timed out", "    retry?"]
    assert "  - marts/fct_shifts: not_null_fct_shifts_start_at (failed_row_count: 2)" in lines
    assert f"Dagster UI: http://dagster:3000/runs/{RUN_ID} (the run's page: every step's log and full error)" in lines
    assert "Recipients" not in lines


def test_failure_mail_names_unreadable_settings_and_run_level_errors():
    facts = RunFacts(run_id=RUN_ID, job_name="edw", run_failure_message="Run worker crashed (exit code -9)")
    sent = digest.failure_mail(facts, [ADMINS], unreadable=["edw"])
    assert "    Run worker crashed (exit code -9)" in sent.body.splitlines()
    assert "  - edw: its settings.yaml was refused, so its alerts.to could not be read; " in sent.body
    assert f"Dagster UI: /runs/{RUN_ID} " in sent.body


def test_first_lines_cut_long_errors():
    assert digest.first_lines("a\n\n  b  \n", lines=5) == ["a", "  b"]
    assert digest.first_lines("\n".join("x" * 5 for _ in range(4)), lines=2, width=4) == [
        "xxx…", "xxx…", "… (2 more lines on the run page)",
    ]


def test_problems_mail_lists_rows_up_to_the_cap():
    facts = RunFacts(run_id=RUN_ID, job_name="epic_on_call_finder")
    rows = [ProblemRow("person_without_vendor_id", f"slot {5000 + i}", "custom1", "no Epic id") for i in range(250)]
    sent = digest.problems_mail(
        facts, "epic_on_call_finder", [ONCALL, ADMINS], rows=rows[:200], total=250,
        kinds={"person_without_vendor_id": 250},
    )
    assert sent.subject == "[lb-pipelines] epic_on_call_finder: 250 problem rows in run 1e9ea5bd"
    lines = sent.body.splitlines()
    assert lines[0] == "epic_on_call_finder skipped 250 rows in run 1e9ea5bd (job epic_on_call_finder)."
    listed = [line for line in lines if line.startswith("  - person_without_vendor_id | slot ")]
    assert len(listed) == 200
    assert listed[0] == "  - person_without_vendor_id | slot 5000 | custom1 | no Epic id"
    assert "  … and 50 more (all of them: the query below)" in lines
    assert "  person_without_vendor_id: 250" in lines
    assert (
        f"Warehouse:  SELECT * FROM delivery.problems WHERE run_id = '{RUN_ID}' "
        "AND integration = 'epic_on_call_finder'"
    ) in lines

    one = digest.problems_mail(facts, "edw", [ADMINS], rows=[ProblemRow("bad_mapping_row", "mapping.csv line 3",
                                                                      "call_order", "must be >= 1")],
                               config_folder="/etc/lb/config")
    assert one.subject == "[lb-pipelines] edw: 1 problem row in run 1e9ea5bd"
    assert "  - bad_mapping_row | mapping.csv line 3 | call_order | must be >= 1" in one.body.splitlines()
    assert "correct or remove that line of the integration's mapping.csv (/etc/lb/config/edw/mapping.csv)" in one.body


def test_problems_mail_without_rows_gives_counts_and_preview():
    facts = RunFacts(run_id=RUN_ID, job_name="full_refresh", problem_counts={"edw": 3},
                     problem_previews={"edw": "| record |\n|---|\n| slot 1 |"})
    sent = digest.problems_mail(facts, "edw", [ADMINS], rows=None)
    assert sent.subject == "[lb-pipelines] edw: 3 problem rows in run 1e9ea5bd"
    assert "The rows could not be read from the warehouse" in sent.body
    assert "| slot 1 |" in sent.body


def test_smtp_settings_from_the_environment():
    assert mail.smtp_settings({}) is None  # alerts off
    assert mail.smtp_settings({"LB_SMTP_HOST": "  "}) is None
    plain = mail.smtp_settings({"LB_SMTP_HOST": "smtp.example.org"})
    assert (plain.port, plain.sender, plain.login, plain.starttls, plain.timeout) == (
        25, "lb-pipelines@localhost", False, False, 10.0,
    )
    full = mail.smtp_settings({
        "LB_SMTP_HOST": "smtp.example.org", "LB_SMTP_PORT": "587", "LB_SMTP_FROM": "lb@hospital.org",
        "LB_SMTP_USERNAME": "lb", "LB_SMTP_PASSWORD": "pw", "LB_SMTP_STARTTLS": "true", "LB_SMTP_TIMEOUT": "2.5",
    })
    assert (full.port, full.sender, full.login, full.starttls, full.timeout) == (587, "lb@hospital.org", True, True, 2.5)
    assert "pw" not in repr(full)
    assert not mail.smtp_settings({"LB_SMTP_HOST": "h", "LB_SMTP_USERNAME": "lb"}).login  # both, or no login
    for var, value in [("LB_SMTP_PORT", "smtp"), ("LB_SMTP_PORT", "0"), ("LB_SMTP_STARTTLS", "maybe"),
                       ("LB_SMTP_TIMEOUT", "-1")]:
        with pytest.raises(ValueError, match=var):
            mail.smtp_settings({"LB_SMTP_HOST": "h", var: value})
    assert mail.admin_recipients({"LB_ALERTS_TO": " a@example.org, ,b@example.org "}) == ["a@example.org", "b@example.org"]
    assert mail.admin_recipients({}) == []


# ---------------------------------------------------------------------------------------------
# Sending, to the real server


def test_send_mail_plain_and_with_login(smtp_env, monkeypatch, caplog):
    assert mail.send_mail("[lb-pipelines] test", "Grüße from the pipeline\n", [ADMINS, "Admins@example.org"])
    [received] = smtp_env.messages
    assert (received.mail_from, received.rcpt_tos) == ("lb-pipelines@localhost", [ADMINS])
    assert received.subject == "[lb-pipelines] test"
    assert received.body == "Grüße from the pipeline\n"
    assert received.message["Auto-Submitted"] == "auto-generated"
    assert received.authenticated_as is None

    monkeypatch.setenv("LB_SMTP_USERNAME", smtp_env.username)
    monkeypatch.setenv("LB_SMTP_PASSWORD", smtp_env.password)
    monkeypatch.setenv("LB_SMTP_FROM", "lb@hospital.example.org")
    with caplog.at_level(logging.DEBUG):
        assert mail.send_mail("[lb-pipelines] with login", "body\n", [ADMINS])
        monkeypatch.setenv("LB_SMTP_PASSWORD", smtp_env.password + "-wrong")
        assert not mail.send_mail("[lb-pipelines] wrong password", "body\n", [ADMINS])
    # smtplib tries each mechanism the server offers (PLAIN, then LOGIN) before giving up.
    assert smtp_env.logins[0] == (smtp_env.username, True)
    assert smtp_env.logins[1:] and all(login == (smtp_env.username, False) for login in smtp_env.logins[1:])
    assert smtp_env.messages[-1].authenticated_as == smtp_env.username
    assert smtp_env.messages[-1].mail_from == "lb@hospital.example.org"
    assert len(smtp_env.messages) == 2
    assert "535" in caplog.text and "as lb-alerts" in caplog.text
    assert smtp_env.password not in caplog.text


def test_smtp_down_is_logged_not_raised(smtp_env, closed_port, monkeypatch, caplog):
    monkeypatch.setenv("LB_SMTP_PORT", str(closed_port))
    monkeypatch.setenv("LB_SMTP_USERNAME", smtp_env.username)
    monkeypatch.setenv("LB_SMTP_PASSWORD", smtp_env.password)
    with caplog.at_level(logging.INFO):
        assert not mail.send_mail("[lb-pipelines] nobody listens", "body\n", [ADMINS])
    assert f"not sent through SMTP 127.0.0.1:{closed_port}" in caplog.text
    assert "nobody listens" in caplog.text
    assert smtp_env.password not in caplog.text


# ---------------------------------------------------------------------------------------------
# A failed run: one mail


def test_failed_run_sends_one_mail(tiny_source, lb_env, smtp_env, monkeypatch):
    monkeypatch.setenv("LB_ALERTS_TO", f"{ADMINS}, EDW-Team@example.org")
    settings_file = lb_env / "config" / "epic_on_call_finder" / "settings.yaml"
    write_config(lb_env / "config", "epic_on_call_finder", EPIC_SETTINGS + "bogus: 1\n")  # refused at load
    write_config(lb_env / "config", "edw", EDW_SETTINGS)
    instance = dg.DagsterInstance.from_config(str(lb_env / "dagster_home"))
    try:
        failure_cursor = _tick(alert_on_run_failure, instance, None).cursor  # the daemon's first tick
        success_cursor = _tick(alert_on_run_problems, instance, None).cursor
        result = run_pipeline(instance)
        assert not result.success
        # the warehouse and the EDW zip went on; only Epic's export refused to send
        assert [f.split(":")[0] for f in step_failures(result)] == ["epic_on_call_finder__file"]

        after = _tick(alert_on_run_failure, instance, failure_cursor)
        [received] = smtp_env.messages
        # The refused settings.yaml cannot be read for its alerts.to: LB_ALERTS_TO receives it,
        # with edw's team, whose export was in the run too.
        assert received.rcpt_tos == [EDW_TEAM, ADMINS]
        assert received.subject == f"[lb-pipelines] FAILED: full_refresh run {result.run_id[:8]}"
        lines = received.body.splitlines()
        assert lines[0] == f"The Dagster job full_refresh failed (run {result.run_id[:8]})."
        step = lines.index("Step epic_on_call_finder__file (asset epic_on_call_finder/file):")
        assert lines[step + 1 : step + 3] == [
            "    epic_on_call_finder: configuration refused, nothing sent until it is fixed:",
            f"    {settings_file}: bogus: unknown key",
        ]
        assert "  - config/epic_on_call_finder: settings_accepted" in received.body  # the ERROR check
        assert "  - epic_on_call_finder/file" in lines  # not materialized: no file went out
        assert "  - edw/file" not in lines  # delivered
        assert "  - epic_on_call_finder: its settings.yaml was refused, so its alerts.to could not be read; " in received.body
        assert f"Run id:     {result.run_id}" in lines
        assert f"Dagster UI: /runs/{result.run_id} (the run's page: every step's log and full error)" in lines
        assert _mailed_tags(instance, result.run_id) == {f"{sensors.MAILED_TAG}/failure"}

        # Once only: the next tick, a direct evaluation of the run, and the success sensor send nothing.
        _tick(alert_on_run_failure, instance, after.cursor)
        _invoke(alert_on_run_failure, instance, result.run_id)
        _tick(alert_on_run_problems, instance, success_cursor)
        assert len(smtp_env.messages) == 1
    finally:
        instance.dispose()


def test_failed_export_goes_to_its_integration(lb_env, smtp_env, monkeypatch):
    """A failure in an asset keyed by an integration's slug reaches that integration's alerts.to."""
    monkeypatch.setenv("LB_ALERTS_TO", ADMINS)
    write_config(lb_env / "config", "epic_on_call_finder", EPIC_SETTINGS)

    @dg.asset(key=["epic_on_call_finder", "file"])
    def epic_file() -> None:
        raise ValueError("sftp.example.org refused the login for lbsftp\nsecond line of the error")

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([epic_file], instance=instance, raise_on_error=False)
    assert not result.success
    _invoke(alert_on_run_failure, instance, result.run_id)
    [received] = smtp_env.messages
    assert received.rcpt_tos == [ONCALL, ADMINS]
    lines = received.body.splitlines()
    step = lines.index("Step epic_on_call_finder__file (asset epic_on_call_finder/file):")
    assert lines[step + 1 : step + 3] == [
        "    ValueError: sftp.example.org refused the login for lbsftp", "    second line of the error",
    ]


def test_failed_run_also_sends_the_digest_of_rows_skipped_before(lb_env, smtp_env, monkeypatch):
    """The file went out with a skipped row, then another step failed: the failure mail and the digest."""
    monkeypatch.setenv("LB_ALERTS_TO", ADMINS)
    write_config(lb_env / "config", "epic_on_call_finder", EPIC_SETTINGS)
    epic_key = dg.AssetKey(["epic_on_call_finder", "file"])

    @dg.asset(key=epic_key, check_specs=[dg.AssetCheckSpec("no_problem_rows", asset=epic_key)])
    def epic_file(context) -> dg.MaterializeResult:
        problem = Problem("person_without_vendor_id", "slot 5003", "custom1", "person 12 has no custom1")
        with duckdb.connect(str(lb_env / "warehouse.duckdb")) as conn:
            record_problems(conn, "epic_on_call_finder", "full", context.run.run_id, [problem])
        check = dg.AssetCheckResult(check_name="no_problem_rows", passed=False,
                                    severity=dg.AssetCheckSeverity.WARN, metadata={"problems": 1})
        return dg.MaterializeResult(check_results=[check])

    @dg.asset(key=["edw", "file"], deps=[epic_key])
    def edw_file() -> None:
        raise OSError("No space left on device")

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([epic_file, edw_file], instance=instance, raise_on_error=False)
    assert not result.success
    _invoke(alert_on_run_failure, instance, result.run_id)
    _invoke(alert_on_run_failure, instance, result.run_id)
    failure, problems = smtp_env.messages
    assert failure.subject.startswith("[lb-pipelines] FAILED: ")
    assert "    OSError: No space left on device" in failure.body.splitlines()
    assert failure.rcpt_tos == [ONCALL, ADMINS]  # epic_on_call_finder's assets were in the run
    assert problems.subject == f"[lb-pipelines] epic_on_call_finder: 1 problem row in run {result.run_id[:8]}"
    assert problems.rcpt_tos == [ONCALL, ADMINS]
    assert "  - person_without_vendor_id | slot 5003 | custom1 | person 12 has no custom1" in problems.body


def test_failed_error_check_in_a_successful_run(lb_env, smtp_env, monkeypatch):
    monkeypatch.setenv("LB_ALERTS_TO", ADMINS)
    key = dg.AssetKey(["marts", "fct_shifts"])

    @dg.asset(key=key, check_specs=[dg.AssetCheckSpec("not_null_fct_shifts_start_at", asset=key),
                                    dg.AssetCheckSpec("few_unfilled_slots", asset=key)])
    def fct_shifts() -> dg.MaterializeResult:
        return dg.MaterializeResult(check_results=[
            dg.AssetCheckResult(check_name="not_null_fct_shifts_start_at", passed=False,
                                severity=dg.AssetCheckSeverity.ERROR, metadata={"failed_row_count": 2}),
            dg.AssetCheckResult(check_name="few_unfilled_slots", passed=False, severity=dg.AssetCheckSeverity.WARN),
        ])

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([fct_shifts], instance=instance)
    assert result.success
    _invoke(alert_on_run_problems, instance, result.run_id)
    _invoke(alert_on_run_problems, instance, result.run_id)
    [received] = smtp_env.messages
    assert received.rcpt_tos == [ADMINS]
    assert received.subject == f"[lb-pipelines] CHECKS FAILED: __ephemeral_asset_job__ run {result.run_id[:8]}"
    assert "  - marts/fct_shifts: not_null_fct_shifts_start_at (failed_row_count: 2)" in received.body.splitlines()
    assert "few_unfilled_slots" not in received.body  # a warning, not an error


# ---------------------------------------------------------------------------------------------
# A run with problem rows: one digest per integration


@dataclass
class ProblemsWorld:
    root: Path
    env: dict[str, str]
    run_id: str
    success_cursor: str  # the success sensor's cursor from before the run


@pytest.fixture(scope="module")
def problems_world(tmp_path_factory) -> ProblemsWorld:
    """The main job on the tiny system, once: Ben (person 12) has no custom1 and works slot 5003
    (OR Day, mapped); mapping.csv line 4 names assignment 999, which does not exist."""
    root = tmp_path_factory.mktemp("alerts")
    env = {
        "LB_NOW": "2026-11-02T12:00:00-06:00", "LB_SOURCE_DIR": str(root / "source"),
        "LB_WAREHOUSE": str(root / "warehouse.duckdb"), "LB_OUTBOX_DIR": str(root / "outbox"),
        "LB_CONFIG_DIR": str(root / "config"), "LB_BI_DIR": str(root / "bi"),
    }
    with pytest.MonkeyPatch.context() as patch:
        for var, value in env.items():
            patch.setenv(var, value)
        for var in ("LB_API_URL", "LB_SMTP_HOST", "LB_WINDOW_DAYS_BACK", "LB_WINDOW_DAYS_FORWARD"):
            patch.delenv(var, raising=False)
        write_system(root / "source")
        write_config(root / "config", "epic_on_call_finder", EPIC_SETTINGS, EPIC_MAPPING)
        write_config(root / "config", "edw", EDW_SETTINGS)
        (root / "dagster_home").mkdir()
        instance = dg.DagsterInstance.from_config(str(root / "dagster_home"))
        try:
            cursor = _tick(alert_on_run_problems, instance, None).cursor
            result = run_pipeline(instance)
        finally:
            instance.dispose()
    assert result.success, step_failures(result)
    return ProblemsWorld(root, env, result.run_id, cursor)


@pytest.fixture
def problems_run(problems_world, tmp_path, monkeypatch):
    """A fresh copy of that run's Dagster instance (so no test sees another's mailed tags)."""
    for var, value in problems_world.env.items():
        monkeypatch.setenv(var, value)
    home = tmp_path / "dagster_home"
    shutil.copytree(problems_world.root / "dagster_home", home)
    instance = dg.DagsterInstance.from_config(str(home))
    yield instance
    instance.dispose()


def test_problem_digest_once_per_integration(problems_world, problems_run, smtp_env, monkeypatch):
    monkeypatch.setenv("LB_ALERTS_TO", ADMINS)
    instance, run_id = problems_run, problems_world.run_id
    after = _tick(alert_on_run_problems, instance, problems_world.success_cursor)

    [received] = smtp_env.messages  # epic_on_call_finder only: edw skipped nothing
    assert received.rcpt_tos == [ONCALL, ADMINS]
    assert received.message["To"] == f"{ONCALL}, {ADMINS}"
    assert received.subject == f"[lb-pipelines] epic_on_call_finder: 2 problem rows in run {run_id[:8]}"
    lines = received.body.splitlines()
    assert lines[0] == f"epic_on_call_finder skipped 2 rows in run {run_id[:8]} (job full_refresh)."
    rows = lines[lines.index("Rows (kind | record | field | reason)") + 2 :][:2]
    assert rows == [
        "  - bad_mapping_row | mapping.csv line 4 | assignment_id | assignment_id 999 is not in Lightning Bolt's assignments",
        "  - person_without_vendor_id | slot 5003 (OCF-OR-01 11/02/2026 07:00) | custom1 "
        "| person 12 has no custom1 (the Epic provider id)",
    ]
    assert "  bad_mapping_row: 1" in lines and "  person_without_vendor_id: 1" in lines
    assert smtp_env.to(EDW_TEAM) == []
    assert _mailed_tags(instance, run_id) == {f"{sensors.MAILED_TAG}/epic_on_call_finder"}

    # Never a second digest for the same run: not on the next tick, not when evaluated again.
    _tick(alert_on_run_problems, instance, after.cursor)
    _invoke(alert_on_run_problems, instance, run_id)
    assert len(smtp_env.messages) == 1


def test_digest_falls_back_to_counts_when_the_warehouse_is_held(
    problems_world, problems_run, smtp_env, monkeypatch
):
    monkeypatch.setattr(sensors, "WAREHOUSE_ATTEMPTS", 2)
    monkeypatch.setattr(sensors, "WAREHOUSE_WAIT_SECONDS", 0.05)
    holder = subprocess.Popen(  # another process writing: DuckDB refuses even a read-only open
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
         "sys.stdin.read()", problems_world.env["LB_WAREHOUSE"]],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    log = _Records()
    try:
        assert holder.stdout.readline().strip() == "held"
        _invoke(alert_on_run_problems, problems_run, problems_world.run_id, log)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    [received] = smtp_env.messages
    run_id = problems_world.run_id
    assert received.subject == f"[lb-pipelines] epic_on_call_finder: 2 problem rows in run {run_id[:8]}"
    assert "The rows could not be read from the warehouse for this mail" in received.body
    assert "slot 5003 (OCF-OR-01 11/02/2026 07:00)" in received.body  # the asset's preview table
    assert "delivery.problems could not be read (IO Error: Could not set lock" in log.text


def test_smtp_unset_sends_nothing_and_says_so_once(problems_world, problems_run, smtp_env, monkeypatch):
    monkeypatch.delenv("LB_SMTP_HOST")
    monkeypatch.setattr(mail, "_said_off", False)
    log = _Records()
    _invoke(alert_on_run_problems, problems_run, problems_world.run_id, log)
    _invoke(alert_on_run_problems, problems_run, problems_world.run_id, log)
    assert smtp_env.messages == []
    assert [(r.levelname, r.getMessage()) for r in log.records] == [
        ("INFO", "alert e-mails are off: LB_SMTP_HOST is not set"),
    ]
    assert _mailed_tags(problems_run, problems_world.run_id) == set()


def test_smtp_down_tick_succeeds_and_logs_without_the_password(
    problems_world, problems_run, smtp_env, closed_port, monkeypatch, caplog
):
    monkeypatch.setenv("LB_SMTP_PORT", str(closed_port))
    monkeypatch.setenv("LB_SMTP_USERNAME", smtp_env.username)
    monkeypatch.setenv("LB_SMTP_PASSWORD", smtp_env.password)
    log = _Records()
    with caplog.at_level(logging.DEBUG):
        data = _tick(alert_on_run_problems, problems_run, problems_world.success_cursor, log)
    assert [r.run_status for r in data.dagster_run_reactions] == [dg.DagsterRunStatus.SUCCESS]
    assert all(r.error is None for r in data.dagster_run_reactions)  # the tick did not fail
    errors = [r.getMessage() for r in log.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and f"not sent through SMTP 127.0.0.1:{closed_port} as lb-alerts" in errors[0]
    assert smtp_env.password not in log.text + caplog.text
    assert _mailed_tags(problems_run, problems_world.run_id) == set()  # not marked as mailed

    # The server is back: the run was not marked, so evaluating it again sends the digest, with login.
    monkeypatch.setenv("LB_SMTP_PORT", str(smtp_env.port))
    _invoke(alert_on_run_problems, problems_run, problems_world.run_id)
    [received] = smtp_env.messages
    assert received.authenticated_as == smtp_env.username
    assert smtp_env.logins == [(smtp_env.username, True)]
