"""The demographic import against the project's Lightning Bolt simulator over HTTP: one row per
outcome, duplicates, unreadable files, the sensor, lost answers, a vendor that answers 500, a
SIGKILL between two PATCHes, the SFTP drop on the suite's real sshd, and the new pager in the
next Epic file. Expected values are worked out by hand from the hand-made files below."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from lb_pipelines.integrations.assets import inbound_import_asset
from lb_pipelines.integrations.demographic_import import INTEGRATION
from lb_pipelines.lightning_bolt.simulator import Simulator
from lb_pipelines.lightning_bolt.source.resource import LightningBoltResource
from lb_pipelines.warehouse.resource import warehouse_resource
from pipeline_helpers import metadata_of, step_failures, write_config
from tiny_system import fresh, write_system

SLUG = "demographic_import"
CLIENT_ID, SECRET = "lb-import", "import-s3cret"
FAST = {"max_attempts": 2, "backoff_initial": 0.05}  # a vendor that keeps failing fails fast here


def person(id_, unique_id, **fields):
    base = next(p for p in fresh()["personnel"] if p["id"] == 12)  # Ben: a plain CRNA without contacts
    return dict(base, id=id_, unique_id=unique_id, first_name=f"P{id_}", email=None, **fields)


def system():
    s = fresh()
    s["personnel"] += [person(15, "U15"), person(16, "U15"), person(17, "U17"), person(18, "U18"), person(20, "U20")]
    return s


@pytest.fixture
def world(lb_env, monkeypatch):
    source = write_system(lb_env / "source", system())
    with Simulator(source, client_id=CLIENT_ID, client_secret=SECRET) as sim:
        monkeypatch.setenv("LB_API_URL", sim.url)
        monkeypatch.setenv("LB_CLIENT_ID", CLIENT_ID)
        monkeypatch.setenv("LB_CLIENT_SECRET", SECRET)
        configure(lb_env)
        yield lb_env, sim


def configure(root: Path, **settings):
    base = {"delivery": {"type": "http"}, "inbound": {"type": "folder", "stable_seconds": 0}}
    write_config(root / "config", SLUG, yaml.safe_dump(base | settings))


def drop_folder(root: Path) -> Path:
    folder = root / "inbound" / SLUG
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def drop(root: Path, name: str, content: str | bytes) -> Path:
    path = drop_folder(root) / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def run_import(file: str = "", **lightning_bolt):
    return dg.materialize(
        [inbound_import_asset(INTEGRATION)],
        resources={"warehouse": warehouse_resource(), "lightning_bolt": LightningBoltResource(**lightning_bolt)},
        run_config={"ops": {f"{SLUG}__imported": {"config": {"file": file}}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def report(path: Path) -> dict[int, dict]:
    return {int(r["line"]) if r["line"] else 0: r for r in csv.DictReader(io.StringIO(path.read_text()))}


def patches(sim: Simulator) -> dict[str, int]:
    """PATCH requests the simulator received, by path (its stats count every request by path)."""
    return {p: n for p, n in sim.stats["requests"].items() if p.startswith("/api/v1/personnel/")}


def person_now(sim: Simulator, id_: int) -> dict:
    table = sim.store.tables["personnel"]
    return table.record(table.find(id_))


def warehouse(root: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(sql).fetchall()


EVERY_OUTCOME = (
    "\ufeffunique_id,email,cell_phone,pager,fax\r\n"
    "U11,ana.reyes@example.org,312-555-0111,4012,x\r\n"   # 2 updated: pager 4011 → 4012 (the rest is the same)
    "U12,Ben.Okafor@example.org,,,\r\n"                    # 3 unchanged: the e-mail differs only in case
    "U13,cy.nguyen@example.org,(602) 555-0113,,\r\n"       # 4 updated: e-mail (Cy had none); the cell is the same
    "U99,nobody@example.org,,,\r\n"                        # 5 unmatched
    "U15,dup@example.org,,,\r\n"                           # 6 ambiguous: personnel 15 and 16 have U15
    "U17,not-an-email,,,\r\n"                              # 7 invalid e-mail
    "U18,,12345,,\r\n"                                     # 8 invalid cell phone
    "U20,refuse.me@example.org,,,\r\n"                     # 9 refused by Lightning Bolt (422)
)


def test_one_row_per_outcome_against_the_simulator(world):
    root, sim = world
    drop(root, "hr-20261102.csv", EVERY_OUTCOME)
    sim.inject(path="/api/v1/personnel/20", kind="422", times=None)
    result = run_import()
    assert result.success, step_failures(result)

    processed = drop_folder(root) / "processed"
    assert sorted(p.name for p in processed.iterdir()) == ["hr-20261102.csv", "hr-20261102.report.csv"]
    assert not (drop_folder(root) / "hr-20261102.csv").exists()
    rows = report(processed / "hr-20261102.report.csv")
    assert {n: r["outcome"] for n, r in rows.items()} == {
        2: "updated", 3: "unchanged", 4: "updated", 5: "unmatched", 6: "ambiguous", 7: "invalid", 8: "invalid",
        9: "refused"}
    assert (rows[2]["personnel_id"], rows[2]["fields"]) == ("11", "pager")
    assert (rows[4]["personnel_id"], rows[4]["fields"]) == ("13", "email")
    assert rows[7]["fields"] == "email" and rows[8]["fields"] == "cell_phone"
    assert "HTTP 422" in rows[9]["reason"]

    # Only the changed people got a PATCH, each once, with only the changed fields applied.
    assert patches(sim) == {"/api/v1/personnel/11": 1, "/api/v1/personnel/13": 1, "/api/v1/personnel/20": 1}
    assert person_now(sim, 11)["pager"] == "4012" and person_now(sim, 11)["cell_phone"] == "312-555-0111"
    assert person_now(sim, 13)["email"] == "cy.nguyen@example.org"
    assert person_now(sim, 20)["email"] is None

    meta = metadata_of(result, [SLUG, "imported"])
    assert {k: meta[k] for k in ("rows", "matched", "updated", "unchanged", "unmatched", "ambiguous", "invalid",
                                 "refused", "failed", "columns_ignored", "requests_sent")} == {
        "rows": 8, "matched": 6, "updated": 2, "unchanged": 1, "unmatched": 1, "ambiguous": 1, "invalid": 2,
        "refused": 1, "failed": 0, "columns_ignored": 1, "requests_sent": 3}
    [check] = [e for e in result.get_asset_check_evaluations()]
    assert not check.passed  # ambiguous, invalid and refused rows, and the unknown column

    # The ledger names every PATCH; the file's row carries its sha256; the problems are stored.
    ledger = warehouse(root, f"SELECT object_key, method, path, outcome FROM delivery.request_ledger "
                             f"WHERE integration = '{SLUG}' ORDER BY object_key")
    assert ledger == [("11", "PATCH", "/api/v1/personnel/11", "accepted"), ("13", "PATCH", "/api/v1/personnel/13", "accepted"),
                      ("20", "PATCH", "/api/v1/personnel/20", "refused")]
    [(status, rows_, sha)] = warehouse(root, f"SELECT status, rows, sha256 FROM delivery.ledger WHERE integration = '{SLUG}'")
    assert status == "delivered" and len(sha) == 64
    kinds = warehouse(root, f"SELECT kind, count(*) FROM delivery.problems WHERE integration = '{SLUG}' GROUP BY 1 ORDER BY 1")
    assert kinds == [("ambiguous_row", 1), ("invalid_row", 2), ("refused_row", 1), ("unknown_column", 1)]


def test_the_same_file_dropped_twice_is_refused_as_a_duplicate(world):
    root, sim = world
    content = "unique_id,pager\nU11,4012\n"
    drop(root, "monday.csv", content)
    assert run_import().success
    drop(root, "tuesday.csv", content)  # another name, the same bytes
    result = run_import()
    assert result.success, step_failures(result)
    failed = drop_folder(root) / "failed"
    assert sorted(p.name for p in failed.iterdir()) == ["tuesday.csv", "tuesday.report.csv"]
    [row] = report(failed / "tuesday.report.csv").values()
    assert row["outcome"] == "duplicate" and "processed as monday.csv" in row["reason"]
    assert patches(sim) == {"/api/v1/personnel/11": 1}


def test_a_file_without_the_key_column_moves_to_failed_with_the_reason(world):
    root, sim = world
    drop(root, "no-key.csv", "email,pager\nana.reyes@example.org,4012\n")
    result = run_import()
    assert result.success, step_failures(result)
    failed = drop_folder(root) / "failed"
    assert sorted(p.name for p in failed.iterdir()) == ["no-key.csv", "no-key.report.csv"]
    [row] = report(failed / "no-key.report.csv").values()
    assert row["outcome"] == "unreadable"
    assert "no key column unique_id" in row["reason"] and "email, pager" in row["reason"]
    assert patches(sim) == {}


def test_the_sensor_starts_one_run_per_whole_file_and_that_run_imports_it(world):
    from lb_pipelines.definitions import build_definitions

    root, sim = world
    defs = build_definitions()
    sensor = defs.get_sensor_def(f"{SLUG}_inbound_sensor")
    instance = dg.DagsterInstance.ephemeral()

    def tick(cursor):
        data = sensor.evaluate_tick(dg.build_sensor_context(cursor=cursor, instance=instance))
        return data.run_requests or [], data.cursor

    path = drop(root, "hr.csv", "unique_id,pager\nU11,4012\n")
    requests, cursor = tick(None)
    assert requests == []  # seen once: it may still be growing
    with path.open("a") as still_writing:
        still_writing.write("U13,4013\n")
    requests, cursor = tick(cursor)
    assert requests == []  # it grew since the last look
    [request], cursor = tick(cursor)
    assert request.run_config == {"ops": {f"{SLUG}__imported": {"config": {"file": "hr.csv"}}}}
    assert request.tags["lb/trigger"] == "inbound_file"
    result = defs.resolve_job_def(request.job_name).execute_in_process(
        instance=instance, run_config=request.run_config, tags=request.tags, raise_on_error=False)
    assert result.success, step_failures(result)
    assert (person_now(sim, 11)["pager"], person_now(sim, 13)["pager"]) == ("4012", "4013")
    assert (drop_folder(root) / "processed" / "hr.csv").exists()
    assert tick(cursor)[0] == []  # the drop is empty again


def test_done_marker_mode_waits_for_the_marker(world):
    from lb_pipelines.definitions import build_definitions

    root, _ = world
    configure(root, inbound={"type": "folder", "done_marker": True})
    sensor = build_definitions().get_sensor_def(f"{SLUG}_inbound_sensor")
    drop(root, "hr.csv", "unique_id,pager\nU11,4012\n")

    def tick(cursor):
        return sensor.evaluate_tick(dg.build_sensor_context(cursor=cursor, instance=dg.DagsterInstance.ephemeral()))

    assert not tick(None).run_requests and not tick(tick(None).cursor).run_requests
    drop(root, "hr.csv.done", "")
    assert [r.run_config["ops"][f"{SLUG}__imported"]["config"]["file"] for r in tick(None).run_requests] == ["hr.csv"]


def test_a_lost_answer_is_read_back_and_not_sent_again(world):
    root, sim = world
    drop(root, "hr.csv", "unique_id,pager\nU11,4012\nU13,4013\n")
    sim.inject(path="/api/v1/personnel/11", kind="drop", times=1)  # applied, then the connection is cut
    result = run_import()
    assert result.success, step_failures(result)
    rows = report(drop_folder(root) / "processed" / "hr.report.csv")
    assert rows[2]["outcome"] == "updated" and "read" in rows[2]["reason"]
    assert patches(sim) == {"/api/v1/personnel/11": 1, "/api/v1/personnel/13": 1}


def test_a_vendor_that_answers_500_keeps_the_file_and_the_rerun_sends_only_what_is_left(world):
    root, sim = world
    drop(root, "hr.csv", "unique_id,pager\nU11,4012\nU13,4013\n")
    sim.inject(path="/api/v1/personnel/13", kind="500", times=None)
    sim.inject(path="/api/v1/personnel/11", kind="429", times=1, retry_after=0.1)  # waited for, then accepted
    result = run_import(**FAST)
    assert not result.success
    [failure] = step_failures(result)
    assert "hr.csv line 3" in failure and "HTTP 500" in failure
    assert (drop_folder(root) / "hr.csv").exists() and not (drop_folder(root) / "processed").exists()
    assert person_now(sim, 11)["pager"] == "4012"

    sim.clear_faults()
    result = run_import()
    assert result.success, step_failures(result)
    assert patches(sim)["/api/v1/personnel/11"] == 2  # the 429, then the accepted one: never again after it
    assert person_now(sim, 13)["pager"] == "4013"
    rows = report(drop_folder(root) / "processed" / "hr.report.csv")
    assert (rows[2]["outcome"], rows[3]["outcome"]) == ("updated", "updated")


KILLED_IMPORT = """
import dagster as dg
from lb_pipelines.integrations.assets import inbound_import_asset
from lb_pipelines.integrations.demographic_import import INTEGRATION
from lb_pipelines.lightning_bolt.source.resource import LightningBoltResource
from lb_pipelines.warehouse.resource import warehouse_resource
dg.materialize([inbound_import_asset(INTEGRATION)],
               resources={"warehouse": warehouse_resource(), "lightning_bolt": LightningBoltResource()},
               instance=dg.DagsterInstance.ephemeral())
