"""TigerConnect against a local fake of its scheduler CSV webhook, over real HTTP: one scenario,
run after run, on one warehouse built once.

The clock is pinned to 2026-10-31 12:00 CDT (17:00 UTC; 10:00 MST in Phoenix); the window is
0 back / 3 forward, so 2026-10-31 .. 2026-11-03 in both zones. START and END are the department's
wall clock (Chicago falls back on 2026-11-01; the text does not move). Every expected row below is
worked out by hand from `system()` and MAPPING.

The tests run in file order (each is a run of the push that builds on the previous one): first a
wrong password before anything was ever accepted, then the first push, and so on.
"""

from __future__ import annotations

import json

import dagster as dg
import duckdb
import pytest
from pydantic import ValidationError

from fakes.tigerconnect import DOWNLOAD_PATH, UPLOAD_PATH, TigerConnectFake
from lb_pipelines.integrations.registry import integration
from lb_pipelines.integrations.tigerconnect.settings import TigerConnectSettings
from pipeline_helpers import metadata_of, step_failures, write_config
from tiny_system import fresh, slot
from warehouse_helpers import load_system, run_dbt

NOW = "2026-10-31T12:00:00-05:00"
ORG, INTEGRATION_ID, SHADOW_ID = "org-7", "int-42", "int-shadow"
USER, PASSWORD = "lb-sync", "s3cret-pw"
CHICAGO, PHOENIX = "America/Chicago", "America/Phoenix"
CHANGE_LOG_RUN = {"lb/trigger": "change_log"}
OUTPUT = dg.AssetKey(["tigerconnect", "pushed"])
# 101 feeds two job tokens; 102's slots in the window are Ben (no TigerConnect id) and an unfilled
# one, so its token is sent empty.
MAPPING = """assignment_id,job_token
101,tc-ob-call
101,tc-ob-backup
102,tc-or-day
201,tc-ed-24
"""


def settings_yaml(fake: TigerConnectFake, kind: str = "http", integration_id: str = INTEGRATION_ID) -> str:
    return f"""
personnel_id_field: custom3
window: {{days_back: 0, days_forward: 3}}
delivery:
  type: {kind}
  base_url: {fake.base_url}
  username_env: TEST_TC_USERNAME
  password_env: TEST_TC_PASSWORD
  group_id: {ORG}
  integration_id: {integration_id}
  attempts: 3
  max_retry_seconds: 20
"""


def system():
    s = fresh()  # 11 Ana, 12 Ben, 13 Cy, 19 a placeholder; 101/102 Chicago, 201 Phoenix
    people = {p["id"]: p for p in s["personnel"]}
    people[11]["custom3"], people[13]["custom3"] = "tc-ana", "tc-cy"  # Ben (12) has none
    s["personnel"].append(dict(people[11], id=15, first_name="Eli", last_name="Stone", custom3="tc-eli", active=False))
    for sch in s["schedules"]:
        sch.update(start_date="2026-10-01", end_date="2026-11-30", status="published")
    s["slots"] = [
        slot(7001, 1001, "2026-10-31", 101, 11, "17:00", "07:00"),  # across the fall-back night
        slot(7002, 1001, "2026-11-02", 101, 19, "17:00", "07:00"),  # placeholder: not a row
        slot(7003, 1001, "2026-11-01", 102, 12, "07:00", "15:00"),  # Ben: no custom3, a problem
        slot(7004, 1001, "2026-11-03", 102, None, "07:00", "15:00"),  # unfilled: not a row
        slot(7005, 1001, "2026-11-03", 101, 13, "17:00", "07:00"),  # Cy, on the window's last day
        slot(7006, 1001, "2026-10-30", 101, 11, "17:00", "07:00"),  # yesterday: out
        slot(7007, 1001, "2026-11-04", 101, 11, "17:00", "07:00"),  # today + 4: out
        slot(7008, 2001, "2026-11-01", 201, 13, "07:00", "07:00"),  # Phoenix, 24 h
        slot(7009, 2001, "2026-11-02", 201, 11, "07:00", "07:00"),
        slot(7010, 2001, "2026-11-03", 201, 15, "07:00", "07:00"),  # Eli: inactive, a problem
    ]
    return s


