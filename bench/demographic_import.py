"""Demographic import benchmark: a ROWS-row HR file imported into the Lightning Bolt simulator over HTTP.

    make bench-import ROWS=20000
    .venv/bin/python bench/demographic_import.py --rows 20000 [--changed 0.1] [--keep DIR]

Builds a directory source with ROWS people (the bundled sample's departments, no slots), starts
the simulator, and drops one file with a row per person: a share (`--changed`) of them with a new
pager and e-mail, 1 % not in Lightning Bolt (unmatched), the rest as Lightning Bolt has them
(unchanged, some written another way). Then times, through the import's Dagster asset:
  dry run     every row planned against a fresh read of the personnel; requests file and report
  import      the PATCHes sent (only the changed people), journaled one by one; file moved
  duplicate   the same file dropped again: refused by its sha256, nothing sent
and prints, for each: wall time, rows/s, PATCHes sent (counted by the simulator), outcomes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AS_OF = "2026-11-22T07:00:00-06:00"
SLUG = "demographic_import"


def person(i: int) -> dict:
    return {
        "id": 100000 + i, "first_name": f"First{i}", "last_name": f"Last{i}", "abbreviation": f"P{i}",
        "emp_id": str(500000 + i), "unique_id": f"HR{i:07d}", "custom1": None, "custom2": None, "custom3": None,
        "custom4": None, "email": f"person{i}@health.example.org", "cell_phone": f"312-555-{i % 10000:04d}",
        "pager": str(4000 + i % 5000), "personnel_type": "Physician", "department_ids": [101],
        "home_coid": None, "away_coid": None, "is_placeholder": False, "active": True,
        "updated_at": "2026-01-01T00:00:00-06:00",
    }


def write_source(folder: Path, rows: int) -> list[dict]:
    folder.mkdir(parents=True)
    for entity in ("departments", "assignments", "view_settings"):
        shutil.copy(REPO / "data" / "sample" / f"{entity}.jsonl", folder / f"{entity}.jsonl")
    for entity in ("schedules", "slots", "requests", "tallies", "change_log"):
        (folder / f"{entity}.jsonl").write_text("")
    people = [person(i) for i in range(rows)]
    (folder / "personnel.jsonl").write_text("".join(json.dumps(p) + "\n" for p in people))
    return people


def write_file(path: Path, people: list[dict], changed: float, seed: int = 7) -> int:
    """The HR file; returns how many people it changes."""
    rng = random.Random(seed)
    lines = ["Unique ID,Email,Cell Phone,Pager"]
    changes = 0
    for p in people:
        roll = rng.random()
        if roll < changed:
            changes += 1
            lines.append(f"{p['unique_id']},new.{p['email']},{p['cell_phone']},{7000 + rng.randrange(2000)}")
        elif roll < changed + 0.01:
            lines.append(f"X{p['unique_id']},someone@health.example.org,,")
        else:
            area, exchange, number = p["cell_phone"].split("-")
            lines.append(f"{p['unique_id']},{p['email'].upper()},({area}) {exchange}-{number},{p['pager']}")
    path.write_text("\r\n".join(lines) + "\r\n")
    return changes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--changed", type=float, default=0.1, help="share of people whose contacts change")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-import-"))
    root.mkdir(parents=True, exist_ok=True)
    secret = "bench-import-secret"
    os.environ.update({
        "LB_NOW": AS_OF, "LB_WAREHOUSE": str(root / "warehouse.duckdb"), "LB_OUTBOX_DIR": str(root / "outbox"),
        "LB_CONFIG_DIR": str(root / "config"), "LB_INBOUND_DIR": str(root / "inbound"),
        "DAGSTER_HOME": str(root / "dagster_home"), "LB_CLIENT_ID": "bench", "LB_CLIENT_SECRET": secret,
    })
    (root / "dagster_home").mkdir(exist_ok=True)
    import dagster as dg

    from lb_pipelines.integrations.assets import inbound_import_asset
    from lb_pipelines.integrations.demographic_import import INTEGRATION
    from lb_pipelines.lightning_bolt.simulator import Simulator
    from lb_pipelines.lightning_bolt.source.resource import LightningBoltResource
    from lb_pipelines.warehouse.resource import warehouse_resource

    people = write_source(root / "source", args.rows)
    drop = root / "inbound" / SLUG
    drop.mkdir(parents=True)
    changes = write_file(drop / "hr-full.csv", people, args.changed)
    config = root / "config" / SLUG
    config.mkdir(parents=True)

    def configure(delivery: str) -> None:
        (config / "settings.yaml").write_text(
            f"delivery: {{type: {delivery}}}\ninbound: {{type: folder, stable_seconds: 0}}\n")

    def run(label: str, sim: Simulator) -> None:
        before = sum(n for p, n in sim.stats["requests"].items() if p.startswith("/api/v1/personnel/"))
        started = time.perf_counter()
        result = dg.materialize(
            [inbound_import_asset(INTEGRATION)],
            resources={"warehouse": warehouse_resource(), "lightning_bolt": LightningBoltResource()},
            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
        )
        seconds = time.perf_counter() - started
        if not result.success:
            sys.exit(f"{label}: the run failed")
        meta = {k: v.value for e in result.get_asset_materialization_events()
                for k, v in e.materialization.metadata.items()}
        sent = sum(n for p, n in sim.stats["requests"].items() if p.startswith("/api/v1/personnel/")) - before
        outcomes = ", ".join(f"{k} {meta.get(k, 0)}" for k in ("updated", "unchanged", "unmatched", "invalid")
                             if meta.get(k))
        rows = meta.get("rows", 0)
        print(f"{label:<10} {seconds:7.2f} s  {rows / seconds if rows else 0:8.0f} rows/s  "
              f"{sent:6d} PATCHes  files: {meta.get('files_processed', 0)} processed, "
              f"{meta.get('files_duplicate', 0)} duplicate, {meta.get('files_dry_run', 0)} dry run  {outcomes}")

    print(f"demographic import: {args.rows} rows, {changes} people changed (pager and e-mail), "
          f"1 % unmatched; simulator over HTTP on loopback; work folder {root}")
    with Simulator(root / "source", client_id="bench", client_secret=secret) as sim:
        os.environ["LB_API_URL"] = sim.url
        configure("dry_run")
        run("dry run", sim)
        configure("http")
        run("import", sim)
        shutil.copy(drop / "processed" / "hr-full.csv", drop / "hr-again.csv")
        run("duplicate", sim)
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
