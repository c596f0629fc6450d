"""AnesthesiaGo against a local fake of its schedule API, over real HTTP: one scenario, run after
run, on one warehouse built once (and rebuilt when the schedule changes).

The clock is pinned to 2026-10-31 12:00 CDT (17:00 UTC; 10:00 MST in Phoenix); the window is
0 back / 3 forward, so the dates 2026-10-31 .. 2026-11-03. Chicago falls back on 2026-11-01 at
02:00: 07:00 there is 12:00 UTC on Oct 31 and 13:00 UTC from Nov 1; Phoenix stays UTC-7.
personnel_id_field emp_id (the default): Ana (11) 100011, Ben (12) none, Cy (13) 100013,
Eli (15, inactive) 100015; 19 is the placeholder. Mapping: 101 (OB call) and 102 (OR day),
Chicago; 201 (ED 24 h), Phoenix; 103 (Anesthesia Tech) is not mapped.

Every expected body below is worked out by hand from `system()` and the documented shape. The
tests run in file order, each a run of the push that builds on the previous one.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from pydantic import ValidationError

from fakes.anesthesiago import AnesthesiaGoFake
from lb_pipelines.alerts.sensors import alert_on_run_failure
from lb_pipelines.integrations.anesthesiago.desired import window_dates
from lb_pipelines.integrations.anesthesiago.settings import AnesthesiaGoSettings
from lb_pipelines.integrations.registry import integration
from pipeline_helpers import evaluate_run_sensor, metadata_of, step_failures, write_config
from tiny_system import TS, fresh, slot
from warehouse_helpers import load_system, run_dbt

NOW = "2026-10-31T12:00:00-05:00"
TOKEN = "ag-s3cret-token-5150"
CHICAGO, PHOENIX = "America/Chicago", "America/Phoenix"
CHANGE_LOG_RUN = {"lb/trigger": "change_log"}
OUTPUT = dg.AssetKey(["anesthesiago", "pushed"])
MAPPING = """assignment_id
101
102
201
"""
DATES = ["2026-10-31", "2026-11-01", "2026-11-02", "2026-11-03"]


def settings_yaml(base_url: str, kind: str = "http") -> str:
    return f"""
window: {{days_back: 0, days_forward: 3}}
delivery:
  type: {kind}
  base_url: {base_url}
  token_env: TEST_AG_TOKEN
  attempts: 3
  max_retry_seconds: 20
