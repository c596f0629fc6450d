"""Exports benchmark: render and deliver every file export the declarations list, to the outbox
and to a real local sshd, beside the floor: DuckDB writing the same rows with a plain COPY ... TO.

    make bench-exports PROVIDERS=20000 DAYS=365
    .venv/bin/python bench/exports.py --providers 2000 --days 365 [--keep DIR]

Builds the warehouse first (generate, load, each integration's bundled sample configuration with
its mapping spread over every Call and Shift assignment, dbt build), then times each export on
its own. Needs root for the sshd (as the tests do).

The floor of an export is a plain COPY of the very rows its file holds (in the file's order),
from a table that already holds them: what writing that much CSV costs DuckDB, with no query,
no rule and no delivery. For a zip, every CSV inside it; for a delivery of several files (the
schedule backup's workbook beside its CSV), the CSV.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the same real-sshd starter the tests use
os.environ.setdefault("LB_NOW", "2026-11-22T07:00:00-06:00")
BIN = Path(sys.executable).parent
SAMPLE_CONFIG = REPO / "data" / "config"


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def write_bench_config(config_dir: Path, conn) -> None:
    """Each integration's bundled settings, and its mapping's first row repeated for every Call and
    Shift assignment of the generated system (so every export carries a realistic volume)."""
    from lb_pipelines.integrations.registry import integrations

    work = [a for (a,) in conn.execute(
        "SELECT id FROM raw.assignments WHERE assignment_type IN ('Call', 'Shift') ORDER BY id").fetchall()]
    for slug, declared in integrations().items():
        folder = config_dir / slug
        folder.mkdir(parents=True)
        shutil.copyfile(SAMPLE_CONFIG / slug / "settings.yaml", folder / "settings.yaml")
        if declared.mapping_row_model is None:
            continue
        header, first = list(csv.reader((SAMPLE_CONFIG / slug / "mapping.csv").read_text().splitlines()))[:2]
        at = header.index("assignment_id")
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([*first[:at], a, *first[at + 1:]] for a in work)
        (folder / "mapping.csv").write_text(out.getvalue())


def csv_members(export) -> list[bytes]:
    """The CSV files an export's delivery carries (inside a zip too)."""
    if export.file_name.endswith(".zip"):
        with zipfile.ZipFile(io.BytesIO(export.content)) as package:
            return [package.read(name) for name in package.namelist() if name.endswith(".csv")]
    return [export.content] if export.file_name.endswith(".csv") else []


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
    from lb_pipelines.automation.pay_period_partitions import current_pay_period
    from lb_pipelines.delivery import deltas
    from lb_pipelines.delivery.ledger import ensure_delivery_tables
    from lb_pipelines.delivery.settings import SftpDelivery
    from lb_pipelines.delivery.sftp import SftpTarget
    from lb_pipelines.delivery.targets import OutboxTarget
    from lb_pipelines.integrations.declaration import FileExport, Occasion
    from lb_pipelines.integrations.exporting import send_export
    from lb_pipelines.integrations.registry import integrations
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
            for declared in integrations().values():
                declared.write_config(conn, declared.load())
            ensure_delivery_tables(conn)
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

    def build_of(declared: FileExport):
        settings = declared.load().settings
        period = current_pay_period(settings.pay_period) if declared.partitioned_by == "pay_period" else None
        occasion = Occasion(now, period)
        return lambda conn: declared.build(conn, settings, occasion)

    builds = {slug: build_of(d) for slug, d in integrations().items() if isinstance(d, FileExport)}

    def floor(conn, export) -> None:
        """A plain COPY of the file's rows from a table that holds them, in the file's order."""
        out = work / "floor"
        out.mkdir(exist_ok=True)
        for n, member in enumerate(csv_members(export)):
            conn.execute(f"COPY (SELECT * FROM floor_rows_{n} ORDER BY row_number) TO '{out / f'{n}.csv'}' (HEADER)")

    def stage_floor(conn, export) -> None:
        for n, member in enumerate(csv_members(export)):
            path = work / f"floor_in_{n}.csv"
            path.write_bytes(member)
            conn.execute(f"""CREATE OR REPLACE TEMP TABLE floor_rows_{n} AS
                SELECT row_number() OVER () AS row_number, * FROM read_csv('{path}', all_varchar = true, header = true)""")

    # Where a render's time goes: writing the file(s) (what the floor compares with) and, for a
    # delta export, the snapshot of the delivered state. Timed by wrapping what the exports call.
    parts: dict[str, float] = {}

    def stopwatch(module, attribute, part):
        inner = getattr(module, attribute)

        def timed_call(*args, **kwargs):
            seconds, value = timed(lambda: inner(*args, **kwargs))
            parts[part] = parts.get(part, 0.0) + seconds
            return value

        setattr(module, attribute, timed_call)

    for name, module in list(sys.modules.items()):
        if (name.startswith("lb_pipelines.integrations.") or module is deltas) and module is not None:
            for attribute, part in (("csv_file", "file"), ("_write_csv", "file"), ("write_workbook", "file"),
                                    ("snapshot", "state")):
                if callable(getattr(module, attribute, None)):
                    stopwatch(module, attribute, part)

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
            with connect() as conn:
                stage_floor(conn, export)
                floor_s = min(timed(lambda: floor(conn, export))[0] for _ in range(args.repeats))
            outbox_s = min(timed(lambda e=export, n=n: send_export(connect, outbox, replace(e, scope=f"outbox-{n}"), "bench"))[0]
                           for n in range(args.repeats))
            sftp_s = min(timed(lambda e=export, n=n: send_export(connect, sftp, replace(e, scope=f"sftp-{n}"), "bench"))[0]
                         for n in range(args.repeats))
            file_s, state_s = split.get("file", 0.0), split.get("state", 0.0)
            size = len(export.content) + sum(len(f.content) for f in export.also)
            print(f"{name:<20} {export.rows:>10,} {size / 2**20:>6.1f} {render_s:>9.2f} {file_s:>6.2f} "
                  f"{state_s:>7.2f} {outbox_s:>9.2f} {sftp_s:>7.2f} {floor_s:>8.2f} {file_s / floor_s:>10.1f}x "
                  f"{(render_s + outbox_s) / floor_s:>21.1f}x", flush=True)


if __name__ == "__main__":
    main()
