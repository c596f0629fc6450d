"""Foundation benchmark: generate N providers x D days, extract and load it, print the figures.

    make bench PROVIDERS=2000 DAYS=365
    .venv/bin/python bench/foundation.py --providers 20000 --days 365 [--keep DIR] [--skip-api]

Phases, each in its own process so its peak memory (max RSS) is its own:
  generate        lb-generate writes the JSON Lines directory source
  load/directory  every entity from the directory source into a fresh DuckDB warehouse
  floor/read_json the same files into typed tables by DuckDB's own read_json alone (no checks):
                  the floor the directory load is measured against (ratio printed beside it)
  dbt build       every dbt model, snapshot and test on the directory warehouse (rows = slots)
  load/api        every entity through the simulator over HTTP into another fresh warehouse
                  (the simulator's own peak RSS is printed beside it)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def run_measured(args: list[str], env: dict | None = None) -> tuple[float, int, str]:
    """Run a command; return (seconds, peak RSS in bytes of that process, stdout)."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, env=env, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{args[0]} failed with exit code {proc.returncode}")
    return seconds, usage.ru_maxrss * 1024, out


def load_all(warehouse: str) -> None:
    """Child process: load every entity, in full, from the source the environment names."""
    import duckdb

    from lb_pipelines.lightning_bolt.source.contract import ENTITIES
    from lb_pipelines.lightning_bolt.source.resource import LightningBoltResource
    from lb_pipelines.warehouse.raw_load import load_entity

    source = LightningBoltResource(page_size=5000).open()
    rows = {}
    with duckdb.connect(warehouse) as conn:
        conn.execute("SET memory_limit = '1GB'")
        for entity in ENTITIES:
            rows[entity] = load_entity(conn, source, entity).rows
    print(json.dumps(rows))


def floor_load(warehouse: str, source: str) -> None:
    """Child process: DuckDB's read_json of every entity file into a table of the contract's types,
    nothing else (no validation, no load log): the floor for the directory load."""
    import duckdb

    from lb_pipelines.lightning_bolt.source.contract import DUCKDB_TYPES, ENTITIES

    rows = {}
    with duckdb.connect(warehouse) as conn:
        conn.execute("SET memory_limit = '1GB'")
        for entity in ENTITIES.values():
            path = Path(source) / entity.file_name
            if not path.exists():
                continue
            columns = "{" + ", ".join(f"'{f.name}': '{DUCKDB_TYPES[f.type]}'" for f in entity.fields) + "}"
            conn.execute(f"CREATE TABLE {entity.name} AS SELECT * FROM read_json('{path}', columns = {columns}, "
                         "format = 'newline_delimited')")
            rows[entity.name] = conn.execute(f"SELECT count(*) FROM {entity.name}").fetchall()[0][0]
    print(json.dumps(rows))


def prepare_for_dbt(warehouse: Path) -> None:
    """What the config and dbt assets set up before dbt runs: every declared integration's config
    tables (each off, so its mapping table is empty) and the delivery tables the ledger models read."""
    import duckdb

    from lb_pipelines.delivery.ledger import ensure_delivery_tables
    from lb_pipelines.integrations.registry import integrations

    with duckdb.connect(str(warehouse)) as conn:
        for declared in integrations().values():
            declared.write_config(conn, None)
        ensure_delivery_tables(conn)