"""


def test_killed_between_two_patches_the_rerun_sends_none_twice_and_completes_the_report(world):
    root, sim = world
    drop(root, "hr.csv", "unique_id,pager\nU11,4012\nU12,4022\nU13,4013\n")
    delay = 2.0
    sim.inject(path="/api/v1/personnel/12", kind="slow", times=1, delay=delay)  # the second PATCH hangs
    child = subprocess.Popen([sys.executable, "-c", KILLED_IMPORT], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while "/api/v1/personnel/12" not in patches(sim) and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)  # the first PATCH answered, the second on its way
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert patches(sim) == {"/api/v1/personnel/11": 1, "/api/v1/personnel/12": 1}  # the third never sent
    time.sleep(delay + 0.5)  # the server applies the second PATCH; its answer has nobody to go to
    assert (drop_folder(root) / "hr.csv").exists()  # not lost

    result = run_import()
    assert result.success, step_failures(result)
    assert patches(sim) == {"/api/v1/personnel/11": 1, "/api/v1/personnel/12": 1, "/api/v1/personnel/13": 1}
    rows = report(drop_folder(root) / "processed" / "hr.report.csv")
    assert {n: r["outcome"] for n, r in rows.items()} == {2: "updated", 3: "updated", 4: "updated"}
    assert "earlier run" in rows[3]["reason"]
    assert [person_now(sim, i)["pager"] for i in (11, 12, 13)] == ["4012", "4022", "4013"]


def test_the_sftp_drop_on_a_real_sshd(world, sshd_server, sshd_upload_dir, monkeypatch):
    root, sim = world
    monkeypatch.setenv("HR_SFTP_PASSWORD", sshd_server.password)
    inbound = sshd_server.delivery(sshd_upload_dir, password_env="HR_SFTP_PASSWORD") | {"stable_seconds": 0}
    configure(root, inbound=inbound)
    (sshd_upload_dir / "hr.csv").write_text("unique_id,pager\nU11,4012\n")
    (sshd_upload_dir / "bad.csv").write_text("pager\n4012\n")
    result = run_import()
    assert result.success, step_failures(result)
    assert sorted(p.name for p in (sshd_upload_dir / "processed").iterdir()) == ["hr.csv", "hr.report.csv"]
    assert sorted(p.name for p in (sshd_upload_dir / "failed").iterdir()) == ["bad.csv", "bad.report.csv"]
    assert sorted(p.name for p in sshd_upload_dir.iterdir()) == ["failed", "processed"]
    assert person_now(sim, 11)["pager"] == "4012"

    configure(root, inbound=inbound | {"known_hosts": sshd_server.wrong_known_hosts})
    (sshd_upload_dir / "next.csv").write_text("unique_id,pager\nU11,4019\n")
    result = run_import()
    assert not result.success
    assert "does not match known_hosts" in step_failures(result)[0]
    assert (sshd_upload_dir / "next.csv").exists()


def test_a_dry_run_applies_and_moves_nothing(world):
    root, sim = world
    configure(root, delivery={"type": "dry_run"})
    drop(root, "hr.csv", "unique_id,pager\nU11,4012\nU13,4013\n")
    result = run_import()
    assert result.success, step_failures(result)
    assert patches(sim) == {} and (drop_folder(root) / "hr.csv").exists()
    outbox = root / "outbox" / SLUG
    [requests] = outbox.glob("requests-*.jsonl")
    assert [line.split('"path":')[1].split(",")[0] for line in requests.read_text().splitlines()] == [
        '"/api/v1/personnel/11"', '"/api/v1/personnel/13"']
    [dry_report] = outbox.glob("hr.report-*.csv")
    assert [r["outcome"] for r in report(dry_report).values()] == ["updated", "updated"]
    configure(root)
    assert run_import().success  # a dry run is not "processed": the real run still applies the file
    assert patches(sim) == {"/api/v1/personnel/11": 1, "/api/v1/personnel/13": 1}


EPIC_SETTINGS = "personnel_id_field: custom1\nwindow: {days_back: 1, days_forward: 30}\n"
EPIC_MAPPING = "assignment_id,epic_team_id,team_name,role,note_prefix,team_comment,call_order\n101,OCF-OB-01,OB,Attending,,,1\n"


def test_the_new_pager_reaches_the_next_epic_file_through_the_change_log_sensor(lb_env, monkeypatch):
    """The import's PATCH is a change-log entry; the change-log sensor asks for an Epic run; the file
    carries the new pager. (Measured end to end in bench/demographic_import.py.)"""
    from lb_pipelines.definitions import build_definitions

    s = system()
    s["slots"] = [dict(r, personnel_id=11) if r["id"] == 5002 else r for r in s["slots"]]  # Ana on call 11-02
    source = write_system(lb_env / "source", s)
    write_config(lb_env / "config", "epic_on_call_finder", EPIC_SETTINGS, EPIC_MAPPING)
    with Simulator(source, client_id=CLIENT_ID, client_secret=SECRET) as sim:
        for name, value in (("LB_API_URL", sim.url), ("LB_CLIENT_ID", CLIENT_ID), ("LB_CLIENT_SECRET", SECRET)):
            monkeypatch.setenv(name, value)
        configure(lb_env)
        drop(lb_env, "hr.csv", "unique_id,pager\nU11,4012\n")
        defs = build_definitions()
        instance = dg.DagsterInstance.ephemeral()
        imported = defs.resolve_job_def(f"{SLUG}_import").execute_in_process(instance=instance, raise_on_error=False)
        assert imported.success, step_failures(imported)

        sensor = defs.get_sensor_def("change_log_sensor")
        context = dg.build_sensor_context(cursor="3", instance=instance,  # the tiny system's log ends at 3
                                          resources={"lightning_bolt": LightningBoltResource()})
        tick = sensor.evaluate_tick(context)
        [request] = tick.run_requests
        assert request.tags["lb/integrations"] == "epic_on_call_finder" and tick.cursor == "4"  # one entry: the pager
        job = defs.resolve_job_def(request.job_name).get_subset(
            asset_selection=set(request.asset_selection), asset_check_selection=set(request.asset_check_keys))
        result = job.execute_in_process(instance=instance, run_config=request.run_config, tags=request.tags,
                                        raise_on_error=False)
        assert result.success, step_failures(result)
    [epic_file] = (lb_env / "outbox" / "epic_on_call_finder").glob("*.csv")
    rows = list(csv.DictReader(io.StringIO(epic_file.read_text())))
    assert [(r["START"], r["PROVIDER_ID"], r["CONTACT"]) for r in rows] == [("11/02/2026 17:00", "SER011", "4012")]


def test_lightning_bolt_unreachable_fails_the_run_and_keeps_the_file(world, monkeypatch):
    root, sim = world
    drop(root, "hr.csv", "unique_id,pager\nU11,4012\n")
    monkeypatch.setenv("LB_API_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    result = run_import(**FAST)
    assert not result.success
    assert "hr.csv not finished" in step_failures(result)[0]
    assert (drop_folder(root) / "hr.csv").exists() and patches(sim) == {}
    monkeypatch.setenv("LB_API_URL", sim.url)
    assert run_import().success
    assert patches(sim) == {"/api/v1/personnel/11": 1}


def test_a_file_dropped_again_under_the_same_name_keeps_both_copies(world):
    root, sim = world
    drop(root, "hr.csv", "unique_id,pager\nU11,4012\n")
    assert run_import().success
    drop(root, "hr.csv", "unique_id,pager\nU11,4013\n")  # the next day's file, the same name
    assert run_import().success
    processed = drop_folder(root) / "processed"
    assert sorted(p.name for p in processed.iterdir()) == [
        "hr-20261102120000.csv", "hr-20261102120000.report.csv", "hr.csv", "hr.report.csv"]  # LB_NOW's stamp
    assert (processed / "hr.csv").read_text().endswith("4012\n") and person_now(sim, 11)["pager"] == "4013"


def test_whole_means_unchanged_between_two_looks_and_an_empty_file_goes_to_failed(world):
    from lb_pipelines.integrations.inbound import Waiting, ready

    growing, still, empty = Waiting("a.csv", 10, 1.0, False), Waiting("b.csv", 20, 2.0, False), Waiting("c.csv", 0, 3.0, False)
    before = {"a.csv": (5, 0.5), "b.csv": (20, 2.0), "c.csv": (0, 3.0)}
    assert [w.name for w in ready([growing, still, empty], before, False)] == ["b.csv", "c.csv"]
    assert ready([growing, still, empty], None, False) == []  # no look before: nothing is whole yet
    assert [w.name for w in ready([Waiting("d.csv", 9, 1.0, True), still], None, True)] == ["d.csv"]

    root, sim = world
    drop(root, "empty.csv", b"")
    assert run_import().success
    [row] = report(drop_folder(root) / "failed" / "empty.report.csv").values()
    assert row["outcome"] == "unreadable" and "empty" in row["reason"] and patches(sim) == {}
