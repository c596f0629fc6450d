"""Exports benchmark: render and deliver each export, to the outbox and to a real local sshd,
beside the floor: DuckDB writing the same rows with a plain COPY ... TO.

    make bench-exports PROVIDERS=20000 DAYS=365
    .venv/bin/python bench/exports.py --providers 2000 --days 365 [--keep DIR]

Builds the warehouse first (generate, load, config mapping every Call and Shift assignment,
dbt build), then times each export on its own. Needs root for the sshd (as the tests do).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the same real-sshd starter the tests use
os.environ.setdefault("LB_NOW", "2026-11-22T07:00:00-06:00")
BIN = Path(sys.executable).parent


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def write_bench_config(config_dir: Path, conn) -> None:
    """Map every Call assignment for Epic and every Call and Shift assignment for Kronos WFD."""
    calls = conn.execute("SELECT id, department_id FROM raw.assignments WHERE assignment_type = 'Call' ORDER BY id").fetchall()
    work = conn.execute("SELECT id FROM raw.assignments WHERE assignment_type IN ('Call', 'Shift') ORDER BY id").fetchall()
    (config_dir / "epic_on_call_finder").mkdir(parents=True)
    (config_dir / "epic_on_call_finder" / "settings.yaml").write_text("personnel_id_field: custom1\n")
    (config_dir / "epic_on_call_finder" / "mapping.csv").write_text(
        "assignment_id,epic_team_id,team_name,role,note_prefix,team_comment,call_order\n"
        + "".join(f"{a},OCF-{d},Dept {d},Attending,,,1\n" for a, d in calls)
    )
    (config_dir / "kronos_wfd").mkdir()
    (config_dir / "kronos_wfd" / "settings.yaml").write_text(
        "pay_period: {anchor: 2026-01-04, length_days: 14}\nvalid_comments: [Scheduled]\n"
    )
    (config_dir / "kronos_wfd" / "mapping.csv").write_text(
        "assignment_id,segment_type,labor_categories,comment\n" + "".join(f"{a},REQUIRED,A;B,Scheduled\n" for (a,) in work)
    )
    (config_dir / "edw").mkdir()
    (config_dir / "edw" / "settings.yaml").write_text("enabled: true\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--providers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--keep", help="folder to keep everything in")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each step; the fastest counts")
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="lb-bench-exports-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.update({
        "LB_SOURCE_DIR": str(work / "source"), "LB_WAREHOUSE": str(work / "warehouse.duckdb"),
        "LB_CONFIG_DIR": str(work / "config"), "LB_OUTBOX_DIR": str(work / "outbox"),
    })
    os.environ.pop("LB_API_URL", None)
    try:
        run(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run(args, work: Path) -> None:
    import duckdb
    from sshd import running_sshd

    from lb_pipelines import clock
    from lb_pipelines.delivery.ledger import ensure_delivery_tables
    from lb_pipelines.delivery.settings import SftpDelivery
    from lb_pipelines.delivery.sftp import SftpTarget
    from lb_pipelines.delivery.targets import OutboxTarget
    from lb_pipelines.integrations.config import (
        WindowSettings,
        integrations,
        load_integration,
        write_config_to_warehouse,
    )
    from lb_pipelines.integrations.edw import export as edw
    from lb_pipelines.integrations.epic_on_call_finder import export as epic
    from lb_pipelines.integrations.exporting import send_export
    from lb_pipelines.integrations.kronos_wfd import export as wfd
    from lb_pipelines.integrations.kronos_wfd.assets import current_pay_period
    from lb_pipelines.lightning_bolt.source.contract import ENTITIES
    from lb_pipelines.lightning_bolt.source.directory import DirectorySource
    from lb_pipelines.warehouse.raw_load import load_entity

    warehouse = Path(os.environ["LB_WAREHOUSE"])
    print(f"lb-pipelines exports benchmark: {args.providers:,} providers x {args.days} days; {os.cpu_count()} cores")
    if not warehouse.exists():
        subprocess.run([str(BIN / "lb-generate"), "--out", str(work / "source"), "--providers", str(args.providers),
                        "--days", str(args.days), "--start", "2026-07-01", "--as-of", os.environ["LB_NOW"]],
                       check=True, stdout=subprocess.DEVNULL)
        with duckdb.connect(str(warehouse)) as conn:
            source = DirectorySource(work / "source")
            for entity in ENTITIES:
                load_entity(conn, source, entity)
            write_bench_config(work / "config", conn)
            for slug in integrations():
                write_config_to_warehouse(conn, slug, load_integration(slug))
        seconds, _ = timed(lambda: subprocess.run(
            [str(BIN / "dbt"), "build", "--project-dir", str(REPO / "dbt_project"), "--profiles-dir",
             str(REPO / "dbt_project"), "--target-path", str(work / "dbt"), "--log-path", str(work / "dbt"), "--quiet"],
            check=True, env=os.environ | {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}))
        print(f"(warehouse built; dbt build {seconds:.1f} s)")

    @contextlib.contextmanager
    def connect():
        with duckdb.connect(str(warehouse)) as conn:
            yield conn

    with connect() as conn:  # every run starts with nothing delivered: the first file of each is in full
        conn.execute("DROP SCHEMA IF EXISTS delivery CASCADE")
        ensure_delivery_tables(conn)
    now = clock.now()
    epic_settings = load_integration("epic_on_call_finder").settings.model_copy(
        update={"window": WindowSettings(days_back=1, days_forward=30)})
    wfd_settings = load_integration("kronos_wfd").settings
    period = current_pay_period(wfd_settings)

    builds = {  # what each asset does before it delivers, from an open connection
        "epic_on_call_finder": lambda conn: epic.build_file(conn, epic_settings, now),
        "kronos_wfd": lambda conn: wfd.build_period_file(conn, wfd_settings, period, now),  # the period's first file: in full
        "edw": lambda conn: edw.build_file(conn, clock.today()),
    }

    # The floor: the same rows, in the same order, written by a plain COPY straight from the export model.
    floors = {
        "epic_on_call_finder": f"""SELECT {", ".join(f'"{c}"' if c != "PROVIDER_ID" else 'custom1' for c in epic.COLUMNS)}
            FROM exports.export_epic_on_call_finder
            WHERE slot_date BETWEEN CAST(timezone(time_zone, $now::TIMESTAMPTZ) AS DATE) - $days_back
                                AND CAST(timezone(time_zone, $now::TIMESTAMPTZ) AS DATE) + $days_forward
              AND outcome = 'deliver'
            ORDER BY "TEAM_ID", start_at, "CALL_ORDER", "PROVIDER_NAME", slot_id, mapping_line""",
        "kronos_wfd": f"""SELECT 'ADD', slot_id, emp_id, {", ".join(f'"{c}"' for c in wfd.VALUE_COLUMNS[2:-2])},
            array_to_string(labor_categories, '|'), "COMMENT" FROM exports.export_kronos_wfd
            WHERE slot_date BETWEEN $start AND $end AND outcome = 'deliver' ORDER BY slot_id""",
    }
    floor_params = {"epic_on_call_finder": {"now": now, "days_back": 1, "days_forward": 30},
                    "kronos_wfd": {"start": period.start, "end": period.end}}

    def floor(conn, name: str) -> None:
        out = work / "floor"
        out.mkdir(exist_ok=True)
        if name == "edw":
            for f in edw.EDW_FILES:  # in key order, as the zip holds them
                conn.execute(f"COPY ({f.query} ORDER BY {', '.join(f.key)}) TO '{out / f.name}' (HEADER)")
        else:
            conn.execute(f"COPY ({floors[name]}) TO '{out / name}.csv' (HEADER)", floor_params[name])

    # Where a render's time goes: the file itself (what the floor compares with) and, for a delta
    # export, the snapshot of the delivered state. Timed by wrapping the functions the exports call.
    parts: dict[str, float] = {}

    def stopwatch(module, attribute, part):
        inner = getattr(module, attribute)

        def timed_call(*args, **kwargs):
            seconds, value = timed(lambda: inner(*args, **kwargs))
            parts[part] = parts.get(part, 0.0) + seconds
            return value

        setattr(module, attribute, timed_call)

    for module in (epic, wfd):
        stopwatch(module, "csv_file", "file")
    stopwatch(wfd, "snapshot", "state")
    stopwatch(edw, "_write_csv", "file")

    def best_of(repeats, fn):
        """The fastest of a few runs on one open connection (the first also warms DuckDB's cache),
        with its parts. Deliveries are timed the same way, each to a scope of its own."""
        runs = []
        with connect() as conn:
            for _ in range(repeats):
                parts.clear()
                seconds, value = timed(lambda: fn(conn))
                runs.append((seconds, value, dict(parts)))
        return min(runs, key=lambda run: run[0])

    print(f"{'export':<20} {'rows':>10} {'MiB':>6} {'render s':>9} {'(file':>6} {'state)':>7} {'outbox s':>9} "
          f"{'sftp s':>7} {'floor s':>8} {'file/floor':>11} {'(render+outbox)/floor':>22}")
    with running_sshd() as server:
        os.environ["LB_BENCH_SFTP_PASSWORD"] = server.password
        sftp = SftpTarget(SftpDelivery(**server.delivery(server.upload_dir, password_env="LB_BENCH_SFTP_PASSWORD")))
        outbox = OutboxTarget(Path(os.environ["LB_OUTBOX_DIR"]))
        for name, build in builds.items():
            render_s, export, split = best_of(args.repeats, build)
            floor_s, _, _ = best_of(args.repeats, lambda conn, name=name: floor(conn, name))
            outbox_s = min(timed(lambda e=export, n=n: send_export(connect, outbox, replace(e, scope=f"outbox-{n}"), "bench"))[0]
                           for n in range(args.repeats))
            sftp_s = min(timed(lambda e=export, n=n: send_export(connect, sftp, replace(e, scope=f"sftp-{n}"), "bench"))[0]
                         for n in range(args.repeats))
            file_s, state_s = split.get("file", 0.0), split.get("state", 0.0)
            print(f"{name:<20} {export.rows:>10,} {len(export.content) / 2**20:>6.1f} {render_s:>9.2f} {file_s:>6.2f} "
                  f"{state_s:>7.2f} {outbox_s:>9.2f} {sftp_s:>7.2f} {floor_s:>8.2f} {file_s / floor_s:>10.1f}x "
                  f"{(render_s + outbox_s) / floor_s:>21.1f}x", flush=True)

if __name__ == "__main__":
    main()
