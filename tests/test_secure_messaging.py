"""The four replace-per-team secure-messaging vendors (PerfectServe, Amtelco, Voalte, Epic Secure
Chat), each against its own local fake over real HTTP: one scenario, run after run, on one
warehouse built once with all four configured (the same mapping and teams, each vendor its own).

The clock is pinned to 2026-11-10 06:00 CST (12:00 UTC); the window runs to the end of Nov 11.
personnel_id_field unique_id: Ana (11) U11, Ben (12) U12, Cy (13) U13; 19 is the placeholder
"Anesthesia On Call" (pager 4999, cell 312-555-0199). Chicago is UTC-6 in November.

Mapping: 101 (OB call) -> T-OB Attending (call order 1) and T-LD Anesthesia (1); 102 (OR day)
-> T-OB Day (2); 201 (Phoenix ED, whose schedule is a draft) -> T-ED: nobody, an empty list.

Slots: 6001 101 Nov 9 17:00-07:00 Ana (on call now); 6002 102 Nov 10 07:00-15:00 Cy;
6003 101 Nov 10 17:00-07:00 the placeholder; 6004 102 Nov 11 07:00-15:00 nobody (a gap).
Every expected body below is worked out by hand from these and the documented shape.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from fakes.team_oncall import TeamOnCallFake
from lb_pipelines.alerts.sensors import alert_on_run_failure
from lb_pipelines.integrations.on_call_api import forget_tokens
from lb_pipelines.integrations.registry import integration
from pipeline_helpers import evaluate_run_sensor, metadata_of, step_failures, write_config
from on_call_scenario import CY_DAY, FIRST_LISTS, MAPPING, NEXT_NIGHT, entry, system
from warehouse_helpers import load_system, run_dbt

NOW = "2026-11-10T06:00:00-06:00"
VENDORS = ("perfectserve", "amtelco", "voalte", "epic_secure_chat")
CHANGE_LOG_RUN = {"lb/trigger": "change_log"}
def settings_yaml(base_url: str, slug: str, kind: str = "http") -> str:
    return f"""
window: {{days_back: 0, days_forward: 1}}
delivery:
  type: {kind}
  base_url: {base_url}
  username_env: TEST_{slug.upper()}_USER
  password_env: TEST_{slug.upper()}_PASSWORD
  attempts: 3
  max_retry_seconds: 20
