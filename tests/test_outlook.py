"""Outlook against a local Microsoft Graph fake, over real HTTP: one scenario, run after run.

The clock is pinned to 2026-10-31 12:00 CDT (17:00 UTC; 10:00 MST in Phoenix); the window is
0 back / 3 forward, so 2026-10-31 .. 2026-11-03 in both zones. Chicago falls back on
2026-11-01 at 02:00 (CDT -5 → CST -6); Phoenix stays at MST -7. Every expected event below is
worked out by hand from the system in `system()`.

The tests run in file order on one warehouse and one fake (each is a run of the push that
builds on the previous one), so the module reads top to bottom as the life of the integration.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from fakes.graph import GraphFake
from lb_pipelines.integrations.assets import api_push_asset
from lb_pipelines.integrations.outlook import INTEGRATION
from lb_pipelines.integrations.outlook.desired import SLOT_PROPERTY
from lb_pipelines.integrations.outlook.graph import forget_tokens
from lb_pipelines.warehouse.resource import WarehouseResource
from pipeline_helpers import metadata_of, step_failures, write_config
from tiny_system import fresh, slot
from warehouse_helpers import load_system, run_dbt

NOW = "2026-10-31T12:00:00-05:00"
ANA, CY, DEE = "ana@x.org", "cy@x.org", "dee@x.org"
MAPPING = """assignment_id,send_to_outlook,include_schedule_notes,include_assignment_info,send_as_free
101,true,true,true,false
102,true,false,false,true
201,true,false,true,false
"""
CHANGE_LOG_RUN = {"lb/trigger": "change_log"}


def settings_yaml(graph: GraphFake, kind: str = "http") -> str:
    return f"""
personnel_id_field: custom4
window: {{days_back: 0, days_forward: 3}}
delivery:
  type: {kind}
  base_url: {graph.base_url}
  token_url: {graph.token_url}
  client_id: lb-client
  client_secret_env: TEST_GRAPH_SECRET
  attempts: 3
  max_retry_seconds: 20
