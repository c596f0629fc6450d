"""The feed service over real HTTP: who is on call (JSON), calendars (iCalendar), Vocera's documents.

One warehouse is built from the hand-made system (tiny_system) with two on-call vendors mapped;
each test serves its own BI copy of it (werkzeug on 127.0.0.1, any free port). Every expected
answer is worked out by hand below. Chicago is CST (UTC-6) after 2026-11-01 02:00.

Published slots (schedule 1001, Chicago; schedule 2001 of Phoenix is a draft: never on call):
  5001  101 OB Anesthesia Call  Nov 1 17:00 -> Nov 2 07:00  Ana (11)   23:00Z -> 13:00Z
  5003  102 OR Day              Nov 2 07:00 -> 15:00        Ben (12)   13:00Z -> 21:00Z
  5002  101 OB Anesthesia Call  Nov 2 17:00 -> Nov 3 07:00  placeholder 19 "Anesthesia On Call"
  5004  102 OR Day              Nov 3 07:00 -> 15:00        nobody (a gap)

Mappings (personnel_id_field unique_id: Ana U11, Ben U12, the placeholder none):
  perfectserve  101 -> PS-ANES Attending (call order 1); 102 -> PS-ANES OR Day (2); 201 -> PS-ED
  amtelco       102 -> AM-OR Anesthesia (1)
Teams as the feed lists them (vendor folder order, then team): AM-OR, PS-ANES, PS-ED.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
import subprocess
import sys
import threading

import duckdb
import icalendar
import pytest
import requests

from lb_pipelines import cli
from lb_pipelines.feeds.server import FeedApp, make_feed_server
from lb_pipelines.feeds.tokens import issue_token, revoke_token
from lb_pipelines.integrations.registry import integration
from lb_pipelines.warehouse.bi_publish import publish_for_bi
from pipeline_helpers import write_config
from test_bi_publish import WRITER
from tiny_system import fresh
from warehouse_helpers import load_system, run_dbt

KEY, SECOND_KEY = "feed-key-one-7f3a", "feed-key-two-91c4"
PS_MAPPING = """assignment_id,team_id,role,priority
101,PS-ANES,Attending,1
102,PS-ANES,OR Day,2
201,PS-ED,Physician,1
"""
AM_MAPPING = """assignment_id,team_id,role,priority
102,AM-OR,Anesthesia,1
"""
SETTINGS = "personnel_id_field: unique_id\n"

ANA = {"personnel_id": 11, "name": "Ana Reyes", "vendor_user_id": "U11", "pager": "4011",
       "cell_phone": "312-555-0111", "placeholder": False}
BEN = {"personnel_id": 12, "name": "Ben Okafor", "vendor_user_id": "U12", "pager": None, "cell_phone": None,
       "placeholder": False}
PLACEHOLDER = {"personnel_id": 19, "name": "Anesthesia On Call", "vendor_user_id": None, "pager": "4999",
               "cell_phone": "312-555-0199", "placeholder": True}
OB_CALL = {"id": 101, "name": "OB Anesthesia Call"}
OR_DAY = {"id": 102, "name": "OR Day"}


def entry(position, role, call_order, assignment, start, end, person):
    return {"position": position, "role": role, "call_order": call_order, "assignment": assignment,
            "start": start, "end": end, "time_zone": "America/Chicago", "person": person}


# The entries of the four slots, per team (positions set where used).
ANA_5001 = dict(role="Attending", call_order=1, assignment=OB_CALL,
                start="2026-11-01T23:00:00Z", end="2026-11-02T13:00:00Z", person=ANA)
BEN_5003_PS = dict(role="OR Day", call_order=2, assignment=OR_DAY,
                   start="2026-11-02T13:00:00Z", end="2026-11-02T21:00:00Z", person=BEN)
BEN_5003_AM = dict(BEN_5003_PS, role="Anesthesia", call_order=1)
PLACEHOLDER_5002 = dict(role="Attending", call_order=1, assignment=OB_CALL,
                        start="2026-11-02T23:00:00Z", end="2026-11-03T13:00:00Z", person=PLACEHOLDER)
GAP_5004_PS = dict(role="OR Day", call_order=2, assignment=OR_DAY,
                   start="2026-11-03T13:00:00Z", end="2026-11-03T21:00:00Z", person=None)
GAP_5004_AM = dict(GAP_5004_PS, role="Anesthesia", call_order=1)


def teams(am_or=(), ps_anes=(), ps_ed=()):
    return [
        {"vendor": vendor, "team_id": team, "on_call": [entry(i + 1, **e) for i, e in enumerate(entries)]}
        for vendor, team, entries in (("amtelco", "AM-OR", am_or), ("perfectserve", "PS-ANES", ps_anes),
                                      ("perfectserve", "PS-ED", ps_ed))
    ]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("feed")
    warehouse = load_system(folder / "src", fresh(), folder / "warehouse.duckdb")
    write_config(folder / "config", "perfectserve", SETTINGS, PS_MAPPING)
    write_config(folder / "config", "amtelco", SETTINGS, AM_MAPPING)
    with duckdb.connect(str(warehouse)) as conn:
        for slug in ("perfectserve", "amtelco"):
            declared = integration(slug)
            assert declared.write_config(conn, declared.load(folder / "config")) == []
    run_dbt(warehouse, "build", "--select", "+export_perfectserve", "+export_amtelco", "+fct_calendar_events",
            "dim_assignments", "--indirect-selection", "cautious")
    return warehouse


class Feed:
    """A served BI copy of its own live warehouse (a copy of the built one)."""

    def __init__(self, warehouse, bi_dir, app):
        self.warehouse, self.bi_dir, self.app = warehouse, bi_dir, app
        self.server = make_feed_server(app, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def get(self, path, key=KEY, **kwargs):
        headers = kwargs.pop("headers", {})
        if key is not None:
            headers = {"X-API-Key": key, **headers}
        return requests.get(self.url + path, headers=headers, timeout=30, **kwargs)

    def publish(self):
        publish_for_bi(self.warehouse, self.bi_dir)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def feed(built, lb_env, monkeypatch):
    warehouse = lb_env / "warehouse.duckdb"  # LB_WAREHOUSE and LB_BI_DIR point here (lb_env)
    shutil.copyfile(built, warehouse)
    publish_for_bi(warehouse, lb_env / "bi")
    monkeypatch.setenv("LB_FEED_API_KEYS", f" {KEY}, {SECOND_KEY} ,")
    (lb_env / "outbox" / "vocera" / "teams").mkdir(parents=True)
    served = Feed(warehouse, lb_env / "bi", FeedApp())  # the paths and keys from the environment
    yield served
    served.stop()


def at(monkeypatch, now: str) -> None:
    monkeypatch.setenv("LB_NOW", now)


def test_every_path_but_health_and_calendars_needs_an_api_key(feed, monkeypatch):
    at(monkeypatch, "2026-11-02T07:00:00-06:00")
    for path in ("/oncall/now", "/oncall?date=2026-11-02", "/vocera/teams/PS-ANES.json"):
        assert feed.get(path, key=None).status_code == 401
        assert feed.get(path, key="feed-key-one").status_code == 401  # a prefix of a key is no key
        assert feed.get(path, key=None, headers={"Authorization": f"Bearer {KEY}x"}).status_code == 401
    missing = feed.get("/oncall/now", key=None)
    assert missing.json() == {"error": "an API key is required: X-API-Key: <key> or Authorization: Bearer <key>"}
    assert feed.get("/oncall/now", key=None, headers={"Authorization": f"Bearer {SECOND_KEY}"}).status_code == 200
    assert feed.get("/oncall/now", key=SECOND_KEY).status_code == 200
    published = dt.datetime.fromtimestamp((feed.bi_dir / "warehouse.duckdb").stat().st_mtime, dt.timezone.utc)
    health = feed.get("/health", key=None)
    assert (health.status_code, health.json()) == (
        200, {"status": "ok", "bi_copy_published_at": published.isoformat()}
    )
    assert feed.get("/calendars/not-a-token.ics", key=None).status_code == 404  # no 401: the token is the key


def test_one_second_before_the_0700_handover_the_night_person_is_on_call(feed, monkeypatch):
    at(monkeypatch, "2026-11-02T06:59:59-06:00")
    answer = feed.get("/oncall/now")
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json"
    # 12:59:59Z: Ana's night call (until 13:00Z); Ben's OR day starts at 13:00Z: AM-OR has nobody.
    assert answer.json() == {"as_of": "2026-11-02T06:59:59-06:00", "teams": teams(ps_anes=[ANA_5001])}


def test_at_0700_exactly_the_day_person_is_on_call_and_the_night_person_is_gone(feed, monkeypatch):
    at(monkeypatch, "2026-11-02T07:00:00-06:00")
    assert feed.get("/oncall/now").json() == {
        "as_of": "2026-11-02T07:00:00-06:00", "teams": teams(am_or=[BEN_5003_AM], ps_anes=[BEN_5003_PS]),
    }


def test_a_placeholder_comes_with_its_contact_details_and_no_vendor_id(feed, monkeypatch):
    at(monkeypatch, "2026-11-02T20:00:00-06:00")  # 02:00Z Nov 3: the placeholder's night call
    assert feed.get("/oncall/now").json()["teams"] == teams(ps_anes=[PLACEHOLDER_5002])


def test_an_unfilled_slot_is_a_gap_with_person_null(feed, monkeypatch):
    at(monkeypatch, "2026-11-03T08:00:00-06:00")  # 14:00Z: 5004 has nobody, in both vendors' teams
    assert feed.get("/oncall/now").json()["teams"] == teams(am_or=[GAP_5004_AM], ps_anes=[GAP_5004_PS])


def test_team_and_vendor_narrow_the_answer_and_an_unknown_one_is_404(feed, monkeypatch):
    at(monkeypatch, "2026-11-02T07:00:00-06:00")
    _, ps_anes, ps_ed = teams(am_or=[BEN_5003_AM], ps_anes=[BEN_5003_PS])
    assert feed.get("/oncall/now?team=PS-ED").json()["teams"] == [ps_ed]  # mapped, nobody ever on call
    assert feed.get("/oncall/now?vendor=perfectserve").json()["teams"] == [ps_anes, ps_ed]
    assert feed.get("/oncall/now?team=PS-ANES&vendor=perfectserve").json()["teams"] == [ps_anes]
    for path, error in (
        ("/oncall/now?team=PS-NOPE", "no mapped team 'PS-NOPE'"),
        ("/oncall/now?team=PS-ANES&vendor=amtelco", "no mapped team 'PS-ANES'"),
        ("/oncall?date=2026-11-02&team=PS-NOPE", "no mapped team 'PS-NOPE'"),
        ("/oncall/now?vendor=spok", "no enabled on-call vendor 'spok' with a mapped team"),
    ):
        answer = feed.get(path)
        assert (answer.status_code, answer.json()) == (404, {"error": error}), path


def test_a_day_lists_every_entry_overlapping_it_on_the_local_clock(feed, monkeypatch):
    at(monkeypatch, "2026-11-20T12:00:00-06:00")  # the moment does not matter for a day
    # Nov 2 in Chicago is [06:00Z Nov 2, 06:00Z Nov 3): Ana's call ending 07:00, Ben's day, the
    # placeholder's call starting 17:00, in start order.
    assert feed.get("/oncall?date=2026-11-02").json() == {
        "date": "2026-11-02",
        "teams": teams(am_or=[BEN_5003_AM], ps_anes=[ANA_5001, BEN_5003_PS, PLACEHOLDER_5002]),
    }
    # Nov 3: the placeholder's call ending 07:00, then the unfilled OR day.
    assert feed.get("/oncall?date=2026-11-03&team=PS-ANES").json() == {
        "date": "2026-11-03",
        "teams": [{"vendor": "perfectserve", "team_id": "PS-ANES",
                   "on_call": [entry(1, **PLACEHOLDER_5002), entry(2, **GAP_5004_PS)]}],
    }


@pytest.mark.parametrize("query, error", [
    ("", "parameter date is missing: /oncall?date=YYYY-MM-DD (or /oncall/now)"),
    ("?date=2026-13-01", "parameter date must be a date written YYYY-MM-DD"),
    ("?date=02/11/2026", "parameter date must be a date written YYYY-MM-DD"),
    ("?date=20261102", "parameter date must be a date written YYYY-MM-DD"),
    ("?date=", "parameter date is empty"),
    ("?day=2026-11-02", "unknown parameter day (this path takes date, team, vendor)"),
])
def test_a_missing_or_bad_date_is_400_naming_the_parameter(feed, query, error):
    answer = feed.get("/oncall" + query)
    assert (answer.status_code, answer.json()) == (400, {"error": error})


def test_read_only_other_methods_are_405(feed):
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        answer = requests.request(method, feed.url + "/oncall/now", headers={"X-API-Key": KEY}, timeout=30)
        assert answer.status_code == 405, method
        assert answer.json() == {"error": "read-only: GET only"}


def test_a_calendar_answers_for_a_live_token_only(feed, monkeypatch):
    at(monkeypatch, "2026-11-02T07:00:00-06:00")
    with duckdb.connect(str(feed.warehouse)) as conn:
        token_id, token = issue_token(conn, 11, "Ana's phone", dt.datetime(2026, 11, 2, 12, tzinfo=dt.timezone.utc))
    assert feed.get(f"/calendars/{token}.ics", key=None).status_code == 404  # not published yet
    feed.publish()
    answer = feed.get(f"/calendars/{token}.ics", key=None)  # no API key: calendar programs send none
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/calendar; charset=utf-8"
    events = icalendar.Calendar.from_ical(answer.content).walk("VEVENT")
    # Ana's one published slot: 5001, Nov 1 17:00 -> Nov 2 07:00 Chicago time.
    assert [(str(e["SUMMARY"]), e.decoded("DTSTART").isoformat(), e.decoded("DTEND").isoformat(), str(e["STATUS"]))
            for e in events] == [
        ("OB Anesthesia Call", "2026-11-01T17:00:00-06:00", "2026-11-02T07:00:00-06:00", "CONFIRMED"),
    ]
    with duckdb.connect(str(feed.warehouse)) as conn:
        assert revoke_token(conn, token_id, dt.datetime(2026, 11, 2, 13, tzinfo=dt.timezone.utc))
    assert feed.get(f"/calendars/{token}.ics", key=None).status_code == 200  # until the next publish
    feed.publish()
    revoked = feed.get(f"/calendars/{token}.ics", key=None)
    made_up = feed.get("/calendars/Zm9vYmFyLXRoaXMtaXMtbm90LWEtdG9rZW4tYXQtYWxs.ics", key=None)
    assert (revoked.status_code, revoked.text) == (404, "not found\n")
    assert (made_up.status_code, made_up.text) == (404, "not found\n")  # the same: nothing said about which


def test_calendar_tokens_from_the_command_line_take_effect_at_once(feed, monkeypatch, capsys):
    at(monkeypatch, "2026-11-02T07:00:00-06:00")
    assert cli.main(["calendar-token", "issue", "--person", "12", "--label", "Ben, desk",
                     "--base-url", feed.url + "/"]) == 0
    printed = capsys.readouterr().out
    token_id = re.search(r"token id:\s+(\S+)", printed).group(1)
    url = re.search(r"feed URL:\s+(\S+)", printed).group(1)
    token = re.fullmatch(re.escape(feed.url) + r"/calendars/([A-Za-z0-9_-]{40,})\.ics", url).group(1)
    ics = requests.get(url, timeout=30)  # the BI copy was republished by the command
    assert ics.status_code == 200 and b"SUMMARY:OR Day" in ics.content
    assert cli.main(["calendar-token", "list"]) == 0
    listed = capsys.readouterr().out
    assert token_id in listed and "Ben, desk" in listed and token not in listed  # the id, never the token
    assert cli.main(["calendar-token", "revoke", token_id]) == 0
    assert requests.get(url, timeout=30).status_code == 404
    assert cli.main(["calendar-token", "revoke", token_id]) == 1  # revoked already
    assert cli.main(["calendar-token", "issue", "--person", "19"]) == 1  # a placeholder has no calendar
    capsys.readouterr()


def test_the_feed_answers_while_a_run_holds_the_live_warehouse(feed, monkeypatch):
    at(monkeypatch, "2026-11-02T07:00:00-06:00")
    with duckdb.connect(str(feed.warehouse)) as conn:
        _, token = issue_token(conn, 11, None, dt.datetime(2026, 11, 2, 12, tzinfo=dt.timezone.utc))
    feed.publish()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(feed.warehouse)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing"
        with pytest.raises(duckdb.IOException):  # the live warehouse is locked against everyone else
            duckdb.connect(str(feed.warehouse), read_only=True)
        answer = feed.get("/oncall/now")  # the server's first look at the copy, during the write
        assert answer.json()["teams"] == teams(am_or=[BEN_5003_AM], ps_anes=[BEN_5003_PS])
        assert feed.get(f"/calendars/{token}.ics", key=None).status_code == 200
        assert feed.get("/health", key=None).status_code == 200
    finally:
        writer.communicate("done\n", timeout=30)
    assert writer.returncode == 0


def test_a_republished_copy_is_read_without_restarting(feed, monkeypatch):
    at(monkeypatch, "2026-11-02T07:00:00-06:00")
    assert feed.get("/oncall/now?team=PS-ANES").json()["teams"][0]["on_call"] == [entry(1, **BEN_5003_PS)]
    day = "/oncall?date=2026-11-02&team=PS-ANES"
    assert len(feed.get(day).json()["teams"][0]["on_call"]) == 3  # a day's answer is remembered per copy
    # The next build: Ben's OR day is gone from PerfectServe's rows, and PS-ED is renamed PS-EMERGENCY.
    with duckdb.connect(str(feed.warehouse)) as conn:
        conn.execute("DELETE FROM exports.export_perfectserve WHERE slot_id = 5003")
        conn.execute("UPDATE config.perfectserve__mapping SET team_id = 'PS-EMERGENCY' WHERE team_id = 'PS-ED'")
    feed.publish()
    assert feed.get("/oncall/now?vendor=perfectserve").json()["teams"] == [
        {"vendor": "perfectserve", "team_id": "PS-ANES", "on_call": []},
        {"vendor": "perfectserve", "team_id": "PS-EMERGENCY", "on_call": []},
    ]
    assert feed.get(day).json()["teams"][0]["on_call"] == [entry(1, **ANA_5001), entry(2, **PLACEHOLDER_5002)]


def test_the_access_log_has_paths_statuses_and_times_but_no_token_or_key(feed, monkeypatch, caplog):
    at(monkeypatch, "2026-11-02T07:00:00-06:00")
    with duckdb.connect(str(feed.warehouse)) as conn:
        _, token = issue_token(conn, 11, None, dt.datetime(2026, 11, 2, 12, tzinfo=dt.timezone.utc))
    feed.publish()
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="werkzeug"):
        assert feed.get(f"/calendars/{token}.ics", key=None).status_code == 200
        assert feed.get(f"/calendar/{token}.ics", key=None).status_code == 404  # mistyped: still a token
        assert feed.get(f"/calendars/{token}", key=None).status_code == 404
        assert feed.get("/oncall/now?team=PS-ANES").status_code == 200
        assert feed.get("/oncall/now", key="wrong-key-5e1d").status_code == 401
        assert feed.get("/oncall/now", key=None, headers={"Authorization": f"Bearer {SECOND_KEY}"}).status_code == 200
    server_side = [r for r in caplog.records if not r.name.startswith("urllib3")]  # not this test's client
    lines = [r.getMessage() for r in server_side if r.name == "lb_pipelines.feeds.access"]
    assert [re.sub(r" [\d.]+ ms$", " <ms>", line) for line in lines] == [
        "GET /calendars/<redacted>.ics 200 <ms>",
        "GET /calendar/... 404 <ms>",
        "GET /calendars/... 404 <ms>",
        "GET /oncall/now 200 <ms>",
        "GET /oncall/now 401 <ms>",
        "GET /oncall/now 200 <ms>",
    ]
    everything = "\n".join(logging.Formatter("%(name)s %(message)s").format(r) for r in server_side)
    for secret in (token, token[:12], KEY, SECOND_KEY, "wrong-key-5e1d", "Ana", "U11", "312-555"):
        assert secret not in everything


def test_vocera_team_documents_are_served_as_published(feed):
    teams_dir = feed.bi_dir.parent / "outbox" / "vocera" / "teams"
    document = b'{"team_id":"PS-ANES","oncall":[]}'
    (teams_dir / "PS-ANES.json").write_bytes(document)
    (feed.bi_dir.parent / "outbox" / "vocera" / "secret.json").write_bytes(b"{}")
    answer = feed.get("/vocera/teams/PS-ANES.json")
    assert (answer.status_code, answer.headers["Content-Type"], answer.content) == (200, "application/json", document)
    again = feed.get("/vocera/teams/PS-ANES.json", headers={"If-None-Match": answer.headers["ETag"]})
    assert again.status_code == 304  # a poller's unchanged document costs nothing
    assert feed.get("/vocera/teams/PS-ED.json").status_code == 404
    for path in ("/vocera/teams/..%2Fsecret.json", "/vocera/teams/../secret.json", "/vocera/teams/.PS-ANES.json",
                 "/vocera/teams/%2e%2e/secret.json"):
        assert feed.get(path).status_code == 404, path
    assert feed.get("/vocera/teams/PS-ANES.json", key=None).status_code == 401


def test_without_a_bi_copy_the_feed_says_to_run_make_run(lb_env, monkeypatch):
    monkeypatch.setenv("LB_FEED_API_KEYS", KEY)
    served = Feed(lb_env / "warehouse.duckdb", lb_env / "bi", FeedApp())  # nothing published yet
    try:
        for path in ("/oncall/now", "/oncall?date=2026-11-02", "/health"):
            answer = served.get(path)
            assert answer.status_code == 503, path
            assert "run `make run` first" in answer.text
        assert served.get("/calendars/abc.ics", key=None).status_code == 503
    finally:
        served.stop()