alerts: {{to: [anesthesiago-team@example.org]}}
"""


def system(**people):
    """The system, with slot -> person overrides (`people={7002: 13}`)."""
    s = fresh()  # 11 Ana, 12 Ben (no emp_id), 13 Cy, 19 a placeholder; 101/102 Chicago, 201 Phoenix
    ana = next(p for p in s["personnel"] if p["id"] == 11)
    s["personnel"].append(dict(ana, id=15, first_name="Eli", last_name="Stone", emp_id="100015", active=False))
    s["assignments"].append({"id": 103, "department_id": 1, "name": "Anesthesia Tech", "abbreviation": "ATECH",
                             "assignment_type": "Shift", "default_start": "06:30", "default_end": "15:00",
                             "active": True, "updated_at": TS})
    for sch in s["schedules"]:
        sch.update(start_date="2026-10-01", end_date="2026-11-30", status="published")
    who = {7002: 19, 7005: 13, 7011: 11, 7012: 11} | people.get("people", {})
    s["slots"] = [
        slot(7012, 1001, "2026-10-31", 102, who[7012], "07:00", "15:00"),  # CDT
        slot(7001, 1001, "2026-10-31", 101, 11, "17:00", "07:00"),  # across the fall-back night
        slot(7011, 1001, "2026-11-01", 102, who[7011], "07:00", "15:00"),  # CST
        slot(7003, 1001, "2026-11-01", 102, 12, "07:00", "15:00"),  # Ben: no emp_id, a problem
        slot(7013, 1001, "2026-11-01", 103, 11, "06:30", "15:00"),  # not mapped: never sent
        slot(7008, 2001, "2026-11-01", 201, 13, "07:00", "07:00"),  # Phoenix, 24 h
        slot(7002, 1001, "2026-11-02", 101, who[7002], "17:00", "07:00"),  # the placeholder: Nov 2 is empty
        slot(7004, 1001, "2026-11-03", 102, None, "07:00", "15:00"),  # unfilled: counted, not sent
        slot(7005, 1001, "2026-11-03", 101, who[7005], "17:00", "07:00"),
        slot(7010, 2001, "2026-11-03", 201, 15, "07:00", "07:00"),  # Eli: inactive, a problem
        slot(7006, 1001, "2026-10-30", 101, 11, "17:00", "07:00"),  # yesterday: out
        slot(7007, 1001, "2026-11-04", 101, 11, "17:00", "07:00"),  # today + 4: out
    ]
    return s


def provider(emp_id, assignment, slot_id, zone, start_local, end_local, start_utc, end_utc):
    return {"emp_id": emp_id, "assignment_id": assignment, "slot_id": slot_id, "time_zone": zone,
            "start_local": start_local, "end_local": end_local, "start_utc": start_utc, "end_utc": end_utc}


# By hand, sorted by start_utc, assignment_id, emp_id.
ANA_OR_OCT31 = provider("100011", 102, 7012, CHICAGO, "2026-10-31T07:00:00", "2026-10-31T15:00:00",
                        "2026-10-31T12:00:00Z", "2026-10-31T20:00:00Z")
ANA_CALL_OCT31 = provider("100011", 101, 7001, CHICAGO, "2026-10-31T17:00:00", "2026-11-01T07:00:00",
                          "2026-10-31T22:00:00Z", "2026-11-01T13:00:00Z")  # 15 hours: the clocks fall back
ANA_OR_NOV1 = provider("100011", 102, 7011, CHICAGO, "2026-11-01T07:00:00", "2026-11-01T15:00:00",
                       "2026-11-01T13:00:00Z", "2026-11-01T21:00:00Z")
CY_ED_NOV1 = provider("100013", 201, 7008, PHOENIX, "2026-11-01T07:00:00", "2026-11-02T07:00:00",
                      "2026-11-01T14:00:00Z", "2026-11-02T14:00:00Z")
CY_CALL_NOV3 = provider("100013", 101, 7005, CHICAGO, "2026-11-03T17:00:00", "2026-11-04T07:00:00",
                        "2026-11-03T23:00:00Z", "2026-11-04T13:00:00Z")
FIRST = {
    "2026-10-31": {"date": "2026-10-31", "providers": [ANA_OR_OCT31, ANA_CALL_OCT31]},
    "2026-11-01": {"date": "2026-11-01", "providers": [ANA_OR_NOV1, CY_ED_NOV1]},
    "2026-11-02": {"date": "2026-11-02", "providers": []},
    "2026-11-03": {"date": "2026-11-03", "providers": [CY_CALL_NOV3]},
}


def closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket is closed


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("anesthesiago")
    with AnesthesiaGoFake(token=TOKEN) as fake, pytest.MonkeyPatch.context() as env:
        for var, value in {
            "LB_NOW": NOW, "LB_WAREHOUSE": str(root / "warehouse.duckdb"), "LB_OUTBOX_DIR": str(root / "outbox"),
            "LB_CONFIG_DIR": str(root / "config"), "LB_BI_DIR": str(root / "bi"), "TEST_AG_TOKEN": TOKEN,
        }.items():
            env.setenv(var, value)
        env.delenv("LB_API_URL", raising=False)
        write_config(root / "config", "anesthesiago", settings_yaml(fake.base_url), MAPPING)
        world = {"root": root, "fake": fake, "env": env}
        rebuild(world, system())
        run_dbt(root / "warehouse.duckdb", "test", "--select", "export_anesthesiago")  # the model's own tests
        from lb_pipelines.definitions import build_definitions

        world["job"] = build_definitions().resolve_job_def("anesthesiago_export")
        yield world


def rebuild(world, the_system) -> None:
    """The schedule as the main job leaves it: source loaded, configuration written, model built."""
    root = world["root"]
    warehouse = load_system(root / "source", the_system, root / "warehouse.duckdb")
    declared = integration("anesthesiago")
    with duckdb.connect(str(warehouse)) as conn:
        assert declared.write_config(conn, declared.load()) == []
    run_dbt(warehouse, "run", "--select", "+export_anesthesiago")


def push(world, tags=None, expect_success=True, instance=None):
    """The integration's own job, its push asset only (the warehouse is built)."""
    result = world["job"].execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(), raise_on_error=False, tags=tags or {},
        asset_selection=[OUTPUT],
    )
    assert result.success == expect_success, step_failures(result)
    return result


