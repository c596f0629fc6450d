"""Spok against a local fake of its on-call assignment operations, over real HTTP: one scenario, run
after run, on one warehouse.

The clock is pinned to 2026-11-02 12:00 CST (18:00 UTC; 11:00 MST in Phoenix and Boise); Chicago
fell back on Nov 1, so it is UTC-6. The window is 0 back / 2 forward: entries not ended at now whose
slot day is Nov 2 .. Nov 4. Spok gets each entry as one assignment, its dates the department's wall
clock as `DD-MON-YY HH24:MI:SS` with Spok's zone name (Chicago CENTRAL, Phoenix ARIZONA; Boise is
not in the table). personnel_id_field unique_id: Ana (11) U11, Ben (12) U12, Cy (13) U13; 19 is the
placeholder "Anesthesia On Call" (pager 4999, cell 312-555-0199).

Mapping: 101 (OB call, Chicago) -> SPOK-OB-ANES Attending; 102 (OR day, Chicago) -> SPOK-OR
Attending; 201 (ED 24 h, Phoenix) -> SPOK-ED Attending and SPOK-ED-ALERT Physician; 301 (Ortho
call, Boise) -> SPOK-ORTHO Attending.

Slots: 7001 101 Nov 1 17:00-07:00 Ana (ended at 07:00: not sent); 7002 102 Nov 2 07:00-15:00 Ben (on
call now); 7003 101 Nov 2 17:00-07:00 the placeholder; 7004 101 Nov 3 17:00-07:00 Ana; 7005 201
Nov 2 07:00-07:00 Cy (on call now); 7006 201 Nov 3 07:00-07:00 Cy; 7007 102 Nov 3 nobody (a gap);
7008 101 Nov 5 Ana (after the window); 7009 102 Nov 4 07:00-15:00 Ana; 7010 301 Nov 2 17:00 Ana
(Boise: a problem, not sent). Every expected body below is worked out by hand from these.

The tests run in file order (each is a run of the push that builds on the previous one).
"""

from __future__ import annotations

import datetime as dt
import json
import socket
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pytest

from fakes.spok import ASSIGNMENTS_PATH, TOKEN_PATH, SpokFake
from lb_pipelines.integrations.assets import api_push_asset
from lb_pipelines.integrations.on_call_api import forget_tokens
from lb_pipelines.integrations.spok import INTEGRATION
from lb_pipelines.integrations.spok.desired import SPOK_ZONES, spok_date, spok_instant
from lb_pipelines.warehouse.resource import WarehouseResource
from lb_pipelines.alerts.sensors import alert_on_run_failure
from pipeline_helpers import evaluate_run_sensor, metadata_of, step_failures, write_config
from tiny_system import TS, fresh, slot
from warehouse_helpers import load_system, run_dbt

NOW = "2026-11-02T12:00:00-06:00"
LATER = "2026-11-02T16:00:00-06:00"  # 7002 ended at 15:00
USER, PASSWORD = "lb-sync", "s3cret-pw"
CHANGE_LOG_RUN = {"lb/trigger": "change_log"}
OUTPUT = ["spok", "pushed"]
MAPPING = """assignment_id,team_id,role,priority
101,SPOK-OB-ANES,Attending,1
102,SPOK-OR,Attending,1
201,SPOK-ED,Attending,1
201,SPOK-ED-ALERT,Physician,1
301,SPOK-ORTHO,Attending,1
"""
GROUPS = {
    "SPOK-OB-ANES": ["Attending"], "SPOK-OR": ["Attending"], "SPOK-ED": ["Attending"],
    "SPOK-ED-ALERT": ["Physician"], "SPOK-ORTHO": ["Attending"], "SPOK-CARDS": ["Attending"],
}
PLACEHOLDER = {"name": "Anesthesia On Call", "pager": "4999", "phone": "312-555-0199"}
ZONE_PROBLEM = (
    "time_zone_not_in_spok", "team SPOK-ORTHO, slot 7010", "time_zone",
    "the department's time zone America/Boise has no Spok name (SPOK_ZONES in "
    "lb_pipelines/integrations/spok/desired.py); the entry was not sent",
)


