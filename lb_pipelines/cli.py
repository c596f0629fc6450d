"""`lb-pipelines`: the entry points behind `make run` and `make dev`.

  lb-pipelines run   materialize everything on the configured source, then print where things are
  lb-pipelines dev   the Dagster UI on 127.0.0.1 with the same defaults (behind sign-in when LB_UI_SIGN_IN is set)
  lb-pipelines ui    the Dagster UI behind single sign-on, roles and the audit trail (docs/operations.md)
  lb-pipelines status  per integration: the last delivery and the problems open now
  lb-pipelines serve   the on-call and calendar feeds (read-only, from the BI copy) on 127.0.0.1:8090
  lb-pipelines calendar-token issue|revoke|list   a provider's calendar feed URL (docs/feeds.md)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from lb_pipelines import settings
from lb_pipelines.automation import MAIN_JOB, PAY_PERIOD_JOB


def prepare_environment() -> list[str]:
    """Seed DAGSTER_HOME and pin the clock for the bundled sample; return what was done, to print."""
    notes = []
    home = settings.dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    instance_file, repo_file = home / "dagster.yaml", settings.REPO_ROOT / "dagster.yaml"
    # The repo's default instance folder follows the repo's file; a DAGSTER_HOME of your own is
    # only seeded once, never overwritten.
    ours = home == (settings.DATA_DIR / "dagster_home").resolve()
    if not instance_file.exists() or (ours and instance_file.read_bytes() != repo_file.read_bytes()):
        shutil.copyfile(repo_file, instance_file)
        notes.append(f"seeded {instance_file} from the repo's dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)

    sample = settings.DATA_DIR / "sample"
    manifest = sample / "manifest.json"
    if (
        not os.environ.get("LB_NOW")
        and not settings.api_url()
        and settings.source_dir() == sample.resolve()
        and manifest.exists()
    ):
        # The bundled sample is a fixed stretch of dates; reading it at the sample's own
        # "now" gives the same, non-empty windows on whatever day this is run.
        as_of = json.loads(manifest.read_text())["as_of"]
        os.environ["LB_NOW"] = as_of
        notes.append(f"clock pinned to the bundled sample's as-of time LB_NOW={as_of} (set LB_NOW to override)")
    return notes


def _table_counts(warehouse: Path) -> dict[str, int]:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as conn:
        tables = conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('information_schema', 'pg_catalog') AND table_type = 'BASE TABLE' ORDER BY 1"
        ).fetchall()
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for (t,) in tables}


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Dagster handles an interrupt: the run is marked failed, not left STARTED."""


def _raise_terminated(signum, frame) -> None:
    raise _Terminated()