def sql(world, query: str, params=None) -> list[tuple]:
    with duckdb.connect(str(world["root"] / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(query, params).fetchall()


def forget_pushed(world, *dates: str) -> None:
    """As if these dates had never been accepted: the next run sends them (a create)."""
    with duckdb.connect(str(world["root"] / "warehouse.duckdb")) as conn:
        conn.execute("DELETE FROM delivery.pushed_state WHERE integration = 'anesthesiago' "
                     "AND object_key IN (SELECT unnest($dates))", {"dates": list(dates)})


def sent(fake, method=None) -> list[tuple[str, str, int]]:
    return [(r.method, r.path.removeprefix("/schedule/"), r.status) for r in fake.requests(method)]


def test_settings_defaults_and_what_http_needs(tmp_path):
    s = AnesthesiaGoSettings()
    assert (s.cadence, s.window.days_back, s.window.days_forward) == ("15 5 * * *", 0, 14)
    assert (s.personnel_id_field, s.delivery.type) == ("emp_id", "dry_run")
    with pytest.raises(ValidationError, match="type http needs token_env"):
        AnesthesiaGoSettings(delivery={"type": "http", "base_url": "https://ag.example.org"})
    with pytest.raises(ValidationError, match="delivery.token"):  # a token is never a value in the file
        AnesthesiaGoSettings(delivery={"type": "http", "base_url": "https://ag.example.org", "token": "x"})
    # one row per assignment: a second row for 101 is a problem, the first one stands
    write_config(tmp_path, "anesthesiago", "enabled: true\n", "assignment_id\n101\n102\n101\n")
    mapping = integration("anesthesiago").load(tmp_path).mapping
    assert [r.assignment_id for r in mapping.rows] == [101, 102]
    [problem] = mapping.problems
    assert "already mapped on line 2" in str(problem)


def test_the_window_runs_from_the_earliest_departments_today_to_the_latest():
    late_in_chicago = dt.datetime.fromisoformat("2026-11-22T23:30:00-06:00")  # already Nov 23 in New York
    assert window_dates([CHICAGO, "America/New_York"], late_in_chicago, 0, 2) == [
        "2026-11-22", "2026-11-23", "2026-11-24", "2026-11-25",
    ]
    assert window_dates([CHICAGO], late_in_chicago, 1, 0) == ["2026-11-21", "2026-11-22"]
    assert window_dates([], late_in_chicago, 0, 14) == []  # nothing mapped: no date


def test_a_missing_or_wrong_token_fails_clearly_and_marks_nothing(world):
    fake = world["fake"]
    world["env"].delenv("TEST_AG_TOKEN")
    try:
        [message] = step_failures(push(world, CHANGE_LOG_RUN, expect_success=False))
        assert "TEST_AG_TOKEN (token_env) is not set" in message, message
        assert fake.requests() == []  # nothing goes out without a token
        world["env"].setenv("TEST_AG_TOKEN", "not-the-token-93")
        for tags in ({}, CHANGE_LOG_RUN):  # the reconcile's GET, then a run on change's PUT
            [message] = step_failures(push(world, tags, expect_success=False))
            assert "AnesthesiaGo refused the API token" in message and "TEST_AG_TOKEN" in message, message
            assert "not-the-token-93" not in message and TOKEN not in message
    finally:
        world["env"].setenv("TEST_AG_TOKEN", TOKEN)
    assert {r.status for r in fake.requests()} == {401}
    assert {r.method for r in fake.requests()} == {"GET", "PUT"}
    assert fake.held == {} and fake.puts() == []
    assert sql(world, "SELECT count(*) FROM delivery.pushed_state WHERE integration = 'anesthesiago'") == [(0,)]
    ledger = sql(world, "SELECT status, error FROM delivery.ledger WHERE integration = 'anesthesiago'")
    assert [s for s, _ in ledger] == ["failed"] * 3
    assert all("not-the-token-93" not in e and TOKEN not in e for _, e in ledger)
    fake.clear_log()


def test_first_push_puts_every_date_of_the_window_by_hand(world):
    fake = world["fake"]
    result = push(world)  # a reconcile: reads each date (nothing held: 404), then one PUT per date
    assert sorted(sent(fake, "GET")) == [("GET", d, 404) for d in DATES]
    assert sorted(sent(fake, "PUT")) == [("PUT", d, 200) for d in DATES]
    assert fake.held == FIRST  # Nov 2 too: an empty list, nobody but the placeholder is on it
    for r in fake.requests("PUT"):
        assert r.headers["Content-Type"] == "application/json"
        assert r.headers["Authorization"] == "***"  # sent (the fake masks it in its log)
    meta = metadata_of(result, ["anesthesiago", "pushed"])
    assert (meta["created"], meta["updated"], meta["requests_sent"], meta["drift_found"]) == (4, 0, 4, 0)
    assert (meta["dates"], meta["dates_empty"], meta["providers"]) == (4, 1, 5)
    assert (meta["placeholder_slots"], meta["unfilled_slots"], meta["problems"]) == (1, 1, 2)
    problems = sql(world, "SELECT kind, record, field, reason FROM delivery.problems WHERE run_id = ? "
                          "ORDER BY kind", [result.run_id])
    assert problems == [
        ("person_not_exportable", "slot 7010 (assignment 201, 2026-11-03)", "personnel_id", "person 15 is inactive"),
        ("person_without_vendor_id", "slot 7003 (assignment 102, 2026-11-01)", "emp_id",
         "person 12 has no emp_id (the AnesthesiaGo employee id)"),
    ]
    assert sql(world, "SELECT target, object_key, label FROM delivery.pushed_state ORDER BY object_key") == [
        ("schedule", d, f"date {d}") for d in DATES
    ]
    assert sql(world, "SELECT object_key, action, method, path, status, outcome FROM delivery.request_ledger "
                      "WHERE run_id = ? ORDER BY object_key", [result.run_id]) == [
        (d, "create", "PUT", f"/schedule/{d}", 200, "accepted") for d in DATES
    ]
    # run storage names no one: emp_id masked in the preview, no names, no token
    text = json.dumps({k: str(v) for k, v in meta.items()})
    assert "100011" not in text and "Reyes" not in text and TOKEN not in text, text
    assert "•••" in str(meta["preview"]), meta["preview"]
    fake.clear_log()


def test_a_second_run_with_no_change_sends_nothing(world):
    fake = world["fake"]
    meta = metadata_of(push(world, CHANGE_LOG_RUN), ["anesthesiago", "pushed"])  # against the pushed state
    assert fake.requests() == [] and (meta["unchanged"], meta["requests_sent"]) == (4, 0)
    meta = metadata_of(push(world), ["anesthesiago", "pushed"])  # the daily reconcile: reads, sends nothing
    assert sorted(sent(fake)) == [("GET", d, 200) for d in DATES]
    assert (meta["unchanged"], meta["requests_sent"], meta["drift_found"]) == (4, 0, 0)
    fake.clear_log()


def test_dry_run_writes_each_put_without_the_token_then_a_reconcile_adopts(world):
    root, fake = world["root"], world["fake"]
    forget_pushed(world, *DATES)
    write_config(root / "config", "anesthesiago", settings_yaml(fake.base_url, "dry_run"), MAPPING)
    world["env"].delenv("TEST_AG_TOKEN")
    try:
        meta = metadata_of(push(world), ["anesthesiago", "pushed"])
    finally:
        world["env"].setenv("TEST_AG_TOKEN", TOKEN)
        write_config(root / "config", "anesthesiago", settings_yaml(fake.base_url), MAPPING)
    assert fake.requests() == []
    file = Path(meta["file"])
    assert file.name == "requests-202610311200.jsonl" and file.parent == root / "outbox" / "anesthesiago"
    lines = sorted((json.loads(line) for line in file.read_text().splitlines()), key=lambda r: r["path"])
    assert lines == [
        {"method": "PUT", "path": f"/schedule/{d}", "url": f"{fake.base_url}/schedule/{d}",
         "headers": {"Content-Type": "application/json"}, "body": FIRST[d]}
        for d in DATES
    ]
    assert (meta["would_create"], meta["requests_sent"]) == (4, 0)
    assert sql(world, "SELECT count(*) FROM delivery.pushed_state WHERE integration = 'anesthesiago'") == [(0,)]
    # The pushed state is lost; the reconcile finds every date as desired: recorded, nothing sent.
    meta = metadata_of(push(world), ["anesthesiago", "pushed"])
    assert (meta["adopted"], meta["requests_sent"], meta["drift_found"]) == (4, 0, 0)
    assert {m for m, _, _ in sent(fake)} == {"GET"}
    assert sql(world, "SELECT count(*) FROM delivery.pushed_state WHERE integration = 'anesthesiago'") == [(4,)]
    fake.clear_log()


def test_shadow_writes_the_provider_differences_and_sends_nothing(world):
    root = world["root"]
    old_call = provider("100099", 101, 6999, CHICAGO, "2026-11-01T17:00:00", "2026-11-02T07:00:00",
                        "2026-11-01T23:00:00Z", "2026-11-02T13:00:00Z")
    old_night = provider("100077", 101, 6998, CHICAGO, "2026-11-02T17:00:00", "2026-11-03T07:00:00",
                         "2026-11-02T23:00:00Z", "2026-11-03T13:00:00Z")
    held = {
        "2026-10-31": FIRST["2026-10-31"],  # as scheduled: not listed
        "2026-11-01": {"date": "2026-11-01", "providers": [ANA_OR_NOV1, old_call]},  # Ana kept, Cy added
        "2026-11-02": {"date": "2026-11-02", "providers": [old_night]},  # sent empty: removed
        # 2026-11-03: nothing held (404): Cy added
    }
    before = sql(world, "SELECT * FROM delivery.pushed_state ORDER BY object_key")
    with AnesthesiaGoFake(token=TOKEN) as other:  # the hospital's AnesthesiaGo before go-live
        for date, body in held.items():
            other.edit_by_hand(date, body)
        write_config(root / "config", "anesthesiago", settings_yaml(other.base_url, "shadow"), MAPPING)
        try:
            result = push(world)
        finally:
            write_config(root / "config", "anesthesiago", settings_yaml(world["fake"].base_url), MAPPING)
        assert {r.method for r in other.requests()} == {"GET"} and other.puts() == []
        assert other.held == held
    [file] = (root / "outbox" / "anesthesiago").glob("preview-*.csv")
    assert file.name == "preview-202610311200.csv"
    assert file.read_text().splitlines() == [
        "action,date,emp_id,assignment_id,start_local,end_local",
        "add,2026-11-01,100013,201,2026-11-01T07:00:00,2026-11-02T07:00:00",
        "remove,2026-11-01,100099,101,2026-11-01T17:00:00,2026-11-02T07:00:00",
        "remove,2026-11-02,100077,101,2026-11-02T17:00:00,2026-11-03T07:00:00",
        "add,2026-11-03,100013,101,2026-11-03T17:00:00,2026-11-04T07:00:00",
    ]
    meta = metadata_of(result, ["anesthesiago", "pushed"])
    assert (meta["mode"], meta["requests_sent"]) == ("shadow", 0)
    assert (meta["would_create"], meta["would_update"], meta["unchanged"]) == (1, 2, 1)
    assert "100099" not in str(meta["preview"]) and "•••" in str(meta["preview"])  # emp_id masked
    assert sql(world, "SELECT * FROM delivery.pushed_state ORDER BY object_key") == before
    assert world["fake"].requests() == []


def test_swapping_the_person_on_one_date_sends_exactly_one_put(world):
    fake = world["fake"]
    rebuild(world, system(people={7002: 13}))  # Cy takes the placeholder's Nov 2 night
    meta = metadata_of(push(world, CHANGE_LOG_RUN), ["anesthesiago", "pushed"])
    assert sent(fake) == [("PUT", "2026-11-02", 200)]
    assert fake.held["2026-11-02"] == {"date": "2026-11-02", "providers": [
        provider("100013", 101, 7002, CHICAGO, "2026-11-02T17:00:00", "2026-11-03T07:00:00",
                 "2026-11-02T23:00:00Z", "2026-11-03T13:00:00Z"),
    ]}
    assert (meta["updated"], meta["unchanged"], meta["placeholder_slots"]) == (1, 3, 0)
    fake.clear_log()


def test_a_4xx_for_one_date_while_the_others_converge(world):
    fake = world["fake"]
    rebuild(world, system(people={7002: 13, 7011: 13, 7005: 11}))  # Cy takes Ana's Nov 1 OR day; Ana Cy's Nov 3 call
    nov1 = {"date": "2026-11-01", "providers": [
        provider("100013", 102, 7011, CHICAGO, "2026-11-01T07:00:00", "2026-11-01T15:00:00",
                 "2026-11-01T13:00:00Z", "2026-11-01T21:00:00Z"),
        CY_ED_NOV1,
    ]}
    nov3 = {"date": "2026-11-03", "providers": [dict(CY_CALL_NOV3, emp_id="100011")]}
    fake.answer("PUT", "2026-11-03$", 422, body={"error": "schedule_locked",
                                                 "message": "the OR schedule for this date is released"})
    result = push(world, CHANGE_LOG_RUN)  # a refusal is a problem row, not a failed run
    assert sorted(sent(fake)) == [("PUT", "2026-11-01", 200), ("PUT", "2026-11-03", 422)]
    assert fake.held["2026-11-01"] == nov1
    assert fake.held["2026-11-03"] == FIRST["2026-11-03"]  # as it was
    meta = metadata_of(result, ["anesthesiago", "pushed"])
    assert (meta["updated"], meta["refused"], meta["unchanged"]) == (1, 1, 2)
    [(record, field, reason)] = sql(world, "SELECT record, field, reason FROM delivery.problems "
                                           "WHERE run_id = ? AND kind = 'refused_by_target'", [result.run_id])
    assert (record, field) == ("date 2026-11-03", "update") and "422" in reason and "released" in reason, reason
    fake.clear_log()
    push(world, CHANGE_LOG_RUN)  # Nov 3 was not marked: sent again, and only it
    assert sent(fake) == [("PUT", "2026-11-03", 200)]
    assert fake.held["2026-11-03"] == nov3
    fake.clear_log()


def test_429_with_retry_after_then_one_put(world):
    fake = world["fake"]
    forget_pushed(world, "2026-11-02")
    fake.answer("PUT", "2026-11-02$", 429, headers={"Retry-After": "1"})
    result = push(world, CHANGE_LOG_RUN)
    assert sent(fake) == [("PUT", "2026-11-02", 429), ("PUT", "2026-11-02", 200)]
    throttled, retried = fake.requests("PUT")
    assert retried.at - throttled.at >= 0.9  # it waited what AnesthesiaGo asked
    assert sql(world, "SELECT object_key, action, status, attempts, outcome FROM delivery.request_ledger "
                      "WHERE run_id = ?", [result.run_id]) == [("2026-11-02", "create", 200, 2, "accepted")]
    fake.clear_log()


def test_500_then_success(world):
    fake = world["fake"]
    forget_pushed(world, "2026-10-31")
    fake.answer("PUT", "2026-10-31$", 500)
    result = push(world, CHANGE_LOG_RUN)
    assert sent(fake) == [("PUT", "2026-10-31", 500), ("PUT", "2026-10-31", 200)]
    assert fake.held["2026-10-31"] == FIRST["2026-10-31"]
    assert sql(world, "SELECT object_key, action, status, attempts, outcome FROM delivery.request_ledger "
                      "WHERE run_id = ?", [result.run_id]) == [("2026-10-31", "create", 200, 2, "accepted")]
    fake.clear_log()


def test_connection_refused_fails_the_run_marks_nothing_and_sends_one_mail_listing_every_failure(
    world, smtp_env, monkeypatch
):
    root, fake = world["root"], world["fake"]
    monkeypatch.setenv("LB_ALERTS_TO", "admins@example.org")
    forget_pushed(world, "2026-10-31", "2026-11-01")
    state = "SELECT object_key, content_hash FROM delivery.pushed_state WHERE integration = 'anesthesiago' ORDER BY 1"
    before = sql(world, state)
    assert [k for k, _ in before] == ["2026-11-02", "2026-11-03"]
    write_config(root / "config", "anesthesiago", settings_yaml(f"http://127.0.0.1:{closed_port()}"), MAPPING)
    instance = dg.DagsterInstance.ephemeral()
    try:
        result = push(world, CHANGE_LOG_RUN, expect_success=False, instance=instance)
        assert sql(world, state) == before  # nothing marked as delivered
        assert sql(world, "SELECT object_key, status, outcome FROM delivery.request_ledger WHERE run_id = ? "
                          "ORDER BY 1", [result.run_id]) == [("2026-10-31", None, "failed"), ("2026-11-01", None, "failed")]
        failures = sql(world, "SELECT kind, record, field FROM delivery.problems WHERE run_id = ? "
                              "AND kind = 'not_delivered' ORDER BY record", [result.run_id])
        assert failures == [("not_delivered", "date 2026-10-31", "create"), ("not_delivered", "date 2026-11-01", "create")]
        evaluate_run_sensor(alert_on_run_failure, instance, result.run_id)
        [mail] = smtp_env.messages  # one mail for the run
        assert mail.rcpt_tos == ["anesthesiago-team@example.org", "admins@example.org"]
        assert "2 requests got no good answer" in mail.body, mail.body
        assert "not_delivered: date 2026-10-31 (create)" in mail.body
        assert "not_delivered: date 2026-11-01 (create)" in mail.body
        assert TOKEN not in mail.body and "Reyes" not in mail.body
    finally:
        instance.dispose()
        write_config(root / "config", "anesthesiago", settings_yaml(fake.base_url), MAPPING)
    assert fake.requests() == []
    push(world, CHANGE_LOG_RUN)  # back: both sent, and only they
    assert sorted(sent(fake)) == [("PUT", "2026-10-31", 200), ("PUT", "2026-11-01", 200)]
    assert [k for k, _ in sql(world, state)] == DATES
    fake.clear_log()


def test_dates_edited_by_hand_are_drift_on_the_reconcile_and_are_restored(world):
    fake = world["fake"]
    wanted = fake.held
    fake.edit_by_hand("2026-11-01", {"date": "2026-11-01", "providers": []})
    fake.remove_by_hand("2026-11-02")
    push(world, CHANGE_LOG_RUN)  # a run on change compares with the pushed state: sees nothing
    assert sent(fake) == []
    result = push(world)  # the reconcile reads, finds both, restores both
    meta = metadata_of(result, ["anesthesiago", "pushed"])
    assert (meta["drift_found"], meta["updated"], meta["created"], meta["unchanged"]) == (2, 1, 1, 2)
    drift = sql(world, "SELECT kind, record FROM delivery.problems WHERE run_id = ? AND kind LIKE 'drift%' "
                       "ORDER BY record", [result.run_id])
    assert drift == [("drift_changed_in_target", "date 2026-11-01"), ("drift_deleted_in_target", "date 2026-11-02")]
    assert sorted(sent(fake, "PUT")) == [("PUT", "2026-11-01", 200), ("PUT", "2026-11-02", 200)]
    assert fake.held == wanted
    fake.clear_log()


def test_a_date_that_leaves_the_window_is_no_longer_sent_nor_deleted(world):
    fake = world["fake"]
    oct31 = fake.held["2026-10-31"]
    world["env"].setenv("LB_NOW", "2026-11-01T12:00:00-06:00")  # a day later: Nov 1 .. Nov 4
    try:
        meta = metadata_of(push(world), ["anesthesiago", "pushed"])
    finally:
        world["env"].setenv("LB_NOW", NOW)
    assert sorted(d for m, d, _ in sent(fake, "GET")) == ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04"]
    assert sent(fake, "PUT") == [("PUT", "2026-11-04", 200)]
    assert fake.held["2026-11-04"] == {"date": "2026-11-04", "providers": [
        provider("100011", 101, 7007, CHICAGO, "2026-11-04T17:00:00", "2026-11-05T07:00:00",
                 "2026-11-04T23:00:00Z", "2026-11-05T13:00:00Z"),
    ]}
    assert (meta["created"], meta["deleted"], meta["drift_found"], meta["dates"]) == (1, 0, 0, 4)
    assert fake.held["2026-10-31"] == oct31  # left as last sent
    assert ("2026-10-31",) in sql(world, "SELECT object_key FROM delivery.pushed_state")