def assignment(group, slot_id, who, start, end, zone="CENTRAL", role="Attending"):
    body = {"group_id": group, "messaging_id": None if isinstance(who, dict) else who, "role": role,
            "start_date": start, "end_date": end, "time_zone": zone, "slot_id": slot_id}
    if isinstance(who, dict):
        body["contact"] = who
    return body


# The first push, by hand: one assignment per entry.
FIRST = {
    "SPOK-OB-ANES": [
        assignment("SPOK-OB-ANES", 7003, PLACEHOLDER, "02-NOV-26 17:00:00", "03-NOV-26 07:00:00"),
        assignment("SPOK-OB-ANES", 7004, "U11", "03-NOV-26 17:00:00", "04-NOV-26 07:00:00"),
    ],
    "SPOK-OR": [
        assignment("SPOK-OR", 7002, "U12", "02-NOV-26 07:00:00", "02-NOV-26 15:00:00"),
        assignment("SPOK-OR", 7009, "U11", "04-NOV-26 07:00:00", "04-NOV-26 15:00:00"),
    ],
    "SPOK-ED": [
        assignment("SPOK-ED", 7005, "U13", "02-NOV-26 07:00:00", "03-NOV-26 07:00:00", "ARIZONA"),
        assignment("SPOK-ED", 7006, "U13", "03-NOV-26 07:00:00", "04-NOV-26 07:00:00", "ARIZONA"),
    ],
    "SPOK-ED-ALERT": [
        assignment("SPOK-ED-ALERT", 7005, "U13", "02-NOV-26 07:00:00", "03-NOV-26 07:00:00", "ARIZONA", "Physician"),
        assignment("SPOK-ED-ALERT", 7006, "U13", "03-NOV-26 07:00:00", "04-NOV-26 07:00:00", "ARIZONA", "Physician"),
    ],
    "SPOK-ORTHO": [],
}


def settings_yaml(base_url: str, kind: str = "http", attempts: int = 3) -> str:
    return f"""
window: {{days_back: 0, days_forward: 2}}
delivery:
  type: {kind}
  base_url: {base_url}
  username_env: TEST_SPOK_USERNAME
  password_env: TEST_SPOK_PASSWORD
  attempts: {attempts}
  max_retry_seconds: 20
"""


def system(people: dict | None = None, without: frozenset = frozenset()):
    """The system, with slot -> person overrides and slots deleted in Lightning Bolt."""
    s = fresh()  # 11 Ana, 12 Ben, 13 Cy, 19 a placeholder; 101/102 Chicago, 201 Phoenix
    s["departments"].append({"id": 3, "name": "Orthopedics - Treasure Valley", "timezone": "America/Boise",
                             "coid": "COID-0303", "kronos_department_id": None})
    s["assignments"].append({"id": 301, "department_id": 3, "name": "Ortho Call", "abbreviation": "ORTC",
                             "assignment_type": "Call", "default_start": "17:00", "default_end": "07:00",
                             "active": True, "updated_at": TS})
    s["schedules"].append({"id": 3001, "department_id": 3, "start_date": "2026-10-01", "end_date": "2026-11-30",
                           "status": "published", "published_at": TS, "version": 1})
    for sch in s["schedules"]:
        sch.update(start_date="2026-10-01", end_date="2026-11-30", status="published", published_at=TS)
    who = {7001: 11, 7002: 12, 7003: 19, 7004: 11, 7005: 13, 7006: 13, 7007: None, 7008: 11, 7009: 11,
           7010: 11} | (people or {})
    slots = [
        (7001, 1001, "2026-11-01", 101, "17:00", "07:00"),
        (7002, 1001, "2026-11-02", 102, "07:00", "15:00"),
        (7003, 1001, "2026-11-02", 101, "17:00", "07:00"),
        (7004, 1001, "2026-11-03", 101, "17:00", "07:00"),
        (7005, 2001, "2026-11-02", 201, "07:00", "07:00"),
        (7006, 2001, "2026-11-03", 201, "07:00", "07:00"),
        (7007, 1001, "2026-11-03", 102, "07:00", "15:00"),
        (7008, 1001, "2026-11-05", 101, "17:00", "07:00"),
        (7009, 1001, "2026-11-04", 102, "07:00", "15:00"),
        (7010, 3001, "2026-11-02", 301, "17:00", "07:00"),
    ]
    s["slots"] = [slot(i, sch, day, a, who[i], start, end) for i, sch, day, a, start, end in slots if i not in without]
    return s


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there now: connection refused


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("spok")
    forget_tokens()
    with SpokFake(username=USER, password=PASSWORD, groups=GROUPS) as fake, pytest.MonkeyPatch.context() as env:
        for var, value in {
            "LB_NOW": NOW, "LB_WAREHOUSE": str(root / "warehouse.duckdb"), "LB_OUTBOX_DIR": str(root / "outbox"),
            "LB_CONFIG_DIR": str(root / "config"), "TEST_SPOK_USERNAME": USER, "TEST_SPOK_PASSWORD": PASSWORD,
        }.items():
            env.setenv(var, value)
        write_config(root / "config", "spok", settings_yaml(fake.base_url), MAPPING)
        build(root, system())
        yield {"root": root, "fake": fake, "env": env}
    forget_tokens()