"""


def system(changed: bool = False):
    s = fresh()  # 11 Ana, 12 Ben, 13 Cy, 19 a placeholder; 101/102 Chicago, 201 Phoenix
    people = {p["id"]: p for p in s["personnel"]}
    people[11]["custom4"], people[13]["custom4"] = ANA, CY  # Ben (12) has none: opted out
    s["personnel"].append(dict(people[11], id=14, first_name="Dee", last_name="Park", custom4=DEE))
    for sch in s["schedules"]:
        sch.update(start_date="2026-10-01", end_date="2026-11-30", status="published")
    if changed:
        s["schedules"][1].update(status="draft", published_at=None)  # Phoenix unpublished
    s["slots"] = [
        slot(7001, 1001, "2026-10-31", 101, 11, "17:00", "07:00", notes="Backup: Dr. B"),  # over the fall-back night
        slot(7002, 1001, "2026-11-02", 102, 11, "08:00" if changed else "07:00", "16:00" if changed else "15:00"),
        slot(7003, 1001, "2026-11-01", 102, 12, "07:00", "15:00"),  # Ben: opted out
        slot(7004, 2001, "2026-11-01", 201, 13, "07:00", "07:00"),  # Phoenix, 24 h
        slot(7005, 1001, "2026-11-02", 101, 19, "17:00", "07:00"),  # placeholder: no event
        slot(7006, 1001, "2026-11-03", 102, None, "07:00", "15:00"),  # unfilled: no event
        slot(7007, 1001, "2026-10-30", 102, 11, "07:00", "15:00"),  # yesterday: not in the window
        slot(7008, 1001, "2026-11-04", 101, 11, "17:00", "07:00"),  # today + 4: not in the window
        slot(7009, 1001, "2026-11-03", 101, 14, "17:00", "07:00"),  # Dee: her mailbox refuses the app
        slot(7010, 1001, "2026-11-01", 102, None if changed else 13, "07:00", "15:00"),  # Cy, unassigned later
    ]
    return s


# The events of the first push, by hand (Chicago CDT -5 until 2026-11-01 02:00, then CST -6).
FIRST = {
    ANA: [
        ("7001", "OB Anesthesia Call", "OB Anesthesia Call, Anesthesiology - Mercy North\nBackup: Dr. B",
         "2026-10-31T22:00:00", "2026-11-01T13:00:00", "busy"),  # 15 real hours across the fall back
        ("7002", "OR Day", "", "2026-11-02T13:00:00", "2026-11-02T21:00:00", "free"),
    ],
    CY: [
        ("7010", "OR Day", "", "2026-11-01T13:00:00", "2026-11-01T21:00:00", "free"),
        ("7004", "ED 24h", "ED 24h, Emergency Medicine - Desert", "2026-11-01T14:00:00", "2026-11-02T14:00:00", "busy"),
    ],
}


def events(graph: GraphFake, mailbox: str) -> list[tuple]:
    return [
        (graph.slot_property(e, SLOT_PROPERTY), e["subject"], e.get("body", {}).get("content"), e["start"]["dateTime"],
         e["end"]["dateTime"], e.get("showAs"))
        for e in graph.events_of(mailbox)
    ]


def event_of(graph: GraphFake, mailbox: str, slot_id: str) -> dict:
    (found,) = [e for e in graph.events_of(mailbox) if graph.slot_property(e, SLOT_PROPERTY) == slot_id]
    return found


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("outlook")
    forget_tokens()
    with GraphFake(client_id="lb-client", client_secret="s3cret") as graph, pytest.MonkeyPatch.context() as env:
        for var, value in {
            "LB_NOW": NOW, "LB_WAREHOUSE": str(root / "warehouse.duckdb"), "LB_OUTBOX_DIR": str(root / "outbox"),
            "LB_CONFIG_DIR": str(root / "config"), "TEST_GRAPH_SECRET": "s3cret",
        }.items():
            env.setenv(var, value)
        write_config(root / "config", "outlook", settings_yaml(graph), MAPPING)
        graph.forbidden_mailboxes.add(DEE)
        build(root, system())
        yield root, graph
    forget_tokens()


def build(root: Path, s) -> None:
    """The raw tables from `s`, the configuration, and the export model, as the pipeline builds them."""
    warehouse = root / "warehouse.duckdb"
    load_system(root / "source", s, warehouse)
    with duckdb.connect(str(warehouse)) as conn:
        INTEGRATION.write_config(conn, INTEGRATION.load(root / "config"))
    run_dbt(warehouse, "run", "--select", "+export_outlook")


def push(root: Path, tags: dict | None = None, expect_success: bool = True):
    result = dg.materialize(
        [api_push_asset(INTEGRATION)],
        resources={"warehouse": WarehouseResource(database=str(root / "warehouse.duckdb"))},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
        tags=tags or {},
    )
    assert result.success == expect_success, step_failures(result)
    return result


def sql(root: Path, query: str, params=None) -> list[tuple]:
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(query, params).fetchall()


def test_first_push_creates_exactly_the_expected_events(world):
    root, graph = world
    result = push(root)
    assert events(graph, ANA) == FIRST[ANA]
    assert events(graph, CY) == FIRST[CY]
    assert graph.events_of(DEE) == []  # 403: a problem row, the others went on
    meta = metadata_of(result, ["outlook", "pushed"])
    assert (meta["created"], meta["refused"], meta["failed"]) == (4, 1, 0)
    assert (meta["opted_out_people"], meta["opted_out_slots"], meta["placeholder_slots"]) == (1, 1, 1)
    problems = sql(root, "SELECT kind, record, field FROM delivery.problems WHERE run_id = ? ORDER BY kind",
                   [result.run_id])
    # the reconcile could not read Dee's calendar either: both are named, by Lightning Bolt id
    assert problems == [("refused_by_target", "person 14, slot 7009", "create"), ("target_unreadable", "person 14", "")]
    # what Graph was sent: transactionId and the immutable-id header on every create, in batches
    creates = graph.requests("POST", r"/users/.+/events$", in_batch=True)
    assert len(creates) == 5 and graph.requests_without_immutable_id == 0
    stored = graph.events_of(ANA)[0]
    assert stored["transactionId"] and stored["categories"] == ["Lightning Bolt"]
    # nothing personal in run storage: the mailbox is masked in the preview, people are ids
    assert ANA not in json.dumps({k: str(v) for k, v in meta.items()})


def test_a_second_run_with_no_change_sends_nothing(world):
    root, graph = world
    graph.forbidden_mailboxes.discard(DEE)
    graph.clear_log()
    result = push(root, CHANGE_LOG_RUN)
    meta = metadata_of(result, ["outlook", "pushed"])
    # Dee's refused create was never marked pushed, so it goes again (and now succeeds); nothing else.
    assert [(r.method, r.path) for r in graph.writes()] == [("POST", f"/v1.0/users/{DEE}/events")]
    assert meta["unchanged"] == 4 and meta["created"] == 1
    graph.clear_log()
    push(root, CHANGE_LOG_RUN)
    assert graph.requests() == []  # not even a token or a read: the change-log run compares with its state


def test_moved_slot_is_one_patch_and_unpublished_or_unassigned_slots_delete(world):
    root, graph = world
    build(root, system(changed=True))
    graph.clear_log()
    push(root, CHANGE_LOG_RUN)
    writes = sorted((r.method, r.path.split("/")[3]) for r in graph.writes())  # /v1.0/users/<mailbox>/events/<id>
    assert writes == [("DELETE", CY), ("DELETE", CY), ("PATCH", ANA)]
    assert events(graph, ANA)[1] == ("7002", "OR Day", "", "2026-11-02T14:00:00", "2026-11-02T22:00:00", "free")
    assert events(graph, CY) == []  # 7004's schedule unpublished, 7010 unassigned


def test_lost_pushed_state_is_adopted_by_the_reconcile_without_duplicates(world):
    root, graph = world
    # Events of slots just outside the window on both edges, as pushed when the window was elsewhere:
    # yesterday's shift (history) and today + 4 (it comes back into the window tomorrow).
    for key, start, end in (("7007", "2026-10-30T12:00:00", "2026-10-30T20:00:00"),
                            ("7008", "2026-11-04T23:00:00", "2026-11-05T13:00:00")):
        graph.add_by_hand(ANA, {"subject": "x", "body": {"contentType": "text", "content": ""}, "start": {"dateTime": start, "timeZone": "UTC"},
                                "end": {"dateTime": end, "timeZone": "UTC"},
                                "singleValueExtendedProperties": [{"id": SLOT_PROPERTY, "value": key}]})
    with duckdb.connect(str(root / "warehouse.duckdb")) as conn:
        conn.execute("DELETE FROM delivery.pushed_state WHERE integration = 'outlook'")
    before = {m: graph.events_of(m) for m in (ANA, DEE)}
    graph.clear_log()
    result = push(root)  # not a change-log run: reconciles
    meta = metadata_of(result, ["outlook", "pushed"])
    assert graph.writes() == []
    assert {m: graph.events_of(m) for m in (ANA, DEE)} == before  # the edges' events left alone
    assert len(before[ANA]) == 4
    assert (meta["adopted"], meta["created"], meta["drift_found"]) == (3, 0, 0)
    assert sql(root, "SELECT count(*) FROM delivery.pushed_state WHERE integration = 'outlook'") == [(3,)]


def test_an_event_deleted_by_hand_is_drift_and_is_restored(world):
    root, graph = world
    graph.delete_by_hand(ANA, event_of(graph, ANA, "7001")["id"])
    edited = graph.events_of(DEE)[0]
    graph.edit_by_hand(DEE, edited["id"], subject="Golf")
    result = push(root)
    meta = metadata_of(result, ["outlook", "pushed"])
    assert meta["drift_found"] == 2
    kinds = sql(root, "SELECT kind, record FROM delivery.problems WHERE run_id = ? ORDER BY kind", [result.run_id])
    assert kinds == [("drift_changed_in_target", "person 14, slot 7009"), ("drift_deleted_in_target", "person 11, slot 7001")]
    assert [e for e in events(graph, ANA) if e[0] == "7001"] == [FIRST[ANA][0]]  # restored
    assert graph.events_of(DEE)[0]["subject"] == "OB Anesthesia Call"
    assert len(graph.events_of(ANA)) == 4


def test_a_create_answered_500_then_retried_makes_one_event(world):
    root, graph = world
    build(root, system())  # back to the first state: 7004 and 7010 come back in Cy's calendar
    graph.answer("POST", r"/users/cy@x\.org/events$", 500, after_apply=True)  # created, answer lost
    graph.clear_log()
    push(root, CHANGE_LOG_RUN)
    assert [e[0] for e in events(graph, CY)] == ["7010", "7004"]  # one event each
    posts = graph.requests("POST", r"/users/cy@x\.org/events$", in_batch=True)
    # two creates in one batch, one answered 500 though Graph made it; its retry found its transaction
    assert sorted(r.status for r in posts) == [201, 201, 500]


def test_429_with_retry_after_waits_before_the_retry(world):
    root, graph = world
    build(root, system(changed=True))  # Cy's two events go
    graph.answer("DELETE", r"/users/cy@x\.org/events/", 429, headers={"Retry-After": "2"})
    graph.clear_log()
    push(root, CHANGE_LOG_RUN)
    deletes = graph.requests("DELETE", r"/users/cy@x\.org/events/", in_batch=True)
    throttled = [r for r in deletes if r.status == 429]
    after = [r for r in deletes if r.status == 204 and r.path == throttled[0].path]  # its retry
    assert len(throttled) == 1 and after
    assert after[0].at - throttled[0].at >= 1.9  # measured: it waited what Graph asked
    assert graph.events_of(CY) == []
    attempts = sql(root, "SELECT max(attempts) FROM delivery.request_ledger WHERE action = 'delete' AND target = ?", [CY])
    assert attempts == [(2,)]


def test_at_most_four_requests_in_flight_per_mailbox(world):
    root, graph = world
    s = system()
    # 100 more slots for Ana in the window: 5 batches of 20 to one mailbox, sent as fast as allowed
    s["slots"] += [slot(8000 + i, 1001, "2026-11-01", 102, 11, "07:00", "15:00", notes=f"extra {i}") for i in range(100)]
    build(root, s)
    graph.latency_s = 0.2
    graph.clear_log()
    try:
        push(root, CHANGE_LOG_RUN)
    finally:
        graph.latency_s = 0.0
    assert graph.concurrency_refusals == 0
    assert 1 < graph.max_in_flight[ANA] <= 4
    assert len([e for e in graph.events_of(ANA) if e["start"]["dateTime"].startswith("2026-11-01")]) == 100


def test_wrong_secret_fails_clearly_and_marks_nothing(world, monkeypatch):
    root, graph = world
    forget_tokens()
    monkeypatch.setenv("TEST_GRAPH_SECRET", "wrong")
    state_before = sql(root, "SELECT * FROM delivery.pushed_state ORDER BY ALL")
    result = push(root, expect_success=False)
    message = step_failures(result)[0]
    assert "refused the client credentials" in message and "wrong" not in message
    assert sql(root, "SELECT * FROM delivery.pushed_state ORDER BY ALL") == state_before
    forget_tokens()


def test_dry_run_writes_the_requests_and_sends_nothing(world):
    root, graph = world
    write_config(root / "config", "outlook", settings_yaml(graph, "dry_run"), MAPPING)
    with duckdb.connect(str(root / "warehouse.duckdb")) as conn:
        conn.execute("DELETE FROM delivery.pushed_state")
    graph.clear_log()
    push(root)
    assert graph.requests() == []
    (file,) = (root / "outbox" / "outlook").glob("requests-*.jsonl")
    lines = [json.loads(line) for line in file.read_text().splitlines()]
    assert sorted((r["method"], r["body"]["singleValueExtendedProperties"][0]["value"]) for r in lines)[:2] == [
        ("POST", "7001"), ("POST", "7002"),
    ]
    assert all("Authorization" not in r["headers"] for r in lines)
    write_config(root / "config", "outlook", settings_yaml(graph), MAPPING)


def test_shadow_writes_the_difference_and_sends_nothing(world):
    root, graph = world
    write_config(root / "config", "outlook", settings_yaml(graph, "shadow"), MAPPING)
    graph.delete_by_hand(ANA, event_of(graph, ANA, "7001")["id"])
    graph.clear_log()
    started = time.monotonic()
    push(root)
    assert graph.writes() == [] and time.monotonic() - started < 30
    (file,) = (root / "outbox" / "outlook").glob("preview-*.csv")
    rows = file.read_text().splitlines()
    assert rows[0] == "action,person_slot,mailbox,subject,start_utc,end_utc,show_as"
    assert rows[1:] == ["create,\"person 11, slot 7001\",ana@x.org,OB Anesthesia Call,2026-10-31T22:00:00,2026-11-01T13:00:00,busy"]
    write_config(root / "config", "outlook", settings_yaml(graph), MAPPING)


KILLED_PUSH = """
import dagster as dg
from lb_pipelines.integrations.assets import api_push_asset
from lb_pipelines.integrations.outlook import INTEGRATION
from lb_pipelines.warehouse.resource import WarehouseResource
dg.materialize([api_push_asset(INTEGRATION)], resources={"warehouse": WarehouseResource(database=%r)},
               instance=dg.DagsterInstance.ephemeral(), tags={"lb/trigger": "change_log"})