def run() -> int:
    """The main job, then the current pay period's exports; always ends with the summary."""
    signal.signal(signal.SIGTERM, _raise_terminated)
    for note in prepare_environment():
        print(f"lb-pipelines: {note}")
    from lb_pipelines.operations.summary import RunOutcome, failure_lines, write_last_run

    started = time.perf_counter()
    outcomes: list[RunOutcome] = []
    period = None
    try:
        outcomes, period = _execute(outcomes)
    except KeyboardInterrupt as exc:
        stopped = "terminated (SIGTERM)" if isinstance(exc, _Terminated) else "interrupted"
        ended = _fail_own_runs(stopped)
        outcomes.append(RunOutcome("(stopped)", None, "FAILURE", note=f"{stopped}; runs marked failed: {ended or 'none'}"))
    except Exception as exc:  # the definitions or the instance would not load: still a summary
        outcomes.append(RunOutcome(MAIN_JOB, None, "FAILURE", note=f"{type(exc).__name__}: {exc}"))
    seconds = time.perf_counter() - started
    success = bool(outcomes) and all(o.status in ("SUCCESS", "NOT RUN") for o in outcomes)

    warehouse = settings.warehouse_path()
    counts, deliveries, imports, unreadable = {}, [], [], None
    run_ids = [o.run_id for o in outcomes if o.run_id]
    try:
        if warehouse.exists():
            counts = _table_counts(warehouse)
            deliveries = _deliveries(warehouse, run_ids)
            imports = _imports(warehouse, run_ids)
    except Exception as exc:  # e.g. another process is writing it: the summary still comes
        unreadable = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    summary = {
        "run_ids": run_ids,
        "runs": [o.as_json() for o in outcomes],
        "pay_period": period,
        "status": "SUCCESS" if success else "FAILURE",
        "seconds": round(seconds, 1),
        "clock": os.environ.get("LB_NOW", "real clock"),
        "source": settings.api_url() or str(settings.source_dir()),
        "warehouse": str(warehouse),
        "bi_copy": str(settings.bi_dir() / "warehouse.duckdb"),
        "outbox": str(settings.outbox_dir()),
        "dagster_home": os.environ.get("DAGSTER_HOME", str(settings.dagster_home())),
        "tables": counts,
        "deliveries": [
            {"integration": i, "file": f, "status": st, "location": loc} for i, f, st, loc in deliveries
        ],
        "imports": [
            {"integration": i, "file": f, "status": st, "rows": n, "report": rep} for i, f, st, n, rep in imports
        ],
    }
    summary_path = settings.dagster_home() / "last_run.json"
    write_last_run(summary_path, summary)

    print()
    for outcome in outcomes:
        print(f"{outcome.job:<20} run {outcome.run_id or '-'}: {outcome.status}")
    print(f"{'all runs':<20} {summary['status']} in {summary['seconds']} s")
    if period:
        print(f"  pay period:   {period} (the pay-period exports)")
    print(f"  source:       {summary['source']}")
    print(f"  warehouse:    {warehouse}" + (f" (not readable now: {unreadable})" if unreadable else ""))
    for table, rows in counts.items():
        print(f"      {table:<45} {rows:>9} rows")
    print(f"  BI reads:     {summary['bi_copy']} (and parquet/ beside it)")
    print(f"  outbox:       {summary['outbox']}")
    print(f"  run summary:  {summary_path}")
    print(f"  Dagster UI:   make dev (runs are kept in {summary['dagster_home']})")
    print("  status:       lb-pipelines status (last deliveries, open problems)")
    for integration, file_name, status, location in deliveries:
        print(f"  delivered:    {integration:<22} {status:<9} {location or file_name}")
    for integration, file_name, status, rows, report in imports:
        print(f"  imported:     {integration:<22} {status:<9} {file_name} ({rows} rows), report {report}")
        _show_report(report)
    failures = failure_lines(outcomes)
    if failures:
        print("", *failures, sep="\n", file=sys.stderr)
    return 0 if success else 1


def _fail_own_runs(why: str) -> list[str]:
    """Runs this process started and did not finish: failed, their warehouse slots freed."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not interrupt the cleanup
    try:
        import dagster as dg

        from lb_pipelines.operations.recovery import fail_runs_of_this_process

        return [r.run_id for r in fail_runs_of_this_process(dg.DagsterInstance.get(), f"lb-pipelines was {why}")]
    except Exception as exc:  # the summary still comes; the next run's recovery finishes the job
        print(f"lb-pipelines: could not mark this process's runs failed: {exc}", file=sys.stderr)
        return []


def _execute(outcomes: list):
    """Recover from dead runs, run the main job, then the pay period's exports when the warehouse
    was built (one integration's failure does not hold up the others)."""
    import dagster as dg

    from lb_pipelines.definitions import build_definitions
    from lb_pipelines.integrations.registry import integration, integration_of_step
    from lb_pipelines.operations.recovery import fail_dead_runs, pool_holders, process_tags
    from lb_pipelines.operations.summary import RunOutcome, outcome_of
    from lb_pipelines.warehouse.bi_assets import published_warehouse

    defs = build_definitions()  # from the environment as it is now, not as at first import
    instance = dg.DagsterInstance.get()
    for recovered in fail_dead_runs(instance):
        print(f"lb-pipelines: run {recovered.run_id} ({recovered.job_name}) marked failed and its "
              f"warehouse slot freed: {recovered.reason}")
    for pool, runs in pool_holders(instance).items():
        print(f"lb-pipelines: waiting for pool {pool}, held by run {', '.join(sorted(runs))} (a live process)")
    quiet = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    tags = process_tags()

    def execute(job: str, **kwargs):
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance, raise_on_error=False, run_config=quiet, tags=tags, **kwargs
        )
        return outcome_of(job, result)

    outcomes.append(execute(MAIN_JOB))
    periods, why_not = _current_pay_periods(instance)
    warehouse_failed = [s for s, _ in outcomes[0].failed_steps if integration_of_step(s) is None]
    if outcomes[0].run_id is None or outcomes[0].note:
        why_not = why_not or "the main run did not finish"
    elif warehouse_failed:
        why_not = f"the warehouse was not built ({', '.join(warehouse_failed)} failed)"
    if periods and not why_not:
        # Integrations on one payroll calendar share a run; another calendar gets its own.
        for key in sorted(set(periods.values())):
            outputs = [integration(slug).output_key for slug, k in periods.items() if k == key]
            # and the BI copy, as the job itself selects it: BI sees the ledger after these deliveries
            selected = [*outputs, published_warehouse.key]
            outcomes.append(execute(PAY_PERIOD_JOB, partition_key=key, asset_selection=selected))
    elif why_not:
        outcomes.append(RunOutcome(PAY_PERIOD_JOB, None, "NOT RUN", note=why_not))
    return outcomes, ", ".join(sorted(set(periods.values()))) or None