# By hand: per zone, sorted by job token, START, USER_ID; tc-or-day has nobody: its empty-set row.
CHICAGO_ROWS = [
    ("tc-ob-backup", "tc-ana", "2026-10-31 17:00", "2026-11-01 07:00"),
    ("tc-ob-backup", "tc-cy", "2026-11-03 17:00", "2026-11-04 07:00"),
    ("tc-ob-call", "tc-ana", "2026-10-31 17:00", "2026-11-01 07:00"),
    ("tc-ob-call", "tc-cy", "2026-11-03 17:00", "2026-11-04 07:00"),
    ("tc-or-day", "", "", ""),
]
PHOENIX_ROWS = [
    ("tc-ed-24", "tc-cy", "2026-11-01 07:00", "2026-11-02 07:00"),
    ("tc-ed-24", "tc-ana", "2026-11-02 07:00", "2026-11-03 07:00"),
]
CHICAGO_BODY = (
    "JOB_TOKEN,USER_ID,START,END\r\n"
    "tc-ob-backup,tc-ana,2026-10-31 17:00,2026-11-01 07:00\r\n"
    "tc-ob-backup,tc-cy,2026-11-03 17:00,2026-11-04 07:00\r\n"
    "tc-ob-call,tc-ana,2026-10-31 17:00,2026-11-01 07:00\r\n"
    "tc-ob-call,tc-cy,2026-11-03 17:00,2026-11-04 07:00\r\n"
    "tc-or-day,,,\r\n"
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("tigerconnect")
    with TigerConnectFake(username=USER, password=PASSWORD, organizations=(ORG,)) as fake, \
            pytest.MonkeyPatch.context() as env:
        for var, value in {
            "LB_NOW": NOW, "LB_WAREHOUSE": str(root / "warehouse.duckdb"), "LB_OUTBOX_DIR": str(root / "outbox"),
            "LB_CONFIG_DIR": str(root / "config"), "LB_BI_DIR": str(root / "bi"),
            "TEST_TC_USERNAME": USER, "TEST_TC_PASSWORD": PASSWORD,
        }.items():
            env.setenv(var, value)
        env.delenv("LB_API_URL", raising=False)
        write_config(root / "config", "tigerconnect", settings_yaml(fake), MAPPING)
        # The warehouse as the main job leaves it, built directly: the source loaded whole, the
        # configuration written, and the models this push reads.
        warehouse = load_system(root / "source", system(), root / "warehouse.duckdb")
        declared = integration("tigerconnect")
        with duckdb.connect(str(warehouse)) as conn:
            assert declared.write_config(conn, declared.load()) == []
        run_dbt(warehouse, "run", "--select", "+export_tigerconnect")
        run_dbt(warehouse, "test", "--select", "export_tigerconnect")  # the model's own data tests
        from lb_pipelines.definitions import build_definitions

        job = build_definitions().resolve_job_def("tigerconnect_export")
        yield {"root": root, "fake": fake, "job": job, "env": env}


def push(world, tags: dict | None = None, expect_success: bool = True):
    """The integration's own job, its push asset only (the warehouse is built)."""
    result = world["job"].execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False, tags=tags or {}, asset_selection=[OUTPUT]
    )
    assert result.success == expect_success, step_failures(result)
    return result