"""


def test_killed_mid_push_the_rerun_completes_without_a_duplicate(world):
    """SIGKILL while batches are in flight: Graph made some events whose answers never came back.
    The rerun (a change-log run: no read-back) sends those again; transactionId keeps them single."""
    import os
    import signal
    import subprocess
    import sys

    root, graph = world
    push(root)  # a reconcile: the pushed state (wiped by the dry-run test) is learned back
    write_config(root / "config", "outlook", settings_yaml(graph) + "  workers: 1\n", MAPPING)  # one batch at a time
    s = system()
    s["slots"] += [slot(8000 + i, 1001, "2026-11-01", 102, 11, "07:00", "15:00", notes=f"extra {i}") for i in range(100)]
    s["slots"] += [slot(9000 + i, 1001, "2026-11-02", 101, (11, 13, 14)[i % 3], "17:00", "07:00", notes=f"k{i}")
                   for i in range(120)]
    build(root, s)
    graph.latency_s = 0.5
    graph.clear_log()
    child = subprocess.Popen([sys.executable, "-c", KILLED_PUSH % str(root / "warehouse.duckdb")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not graph.writes() and time.monotonic() < deadline:
            time.sleep(0.02)  # the first batch's parts are applied: its answer is on the way
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
        graph.latency_s = 0.0
    made = len([e for m in (ANA, CY, DEE) for e in graph.events_of(m) if graph.slot_property(e, SLOT_PROPERTY) >= "9000"])
    assert 0 < made < 120  # killed midway
    push(root, CHANGE_LOG_RUN)
    slots = [graph.slot_property(e, SLOT_PROPERTY) for m in (ANA, CY, DEE) for e in graph.events_of(m)]
    extra = sorted(k for k in slots if k >= "9000")
    assert extra == sorted(str(9000 + i) for i in range(120))  # each once
    assert len(slots) == len(set(slots))
    write_config(root / "config", "outlook", settings_yaml(graph), MAPPING)
