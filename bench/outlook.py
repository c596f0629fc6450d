"""Outlook push benchmark: PROVIDERS people x DAYS days pushed to the local Microsoft Graph fake.

    make bench-outlook PROVIDERS=2000 DAYS=60
    .venv/bin/python bench/outlook.py --providers 2000 --days 60 [--keep DIR]

Builds a generated system's warehouse (every person given a mailbox, every assignment mapped),
then times the Outlook asset, run as the change-log sensor runs it:
  first push   every event created, in $batch requests of 20, at most 4 in flight per mailbox
  no change    the same state again: must send zero requests
  1 % change   1 % of the window's slots moved by an hour (raw table + dbt), then pushed
  reconcile    an hourly run with nothing changed: every calendar read back, nothing written
and prints, for each: wall time, events changed, events/s, HTTP requests and batch parts sent.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the Graph fake lives with the tests
BIN = Path(sys.executable).parent
AS_OF = "2026-03-01T07:00:00-06:00"  # the window crosses the spring-forward night of 2026-03-08


def dbt(warehouse: Path, target: Path) -> None:
    env = os.environ | {"LB_WAREHOUSE": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    project = REPO / "dbt_project"
    subprocess.run(
        [str(BIN / "dbt"), "run", "--select", "+export_outlook", "--project-dir", str(project),
         "--profiles-dir", str(project), "--target-path", str(target), "--log-path", str(target), "--quiet"],
        check=True, env=env, cwd=project,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--providers", type=int, default=2000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-outlook-"))
    root.mkdir(parents=True, exist_ok=True)
    os.environ.update({
        "LB_NOW": AS_OF, "LB_WAREHOUSE": str(root / "warehouse.duckdb"), "LB_OUTBOX_DIR": str(root / "outbox"),
        "LB_CONFIG_DIR": str(root / "config"), "DAGSTER_HOME": str(root / "dagster_home"),
        "BENCH_GRAPH_SECRET": "bench-secret",
    })
    (root / "dagster_home").mkdir(exist_ok=True)
    import dagster as dg
    import duckdb

    from fakes.graph import GraphFake
    from lb_pipelines.integrations.assets import api_push_asset
    from lb_pipelines.integrations.outlook import INTEGRATION
    from lb_pipelines.lightning_bolt.source.contract import ENTITIES
    from lb_pipelines.lightning_bolt.source.directory import DirectorySource
    from lb_pipelines.warehouse.raw_load import load_entity
    from lb_pipelines.warehouse.resource import WarehouseResource

    started = time.perf_counter()
    subprocess.run([str(BIN / "lb-generate"), "--out", str(root / "source"), "--providers", str(args.providers),
                    "--days", str(args.days), "--seed", "7", "--start", AS_OF[:10], "--as-of", AS_OF],
                   check=True, stdout=subprocess.DEVNULL)
    warehouse = root / "warehouse.duckdb"
    source = DirectorySource(root / "source")
    with duckdb.connect(str(warehouse)) as conn:
        for entity in ENTITIES:
            load_entity(conn, source, entity)
        # Every person gets a mailbox (the generator leaves some without), every assignment is mapped.
        conn.execute("UPDATE raw.personnel SET custom4 = 'p' || id || '@bench.example.org'")
        ids = [r[0] for r in conn.execute("SELECT id FROM raw.assignments ORDER BY id").fetchall()]
    config = root / "config" / "outlook"
    config.mkdir(parents=True, exist_ok=True)
    (config / "mapping.csv").write_text(
        "assignment_id,send_to_outlook,include_schedule_notes,include_assignment_info,send_as_free\n"
        + "".join(f"{i},true,true,true,false\n" for i in ids)
    )
    with GraphFake(client_id="bench", client_secret="bench-secret") as graph:
        (config / "settings.yaml").write_text(
            f"personnel_id_field: custom4\nwindow: {{days_back: 0, days_forward: {args.days}}}\n"
            f"delivery: {{type: http, base_url: '{graph.base_url}', token_url: '{graph.token_url}', "
            "client_id: bench, client_secret_env: BENCH_GRAPH_SECRET}\n"
        )
        with duckdb.connect(str(warehouse)) as conn:
            INTEGRATION.write_config(conn, INTEGRATION.load())
        dbt(warehouse, root / "dbt_target")
        print(f"prepared {args.providers} providers x {args.days} days in {time.perf_counter() - started:.1f} s "
              f"({root})")
        print(f"{'run':<12} {'seconds':>8} {'changed':>8} {'events/s':>9} {'requests':>9} {'parts':>7}")

        def run(name: str, tags: dict) -> None:
            graph.clear_log()
            t0 = time.perf_counter()
            result = dg.materialize(
                [api_push_asset(INTEGRATION)], resources={"warehouse": WarehouseResource(database=str(warehouse))},
                instance=dg.DagsterInstance.ephemeral(), raise_on_error=False, tags=tags,
            )
            seconds = time.perf_counter() - t0
            if not result.success:
                raise SystemExit(f"{name}: the push failed")
            meta = {k: v.value for k, v in result.get_asset_materialization_events()[0].materialization.metadata.items()}
            changed = meta["created"] + meta["updated"] + meta["deleted"]
            requests = len([r for r in graph.requests() if not r.in_batch and "/oauth2/" not in r.path])
            parts = len(graph.requests(in_batch=True))
            print(f"{name:<12} {seconds:>8.2f} {changed:>8} {changed / seconds:>9.0f} {requests:>9} {parts:>7}")

        on_change = {"lb/trigger": "change_log"}
        run("first push", on_change)
        run("no change", on_change)
        with duckdb.connect(str(warehouse)) as conn:
            moved = conn.execute(
                """UPDATE raw.slots SET start_time = strftime(CAST('2000-01-01 ' || start_time AS TIMESTAMP) + INTERVAL 1 HOUR, '%H:%M')
                   WHERE hash(id) % 100 = 0 AND personnel_id IS NOT NULL AND start_time <> end_time
                     AND start_time < '22:00'"""
            ).fetchall()[0][0]
        dbt(warehouse, root / "dbt_target")
        print(f"(moved {moved} slots by an hour)")
        run("1 % change", on_change)
        run("reconcile", {})
        print(f"events held by the fake: {sum(len(v) for v in graph.all_events().values())}, "
              f"tokens fetched: {graph.tokens_issued}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