def sql(world, query: str, params=None) -> list[tuple]:
    with duckdb.connect(str(world["root"] / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(query, params).fetchall()


def uploads(fake: TigerConnectFake, integration_id: str = INTEGRATION_ID) -> list[tuple[str, list]]:
    return [(u["zone"], u["rows"]) for u in fake.uploads if u["integration_id"] == integration_id]


def test_window_forward_is_capped_at_30_days():
    with pytest.raises(ValidationError) as refused:
        TigerConnectSettings(window={"days_forward": 31})
    message = str(refused.value)
    assert "window.days_forward" in message and "maximum of 30" in message
    assert TigerConnectSettings(window={"days_forward": 30}).window.days_forward == 30
    assert TigerConnectSettings().window.days_back == 0 and TigerConnectSettings().cadence == "*/10 * * * *"


def test_a_wrong_password_fails_clearly_and_marks_nothing(world):
    fake = world["fake"]
    world["env"].setenv("TEST_TC_PASSWORD", "not-the-pw-93")
    try:
        for tags in ({}, CHANGE_LOG_RUN):  # the reconcile's download, then a run on change's upload
            result = push(world, tags, expect_success=False)
            [message] = step_failures(result)
            assert "TigerConnect refused the username and password" in message, message
            assert "TEST_TC_PASSWORD" in message and "not-the-pw-93" not in message
    finally:
        world["env"].setenv("TEST_TC_PASSWORD", PASSWORD)
    # zones are read (and sent) side by side: each run stops at its first 401
    assert {r.status for r in fake.requests()} == {401}
    assert {r.path for r in fake.requests()} == {DOWNLOAD_PATH, UPLOAD_PATH}
    assert fake.uploads == []
    assert sql(world, "SELECT count(*) FROM delivery.pushed_state WHERE integration = 'tigerconnect'") == [(0,)]
    ledger = sql(world, "SELECT status, error FROM delivery.ledger WHERE integration = 'tigerconnect'")
    assert [s for s, _ in ledger] == ["failed", "failed"]
    assert all("refused the username and password" in e and "not-the-pw-93" not in e for _, e in ledger)
    fake.clear_log()


def test_first_push_uploads_one_csv_per_zone_by_hand(world):
    fake = world["fake"]
    # A reconcile: downloads both zones (nothing held: an empty set for each token), so each
    # upload is an update of what TigerConnect holds.
    result = push(world)
    assert sorted(uploads(fake)) == [(CHICAGO, CHICAGO_ROWS), (PHOENIX, PHOENIX_ROWS)]
    assert fake.held(ORG, INTEGRATION_ID, CHICAGO) == CHICAGO_ROWS[:4]  # the empty token holds nothing
    assert fake.held(ORG, INTEGRATION_ID, PHOENIX) == PHOENIX_ROWS
    sent = fake.requests("POST", UPLOAD_PATH + "$")
    assert sorted(r.headers["Tt-X-Timezone"] for r in sent) == [CHICAGO, PHOENIX]
    for r in sent:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/csv")
        assert (r.headers["Tt-X-Organization-Key"], r.headers["Tt-X-Integration-Id"]) == (ORG, INTEGRATION_ID)
        assert r.headers["Authorization"] == "***"  # sent (the fake masks it in its log)
    meta = metadata_of(result, ["tigerconnect", "pushed"])
    assert (meta["updated"], meta["requests_sent"], meta["zones"], meta["rows_wanted"]) == (2, 2, 2, 6)
    assert (meta["job_tokens"], meta["job_tokens_empty"]) == (4, 1)
    assert (meta["placeholder_slots"], meta["unfilled_slots"], meta["drift_found"]) == (1, 1, 0)
    problems = sql(world, "SELECT kind, record, field FROM delivery.problems WHERE run_id = ? ORDER BY kind",
                   [result.run_id])
    assert problems == [
        ("person_not_exportable", "slot 7010 (tc-ed-24 2026-11-03 07:00)", "personnel_id"),
        ("person_without_vendor_id", "slot 7003 (tc-or-day 2026-11-01 07:00)", "custom3"),
    ]
    assert sql(world, "SELECT target, object_key, label FROM delivery.pushed_state ORDER BY target") == [
        (CHICAGO, CHICAGO, f"zone {CHICAGO}"), (PHOENIX, PHOENIX, f"zone {PHOENIX}"),
    ]
    # run storage names no TigerConnect user: the preview masks USER_ID
    assert "tc-ana" not in json.dumps({k: str(v) for k, v in meta.items()})


def test_a_second_run_with_no_change_sends_nothing(world):
    fake = world["fake"]
    fake.clear_log()
    result = push(world, CHANGE_LOG_RUN)  # compares with the pushed state: not even a download
    assert fake.requests() == []
    assert metadata_of(result, ["tigerconnect", "pushed"])["unchanged"] == 2
    result = push(world)  # a reconcile: downloads both zones, finds them as pushed, uploads nothing
    assert [r.path for r in fake.requests()] == [DOWNLOAD_PATH, DOWNLOAD_PATH]
    meta = metadata_of(result, ["tigerconnect", "pushed"])
    assert (meta["unchanged"], meta["requests_sent"], meta["drift_found"]) == (2, 0, 0)
    assert len(uploads(fake)) == 2


def test_a_row_added_by_hand_is_drift_and_the_zone_is_restored(world):
    fake = world["fake"]
    fake.preload(ORG, INTEGRATION_ID, CHICAGO, [("tc-or-day", "tc-zed", "2026-11-01 07:00", "2026-11-01 15:00")])
    fake.preload(ORG, INTEGRATION_ID, PHOENIX, [("tc-not-ours", "tc-x", "2026-11-01 07:00", "2026-11-01 15:00")])
    result = push(world)
    meta = metadata_of(result, ["tigerconnect", "pushed"])
    assert (meta["drift_found"], meta["updated"], meta["unchanged"]) == (1, 1, 1)  # a token not mapped: not ours
    drift = sql(world, "SELECT kind, record FROM delivery.problems WHERE run_id = ? AND kind LIKE 'drift%'",
                [result.run_id])
    assert drift == [("drift_changed_in_target", f"zone {CHICAGO}")]
    assert uploads(fake)[-1] == (CHICAGO, CHICAGO_ROWS)
    assert fake.held(ORG, INTEGRATION_ID, CHICAGO) == CHICAGO_ROWS[:4]  # tc-zed's row gone again
    assert fake.held(ORG, INTEGRATION_ID, PHOENIX)[-1][0] == "tc-not-ours"  # left alone


def test_429_with_retry_after_then_one_upload(world):
    fake = world["fake"]
    with duckdb.connect(str(world["root"] / "warehouse.duckdb")) as conn:
        conn.execute("DELETE FROM delivery.pushed_state WHERE integration = 'tigerconnect' AND target = ?", [PHOENIX])
    fake.answer("POST", UPLOAD_PATH + "$", 429, headers={"Retry-After": "1"})
    before = len(uploads(fake))
    fake.clear_log()
    result = push(world, CHANGE_LOG_RUN)
    assert uploads(fake)[before:] == [(PHOENIX, PHOENIX_ROWS)]  # one upload stored
    statuses = [r.status for r in fake.requests("POST", UPLOAD_PATH + "$")]
    assert statuses == [429, 200]
    throttled, retried = fake.requests("POST", UPLOAD_PATH + "$")
    assert retried.at - throttled.at >= 0.9  # it waited what TigerConnect asked
    assert sql(world, "SELECT action, status, attempts, outcome FROM delivery.request_ledger WHERE run_id = ?",
               [result.run_id]) == [("create", 200, 2, "accepted")]


def test_shadow_writes_the_row_differences_and_sends_nothing(world):
    root, fake = world["root"], world["fake"]
    held = [
        ("tc-ob-call", "tc-ana", "2026-10-31 17:00", "2026-11-01 07:00"),  # as the schedule says: not listed
        ("tc-ob-call", "tc-old", "2026-11-02 17:00", "2026-11-03 07:00"),  # not in the schedule: removed
        ("tc-or-day", "tc-zed", "2026-11-01 07:00", "2026-11-01 15:00"),  # its token is sent empty: removed
        ("tc-unmapped", "tc-x", "2026-11-01 07:00", "2026-11-01 15:00"),  # not a token we map: untouched
    ]
    fake.preload(ORG, SHADOW_ID, CHICAGO, held)
    write_config(root / "config", "tigerconnect", settings_yaml(fake, "shadow", SHADOW_ID), MAPPING)
    before = fake.uploads
    fake.clear_log()
    try:
        result = push(world)
    finally:
        write_config(root / "config", "tigerconnect", settings_yaml(fake), MAPPING)
    assert fake.uploads == before and {r.path for r in fake.requests()} == {DOWNLOAD_PATH}
    assert set(fake.held(ORG, SHADOW_ID, CHICAGO)) == set(held)
    [file] = (root / "outbox" / "tigerconnect").glob("preview-*.csv")
    assert file.name == "preview-202610311200.csv"
    assert file.read_text().splitlines() == [
        "action,zone,JOB_TOKEN,USER_ID,START,END",
        "add,America/Chicago,tc-ob-backup,tc-ana,2026-10-31 17:00,2026-11-01 07:00",
        "add,America/Chicago,tc-ob-backup,tc-cy,2026-11-03 17:00,2026-11-04 07:00",
        "remove,America/Chicago,tc-ob-call,tc-old,2026-11-02 17:00,2026-11-03 07:00",
        "add,America/Chicago,tc-ob-call,tc-cy,2026-11-03 17:00,2026-11-04 07:00",
        "remove,America/Chicago,tc-or-day,tc-zed,2026-11-01 07:00,2026-11-01 15:00",
        "add,America/Phoenix,tc-ed-24,tc-cy,2026-11-01 07:00,2026-11-02 07:00",
        "add,America/Phoenix,tc-ed-24,tc-ana,2026-11-02 07:00,2026-11-03 07:00",
    ]
    meta = metadata_of(result, ["tigerconnect", "pushed"])
    assert (meta["mode"], meta["requests_sent"]) == ("shadow", 0)
    assert "tc-old" not in str(meta["preview"]) and "•••" in str(meta["preview"])  # USER_ID masked


def test_a_job_token_added_to_the_mapping_is_sent_empty_and_is_not_drift(world):
    root, fake = world["root"], world["fake"]
    declared = integration("tigerconnect")

    def map_and_push(mapping: str):
        write_config(root / "config", "tigerconnect", settings_yaml(fake), mapping)
        with duckdb.connect(str(root / "warehouse.duckdb")) as conn:
            assert declared.write_config(conn, declared.load()) == []
        return metadata_of(push(world), ["tigerconnect", "pushed"])

    try:
        meta = map_and_push(MAPPING + "102,tc-or-night\n")  # nobody on it: its empty-set row
        assert (meta["drift_found"], meta["updated"], meta["unchanged"]) == (0, 1, 1)
        assert uploads(fake)[-1] == (CHICAGO, [*CHICAGO_ROWS[:4], ("tc-or-day", "", "", ""), ("tc-or-night", "", "", "")])
    finally:
        meta = map_and_push(MAPPING)  # taken out again: no drift either; Chicago's upload without it
    assert (meta["drift_found"], meta["updated"], meta["unchanged"]) == (0, 1, 1)
    assert uploads(fake)[-1] == (CHICAGO, CHICAGO_ROWS)


def test_a_zone_no_longer_mapped_is_left_alone_never_deleted(world):
    root, fake = world["root"], world["fake"]
    declared = integration("tigerconnect")

    def map_and_push(mapping: str):
        write_config(root / "config", "tigerconnect", settings_yaml(fake), mapping)
        with duckdb.connect(str(root / "warehouse.duckdb")) as conn:
            assert declared.write_config(conn, declared.load()) == []
        run_dbt(root / "warehouse.duckdb", "run", "--select", "export_tigerconnect")  # its rows go too
        return metadata_of(push(world), ["tigerconnect", "pushed"])

    fake.clear_log()
    try:
        meta = map_and_push("assignment_id,job_token\n201,tc-ed-24\n")  # Chicago's tokens unmapped
        assert (meta["deleted"], meta["drift_found"], meta["requests_sent"], meta["zones"]) == (0, 0, 0, 1)
        assert [r.headers["Tt-X-Timezone"] for r in fake.requests()] == [PHOENIX]  # Chicago not even read
        assert fake.held(ORG, INTEGRATION_ID, CHICAGO) == CHICAGO_ROWS[:4]  # kept as last sent
    finally:
        meta = map_and_push(MAPPING)
    assert (meta["drift_found"], meta["unchanged"], meta["requests_sent"]) == (0, 2, 0)


def test_dry_run_writes_each_upload_without_credentials(world):
    root, fake = world["root"], world["fake"]
    with duckdb.connect(str(root / "warehouse.duckdb")) as conn:
        conn.execute("DELETE FROM delivery.pushed_state WHERE integration = 'tigerconnect'")
    write_config(root / "config", "tigerconnect", settings_yaml(fake, "dry_run"), MAPPING)
    fake.clear_log()
    try:
        push(world)
    finally:
        write_config(root / "config", "tigerconnect", settings_yaml(fake), MAPPING)
    assert fake.requests() == []
    [file] = (root / "outbox" / "tigerconnect").glob("requests-*.jsonl")
    requests = sorted((json.loads(line) for line in file.read_text().splitlines()), key=lambda r: r["headers"]["TT-X-Timezone"])
    assert [r["headers"]["TT-X-Timezone"] for r in requests] == [CHICAGO, PHOENIX]
    chicago = requests[0]
    assert (chicago["method"], chicago["url"]) == ("POST", fake.base_url + UPLOAD_PATH)
    assert chicago["headers"] == {
        "Content-Type": "text/csv; charset=utf-8", "TT-X-Organization-Key": ORG,
        "TT-X-Integration-Id": INTEGRATION_ID, "TT-X-Timezone": CHICAGO,
    }
    assert chicago["body"] == CHICAGO_BODY
