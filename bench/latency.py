"""Latency benchmark: a schedule change in Lightning Bolt → the change visible at each vendor.

    make bench-latency                      # the bundled sample, 20 changes
    .venv/bin/python bench/latency.py --providers 20000 --days 365 --changes 20 [--keep DIR]

Measures, per near-real-time integration, the seconds from a slot reassigned through the
Lightning Bolt API (the simulator, over HTTP) until the vendor shows the new person there,
through the real Dagster daemon: change-log sensor → one queued `change_log_deliveries` run →
every integration's delivery. Five integrations are configured at once, as in production:

  Epic On-Call Finder  a real local sshd (SFTP): the newest epic_ocf_*.csv has the slot's line
                       (team, start, end) with the new provider's SER id
  TigerConnect         tests/fakes/tigerconnect.py holds (job token, new user id, start, end) for
                       the slot's zone
  Outlook              tests/fakes/graph.py: the new person's mailbox holds the slot's event
  PerfectServe         tests/fakes/team_oncall.py: the team's on-call list holds the slot's entry
                       (assignment, start) with the new user id (the replace-per-team engine that
                       Amtelco, Voalte and Epic Secure Chat share)
  AnesthesiaGo         tests/fakes/anesthesiago.py: the slot's date holds the slot with the new
                       emp_id

All five map the same assignments (those of the sample's Epic mapping, which exist in every
generated system too), and every change is a slot inside all five windows (today .. today + 7,
PerfectServe's window, not yet ended), given to someone of the department with an id in every
vendor: so each change is measured at every vendor. One change at a time; the next starts when
all five show it. Prints each change's seconds per integration, then n/p50/p95/max per
integration, then from the Dagster instance where a change run's seconds go (sensor, queue,
launch, each step). Needs root (the sshd, as the tests). The clock is pinned to the system's
as-of time, so every window agrees.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

import requests

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO / "tests"))  # the vendor fakes, the sshd and write_config live with the tests

CHANGE_JOB = "change_log_deliveries"
DAYS_FORWARD = 7  # the narrowest window of the five (PerfectServe's default): every pick is inside all
INTEGRATIONS = {  # slug → name, in the order printed
    "epic_on_call_finder": "Epic OCF (SFTP)",
    "tigerconnect": "TigerConnect",
    "outlook": "Outlook",
    "perfectserve": "PerfectServe",
    "anesthesiago": "AnesthesiaGo",
}
# The fakes' credentials; the settings name the environment variables, the daemon's runs read them.
TC_ORG, TC_INTEGRATION = "org-bench", "int-bench"
SECRETS = {
    "LB_BENCH_TC_USERNAME": "lb-bench", "LB_BENCH_TC_PASSWORD": "tc-secret",
    "LB_BENCH_GRAPH_SECRET": "graph-secret",
    "LB_BENCH_PS_USERNAME": "lb-bench", "LB_BENCH_PS_PASSWORD": "ps-secret",
    "LB_BENCH_AG_TOKEN": "ag-token",
}


def wait_for(predicate, timeout: float, poll: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def configure(config_dir: Path, sftp: dict, fakes: dict) -> None:
    """Every integration on, mapping the assignments of the sample's Epic mapping."""
    from pipeline_helpers import write_config

    ocf_mapping = (REPO / "data" / "config" / "epic_on_call_finder" / "mapping.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(ocf_mapping)))
    assignments = sorted({int(r["assignment_id"]) for r in rows})

    def settings(field: str, delivery: dict, window: str = "") -> str:
        return f"personnel_id_field: {field}\n{window}delivery: {json.dumps(delivery)}\n"

    write_config(config_dir, "epic_on_call_finder",
                 settings("custom1", sftp, "window: {days_back: 1, days_forward: 30}\n"), ocf_mapping)
    write_config(config_dir, "tigerconnect", settings("custom3", {
        "type": "http", "base_url": fakes["tigerconnect"].base_url, "username_env": "LB_BENCH_TC_USERNAME",
        "password_env": "LB_BENCH_TC_PASSWORD", "group_id": TC_ORG, "integration_id": TC_INTEGRATION,
    }), "assignment_id,job_token\n" + "".join(f"{a},tc-job-{a}\n" for a in assignments))
    write_config(config_dir, "outlook", settings("custom4", {
        "type": "http", "base_url": fakes["outlook"].base_url, "token_url": fakes["outlook"].token_url,
        "client_id": "bench", "client_secret_env": "LB_BENCH_GRAPH_SECRET",
    }), "assignment_id,send_to_outlook,include_schedule_notes,include_assignment_info,send_as_free\n"
        + "".join(f"{a},true,true,true,false\n" for a in assignments))
    # PerfectServe's teams are the Epic teams (an assignment feeding two Epic teams feeds two lists)
    write_config(config_dir, "perfectserve", settings("unique_id", {
        "type": "http", "base_url": fakes["perfectserve"].base_url, "username_env": "LB_BENCH_PS_USERNAME",
        "password_env": "LB_BENCH_PS_PASSWORD",
    }), "assignment_id,team_id,role,priority\n"
        + "".join(f"{r['assignment_id']},PS-{r['epic_team_id']},{r['role']},{r['call_order']}\n"
                  for r in rows))
    write_config(config_dir, "anesthesiago", settings("emp_id", {
        "type": "http", "base_url": fakes["anesthesiago"].base_url, "token_env": "LB_BENCH_AG_TOKEN",
    }), "assignment_id\n" + "".join(f"{a}\n" for a in assignments))


def candidates(warehouse: Path, count: int) -> list[dict]:
    """Slots that every integration delivers, each with someone else from the department who has
    an id in every vendor; what each vendor will show for the slot, from its export model."""
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as conn:
        rows = conn.execute(
            """
            WITH ocf AS (
                SELECT DISTINCT ON (slot_id) slot_id, "TEAM_ID" AS team, "START" AS ocf_start,
                       "END" AS ocf_end, department_id, time_zone, slot_date, personnel_id
                FROM exports.export_epic_on_call_finder WHERE outcome = 'deliver' AND NOT is_placeholder
            ), tc AS (
                SELECT DISTINCT ON (slot_id) slot_id, "JOB_TOKEN" AS job_token, "START" AS tc_start,
                       "END" AS tc_end
                FROM exports.export_tigerconnect
            ), ps AS (
                SELECT DISTINCT ON (slot_id) slot_id, team_id AS ps_team, assignment_id,
                       strftime(timezone('UTC', start_at), '%Y-%m-%dT%H:%M:%SZ') AS ps_start, end_at
                FROM exports.export_perfectserve
            ), slots AS (
                SELECT * FROM ocf JOIN tc USING (slot_id) JOIN ps USING (slot_id)
                WHERE slot_id IN (SELECT slot_id FROM exports.export_outlook)
                  AND slot_id IN (SELECT slot_id FROM exports.export_anesthesiago)
                  AND end_at > $now::TIMESTAMPTZ  -- PerfectServe lists only calls not yet ended
                  AND slot_date BETWEEN CAST(timezone(time_zone, $now::TIMESTAMPTZ) AS DATE)
                                    AND CAST(timezone(time_zone, $now::TIMESTAMPTZ) AS DATE) + $days
            ), people AS (
                SELECT personnel_id, display_name, custom1, custom3, custom4, unique_id, emp_id,
                       unnest(department_ids) AS department_id
                FROM marts.dim_personnel
                WHERE is_active AND NOT is_placeholder AND custom1 IS NOT NULL AND custom3 IS NOT NULL
                  AND custom4 IS NOT NULL AND unique_id IS NOT NULL AND emp_id IS NOT NULL
            )
            SELECT s.slot_id, s.team, s.ocf_start, s.ocf_end, s.time_zone, s.job_token, s.tc_start, s.tc_end,
                   s.ps_team, s.assignment_id, s.ps_start,
                   p.personnel_id, p.display_name, p.custom1, p.custom3, p.custom4, p.unique_id, p.emp_id
            FROM slots s JOIN people p
              ON p.department_id = s.department_id AND p.personnel_id <> s.personnel_id
            QUALIFY row_number() OVER (PARTITION BY s.slot_id ORDER BY p.personnel_id) = 1
            ORDER BY hash(s.slot_id) LIMIT $count
            """,
            {"now": os.environ["LB_NOW"], "count": count, "days": DAYS_FORWARD},
        ).fetchall()
    keys = ("slot_id", "team", "ocf_start", "ocf_end", "time_zone", "job_token", "tc_start", "tc_end",
            "ps_team", "assignment_id", "ps_start",
            "personnel_id", "name", "ser_id", "tc_id", "upn", "ps_id", "emp_id")
    return [dict(zip(keys, r)) for r in rows]


def observers(upload_dir: Path, fakes: dict) -> dict[str, Callable[[dict], bool]]:
    """Per integration: does the vendor show the pick's new person in the pick's slot?"""
    from fakes.graph import GraphFake
    from lb_pipelines.integrations.outlook.desired import SLOT_PROPERTY

    def epic(pick) -> bool:
        files = sorted(upload_dir.glob("epic_ocf_*.csv"), key=lambda p: p.stat().st_mtime_ns)
        try:
            text = files[-1].read_text() if files else ""
        except FileNotFoundError:  # replaced while we looked: the next poll reads the new one
            return False
        line = (pick["team"], pick["ocf_start"], pick["ocf_end"], pick["ser_id"])
        return any((r["TEAM_ID"], r["START"], r["END"], r["PROVIDER_ID"]) == line
                   for r in csv.DictReader(io.StringIO(text)))

    def tigerconnect(pick) -> bool:
        row = (pick["job_token"], pick["tc_id"], pick["tc_start"], pick["tc_end"])
        return row in fakes["tigerconnect"].held(TC_ORG, TC_INTEGRATION, pick["time_zone"])

    def outlook(pick) -> bool:
        return any(GraphFake.slot_property(e, SLOT_PROPERTY) == str(pick["slot_id"])
                   for e in fakes["outlook"].events_of(pick["upn"]))

    def perfectserve(pick) -> bool:
        fake = fakes["perfectserve"]
        with fake.lock:
            entries = fake.held.get(pick["ps_team"], {}).get("oncall", [])
            return any(e.get("assignment_id") == pick["assignment_id"] and e.get("start") == pick["ps_start"]
                       and e.get("user_id") == pick["ps_id"] for e in entries)

    def anesthesiago(pick) -> bool:
        return any(p["slot_id"] == pick["slot_id"] and p["emp_id"] == pick["emp_id"]
                   for day in fakes["anesthesiago"].held.values() for p in day["providers"])

    return {"epic_on_call_finder": epic, "tigerconnect": tigerconnect, "outlook": outlook,
            "perfectserve": perfectserve, "anesthesiago": anesthesiago}


def sensor_watching(instance) -> bool:
    """The change-log sensor's first tick is done: it has a cursor (the end of the change log)."""
    return any(state.name == "change_log_sensor" and getattr(state.instigator_data, "cursor", None)
               for state in instance.all_instigator_state())


def spread(values: list[float]) -> tuple[int, float, float, float]:
    """n, p50, p95, max (p95 as statistics.quantiles' 19th of 20 cut points; with a handful of
    values that method extrapolates past the largest, so it is capped at the max)."""
    if not values:
        return 0, float("nan"), float("nan"), float("nan")
    p95 = min(statistics.quantiles(values, n=20)[18], max(values)) if len(values) > 1 else values[0]
    return len(values), statistics.median(values), p95, max(values)


def breakdown(instance, posted: list[float]) -> None:
    """Where a change run's seconds go, from the runs' event logs (timestamps are epoch seconds)."""
    import dagster as dg

    E = dg.DagsterEventType
    SENSOR, PLANNED, QUEUE, LAUNCH, RUN, IDLE = (
        "change posted → run created (sensor: its next tick, reads the log)",
        "run created → queued (sensor writes each asset's planned event)",
        "queued → starting (the daemon dequeues it)",
        "starting → started (run process starts, loads the code)",
        "started → ended (the steps below, one at a time)",
        "  of which no step running (step launch, pool waits)",
    )
    records = sorted(instance.get_run_records(dg.RunsFilter(job_name=CHANGE_JOB)),
                     key=lambda r: r.create_timestamp)
    phases: dict[str, list[float]] = {name: [] for name in (SENSOR, PLANNED, QUEUE, LAUNCH, RUN, IDLE)}
    steps: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    created = []
    statuses = defaultdict(int)
    for record in records:
        run = record.dagster_run
        statuses[run.status.value] += 1
        first: dict[str, float] = {}  # event type → its first timestamp
        step_start: dict[str, float] = {}
        spans = []
        for entry in instance.all_logs(run.run_id):
            kind = entry.dagster_event_type
            if kind is None:
                continue
            first.setdefault("created", entry.timestamp)  # the sensor's first write for the run
            first.setdefault(kind.value, entry.timestamp)
            key = entry.step_key
            if kind == E.STEP_START:
                step_start[key] = entry.timestamp
            elif kind == E.STEP_SUCCESS and key in step_start:
                spans.append((step_start[key], entry.timestamp))
                steps[key]["at"].append(step_start[key] - first.get(E.RUN_START.value, step_start[key]))
                steps[key]["took"].append(entry.timestamp - step_start[key])
        made, queued, starting, started = (
            first.get(k) for k in ("created", E.RUN_ENQUEUED.value, E.RUN_STARTING.value, E.RUN_START.value))
        end = first.get(E.RUN_SUCCESS.value) or first.get(E.RUN_FAILURE.value)
        if made:
            created.append(made)
        for name, a, b in ((PLANNED, made, queued), (QUEUE, queued, starting), (LAUNCH, starting, started),
                           (RUN, started, end)):
            if a and b:
                phases[name].append(b - a)
        if started and end:
            phases[IDLE].append(end - started - covered(spans))
    # each change's run: the first change run created after the change was posted
    for t in posted:
        made = min((c for c in created if c >= t), default=None)
        if made is not None:
            phases[SENSOR].append(made - t)

    counted = ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
    print(f"\n{len(records)} {CHANGE_JOB} runs ({counted}); seconds per run:")
    print(f"{'phase':<68} {'n':>3} {'mean':>6} {'p50':>6} {'max':>6}")
    for name, values in phases.items():
        n, p50, _, top = spread(values)
        mean = statistics.fmean(values) if values else float("nan")
        print(f"{name:<68} {n:>3} {mean:>6.2f} {p50:>6.2f} {top:>6.2f}")
    print("\nsteps (STEP_START → STEP_SUCCESS), in the order they start; 'at': seconds after the run started")
    print(f"{'step':<56} {'runs':>4} {'at':>6} {'mean':>6} {'max':>6}")
    for key, t in sorted(steps.items(), key=lambda kv: statistics.fmean(kv[1]["at"])):
        print(f"{key:<56} {len(t['took']):>4} {statistics.fmean(t['at']):>6.2f} "
              f"{statistics.fmean(t['took']):>6.2f} {max(t['took']):>6.2f}")
    others = defaultdict(int)
    since = dt.datetime.fromtimestamp(min(posted, default=0), dt.timezone.utc)
    for record in instance.get_run_records(dg.RunsFilter(created_after=since)):
        if record.dagster_run.job_name != CHANGE_JOB:
            others[record.dagster_run.job_name] += 1
    if others:  # cadence runs also write the warehouse: a change run queued behind one waits
        print("other runs during the changes: " + ", ".join(f"{job} ×{n}" for job, n in sorted(others.items())))


def covered(spans: list[tuple[float, float]]) -> float:
    """Seconds inside at least one of the (start, end) spans."""
    total, reach = 0.0, float("-inf")
    for a, b in sorted(spans):
        if b > reach:
            total += b - max(a, reach)
            reach = b
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--providers", type=int, help="generate a system of this size (default: the bundled sample)")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=120, help="give up on one change after this long")
    parser.add_argument("--keep", help="folder to keep everything in")
    args = parser.parse_args()

    from fakes.anesthesiago import AnesthesiaGoFake
    from fakes.graph import GraphFake
    from fakes.team_oncall import TeamOnCallFake
    from fakes.tigerconnect import TigerConnectFake
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
    env |= SECRETS | {
        "LB_NOW": as_of, "DAGSTER_HOME": str(home), "LB_WAREHOUSE": str(work / "warehouse.duckdb"),
        "LB_CONFIG_DIR": str(work / "config"), "LB_OUTBOX_DIR": str(work / "outbox"), "LB_BI_DIR": str(work / "bi"),
        "LB_CLIENT_ID": "bench", "LB_CLIENT_SECRET": "bench-secret", "PATH": f"{BIN}:{os.environ['PATH']}",
        "LB_AUTOMATION": "on",  # the daemon runs the change-log sensor as production does
    }
    os.environ.update(env)
    fakes = {
        "tigerconnect": TigerConnectFake(SECRETS["LB_BENCH_TC_USERNAME"], SECRETS["LB_BENCH_TC_PASSWORD"],
                                         organizations=(TC_ORG,)),
        "outlook": GraphFake(client_id="bench", client_secret=SECRETS["LB_BENCH_GRAPH_SECRET"]),
        "perfectserve": TeamOnCallFake(SECRETS["LB_BENCH_PS_USERNAME"], SECRETS["LB_BENCH_PS_PASSWORD"]),
        "anesthesiago": AnesthesiaGoFake(token=SECRETS["LB_BENCH_AG_TOKEN"]),
    }
    daemon = None
    try:
        for fake in fakes.values():
            fake.start()
        with Simulator(source, client_id="bench", client_secret="bench-secret") as sim, running_sshd() as sshd:
            os.environ["LB_API_URL"] = env["LB_API_URL"] = sim.url
            os.environ["LB_BENCH_SFTP_PASSWORD"] = env["LB_BENCH_SFTP_PASSWORD"] = sshd.password
            sftp = sshd.delivery(sshd.upload_dir, password_env="LB_BENCH_SFTP_PASSWORD", retries=3)
            configure(work / "config", sftp, fakes)

            started = time.perf_counter()  # the first full run also makes each vendor's first push
            subprocess.run([str(BIN / "lb-pipelines"), "run"], check=True, env=env, stdout=subprocess.DEVNULL)
            print(f"warehouse filled through the API and every vendor's first push in "
                  f"{time.perf_counter() - started:.0f} s")
            picks = candidates(work / "warehouse.duckdb", args.changes * 3)

            log = (work / "daemon.log").open("w")
            daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
                                      cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
            token = requests.post(f"{sim.url}/oauth/token", data={"grant_type": "client_credentials",
                                  "client_id": "bench", "client_secret": "bench-secret"}).json()["access_token"]
            watch = observers(Path(sshd.upload_dir), fakes)

            # a pick whose new person already shows somewhere (another slot, same time) proves nothing
            picks = [p for p in picks if not any(shows(p) for shows in watch.values())][: args.changes]
            if len(picks) < args.changes:
                raise SystemExit(f"only {len(picks)} slots to change")

            import dagster as dg

            instance = dg.DagsterInstance.get()  # the daemon's (DAGSTER_HOME above)
            print("waiting for the change-log sensor's first tick (it starts at the end of the change log)")
            wait_for(lambda: sensor_watching(instance), 120, 0.5, "the change-log sensor's first tick")

            latencies: dict[str, list[float]] = {slug: [] for slug in INTEGRATIONS}
            posted: list[float] = []
            print(f"{'change (seconds until each vendor shows it)':<44}"
                  + "".join(f"{name:>16}" for name in INTEGRATIONS.values()))
            for i, pick in enumerate(picks, 1):
                posted.append(time.time())
                changed = time.perf_counter()
                requests.post(f"{sim.url}/api/v1/slots/{pick['slot_id']}/assign",
                              json={"personnel_id": pick["personnel_id"]},
                              headers={"Authorization": f"Bearer {token}"}, timeout=10).raise_for_status()
                seen: dict[str, float] = {}
                while len(seen) < len(watch):  # every vendor polled in one loop: each its own latency
                    for slug, shows in watch.items():
                        if slug not in seen and shows(pick):
                            seen[slug] = time.perf_counter() - changed
                    if time.perf_counter() - changed > args.timeout:
                        missing = ", ".join(INTEGRATIONS[s] for s in watch if s not in seen)
                        raise TimeoutError(f"change {i} (slot {pick['slot_id']} → {pick['name']}): not shown "
                                           f"after {args.timeout:.0f} s by {missing}; see {work / 'daemon.log'}")
                    time.sleep(0.1)
                for slug, seconds in seen.items():
                    latencies[slug].append(seconds)
                what = f"{i:>2}: slot {pick['slot_id']} {pick['team']} → {pick['name']}"
                print(f"{what:<44}" + "".join(f"{seen[slug]:>16.1f}" for slug in INTEGRATIONS), flush=True)

            print(f"\n{'integration':<22} {'n':>3} {'p50 s':>7} {'p95 s':>7} {'max s':>7}")
            for slug, name in INTEGRATIONS.items():
                n, p50, p95, top = spread(latencies[slug])
                print(f"{name:<22} {n:>3} {p50:>7.1f} {p95:>7.1f} {top:>7.1f}")
            # the last run still copies the warehouse for BI after the vendors have it: let it end
            wait_for(lambda: not instance.get_run_records(dg.RunsFilter(job_name=CHANGE_JOB, statuses=[
                dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED])), args.timeout, 0.5, "the last change run to end")
            breakdown(instance, posted)
    finally:
        if daemon:
            daemon.terminate()
            try:
                daemon.wait(timeout=60)
            except subprocess.TimeoutExpired:
                daemon.kill()
        for fake in fakes.values():
            fake.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