def build(root: Path, s) -> None:
    """The raw tables from `s`, the configuration, and the export model, as the pipeline builds them."""
    warehouse = root / "warehouse.duckdb"
    load_system(root / "source", s, warehouse)
    with duckdb.connect(str(warehouse)) as conn:
        assert INTEGRATION.write_config(conn, INTEGRATION.load(root / "config")) == []
    run_dbt(warehouse, "run", "--select", "+export_spok")


def remap(world, mapping: str) -> None:
    root = world["root"]
    write_config(root / "config", "spok", settings_yaml(world["fake"].base_url), mapping)
    with duckdb.connect(str(root / "warehouse.duckdb")) as conn:
        assert INTEGRATION.write_config(conn, INTEGRATION.load(root / "config")) == []
    run_dbt(root / "warehouse.duckdb", "run", "--select", "export_spok")


def push(world, tags: dict | None = None, expect_success: bool = True, instance=None):
    result = dg.materialize(
        [api_push_asset(INTEGRATION)],
        resources={"warehouse": WarehouseResource(database=str(world["root"] / "warehouse.duckdb"))},
        instance=instance or dg.DagsterInstance.ephemeral(), raise_on_error=False, tags=tags or {},
    )
    assert result.success == expect_success, step_failures(result)
    return result


def sql(world, query: str, params=None) -> list[tuple]:
    with duckdb.connect(str(world["root"] / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(query, params).fetchall()


def problems(world, result) -> list[tuple]:
    return sql(world, "SELECT kind, record, field, reason FROM delivery.problems WHERE run_id = ? ORDER BY ALL",
               [result.run_id])


def held(fake: SpokFake, group: str) -> list[dict]:
    """What Spok holds for the group, without its own ids, by slot."""
    found = [{k: v for k, v in a.items() if k != "assignment_id"} for a in fake.held(group)]
    return sorted(found, key=lambda a: (a.get("slot_id") or 0, a["role"]))


def writes(fake: SpokFake) -> list[tuple[str, str]]:
    return sorted((r.method, r.path) for r in fake.writes())


def test_spok_dates_and_zones_by_hand():
    assert spok_date(dt.datetime(2026, 11, 23, 7, 0)) == "23-NOV-26 07:00:00"
    assert spok_date(dt.datetime(2027, 1, 5, 23, 59, 30)) == "05-JAN-27 23:59:30"
    # read back: Phoenix is UTC-7 all year; Chicago UTC-5 in October (daylight saving), UTC-6 after
    utc = dt.timezone.utc
    assert spok_instant("23-NOV-26 07:00:00", "ARIZONA") == dt.datetime(2026, 11, 23, 14, 0, tzinfo=utc)
    assert spok_instant("31-OCT-26 17:00:00", "CENTRAL") == dt.datetime(2026, 10, 31, 22, 0, tzinfo=utc)
    assert spok_instant("02-NOV-26 17:00:00", "CENTRAL") == dt.datetime(2026, 11, 2, 23, 0, tzinfo=utc)
    for text, zone in (("23-Nov-26 07:00:00", "CENTRAL"), ("31-FEB-26 07:00:00", "CENTRAL"),
                       ("2026-11-23 07:00:00", "CENTRAL"), ("23-NOV-26 07:00:00", "CST"), (None, "CENTRAL")):
        assert spok_instant(text, zone) is None, (text, zone)
    assert len(set(SPOK_ZONES.values())) == len(SPOK_ZONES) == 7
    assert all(ZoneInfo(zone) for zone in SPOK_ZONES)


def test_a_connection_refused_fails_the_run_and_marks_nothing(world, smtp_env, monkeypatch):
    root, fake = world["root"], world["fake"]
    monkeypatch.setenv("LB_ALERTS_TO", "admins@example.org")
    # A run on change (no reads), one attempt per request (each sign-in still tries three times).
    write_config(root / "config", "spok", settings_yaml(closed_port_url(), attempts=1), MAPPING)
    instance = dg.DagsterInstance.ephemeral()
    try:
        result = push(world, CHANGE_LOG_RUN, expect_success=False, instance=instance)
        evaluate_run_sensor(alert_on_run_failure, instance, result.run_id)
    finally:
        instance.dispose()
        write_config(root / "config", "spok", settings_yaml(fake.base_url), MAPPING)
    # One alert e-mail for the run, listing the groups' requests that got no answer (ids only).
    [mail] = smtp_env.messages
    assert mail.rcpt_tos == ["admins@example.org"]
    assert "8 requests got no good answer" in mail.body
    assert mail.body.count("  not_delivered: team ") == 8, mail.body
    assert "U11" not in mail.body and "Anesthesia On Call" not in mail.body
    [message] = step_failures(result)
    assert "8 requests got no good answer" in message and "the next run sends them again" in message, message
    assert "no answer from the server" in message and PASSWORD not in message
    assert {k for (k,) in sql(world, "SELECT DISTINCT kind FROM delivery.problems WHERE run_id = ?",
                              [result.run_id])} == {"not_delivered", "time_zone_not_in_spok"}
    assert fake.requests() == []
    assert sql(world, "SELECT count(*) FROM delivery.pushed_state WHERE integration = 'spok'") == [(0,)]
    assert sql(world, "SELECT status FROM delivery.ledger WHERE integration = 'spok'") == [("failed",)]


def test_first_push_adds_every_entry_exactly(world):
    fake = world["fake"]
    result = push(world)  # a reconcile: reads every mapped group (all empty), then adds
    assert {g: held(fake, g) for g in FIRST} == FIRST
    posted = sorted(b["slot_id"] for m, _, b in fake.received if m == "POST")
    assert posted == [7002, 7003, 7004, 7005, 7005, 7006, 7006, 7009]
    assert [r.status for r in fake.requests("POST", f"{ASSIGNMENTS_PATH}$")] == [201] * 8
    # one sign-in, each group read once, its roles once where something was sent (not SPOK-ORTHO)
    assert len(fake.requests("POST", f"^{TOKEN_PATH}$")) == 1
    assert len(fake.requests("GET", f"^{ASSIGNMENTS_PATH}$")) == 5
    assert sorted(r.path for r in fake.requests("GET", "/roles$")) == [
        "/groups/SPOK-ED-ALERT/roles", "/groups/SPOK-ED/roles", "/groups/SPOK-OB-ANES/roles", "/groups/SPOK-OR/roles",
    ]
    meta = metadata_of(result, OUTPUT)
    assert (meta["created"], meta["refused"], meta["failed"], meta["requests_sent"]) == (8, 0, 0, 8)
    assert (meta["teams"], meta["entries"], meta["assignments_wanted"], meta["on_call_now"]) == (5, 9, 8, 3)
    assert (meta["placeholder_entries"], meta["coverage_gaps"], meta["drift_found"]) == (1, 1, 0)
    assert problems(world, result) == [ZONE_PROBLEM]
    # the Spok id of each add is its pushed state's vendor id
    pushed = sql(world, "SELECT target, object_key, vendor_id, label FROM delivery.pushed_state "
                        "WHERE integration = 'spok' ORDER BY ALL")
    assert [(t, k, l) for t, k, _, l in pushed] == [
        ("SPOK-ED", "7005/Attending", "team SPOK-ED, slot 7005"), ("SPOK-ED", "7006/Attending", "team SPOK-ED, slot 7006"),
        ("SPOK-ED-ALERT", "7005/Physician", "team SPOK-ED-ALERT, slot 7005"),
        ("SPOK-ED-ALERT", "7006/Physician", "team SPOK-ED-ALERT, slot 7006"),
        ("SPOK-OB-ANES", "7003/Attending", "team SPOK-OB-ANES, slot 7003"),
        ("SPOK-OB-ANES", "7004/Attending", "team SPOK-OB-ANES, slot 7004"),
        ("SPOK-OR", "7002/Attending", "team SPOK-OR, slot 7002"), ("SPOK-OR", "7009/Attending", "team SPOK-OR, slot 7009"),
    ]
    assert sorted(v for _, _, v, _ in pushed) == sorted(a["assignment_id"] for a in fake.held())
    # nothing personal in run storage: ids only, the messaging id masked in the preview
    shown = json.dumps({k: str(v) for k, v in meta.items()})
    for personal in ("U11", "U12", "U13", "Anesthesia On Call", "4999", "312-555"):
        assert personal not in shown, personal
    assert "•••" in str(meta["preview"])


def test_a_second_run_with_no_change_sends_nothing(world):
    fake = world["fake"]
    fake.clear_log()
    result = push(world, CHANGE_LOG_RUN)  # compares with the pushed state: not even a roles read
    assert fake.requests() == []
    assert metadata_of(result, OUTPUT)["unchanged"] == 8
    result = push(world)  # a reconcile: reads each group, finds it as pushed, sends nothing
    assert [r.method for r in fake.requests()] == ["GET"] * 5
    meta = metadata_of(result, OUTPUT)
    assert (meta["unchanged"], meta["requests_sent"], meta["drift_found"]) == (8, 0, 0)


def test_a_swap_of_the_person_is_one_put(world):
    root, fake = world["root"], world["fake"]
    build(root, system(people={7004: 13}))  # Cy instead of Ana on Nov 3's OB call
    spok_id = fake.id_of("SPOK-OB-ANES", 7004)
    fake.clear_log()
    push(world, CHANGE_LOG_RUN)
    assert writes(fake) == [("PUT", f"{ASSIGNMENTS_PATH}/{spok_id}")]
    assert fake.received[-1] == ("PUT", f"{ASSIGNMENTS_PATH}/{spok_id}", assignment(
        "SPOK-OB-ANES", 7004, "U13", "03-NOV-26 17:00:00", "04-NOV-26 07:00:00"))
    assert fake.id_of("SPOK-OB-ANES", 7004) == spok_id  # the same assignment, updated


def test_a_4xx_for_one_group_leaves_it_unmarked_while_the_others_converge(world):
    root, fake = world["root"], world["fake"]
    build(root, system(people={7004: 13, 7006: 11}))  # Ana on Nov 3's ED day: in SPOK-ED and SPOK-ED-ALERT
    fake.locked_groups.add("SPOK-ED-ALERT")  # the background user may not change it
    hash_of = "SELECT content_hash FROM delivery.pushed_state WHERE target = ? AND object_key = ?"
    before = sql(world, hash_of, ["SPOK-ED-ALERT", "7006/Physician"])
    try:
        fake.clear_log()
        result = push(world, CHANGE_LOG_RUN)  # succeeds: a refusal is a problem, not a failure
        assert sorted((r.method, r.status) for r in fake.writes()) == [("PUT", 200), ("PUT", 403)]
        assert held(fake, "SPOK-ED")[1]["messaging_id"] == "U11"
        assert held(fake, "SPOK-ED-ALERT")[1]["messaging_id"] == "U13"
        assert problems(world, result) == [
            ("refused_by_target", "team SPOK-ED-ALERT, slot 7006", "update",
             "HTTP 403 forbidden the user may not change this group's assignments"),
            ZONE_PROBLEM,
        ]
        assert (metadata_of(result, OUTPUT)["updated"], metadata_of(result, OUTPUT)["refused"]) == (1, 1)
        assert sql(world, hash_of, ["SPOK-ED-ALERT", "7006/Physician"]) == before  # not marked
    finally:
        fake.locked_groups.clear()
    fake.clear_log()
    push(world, CHANGE_LOG_RUN)  # sent again, accepted now
    assert writes(fake) == [("PUT", f"{ASSIGNMENTS_PATH}/{fake.id_of('SPOK-ED-ALERT', 7006)}")]
    assert held(fake, "SPOK-ED-ALERT")[1]["messaging_id"] == "U11"
    assert sql(world, hash_of, ["SPOK-ED-ALERT", "7006/Physician"]) != before


def test_429_with_retry_after_then_the_add(world):
    fake = world["fake"]
    fake.remove(fake.id_of("SPOK-OR", 7009))
    with duckdb.connect(str(world["root"] / "warehouse.duckdb")) as conn:
        conn.execute("DELETE FROM delivery.pushed_state WHERE target = 'SPOK-OR' AND object_key = '7009/Attending'")
    fake.answer("POST", f"{ASSIGNMENTS_PATH}$", 429, headers={"Retry-After": "1"})
    fake.clear_log()
    result = push(world, CHANGE_LOG_RUN)
    throttled, added = fake.requests("POST", f"{ASSIGNMENTS_PATH}$")
    assert (throttled.status, added.status) == (429, 201)
    assert added.at - throttled.at >= 0.9  # it waited what Spok asked
    assert held(fake, "SPOK-OR") == FIRST["SPOK-OR"]
    assert sql(world, "SELECT action, status, attempts, outcome FROM delivery.request_ledger WHERE run_id = ?",
               [result.run_id]) == [("create", 201, 2, "accepted")]


def test_a_role_missing_in_spok_is_a_problem_and_the_rest_goes_on(world):
    fake = world["fake"]
    remap(world, MAPPING + "102,SPOK-CARDS,Attending,1\n102,SPOK-CARDS,Fellow,2\n")  # SPOK-CARDS has no Fellow
    refused = [
        ("refused_by_target", f"team SPOK-CARDS, slot {s}", "create",
         "HTTP 422 role_missing_in_spok role 'Fellow' does not exist in this Spok group; create it in Spok first "
         "(not sent)")
        for s in (7002, 7009)
    ]
    fake.clear_log()
    result = push(world, CHANGE_LOG_RUN)
    assert held(fake, "SPOK-CARDS") == [
        assignment("SPOK-CARDS", 7002, "U12", "02-NOV-26 07:00:00", "02-NOV-26 15:00:00"),
        assignment("SPOK-CARDS", 7009, "U11", "04-NOV-26 07:00:00", "04-NOV-26 15:00:00"),
    ]
    assert not [b for _, _, b in fake.received if b and b.get("role") == "Fellow"]  # never sent
    assert problems(world, result) == [*refused, ZONE_PROBLEM]
    meta = metadata_of(result, OUTPUT)
    assert (meta["created"], meta["refused"], meta["failed"]) == (2, 2, 0)
    assert sql(world, "SELECT object_key, status, attempts, outcome FROM delivery.request_ledger "
                      "WHERE run_id = ? AND outcome = 'refused' ORDER BY 1", [result.run_id]) == [
        ("7002/Fellow", 422, 0, "refused"), ("7009/Fellow", 422, 0, "refused"),
    ]
    fake.clear_log()
    result = push(world, CHANGE_LOG_RUN)  # tried again each run (roles read again), still not sent
    assert fake.writes() == [] and [r.path for r in fake.requests()] == ["/groups/SPOK-CARDS/roles"]
    assert problems(world, result) == [*refused, ZONE_PROBLEM]
    fake.set_roles("SPOK-CARDS", ["Attending", "Fellow"])  # created in Spok
    push(world, CHANGE_LOG_RUN)
    assert [(a["slot_id"], a["role"]) for a in held(fake, "SPOK-CARDS")] == [
        (7002, "Attending"), (7002, "Fellow"), (7009, "Attending"), (7009, "Fellow"),
    ]
    remap(world, MAPPING)  # the mapping rows went away: their assignments are deleted
    fake.clear_log()
    result = push(world, CHANGE_LOG_RUN)
    assert [(r.method, r.status) for r in fake.writes()] == [("DELETE", 204)] * 4
    assert held(fake, "SPOK-CARDS") == [] and metadata_of(result, OUTPUT)["deleted"] == 4


def test_an_ended_entry_stays_and_a_deleted_slot_is_deleted(world):
    root, fake = world["root"], world["fake"]
    world["env"].setenv("LB_NOW", LATER)  # 7002 ended at 15:00: history
    build(root, system(people={7004: 13, 7006: 11}, without=frozenset({7009})))  # 7009 deleted in Lightning Bolt
    gone = fake.id_of("SPOK-OR", 7009)
    fake.clear_log()
    result = push(world, CHANGE_LOG_RUN)
    assert writes(fake) == [("DELETE", f"{ASSIGNMENTS_PATH}/{gone}")]
    assert held(fake, "SPOK-OR") == FIRST["SPOK-OR"][:1]  # 7002 kept
    assert metadata_of(result, OUTPUT)["deleted"] == 1
    fake.clear_log()
    result = push(world)  # the reconcile finds 7002 in Spok and leaves it too
    assert fake.writes() == [] and held(fake, "SPOK-OR") == FIRST["SPOK-OR"][:1]
    meta = metadata_of(result, OUTPUT)
    assert (meta["requests_sent"], meta["drift_found"], meta["unchanged"]) == (0, 0, 6)


def test_a_hand_edit_is_drift_on_the_reconcile_and_is_restored(world):
    fake = world["fake"]
    edited, removed = fake.id_of("SPOK-ED", 7005), fake.id_of("SPOK-OB-ANES", 7003)
    fake.edit(edited, messaging_id="U99")
    fake.remove(removed)
    not_ours = assignment("SPOK-ED", None, "U77", "02-NOV-26 19:00:00", "03-NOV-26 07:00:00", "ARIZONA")
    del not_ours["slot_id"]  # entered in Spok by hand: not ours
    fake.preload(not_ours)
    fake.clear_log()
    result = push(world)
    assert writes(fake) == [("POST", ASSIGNMENTS_PATH), ("PUT", f"{ASSIGNMENTS_PATH}/{edited}")]
    assert sql(world, "SELECT kind, record FROM delivery.problems WHERE run_id = ? AND kind LIKE 'drift%' "
                      "ORDER BY 1", [result.run_id]) == [
        ("drift_changed_in_target", "team SPOK-ED, slot 7005"),
        ("drift_deleted_in_target", "team SPOK-OB-ANES, slot 7003"),
    ]
    meta = metadata_of(result, OUTPUT)
    assert (meta["drift_found"], meta["created"], meta["updated"], meta["deleted"]) == (2, 1, 1, 0)
    swapped = assignment("SPOK-ED", 7006, "U11", "03-NOV-26 07:00:00", "04-NOV-26 07:00:00", "ARIZONA")
    assert held(fake, "SPOK-ED") == [not_ours, FIRST["SPOK-ED"][0], swapped]  # U13 restored; not_ours left alone
    assert held(fake, "SPOK-OB-ANES")[0] == FIRST["SPOK-OB-ANES"][0]


def test_dry_run_writes_the_requests_without_credentials(world):
    root, fake = world["root"], world["fake"]
    with duckdb.connect(str(root / "warehouse.duckdb")) as conn:
        conn.execute("DELETE FROM delivery.pushed_state WHERE integration = 'spok'")
    write_config(root / "config", "spok", settings_yaml(fake.base_url, "dry_run"), MAPPING)
    fake.clear_log()
    try:
        push(world)
    finally:
        write_config(root / "config", "spok", settings_yaml(fake.base_url), MAPPING)
    assert fake.requests() == []
    [file] = (root / "outbox" / "spok").glob("requests-*.jsonl")
    assert file.name == "requests-202611021600.jsonl"
    text = file.read_text()
    assert "Authorization" not in text and "Bearer" not in text and PASSWORD not in text
    requests = [json.loads(line) for line in text.splitlines()]
    assert sorted((r["method"], r["body"]["group_id"], r["body"]["slot_id"]) for r in requests) == [
        ("POST", "SPOK-ED", 7005), ("POST", "SPOK-ED", 7006), ("POST", "SPOK-ED-ALERT", 7005),
        ("POST", "SPOK-ED-ALERT", 7006), ("POST", "SPOK-OB-ANES", 7003), ("POST", "SPOK-OB-ANES", 7004),
    ]
    [ob_call] = [r for r in requests if r["body"]["slot_id"] == 7004]
    assert ob_call == {
        "method": "POST", "path": ASSIGNMENTS_PATH, "url": fake.base_url + ASSIGNMENTS_PATH,
        "headers": {"Content-Type": "application/json"},
        "body": {"group_id": "SPOK-OB-ANES", "messaging_id": "U13", "role": "Attending",
                 "start_date": "03-NOV-26 17:00:00", "end_date": "04-NOV-26 07:00:00", "time_zone": "CENTRAL",
                 "slot_id": 7004},
    }


def test_shadow_writes_the_preview_and_sends_nothing(world):
    root, fake = world["root"], world["fake"]
    fake.edit(fake.id_of("SPOK-OB-ANES", 7004), messaging_id="U42")
    fake.remove(fake.id_of("SPOK-ED-ALERT", 7006))
    fake.set_roles("SPOK-ED-ALERT", ["Attending"])  # Physician gone: its add would not be sent
    fake.preload(assignment("SPOK-OR", 7999, "U12", "03-NOV-26 07:00:00", "03-NOV-26 15:00:00"))  # ours, not wanted
    before = fake.held()
    write_config(root / "config", "spok", settings_yaml(fake.base_url, "shadow"), MAPPING)
    fake.clear_log()
    try:
        result = push(world)
    finally:
        write_config(root / "config", "spok", settings_yaml(fake.base_url), MAPPING)
    assert fake.writes() == [] and fake.held() == before
    assert {r.method for r in fake.requests()} == {"GET"}
    [file] = (root / "outbox" / "spok").glob("preview-*.csv")
    assert file.name == "preview-202611021600.csv"
    assert file.read_text().splitlines() == [
        "action,group,slot,role,start_date,end_date,time_zone,messaging_id,note",
        "create,SPOK-ED-ALERT,7006,Physician,03-NOV-26 07:00:00,04-NOV-26 07:00:00,ARIZONA,U11,"
        "role missing in Spok: not sent",
        "update,SPOK-OB-ANES,7004,Attending,03-NOV-26 17:00:00,04-NOV-26 07:00:00,CENTRAL,U13,",
        "delete,SPOK-OR,7999,Attending,03-NOV-26 07:00:00,03-NOV-26 15:00:00,CENTRAL,U12,",
    ]
    meta = metadata_of(result, OUTPUT)
    assert (meta["mode"], meta["requests_sent"]) == ("shadow", 0)
    assert (meta["would_create"], meta["would_update"], meta["would_delete"]) == (1, 1, 1)
    assert "U13" not in str(meta["preview"]) and "•••" in str(meta["preview"])