def _current_pay_periods(instance) -> tuple[dict[str, str], str | None]:
    """(each pay-period integration that is on: its current period, registered as a partition;
    or why there is none to run)."""
    from lb_pipelines.automation.pay_period_partitions import ensure_pay_periods
    from lb_pipelines.integrations.config_files import ConfigError
    from lb_pipelines.integrations.registry import integrations

    periods, refused = {}, []
    for declared in integrations().values():
        if declared.partitioned_by != "pay_period":
            continue
        try:
            config = declared.load()
        except ConfigError:
            refused.append(declared.slug)
            continue
        if config is not None and config.enabled:
            periods[declared.slug] = ensure_pay_periods(instance, config.settings.pay_period).key
    if refused and not periods:
        return {}, f"configuration refused for {', '.join(refused)} (see the config step's check)"
    return periods, None


def _rows_of_runs(warehouse: Path, table: str, columns: str, order: str, run_ids: list[str]) -> list[tuple]:
    """The rows these runs wrote to `delivery.<table>` (none when the table does not exist yet)."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as conn:
        present = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'delivery' AND table_name = ?",
            [table],
        ).fetchall()[0][0]
        if not present:
            return []
        return conn.execute(
            f"SELECT {columns} FROM delivery.{table} WHERE run_id IN (SELECT unnest($ids)) ORDER BY {order}",
            {"ids": run_ids},
        ).fetchall()


def _deliveries(warehouse: Path, run_ids: list[str]) -> list[tuple]:
    return _rows_of_runs(warehouse, "ledger", "integration, file_name, status, location", "delivered_at", run_ids)


def _imports(warehouse: Path, run_ids: list[str]) -> list[tuple]:
    return _rows_of_runs(warehouse, "inbound_files", "integration, file_name, status, rows, report_location",
                         "finished_at", run_ids)


REPORT_LINES_SHOWN = 25


def _show_report(location: str | None) -> None:
    """A small import report in full (the bundled sample's); a large one by its outcome counts."""
    import csv

    path = Path(location) if location else None
    if path is None or not path.is_file():
        return
    with path.open(newline="") as report:
        rows = list(csv.reader(report))
    if len(rows) <= REPORT_LINES_SHOWN + 1:
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]  # the reason is last
        for row in rows:
            print("      " + "  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
        return
    outcomes: dict[str, int] = {}
    column = rows[0].index("outcome") if "outcome" in rows[0] else -1
    for row in rows[1:]:
        outcomes[row[column]] = outcomes.get(row[column], 0) + 1
    print("      " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))


def dev(port: int) -> int:
    for note in prepare_environment():
        print(f"lb-pipelines: {note}")
    if settings.automation_on():
        print("lb-pipelines: LB_AUTOMATION=on: schedules and sensors start RUNNING (they deliver)")
    else:
        print("lb-pipelines: schedules and sensors are stopped (set LB_AUTOMATION=on to start them)")
    if os.environ.get("LB_UI_SIGN_IN", "").strip():
        print("lb-pipelines: sign-in is configured (LB_UI_SIGN_IN): the UI behind it, with the daemon beside it")
        return ui("127.0.0.1", port, with_daemon=True)
    dagster = Path(sys.executable).parent / "dagster"
    args = [str(dagster), "dev", "-w", str(settings.REPO_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)]
    os.chdir(settings.REPO_ROOT)
    os.execv(args[0], args)
    return 0  # not reached


