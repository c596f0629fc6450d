"""Feed service benchmark: answer times of the on-call and calendar feeds on the bundled sample.

    make bench-feed
    .venv/bin/python bench/feed.py --requests 500 [--rebuild] [--keep DIR]

Reuses the BI copy `make run` published (data/bi/warehouse.duckdb) when it holds the on-call
exports and the calendar mart; otherwise (or with --rebuild) runs `lb-pipelines run` on the
bundled sample in a temporary folder first. The copy is copied again into a work folder (the
repo's data/ is never written), a calendar token is issued there for one real provider with
published shifts, and the BI copy of that is served by the feed app on 127.0.0.1 (werkzeug,
threaded, as `make serve` runs it). Then N requests, one after the other over one keep-alive
session, to each of:
  /oncall/now                 every mapped team of every enabled vendor
  /oncall/now?team=<a team>   one team
  /oncall?date=<today>        every entry of the sample's "today"
  /calendars/<token>.ics      one provider's calendar
and prints p50 / p95 / max ms per endpoint, as the client measures them (HTTP included), plus the
first request after a publish (which opens the new copy). The target is 100 ms: measured, not asserted.
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
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TARGET_MS = 100.0


def usable(copy: Path) -> bool:
    """Whether a BI copy has what the feeds read (a copy made before the on-call work has not)."""
    import duckdb

    from lb_pipelines.warehouse.sql import string_literal

    if not copy.exists():
        return False
    with duckdb.connect(":memory:") as conn:
        conn.execute(f"ATTACH {string_literal(copy)} AS bi (READ_ONLY)")
        found = {r[0] for r in conn.execute(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_catalog = 'bi'"
        ).fetchall()}
    return "marts.fct_calendar_events" in found and any(t.startswith("exports.export_perfectserve") for t in found)


def build_sample(root: Path) -> Path:
    """`lb-pipelines run` on the bundled sample, everything written under `root`; its BI copy."""
    env = os.environ | {
        "LB_WAREHOUSE": str(root / "warehouse.duckdb"), "LB_BI_DIR": str(root / "bi"),
        "LB_OUTBOX_DIR": str(root / "outbox"), "DAGSTER_HOME": str(root / "dagster_home"),
    }
    for var in ("LB_SOURCE_DIR", "LB_CONFIG_DIR", "LB_API_URL"):  # the bundled sample (LB_NOW: its clock, set)
        env.pop(var, None)
    print(f"building the bundled sample's warehouse in {root} (lb-pipelines run) ...", flush=True)
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "lb-pipelines"), "run"], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"lb-pipelines run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    print(f"  built in {time.perf_counter() - started:.0f} s")
    return root / "bi" / "warehouse.duckdb"


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[94], max(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="per endpoint")
    parser.add_argument("--rebuild", action="store_true",
                        help="build the sample's warehouse even if make run's copy will do")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-feed-"))
    root.mkdir(parents=True, exist_ok=True)

    manifest = json.loads((REPO / "data" / "sample" / "manifest.json").read_text())
    os.environ.setdefault("LB_NOW", manifest["as_of"])  # the sample's own "now", as make run reads it
    import duckdb
    import requests

    from lb_pipelines import clock, settings
    from lb_pipelines.feeds.commands import DEMO_PERSON_SQL
    from lb_pipelines.feeds.server import FeedApp, make_feed_server
    from lb_pipelines.feeds.tokens import issue_token
    from lb_pipelines.integrations.on_call import feed_teams
    from lb_pipelines.warehouse.bi_publish import publish_for_bi

    made_by_run, built_here = settings.bi_dir() / "warehouse.duckdb", root / "sample_run" / "bi" / "warehouse.duckdb"
    reusable = [c for c in (made_by_run, built_here) if not args.rebuild and usable(c)]
    if reusable:
        source = reusable[0]
        print(f"reusing the BI copy {source}")
    else:
        source = build_sample(root / "sample_run")
    warehouse, bi_dir = root / "warehouse.duckdb", root / "bi"
    shutil.copyfile(source, warehouse)  # a writable copy: the token is issued here, not in data/
    now = clock.now()
    with duckdb.connect(str(warehouse)) as conn:
        personnel_id = conn.execute(DEMO_PERSON_SQL, {"now": now}).fetchall()[0][0]
        _, token = issue_token(conn, personnel_id, "bench", now)
        teams = feed_teams(conn)
    publish_for_bi(warehouse, bi_dir)

    key = "bench-key"
    server = make_feed_server(FeedApp(bi_copy=bi_dir / "warehouse.duckdb", api_keys=(key,)), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.port}"
    session = requests.Session()
    session.headers["X-API-Key"] = key

    def timed(path: str) -> tuple[float, requests.Response]:
        started = time.perf_counter()
        answer = session.get(base + path, timeout=60)
        elapsed = (time.perf_counter() - started) * 1000
        answer.raise_for_status()
        return elapsed, answer

    first_ms, _ = timed("/oncall/now")
    endpoints = {
        "/oncall/now": "/oncall/now",
        "/oncall/now?team=": f"/oncall/now?team={teams[0][1]}" if teams else None,
        "/oncall?date=": f"/oncall?date={clock.today().isoformat()}",
        "/calendars/<token>.ics": f"/calendars/{token}.ics",
    }
    print(f"sample as of {now.isoformat()}: {len(teams)} mapped teams; calendar of personnel_id {personnel_id}; "
          f"{args.requests} requests per endpoint, one at a time")
    print(f"first request after a publish (opens the copy): {first_ms:.1f} ms")
    print(f"{'endpoint':<26} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'bytes':>9}  entries")
    try:
        for name, path in endpoints.items():
            if path is None:
                continue
            for _ in range(5):  # warm up
                timed(path)
            samples, size, entries = [], 0, "-"
            for _ in range(args.requests):
                ms, answer = timed(path)
                samples.append(ms)
            size = len(answer.content)
            if answer.headers["Content-Type"] == "application/json":
                entries = str(sum(len(t["on_call"]) for t in answer.json()["teams"]))
            else:
                entries = str(answer.content.count(b"BEGIN:VEVENT"))
            p50, p95, worst = percentiles(samples)
            flag = "" if p95 <= TARGET_MS else f"  (p95 over the {TARGET_MS:.0f} ms target)"
            print(f"{name:<26} {p50:>8.1f} {p95:>8.1f} {worst:>8.1f} {size:>9}  {entries}{flag}")
    finally:
        server.shutdown()
        server.server_close()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
