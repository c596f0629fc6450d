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

    from lb_pipelines import clock
    from lb_pipelines.delivery.deltas import compute_delta, state_rows
    from lb_pipelines.delivery.ledger import deliver_and_record
    from lb_pipelines.delivery.settings import SftpDelivery
    from lb_pipelines.delivery.sftp import SftpTarget
    from lb_pipelines.delivery.targets import OutboxTarget
    from lb_pipelines.integrations import exporting
    from lb_pipelines.integrations.config import integrations, load_integration, write_config_to_warehouse
    from lb_pipelines.integrations.edw.export import EDW_FILES, build_edw_zip
    from lb_pipelines.integrations.epic_on_call_finder import export as epic
    from lb_pipelines.integrations.kronos_wfd import export as wfd
    from lb_pipelines.integrations.kronos_wfd.assets import current_pay_period
    from lb_pipelines.lightning_bolt.contract import ENTITIES
    from lb_pipelines.lightning_bolt.directory_source import DirectorySource
    from lb_pipelines.warehouse.raw_load import load_entity
    from sshd import running_sshd

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

    now = clock.now()
    epic_settings = load_integration("epic_on_call_finder").settings
    wfd_settings = load_integration("kronos_wfd").settings
    period = current_pay_period(wfd_settings)

    def epic_file():
        with connect() as conn:
            rows = exporting.query_dicts(conn, epic.ROWS_IN_WINDOW_SQL, {"now": now, "days_back": 1, "days_forward": 30})
        out, _, _ = epic.file_rows(rows, epic_settings.personnel_id_field)
        return epic.file_name(now), exporting.render_csv(epic.COLUMNS, out), len(out), None

    def wfd_file():
        with connect() as conn:
            rows = exporting.query_dicts(conn, wfd.ROWS_IN_PERIOD_SQL, {"start": period.start, "end": period.end})
        keyed, _, _ = wfd.period_rows(rows, wfd_settings.personnel_id_field, "|")
        current = state_rows(keyed)
        delta = compute_delta(None, current)  # the first file of the period: in full
        out = [(a, *(r.values[c] for c in wfd.VALUE_COLUMNS)) for a, r in delta]
        return wfd.file_name(period, now), exporting.render_csv(wfd.COLUMNS, out), len(out), current

    def edw_file():
        with connect() as conn:
            package = build_edw_zip(conn, clock.today())
        return package.file_name, package.content, sum(package.row_counts.values()), None

    floors = {
        "epic_on_call_finder": f"""SELECT {", ".join(f'"{c}"' for c in epic.COLUMNS if c != "PROVIDER_ID")}, custom1
            FROM ({epic.ROWS_IN_WINDOW_SQL.replace("$now", "$now::TIMESTAMPTZ")}) WHERE outcome = 'deliver'""",
        "kronos_wfd": f"""SELECT 'ADD', slot_id, emp_id, {", ".join(f'"{c}"' for c in wfd.VALUE_COLUMNS[2:-2])},
            array_to_string(labor_categories, '|'), "COMMENT" FROM ({wfd.ROWS_IN_PERIOD_SQL}) WHERE outcome = 'deliver'""",
    }
    floor_params = {"epic_on_call_finder": {"now": now, "days_back": 1, "days_forward": 30},
                    "kronos_wfd": {"start": period.start, "end": period.end}}

    def floor(name: str) -> float:
        out = work / "floor"
        out.mkdir(exist_ok=True)
        with connect() as conn:
            started = time.perf_counter()
            if name == "edw":
                for f in EDW_FILES:
                    conn.execute(f"COPY ({f.query}) TO '{out / f.name}' (HEADER)")
            else:
                conn.execute(f"COPY ({floors[name]}) TO '{out / name}.csv' (HEADER)", floor_params[name])
            return time.perf_counter() - started

    print(f"{'export':<22} {'rows':>10} {'MiB':>7} {'render s':>9} {'outbox s':>9} {'sftp s':>8} {'floor s':>8} {'outbox/floor':>13}")
    with running_sshd() as server:
        os.environ["LB_BENCH_SFTP_PASSWORD"] = server.password
        sftp = SftpTarget(SftpDelivery(**server.delivery(server.upload_dir, password_env="LB_BENCH_SFTP_PASSWORD")))
        outbox = OutboxTarget(Path(os.environ["LB_OUTBOX_DIR"]))
        for name, build in (("epic_on_call_finder", epic_file), ("kronos_wfd", wfd_file), ("edw", edw_file)):
            render_s, (file_name, content, rows, state) = timed(build)

            def send(target, scope):
                return deliver_and_record(connect, target, integration=name, scope=scope, file_name=file_name,
                                          content=content, rows=rows, run_id="bench", new_state=state)

            outbox_s, _ = timed(lambda: send(outbox, "bench-outbox"))
            sftp_s, _ = timed(lambda: send(sftp, "bench-sftp"))
            floor_s = floor(name)
            total = render_s + outbox_s
            print(f"{name:<22} {rows:>10,} {len(content) / 2**20:>7.1f} {render_s:>9.2f} {outbox_s:>9.2f} "
                  f"{sftp_s:>8.2f} {floor_s:>8.2f} {total / floor_s:>12.1f}x", flush=True)


if __name__ == "__main__":
    main()