def ui(host: str, port: int, with_daemon: bool = False) -> int:
    """The UI behind the sign-in layer (production runs `dagster-daemon run` as its own service)."""
    import subprocess

    from lb_pipelines.ui import server
    from lb_pipelines.ui.settings import SettingsError

    for note in prepare_environment():
        print(f"lb-pipelines: {note}")
    os.chdir(settings.REPO_ROOT)
    daemon = None
    if with_daemon:
        daemon = subprocess.Popen([str(Path(sys.executable).parent / "dagster-daemon"), "run",
                                   "-w", str(settings.REPO_ROOT / "workspace.yaml")])
    try:
        return server.serve(host, port)
    except (SettingsError, server.RefusedToListen) as exc:
        print(f"lb-pipelines: {exc}", file=sys.stderr)
        return 2
    finally:
        if daemon is not None:
            daemon.terminate()
            daemon.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lb-pipelines", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="materialize everything on the configured source")
    dev_parser = commands.add_parser("dev", help="the Dagster UI on 127.0.0.1")
    dev_parser.add_argument("--port", type=int, default=3000)
    ui_parser = commands.add_parser("ui", help="the Dagster UI behind single sign-on (LB_UI_SIGN_IN: oidc or saml)")
    ui_parser.add_argument("--host", default="127.0.0.1", help="without sign-in, only 127.0.0.1 is accepted")
    ui_parser.add_argument("--port", type=int, default=3000)
    ui_parser.add_argument("--with-daemon", action="store_true", help="also run the Dagster daemon (make dev)")
    commands.add_parser("status", help="per integration: the last delivery and the problems open now")
    serve_parser = commands.add_parser("serve", help="the on-call and calendar feeds, read-only, from the BI copy")
    serve_parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (default: loopback only)")
    serve_parser.add_argument("--port", type=int, default=8090)
    serve_parser.add_argument("--demo", action="store_true",
                              help="make serve: a session API key if none is set, a demo calendar token, URLs to try")
    tokens = commands.add_parser("calendar-token", help="issue, revoke or list providers' calendar feed tokens")
    token_commands = tokens.add_subparsers(dest="token_command", required=True)
    issue = token_commands.add_parser("issue", help="a new feed URL for a person (the token is shown once)")
    issue.add_argument("--person", type=int, required=True, metavar="PERSONNEL_ID")
    issue.add_argument("--label", help="what the token is for, e.g. 'Dr Reyes, iPhone'")
    issue.add_argument("--base-url", help="the service's URL as people reach it (default: $LB_FEED_BASE_URL "
                                          "or http://127.0.0.1:8090)")
    revoke = token_commands.add_parser("revoke", help="a token's feed URL answers 404 from now on")
    revoke.add_argument("token_id")
    token_commands.add_parser("list", help="every token by its id (never the token itself)")
    args = parser.parse_args(argv)
    if args.command == "run":
        return run()
    if args.command == "status":
        from lb_pipelines.operations.status import main_status

        return main_status()
    if args.command in ("serve", "calendar-token"):
        return _feeds(args)
    if args.command == "ui":
        return ui(args.host, args.port, with_daemon=args.with_daemon)
    return dev(args.port)


def _feeds(args: argparse.Namespace) -> int:
    from lb_pipelines.feeds import commands

    for note in prepare_environment():  # the bundled sample's clock, as make run read it
        print(f"lb-pipelines: {note}")
    try:
        if args.command == "serve":
            return commands.serve(args.host, args.port, demo=args.demo)
        if args.token_command == "issue":
            url = (args.base_url or "").rstrip("/") or commands.base_url("127.0.0.1", 8090)
            return commands.issue(args.person, args.label, url)
        if args.token_command == "revoke":
            return commands.revoke(args.token_id)
        return commands.list_all()
    except commands.CommandError as exc:
        print(f"lb-pipelines: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
