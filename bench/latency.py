"""Latency benchmark: a schedule change in Lightning Bolt → the new Epic On-Call Finder file on SFTP.

    make bench-latency                      # the bundled sample, 20 changes
    .venv/bin/python bench/latency.py --providers 20000 --days 365 --changes 20

Starts the simulator (the Lightning Bolt API), a real local sshd (Epic's SFTP server) and the
Dagster daemon (sensors, run queue) with a SQLite instance. The warehouse is filled once by the
main job; then, one at a time, a published slot of a mapped assignment inside the window is
given to someone else through the simulator, and the time is measured until the Epic file on the
SFTP server shows the new provider in that slot. Prints every latency and p50/p95. Needs root
(the sshd, as the tests). The clock is pinned to the system's as-of time, so windows agree.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO / "tests"))


def wait_for(predicate, timeout: float, poll: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def candidates(warehouse: Path, count: int) -> list[dict]:
    """Slots that go out to Epic, each with someone else from the department who can take it."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as conn:
        rows = conn.execute(
            """
            WITH out AS (
                SELECT DISTINCT ON (e.slot_id) e.slot_id, e."TEAM_ID", e."START", e."END", e.department_id, s.personnel_id
                FROM exports.export_epic_on_call_finder e JOIN marts.fct_shifts s USING (slot_id)
                WHERE e.outcome = 'deliver' AND NOT e.is_placeholder
                  AND e.slot_date BETWEEN CAST(timezone(e.time_zone, $now::TIMESTAMPTZ) AS DATE)
                                  AND CAST(timezone(e.time_zone, $now::TIMESTAMPTZ) AS DATE) + 20
            ), people AS (
                SELECT personnel_id, display_name, custom1, unnest(department_ids) AS department_id
                FROM marts.dim_personnel
                WHERE is_active AND NOT is_placeholder AND custom1 IS NOT NULL
            )
            SELECT out.slot_id, out."TEAM_ID", out."START", out."END", p.personnel_id, p.display_name, p.custom1
            FROM out JOIN people p ON p.department_id = out.department_id AND p.personnel_id <> out.personnel_id
            QUALIFY row_number() OVER (PARTITION BY out.slot_id ORDER BY p.personnel_id) = 1
            ORDER BY hash(out.slot_id) LIMIT $count
            """,
            {"now": os.environ["LB_NOW"], "count": count},
        ).fetchall()
    keys = ("slot_id", "team", "start", "end", "personnel_id", "name", "provider_id")
    return [dict(zip(keys, r)) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--providers", type=int, help="generate a system of this size (default: the bundled sample)")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=300, help="give up on one change after this long")
    parser.add_argument("--keep", help="folder to keep everything in")
    args = parser.parse_args()

    from lb_pipelines.lightning_bolt.simulator import Simulator
    from sshd import running_sshd

    work = Path(args.keep or tempfile.mkdtemp(prefix="lb-bench-latency-"))
    work.mkdir(parents=True, exist_ok=True)
    if args.providers:
        source = work / "source"
        if not (source / "manifest.json").exists():
            subprocess.run([str(BIN / "lb-generate"), "--out", str(source), "--providers", str(args.providers),
                            "--days", str(args.days), "--as-of", "2026-11-22T07:00:00-06:00"], check=True)
    else:
        source = REPO / "data" / "sample"
    as_of = json.loads((source / "manifest.json").read_text())["as_of"]
    home = work / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LB_", "DAGSTER_"))}
    env |= {
        "LB_NOW": as_of, "DAGSTER_HOME": str(home), "LB_WAREHOUSE": str(work / "warehouse.duckdb"),
        "LB_CONFIG_DIR": str(work / "config"), "LB_OUTBOX_DIR": str(work / "outbox"), "LB_BI_DIR": str(work / "bi"),
        "LB_CLIENT_ID": "bench", "LB_CLIENT_SECRET": "bench-secret", "PATH": f"{BIN}:{os.environ['PATH']}",
        "LB_AUTOMATION": "on",  # the daemon runs the change-log sensor as production does
    }
    os.environ.update(env)
    daemon = None
    try:
        with Simulator(source, client_id="bench", client_secret="bench-secret") as sim, running_sshd() as sshd:
            os.environ["LB_API_URL"] = env["LB_API_URL"] = sim.url
            os.environ["LB_BENCH_SFTP_PASSWORD"] = env["LB_BENCH_SFTP_PASSWORD"] = sshd.password
            delivery = sshd.delivery(sshd.upload_dir, password_env="LB_BENCH_SFTP_PASSWORD", retries=3)
            config = work / "config" / "epic_on_call_finder"
            config.mkdir(parents=True, exist_ok=True)
            config.joinpath("settings.yaml").write_text(
                "personnel_id_field: custom1\nwindow: {days_back: 1, days_forward: 30}\n"
                f"delivery: {json.dumps(delivery)}\n"
            )
            # the sample's mapping: its assignment ids exist in every generated system too
            shutil.copyfile(REPO / "data" / "config" / "epic_on_call_finder" / "mapping.csv", config / "mapping.csv")

            started = time.perf_counter()
            subprocess.run([str(BIN / "lb-pipelines"), "run"], check=True, env=env, stdout=subprocess.DEVNULL)
            print(f"warehouse filled through the API in {time.perf_counter() - started:.0f} s")
            picks = candidates(work / "warehouse.duckdb", args.changes * 3)

            log = (work / "daemon.log").open("w")
            daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
                                      cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
            token = requests.post(f"{sim.url}/oauth/token", data={"grant_type": "client_credentials",
                                  "client_id": "bench", "client_secret": "bench-secret"}).json()["access_token"]
            epic_file = Path(sshd.upload_dir)

            def shows(pick):
                """The new provider in that team at that time: a line of the file on the SFTP server."""
                for path in epic_file.glob("epic_ocf_*.csv"):
                    try:
                        for line in path.read_text().splitlines():
                            cells = line.split(",")
                            if (cells[0] == pick["team"] and pick["start"] in cells and pick["end"] in cells
                                    and pick["provider_id"] in cells and pick["name"] in cells):
                                return True
                    except FileNotFoundError:
                        pass
                return False

            print("waiting for the change-log sensor's first tick (it starts at the end of the change log)")
            time.sleep(40)
            latencies = []
            # a pick whose new provider already shows there (another slot, same time) proves nothing
            picks = [p for p in picks if not shows(p)][: args.changes]
            if len(picks) < args.changes:
                raise SystemExit(f"only {len(picks)} slots to change")
            for i, pick in enumerate(picks, 1):
                changed = time.perf_counter()
                requests.post(f"{sim.url}/api/v1/slots/{pick['slot_id']}/assign", json={"personnel_id": pick["personnel_id"]},
                              headers={"Authorization": f"Bearer {token}"}, timeout=10).raise_for_status()
                wait_for(lambda: shows(pick), args.timeout, what=f"slot {pick['slot_id']} in the Epic file")
                latencies.append(time.perf_counter() - changed)
                print(f"change {i:>2}: slot {pick['slot_id']} → {pick['name']}: {latencies[-1]:.1f} s", flush=True)
            q = statistics.quantiles(latencies, n=20)
            print(f"\n{len(latencies)} changes: p50 {statistics.median(latencies):.1f} s, p95 {q[18]:.1f} s, "
                  f"min {min(latencies):.1f} s, max {max(latencies):.1f} s")
    finally:
        if daemon:
            daemon.terminate()
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                daemon.kill()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
