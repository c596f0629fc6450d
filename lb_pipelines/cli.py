"""`lb-pipelines`: the entry points behind `make run` and `make dev`.

  lb-pipelines run   materialize everything on the configured source, then print where things are
  lb-pipelines dev   the Dagster UI on 127.0.0.1 with the same defaults
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from lb_pipelines import settings

MAIN_JOB = "full_refresh"


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
            "WHERE table_schema NOT IN ('information_schema', 'pg_catalog') ORDER BY 1"
        ).fetchall()
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for (t,) in tables}


def run() -> int:
    for note in prepare_environment():
        print(f"lb-pipelines: {note}")
    import dagster as dg

    from lb_pipelines.definitions import defs

    started = time.perf_counter()
    instance = dg.DagsterInstance.get()
    quiet = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    results = [
        defs.resolve_job_def(MAIN_JOB).execute_in_process(instance=instance, raise_on_error=False, run_config=quiet)
    ]
    period = _current_pay_period(instance)
    if period and results[0].success:
        results.append(
            defs.resolve_job_def("pay_period_exports").execute_in_process(
                instance=instance, raise_on_error=False, run_config=quiet, partition_key=period
            )
        )
    seconds = time.perf_counter() - started
    success = all(r.success for r in results)

    warehouse = settings.warehouse_path()
    counts = _table_counts(warehouse) if warehouse.exists() else {}
    summary = {
        "run_ids": [r.run_id for r in results],
        "pay_period": period,
        "status": "SUCCESS" if success else "FAILURE",
        "seconds": round(seconds, 1),
        "clock": os.environ.get("LB_NOW", "real clock"),
        "source": settings.api_url() or str(settings.source_dir()),
        "warehouse": str(warehouse),
        "bi_copy": str(settings.bi_dir() / "warehouse.duckdb"),
        "outbox": str(settings.outbox_dir()),
        "dagster_home": os.environ["DAGSTER_HOME"],
        "tables": counts,
    }
    summary_path = settings.dagster_home() / "last_run.json"
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")

    print(f"\nruns {', '.join(summary['run_ids'])}: {summary['status']} in {summary['seconds']} s")
    if period:
        print(f"  pay period:   {period} (Kronos exports)")
    print(f"  source:       {summary['source']}")
    print(f"  warehouse:    {warehouse}")
    for table, rows in counts.items():
        print(f"      {table:<45} {rows:>9} rows")
    print(f"  BI reads:     {summary['bi_copy']} (and parquet/ beside it)")
    print(f"  outbox:       {summary['outbox']}")
    print(f"  run summary:  {summary_path}")
    print(f"  Dagster UI:   make dev (runs are kept in {summary['dagster_home']})")
    deliveries = _deliveries(warehouse, [r.run_id for r in results]) if warehouse.exists() else []
    for integration, file_name, status, location in deliveries:
        print(f"  delivered:    {integration:<22} {status:<9} {location or file_name}")
    for run in results:
        for event in run.all_events:
            if event.is_step_failure:
                print(f"  FAILED {event.step_key}: {event.step_failure_data.error.message.strip()}", file=sys.stderr)
    return 0 if success else 1


def _current_pay_period(instance) -> str | None:
    """Register pay-period partitions and return the current one, when Kronos WFD is on."""
    from lb_pipelines.integrations.config import ConfigError, load_integration
    from lb_pipelines.integrations.kronos_wfd.assets import ensure_pay_periods

    try:
        config = load_integration("kronos_wfd")
    except ConfigError:
        return None  # the config asset fails the run with the details
    if config is None or not config.enabled:
        return None
    return ensure_pay_periods(instance, config.settings).key


def _deliveries(warehouse: Path, run_ids: list[str]) -> list[tuple]:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as conn:
        present = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'delivery' AND table_name = 'ledger'"
        ).fetchall()[0][0]
        if not present:
            return []
        return conn.execute(
            "SELECT integration, file_name, status, location FROM delivery.ledger "
            "WHERE run_id IN (SELECT unnest($ids)) ORDER BY delivered_at",
            {"ids": run_ids},
        ).fetchall()


def dev(port: int) -> int:
    for note in prepare_environment():
        print(f"lb-pipelines: {note}")
    dagster = Path(sys.executable).parent / "dagster"
    args = [str(dagster), "dev", "-w", str(settings.REPO_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)]
    os.chdir(settings.REPO_ROOT)
    os.execv(args[0], args)
    return 0  # not reached


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lb-pipelines", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="materialize everything on the configured source")
    dev_parser = commands.add_parser("dev", help="the Dagster UI on 127.0.0.1")
    dev_parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)
    if args.command == "run":
        return run()
    return dev(args.port)


if __name__ == "__main__":
    sys.exit(main())
