"""The API client against the real simulator on loopback: tokens, paging, retries, errors, secrets.

Every expected value is worked out by hand from the small fixture written by `write_source`.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path

import orjson
import pytest

from lb_pipelines.lightning_bolt.source.api_client import ApiClient, ApiError
from lb_pipelines.lightning_bolt.source.contract import Window
from lb_pipelines.lightning_bolt.source.records import SourceRecordError
from lb_pipelines.lightning_bolt.simulator import Simulator

CLIENT_ID = "lb-test"
SECRET = "s3cret-9f2c41-do-not-log"
WRONG_SECRET = "wr0ng-77aa10-do-not-log"
SLOT_COUNT = 253  # page_size 10 -> 26 pages, the last one holding 3 slots
FIRST_DAY = dt.date(2026, 3, 1)
STAMP = "2026-02-20T08:00:00-06:00"

# Small and fast: 4 attempts, backoff 0.05 s doubling to at most 0.2 s, jitter up to 0.05 s.
FAST = dict(page_size=10, timeout=(2, 5), max_attempts=4, max_retry_seconds=10.0)
FAST.update(backoff_initial=0.05, backoff_max=0.2)


def slot_date(slot_id: int) -> dt.date:
    """Ten slots a day from 2026-03-01: ids 1-10 on the 1st, 11-20 on the 2nd, ..."""
    return FIRST_DAY + dt.timedelta(days=(slot_id - 1) // 10)


def write_source(folder: Path, *, slots: int = SLOT_COUNT, broken_slot: int | None = None) -> Path:
    """A hand-made directory source; `broken_slot` loses its required `start_time` field."""
    department = {"timezone": "America/Chicago", "coid": "0910"}
    departments = [
        {**department, "id": 1, "name": "Cardiology", "kronos_department_id": "CARD"},
        {**department, "id": 2, "name": "Anesthesiology", "kronos_department_id": None},
    ]
    person = {
        "abbreviation": None, "emp_id": None, "unique_id": None, "custom1": None, "custom2": None,
        "custom3": None, "custom4": None, "cell_phone": None, "pager": None, "home_coid": "0910",
        "away_coid": None, "active": True, "updated_at": STAMP,
    }  # fmt: skip
    personnel = [
        {**person, "id": 101, "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org",
         "personnel_type": "Physician", "department_ids": [1], "is_placeholder": False},
        {**person, "id": 102, "first_name": "Ben", "last_name": "Casey", "email": None,
         "personnel_type": "CRNA", "department_ids": [2], "is_placeholder": False},
        {**person, "id": 103, "first_name": None, "last_name": "Cardiology On Call", "email": None,
         "personnel_type": "Physician", "department_ids": [1], "is_placeholder": True},
    ]  # fmt: skip
    assignment = {"active": True, "updated_at": STAMP}
    assignments = [
        {**assignment, "id": 11, "department_id": 1, "name": "Cardiology Call", "abbreviation": "CC",
         "assignment_type": "Call", "default_start": "17:00", "default_end": "07:00"},
        {**assignment, "id": 12, "department_id": 1, "name": "Clinic", "abbreviation": None,
         "assignment_type": "Shift", "default_start": "08:00", "default_end": "17:00"},
        {**assignment, "id": 21, "department_id": 2, "name": "OR 1", "abbreviation": "OR1",
         "assignment_type": "Shift", "default_start": "07:00", "default_end": "15:00"},
    ]  # fmt: skip
    schedules = [
        {"id": 1, "department_id": 1, "start_date": "2026-03-01", "end_date": "2026-03-14",
         "status": "published", "published_at": STAMP, "version": 1},
        {"id": 2, "department_id": 1, "start_date": "2026-03-15", "end_date": "2026-03-28",
         "status": "draft", "published_at": None, "version": 1},
        {"id": 3, "department_id": 2, "start_date": "2026-03-01", "end_date": "2026-03-31",
         "status": "published", "published_at": STAMP, "version": 2},
    ]  # fmt: skip
    slot_rows = []
    for slot_id in range(1, slots + 1):
        day = slot_date(slot_id)
        slot_rows.append(
            {"id": slot_id, "schedule_id": 1 if day.day <= 14 else 2, "date": day.isoformat(),
             "assignment_id": 11 if slot_id % 2 else 12, "personnel_id": 101 if slot_id % 3 else None,
             "start_time": "17:00", "end_time": "07:00", "notes": None, "updated_at": STAMP}
        )  # fmt: skip
        if slot_id == broken_slot:
            del slot_rows[-1]["start_time"]
    requests_ = [
        {"id": 1, "personnel_id": 101, "start_date": "2026-03-02", "end_date": "2026-03-06",
         "request_type": "Vacation", "status": "approved", "created_at": STAMP, "updated_at": STAMP},
        {"id": 2, "personnel_id": 102, "start_date": "2026-03-20", "end_date": "2026-03-20",
         "request_type": "Day Off", "status": "pending", "created_at": STAMP, "updated_at": STAMP},
    ]  # fmt: skip
    tally = {"tally_name": "Calls", "period_start": "2026-03-01", "period_end": "2026-03-31"}
    tallies = [{**tally, "personnel_id": 101, "value": 6}, {**tally, "personnel_id": 102, "value": 2.5}]
    change_log = [
        {"id": n, "changed_at": STAMP, "user": "scheduler", "action": "update", "entity": "slot",
         "entity_id": n, "schedule_id": 1, "date": slot_date(n).isoformat(), "field": "personnel_id",
         "old_value": None, "new_value": "101"}
        for n in range(1, 21)
    ]  # fmt: skip
    view_settings = [{"id": 1, "name": "Default", "owner": "admin", "settings": {"columns": ["date"]}}]
    folder.mkdir(parents=True, exist_ok=True)
    for name, rows in {
        "departments": departments,
        "personnel": personnel,
        "assignments": assignments,
        "schedules": schedules,
        "slots": slot_rows,
        "requests": requests_,
        "tallies": tallies,
        "change_log": change_log,
        "view_settings": view_settings,
    }.items():
        (folder / f"{name}.jsonl").write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return folder


@pytest.fixture
def clients() -> list[ApiClient]:
    """Every client a test made, so the log check can look for its tokens too."""
    return []


@pytest.fixture(autouse=True)
def no_secrets_in_logs(caplog, clients):
    caplog.set_level(logging.DEBUG)
    yield
    forbidden = [SECRET, WRONG_SECRET, "Bearer "]
    for client in clients:
        if client._token is not None:
            forbidden += [t for t in (client._token.access, client._token.refresh) if t]
    # At teardown `caplog.records` holds only teardown's records: read the test's own phases.
    records = caplog.get_records("setup") + caplog.get_records("call")
    for record in records:
        text = caplog.handler.format(record)
        for secret in forbidden:
            assert secret not in text, f"a secret or token reached the log: {record.name} {record.levelname}"


@pytest.fixture
def sim(tmp_path):
    with Simulator(write_source(tmp_path / "source"), client_id=CLIENT_ID, client_secret=SECRET) as sim:
        yield sim


@pytest.fixture
def make_client(sim, clients):
    def make(base_url: str | None = None, secret: str = SECRET, **overrides) -> ApiClient:
        client = ApiClient(base_url or sim.url, CLIENT_ID, secret, **{**FAST, **overrides})
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def ids(records) -> list[int]:
    return [r["id"] for r in records]


ALL_SLOTS = list(range(1, SLOT_COUNT + 1))


def test_paging_across_many_pages_yields_every_record_once_in_order(sim, make_client):
    client = make_client(page_size=10)
    assert ids(client.read("slots")) == ALL_SLOTS
    assert sim.stats["requests"]["/api/v1/slots"] == 26  # 25 full pages and one of 3
    assert sim.stats["client_credentials_grants"] == 1
    assert sim.stats["refresh_grants"] == 0  # an hour-long token outlives the extract


def test_reference_entities_come_back_whole(make_client):
    client = make_client(page_size=2)
    assert ids(client.read("departments")) == [1, 2]
    assert ids(client.read("personnel")) == [101, 102, 103]
    assert [r["settings"] for r in client.read("view_settings")] == [{"columns": ["date"]}]


def test_window_and_since_id_are_passed_to_the_api(make_client):
    client = make_client(page_size=7)
    # 2026-03-05..07 are days 5-7: slots 41-70.
    assert ids(client.read("slots", Window(dt.date(2026, 3, 5), dt.date(2026, 3, 7)))) == list(range(41, 71))
    # Schedules overlapping 03-20..03-25: #2 (03-15..28) and #3 (03-01..31), not #1 (ends 03-14).
    assert ids(client.read("schedules", Window(dt.date(2026, 3, 20), dt.date(2026, 3, 25)))) == [2, 3]
    # Requests overlapping 03-06..03-19: only #1 (03-02..06).
    assert ids(client.read("requests", Window(dt.date(2026, 3, 6), dt.date(2026, 3, 19)))) == [1]
    assert ids(client.read("change_log", since_id=15)) == [16, 17, 18, 19, 20]
    assert ids(client.read("change_log", since_id=20)) == []
    # A window means nothing to reference data: every department still comes back.
    assert ids(client.read("departments", Window(dt.date(2026, 3, 5), dt.date(2026, 3, 7)))) == [1, 2]


def test_token_expiring_mid_extract_is_renewed_and_the_extract_completes(sim, make_client):
    client = make_client(page_size=10)
    seen = []
    for record in client.read("slots"):
        seen.append(record["id"])
        if len(seen) == 30:  # after page 3 the server forgets every token it issued
            sim.expire_tokens()
    assert seen == ALL_SLOTS
    stats = sim.stats
    assert stats["unauthorized"] == 1
    assert stats["refresh_grants"] == 1
    assert stats["client_credentials_grants"] == 1
    assert stats["requests"]["/api/v1/slots"] == 27  # 26 pages + page 4 sent again


def test_short_lived_token_is_refreshed_before_it_expires(sim, make_client):
    sim.token_lifetime = 0.6  # the client renews after 0.3 s: half the lifetime, not the 60 s margin
    sim.inject(path="/api/v1/slots", kind="slow", times=None, delay=0.15)
    client = make_client(page_size=50)  # 6 pages x 0.15 s = 0.9 s: three token lifetimes' worth
    assert ids(client.read("slots")) == ALL_SLOTS
    stats = sim.stats
    assert stats["unauthorized"] == 0
    # Renewed about every 0.3 s of a ~0.9 s extract: 2 or 3 refreshes, not one per page (5).
    assert 2 <= stats["refresh_grants"] <= 4


def test_refused_refresh_falls_back_to_client_credentials(sim, make_client):
    sim.refuse_refresh = True
    client = make_client(page_size=10)
    seen = []
    for record in client.read("slots"):
        seen.append(record["id"])
        if len(seen) == 20:  # page 3 meets a 401; the refresh is refused; client credentials again
            sim.expire_tokens()
    assert seen == ALL_SLOTS
    stats = sim.stats
    assert (stats["refresh_refused"], stats["refresh_grants"]) == (1, 0)
    assert stats["client_credentials_grants"] == 2


def test_401_with_a_fresh_token_is_an_error_not_a_loop(sim, make_client):
    sim.token_lifetime = 0  # every token the server issues is refused at once
    client = make_client()
    with pytest.raises(ApiError) as caught:
        list(client.read("departments"))
    assert "GET /api/v1/departments: HTTP 401 with a freshly issued token" in str(caught.value)
    stats = sim.stats
    assert (stats["client_credentials_grants"], stats["unauthorized"]) == (1, 1)


def test_429_waits_the_whole_retry_after(sim, make_client):
    sim.inject(path="/api/v1/slots", kind="429", times=1, retry_after=2.0, after=1)
    client = make_client(page_size=50)
    started = time.monotonic()
    assert ids(client.read("slots")) == ALL_SLOTS
    elapsed = time.monotonic() - started
    assert 2.0 <= elapsed < 6.0  # the 2 s wait plus six loopback pages (slack for a busy CI machine)
    assert sim.stats["faults_fired"] == 1
    assert sim.stats["requests"]["/api/v1/slots"] == 7  # 6 pages + page 2 again


def test_429_longer_than_the_retry_budget_fails_at_once(sim, make_client):
    sim.inject(path="/api/v1/departments", kind="429", times=None, retry_after=30.0)
    client = make_client(max_retry_seconds=5.0)
    started = time.monotonic()
    with pytest.raises(ApiError) as caught:
        list(client.read("departments"))
    assert time.monotonic() - started < 5.0  # refused, not slept on (30 s)
    message = str(caught.value)
    assert "GET /api/v1/departments" in message
    assert "Retry-After 30 s exceeds" in message
    assert caught.value.status == 429
    assert caught.value.attempts == 1


def test_500_then_success_is_retried(sim, make_client):
    sim.inject(path="/api/v1/slots", kind="500", times=2, after=3)  # pages 4 fails twice, then answers
    client = make_client(page_size=10)
    assert ids(client.read("slots")) == ALL_SLOTS
    assert sim.stats["faults_fired"] == 2
    assert sim.stats["requests"]["/api/v1/slots"] == 28  # 26 pages + 2 failed attempts


def test_500_forever_fails_naming_endpoint_status_and_attempts_in_bounded_time(sim, make_client):
    sim.inject(path="/api/v1/departments", kind="500", times=None)
    client = make_client()
    started = time.monotonic()
    with pytest.raises(ApiError) as caught:
        list(client.read("departments"))
    elapsed = time.monotonic() - started
    # Waits after attempts 1-3: 0.05, 0.10, 0.20 s, each plus at most 0.05 s jitter, capped at 0.2 s:
    # at least 0.35 s, at most 0.10 + 0.15 + 0.20 = 0.45 s, plus four quick loopback requests.
    assert 0.35 <= elapsed < 0.45 + 3.0  # slack for a busy CI machine
    message = str(caught.value)
    assert "GET /api/v1/departments" in message
    assert "HTTP 500" in message
    assert "4 attempts" in message
    assert (caught.value.status, caught.value.attempts) == (500, 4)
    assert sim.stats["requests"]["/api/v1/departments"] == 4


def test_retry_budget_bounds_the_backoff_before_the_attempts_run_out(sim, make_client):
    sim.inject(path="/api/v1/departments", kind="500", times=None)
    client = make_client(max_attempts=100, max_retry_seconds=0.5, backoff_initial=0.1, backoff_max=0.2)
    started = time.monotonic()
    with pytest.raises(ApiError, match="retry budget") as caught:
        list(client.read("departments"))
    # Waits 0.1-0.2, 0.2, 0.2 s...: the client stops before a wait that would end past 0.5 s.
    assert time.monotonic() - started < 0.5 + 2.0  # slack for a busy CI machine
    assert 2 <= caught.value.attempts <= 4


def test_dropped_connection_mid_page_is_retried_without_duplicates(sim, make_client):
    sim.inject(path="/api/v1/slots", kind="drop", times=1, after=5)
    client = make_client(page_size=10)
    assert ids(client.read("slots")) == ALL_SLOTS
    assert sim.stats["faults_fired"] == 1
    assert sim.stats["requests"]["/api/v1/slots"] == 27


def test_read_timeout_is_retried(sim, make_client):
    sim.inject(path="/api/v1/departments", kind="slow", times=1, delay=1.0)
    client = make_client(timeout=(2, 0.3))
    assert ids(client.read("departments")) == [1, 2]
    assert sim.stats["requests"]["/api/v1/departments"] == 2


def test_wrong_base_path_fails_at_once_with_path_and_status(sim, make_client):
    client = make_client(base_url=sim.url + "/wrong")
    with pytest.raises(ApiError) as caught:
        list(client.read("departments"))
    message = str(caught.value)
    assert "/wrong/oauth/token" in message  # the first request anyone sends is for a token
    assert "HTTP 404" in message
    assert caught.value.attempts == 1


def test_unknown_personnel_is_a_404_naming_the_endpoint(sim, make_client):
    client = make_client()
    with pytest.raises(ApiError) as caught:
        client.patch_personnel(999, {"email": "nobody@example.org"})
    message = str(caught.value)
    assert "PATCH /api/v1/personnel/999" in message
    assert "HTTP 404" in message
    assert sim.stats["requests"]["/api/v1/personnel/999"] == 1


def test_patch_personnel_returns_the_updated_record(sim, make_client):
    client = make_client()
    updated = client.patch_personnel(102, {"email": "ben@example.org", "pager": "4411"})
    assert (updated["id"], updated["email"], updated["pager"]) == (102, "ben@example.org", "4411")
    assert [r["email"] for r in client.read("personnel")] == ["ada@example.org", "ben@example.org", None]
    assert ids(client.read("change_log", since_id=20)) != []
    with pytest.raises(ValueError, match="last_name"):
        client.patch_personnel(102, {"last_name": "Smith"})


def test_wrong_client_secret_is_a_clear_error_without_a_retry_storm(sim, make_client, caplog):
    client = make_client(secret=WRONG_SECRET)
    with pytest.raises(ApiError) as caught:
        list(client.read("departments"))
    message = str(caught.value)
    assert "POST /oauth/token" in message
    assert "client credentials" in message
    assert WRONG_SECRET not in message and SECRET not in message
    assert WRONG_SECRET not in repr(client) and WRONG_SECRET not in client.description
    assert sim.stats["requests"]["/oauth/token"] == 1
    assert sim.stats["requests"].get("/api/v1/departments", 0) == 0
    assert any("/oauth/token" in r.getMessage() for r in caplog.records)  # logged, and checked at teardown


def test_record_missing_a_required_field_names_endpoint_page_item_and_field(tmp_path):
    source = write_source(tmp_path / "broken", broken_slot=37)
    with Simulator(source, client_id=CLIENT_ID, client_secret=SECRET) as sim:
        with ApiClient(sim.url, CLIENT_ID, SECRET, **FAST) as client:
            records = client.read("slots")
            got = [next(records)["id"] for _ in range(36)]
            with pytest.raises(SourceRecordError) as caught:
                next(records)
    assert got == list(range(1, 37))
    expected = "GET /api/v1/slots page 4 item 7, field 'start_time': required field is missing"
    assert str(caught.value) == expected
    assert caught.value.field == "start_time"


def test_description_and_repr_hide_the_secret(sim, make_client):
    client = make_client()
    assert client.description == f"api {sim.url}"
    assert SECRET not in repr(client)
    assert ApiClient("https://user:pw@lb.example.org/", "id", "x").description == "api https://lb.example.org"


def test_retry_after_header_forms():
    from lb_pipelines.lightning_bolt.source.api_client import _retry_after

    assert _retry_after("2") == 2.0
    assert _retry_after("0.5") == 0.5
    assert _retry_after("-3") == 0.0
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date already past: go now
    assert _retry_after("soon") is None  # unusable: the backoff decides
    assert _retry_after(None) is None