def peak_rss_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def row(phase: str, seconds: float, rows: int, rss: int, extra: str = "") -> None:
    rate = rows / seconds if seconds else 0
    print(f"{phase:<16} {seconds:>9.1f} {rows:>12,} {rate:>12,.0f} {rss / 2**20:>11,.0f}  {extra}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--providers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", help="folder to keep the generated system and warehouses in")
    parser.add_argument("--skip-api", action="store_true", help="skip the load through the simulator")
    parser.add_argument("--skip-dbt", action="store_true", help="skip the dbt build")
    parser.add_argument("--_load", help=argparse.SUPPRESS)
    parser.add_argument("--_floor", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._load:
        return load_all(args._load)
    if args._floor:
        return floor_load(*args._floor)

    work = Path(args.keep or tempfile.mkdtemp(prefix="lb-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    source = work / "source"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LB_")}
    env["LB_NOW"] = "2026-11-22T07:00:00-06:00"
    print(f"lb-pipelines foundation benchmark: {args.providers:,} providers x {args.days} days, seed {args.seed}")
    print(f"work folder {work}; {os.cpu_count()} cores")
    print(f"{'phase':<16} {'seconds':>9} {'rows':>12} {'rows/s':>12} {'peak MiB':>11}")
    try:
        shutil.rmtree(source, ignore_errors=True)
        seconds, rss, _ = run_measured(
            [str(BIN / "lb-generate"), "--out", str(source), "--providers", str(args.providers),
             "--days", str(args.days), "--seed", str(args.seed), "--start", "2026-07-01"],
            env,
        )
        manifest = json.loads((source / "manifest.json").read_text())
        total = sum(manifest["rows"].values())
        size = sum(f.stat().st_size for f in source.glob("*.jsonl"))
        row("generate", seconds, total, rss, f"{size / 2**20:,.0f} MiB of JSON Lines; slots {manifest['rows']['slots']:,}")

        warehouse = work / "directory.duckdb"
        warehouse.unlink(missing_ok=True)
        seconds, rss, out = run_measured(
            [sys.executable, __file__, "--_load", str(warehouse)], env | {"LB_SOURCE_DIR": str(source)}
        )
        loaded = sum(json.loads(out).values())
        load_seconds = seconds
        row("load/directory", seconds, loaded, rss, f"warehouse {warehouse.stat().st_size / 2**20:,.0f} MiB")

        floor = work / "floor.duckdb"
        floor.unlink(missing_ok=True)
        seconds, rss, out = run_measured([sys.executable, __file__, "--_floor", str(floor), str(source)], env)
        row("floor/read_json", seconds, sum(json.loads(out).values()), rss,
            f"load/directory is {load_seconds / seconds:.1f}x this floor (the target: at most 5x)")
        floor.unlink(missing_ok=True)

        if not args.skip_dbt:
            prepare_for_dbt(warehouse)
            dbt_dir = Path(__file__).resolve().parents[1] / "dbt_project"
            target = work / "dbt_target"
            seconds, rss, _ = run_measured(
                [str(BIN / "dbt"), "build", "--project-dir", str(dbt_dir), "--profiles-dir", str(dbt_dir),
                 "--target-path", str(target), "--log-path", str(target), "--quiet"],
                env | {"LB_WAREHOUSE": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
            )
            row("dbt build", seconds, manifest["rows"]["slots"], rss, f"warehouse {warehouse.stat().st_size / 2**20:,.0f} MiB")

        if not args.skip_api:
            sim_env = env | {"LB_CLIENT_ID": "bench", "LB_CLIENT_SECRET": "bench-secret"}
            sim = subprocess.Popen(
                [str(BIN / "lb-simulator"), "--source-dir", str(source), "--port", "0", "--max-page-size", "5000"],
                stdout=subprocess.PIPE, env=sim_env, text=True,
            )
            try:
                started = time.perf_counter()
                url = re.search(r"listening on (\S+)", sim.stdout.readline()).group(1)
                row("simulator start", time.perf_counter() - started, total, peak_rss_of(sim.pid))
                warehouse = work / "api.duckdb"
                warehouse.unlink(missing_ok=True)
                seconds, rss, out = run_measured(
                    [sys.executable, __file__, "--_load", str(warehouse)], sim_env | {"LB_API_URL": url}
                )
                loaded = sum(json.loads(out).values())
                row("load/api", seconds, loaded, rss, f"simulator peak {peak_rss_of(sim.pid) / 2**20:,.0f} MiB")
            finally:
                sim.terminate()
                sim.wait(timeout=30)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