alerts: {{to: [{slug.replace('_', '-')}@example.org]}}
"""


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("secure_messaging")
    fakes = {v: TeamOnCallFake(f"lb-{v}", f"pw-{v}-7", users={"U11", "U12", "U13"}).start() for v in VENDORS}
    try:
        with pytest.MonkeyPatch.context() as env:
            for var, value in {
                "LB_NOW": NOW, "LB_WAREHOUSE": str(root / "warehouse.duckdb"), "LB_OUTBOX_DIR": str(root / "outbox"),
                "LB_CONFIG_DIR": str(root / "config"), "LB_BI_DIR": str(root / "bi"),
            }.items():
                env.setenv(var, value)
            for v in VENDORS:
                env.setenv(f"TEST_{v.upper()}_USER", f"lb-{v}")
                env.setenv(f"TEST_{v.upper()}_PASSWORD", f"pw-{v}-7")
                write_config(root / "config", v, settings_yaml(fakes[v].base_url, v), MAPPING)
            env.delenv("LB_API_URL", raising=False)
            world = {"root": root, "fakes": fakes, "env": env}
            rebuild(world, system())
            from lb_pipelines.definitions import build_definitions

            defs = build_definitions()
            world["jobs"] = {v: defs.resolve_job_def(f"{v}_export") for v in VENDORS}
            forget_tokens()
            yield world
    finally:
        for fake in fakes.values():
            fake.stop()


def rebuild(world, the_system) -> None:
    """The schedule as the main job leaves it: source loaded, configuration written, models built."""
    root = world["root"]
    warehouse = load_system(root / "source", the_system, root / "warehouse.duckdb")
    with duckdb.connect(str(warehouse)) as conn:
        for v in VENDORS:
            declared = integration(v)
            assert declared.write_config(conn, declared.load()) == []
    run_dbt(warehouse, "run", "--select", *(f"+export_{v}" for v in VENDORS))


def push(world, vendor, tags=None, expect_success=True, instance=None):
    result = world["jobs"][vendor].execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(), raise_on_error=False, tags=tags or {},
        asset_selection=[dg.AssetKey([vendor, "pushed"])],
    )
    assert result.success == expect_success, (vendor, step_failures(result))
    return result


def sql(world, query: str, params=None) -> list[tuple]:
    with duckdb.connect(str(world["root"] / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(query, params).fetchall()


def clear_logs(world) -> None:
    for fake in world["fakes"].values():
        fake.clear_log()


def test_a_wrong_background_password_fails_clearly_and_marks_nothing(world):
    for v in VENDORS:
        world["env"].setenv(f"TEST_{v.upper()}_PASSWORD", "not-it-51")
        try:
            [message] = step_failures(push(world, v, CHANGE_LOG_RUN, expect_success=False))
        finally:
            world["env"].setenv(f"TEST_{v.upper()}_PASSWORD", f"pw-{v}-7")
        assert "refused the background user's sign-in" in message and "not-it-51" not in message, message
        # teams go out side by side: each may try to sign in before the first refusal stops the run
        assert {(r.method, r.status) for r in world["fakes"][v].requests()} == {("POST", 401)}
    assert sql(world, "SELECT count(*) FROM delivery.pushed_state") == [(0,)]
    clear_logs(world)


def test_first_push_replaces_every_mapped_teams_list_by_hand(world):
    for v in VENDORS:
        fake = world["fakes"][v]
        result = push(world, v, CHANGE_LOG_RUN)
        assert sorted(fake.puts()) == ["T-ED", "T-LD", "T-OB"], v
        assert fake.held == FIRST_LISTS, v
        meta = metadata_of(result, [v, "pushed"])
        assert (meta["created"], meta["unchanged"], meta["teams"], meta["on_call_now"]) == (3, 0, 3, 2), v
        assert (meta["placeholder_entries"], meta["coverage_gaps"], meta["teams_with_nobody_now"]) == (2, 1, 1), v
        # ids only in the run's metadata: no vendor user id, no name, no phone
        text = json.dumps({k: str(val) for k, val in meta.items()})
        assert "U11" not in text and "Anesthesia On Call" not in text and "312-555" not in text
    assert sql(world, "SELECT integration, count(*) FROM delivery.pushed_state GROUP BY ALL ORDER BY 1") == [
        (v, 3) for v in sorted(VENDORS)
    ]
    clear_logs(world)


def test_no_change_sends_nothing_on_change_or_on_the_reconcile(world):
    for v in VENDORS:
        push(world, v, CHANGE_LOG_RUN)
        push(world, v)  # the cadence's reconcile: reads each team back, sends nothing
        assert [r.method for r in world["fakes"][v].requests() if r.method != "POST"] == ["GET"] * 3, v
    clear_logs(world)


def test_a_swap_of_the_on_call_person_sends_exactly_one_request(world):
    rebuild(world, system(people={6002: 12}))  # Ben takes Cy's OR day: only T-OB's list changes
    for v in VENDORS:
        fake = world["fakes"][v]
        meta = metadata_of(push(world, v, CHANGE_LOG_RUN), [v, "pushed"])
        assert fake.puts() == ["T-OB"], v
        assert fake.held["T-OB"]["oncall"][1] == entry(2, "Day", 2, 102, *CY_DAY, "U12")
        assert (meta["updated"], meta["unchanged"]) == (1, 2)
    clear_logs(world)


def test_a_4xx_for_one_team_while_the_others_converge(world):
    rebuild(world, system(people={6002: 12, 6003: 13}))  # Cy takes the placeholder's night: T-OB and T-LD
    for v in VENDORS:
        fake = world["fakes"][v]
        fake.answer("PUT", r"/teams/T-LD/", 422, body={"error": "team locked for editing"})
        result = push(world, v, CHANGE_LOG_RUN)  # a refusal is a problem row, not a failed run
        assert sorted(fake.puts()) == ["T-LD", "T-OB"], v
        assert fake.held["T-OB"]["oncall"][2]["user_id"] == "U13"
        assert fake.held["T-LD"] == FIRST_LISTS["T-LD"]  # as it was
        meta = metadata_of(result, [v, "pushed"])
        assert (meta["updated"], meta["refused"]) == (1, 1), v
        [(record, field, reason)] = sql(world, "SELECT record, field, reason FROM delivery.problems "
                                             "WHERE run_id = ? AND kind = 'refused_by_target'", [result.run_id])
        assert (record, field) == ("team T-LD", "update") and "422" in reason and "locked" in reason, reason
        fake.clear_log()
        push(world, v, CHANGE_LOG_RUN)  # T-LD was not marked: sent again, and only it
        assert fake.puts() == ["T-LD"], v
        assert fake.held["T-LD"]["oncall"][1] == entry(2, "Anesthesia", 1, 101, *NEXT_NIGHT, "U13")
    clear_logs(world)


def test_429_with_retry_after_then_one_request(world):
    rebuild(world, system(people={6002: 13, 6003: 13}))  # Cy back on the OR day: T-OB only
    for v in VENDORS:
        fake = world["fakes"][v]
        fake.answer("PUT", r"/teams/T-OB/", 429, headers={"Retry-After": "1"})
        push(world, v, CHANGE_LOG_RUN)
        puts = fake.requests("PUT")
        assert [(r.path, r.status) for r in puts] == [("/teams/T-OB/oncall", 429), ("/teams/T-OB/oncall", 200)]
        assert puts[1].at - puts[0].at >= 0.95
    clear_logs(world)


def test_a_hand_edit_is_drift_on_the_reconcile_and_is_restored(world):
    for v in VENDORS:
        fake = world["fakes"][v]
        wanted = fake.held["T-OB"]
        fake.edit_by_hand("T-OB", {"team_id": "T-OB", "oncall": []})
        meta = metadata_of(push(world, v), [v, "pushed"])
        assert meta["drift_found"] == 1 and fake.puts() == ["T-OB"], v
        assert fake.held["T-OB"] == wanted
    clear_logs(world)


def test_connection_refused_fails_the_run_marks_nothing_and_sends_one_mail_listing_every_failure(
    world, smtp_env, monkeypatch
):
    monkeypatch.setenv("LB_ALERTS_TO", "admins@example.org")
    rebuild(world, system(people={6001: 12, 6002: 13, 6003: 13}))  # Ben on the night: T-OB and T-LD change
    dead = f"http://127.0.0.1:{closed_port()}"
    for i, v in enumerate(VENDORS):
        write_config(world["root"] / "config", v, settings_yaml(dead, v), MAPPING)
        before = sql(world, "SELECT object_key, content_hash FROM delivery.pushed_state WHERE integration = ? "
                            "ORDER BY 1", [v])
        instance = dg.DagsterInstance.ephemeral()
        try:
            result = push(world, v, CHANGE_LOG_RUN, expect_success=False, instance=instance)
            assert sql(world, "SELECT object_key, content_hash FROM delivery.pushed_state WHERE integration = ? "
                              "ORDER BY 1", [v]) == before
            run = result.run_id
            failed = sql(world, "SELECT object_key, outcome FROM delivery.request_ledger WHERE run_id = ? "
                                "ORDER BY 1", [run])
            assert failed == [("T-LD", "failed"), ("T-OB", "failed")], v
            evaluate_run_sensor(alert_on_run_failure, instance, run)
            assert len(smtp_env.messages) == i + 1  # one mail per run
            mail = smtp_env.messages[-1]
            assert mail.rcpt_tos == [f"{v.replace('_', '-')}@example.org", "admins@example.org"]
            body = mail.body
            assert "2 requests got no good answer" in body, body
            assert "not_delivered: team T-LD (update)" in body and "not_delivered: team T-OB (update)" in body, body
        finally:
            instance.dispose()
            write_config(world["root"] / "config", v, settings_yaml(world["fakes"][v].base_url, v), MAPPING)
        push(world, v, CHANGE_LOG_RUN)  # back: both sent
        assert sorted(world["fakes"][v].puts()) == ["T-LD", "T-OB"]
    clear_logs(world)


def test_dry_run_writes_each_request_without_credentials(world):
    rebuild(world, system())
    for v in VENDORS:
        write_config(world["root"] / "config", v, settings_yaml(world["fakes"][v].base_url, v, "dry_run"), MAPPING)
        world["env"].delenv(f"TEST_{v.upper()}_PASSWORD")
        try:
            meta = metadata_of(push(world, v, CHANGE_LOG_RUN), [v, "pushed"])
        finally:
            world["env"].setenv(f"TEST_{v.upper()}_PASSWORD", f"pw-{v}-7")
            write_config(world["root"] / "config", v, settings_yaml(world["fakes"][v].base_url, v), MAPPING)
        lines = [json.loads(line) for line in Path(meta["file"]).read_text().splitlines()]
        assert Path(meta["file"]).name == "requests-202611100600.jsonl"
        assert [(r["method"], r["path"]) for r in lines] == [("PUT", "/teams/T-LD/oncall"), ("PUT", "/teams/T-OB/oncall")]
        assert [r["body"] for r in lines] == [FIRST_LISTS["T-LD"], FIRST_LISTS["T-OB"]]
        assert (meta["would_update"], meta["requests_sent"]) == (2, 0)
        assert world["fakes"][v].requests() == []


def test_shadow_writes_the_lists_it_would_replace_and_sends_nothing(world):
    v = "voalte"
    fake = world["fakes"][v]
    write_config(world["root"] / "config", v, settings_yaml(fake.base_url, v, "shadow"), MAPPING)
    try:
        meta = metadata_of(push(world, v, CHANGE_LOG_RUN), [v, "pushed"])
    finally:
        write_config(world["root"] / "config", v, settings_yaml(fake.base_url, v), MAPPING)
    assert {r.method for r in fake.requests()} <= {"GET", "POST"}  # read (and signed in) only
    preview = Path(meta["file"]).read_text().splitlines()
    assert preview[0] == "action,team,position,role,call_order,start,end,user"
    # T-LD and T-OB go back to the first lists (Ana's night, Cy's day, the placeholder)
    assert preview[1:] == [
        "update,T-LD,1,Anesthesia,1,2026-11-09T23:00:00Z,2026-11-10T13:00:00Z,U11",
        "update,T-LD,2,Anesthesia,1,2026-11-10T23:00:00Z,2026-11-11T13:00:00Z,placeholder",
        "update,T-OB,1,Attending,1,2026-11-09T23:00:00Z,2026-11-10T13:00:00Z,U11",
        "update,T-OB,2,Day,2,2026-11-10T13:00:00Z,2026-11-10T21:00:00Z,U13",
        "update,T-OB,3,Attending,1,2026-11-10T23:00:00Z,2026-11-11T13:00:00Z,placeholder",
    ]
