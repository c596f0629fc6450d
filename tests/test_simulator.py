"""The Lightning Bolt simulator against a small hand-made directory source.

Every expected value below is worked out by hand from the fixture in `SOURCE`.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from lb_pipelines.lightning_bolt.source.contract import ENTITIES, Window
from lb_pipelines.lightning_bolt.simulator import Simulator, SourceLoadError

NOW = "2026-03-05T09:30:00-06:00"
SECRET = "s3cret-do-not-log"
T0 = "2026-01-01T00:00:00+00:00"


def _person(pid: int, first: str | None, last: str, **extra: Any) -> dict[str, Any]:
    record = {
        "id": pid, "first_name": first, "last_name": last, "abbreviation": None, "emp_id": f"E{pid}",
        "unique_id": f"U{pid}", "custom1": None, "custom2": None, "custom3": None, "custom4": None,
        "email": f"p{pid}@example.org", "cell_phone": "555-0100", "pager": None,
        "personnel_type": "Physician", "department_ids": [1], "home_coid": "0100", "away_coid": None,
        "is_placeholder": False, "active": True, "updated_at": T0,
    }
    return {**record, **extra}


def _slot(sid: int, schedule: int, date: str, assignment: int, person: int | None) -> dict[str, Any]:
    times = {100: ("17:00", "07:00"), 101: ("07:00", "17:00"), 200: ("08:00", "08:00")}[assignment]
    return {
        "id": sid, "schedule_id": schedule, "date": date, "assignment_id": assignment, "personnel_id": person,
        "start_time": times[0], "end_time": times[1], "notes": None, "updated_at": T0,
    }


# Slots in (date, id) order: 1 2 3 | 4 5 12 | 6 | 7 | 8 9 | 10 | 11. Schedule 2 is a draft.
SLOT_ROWS = {
    1: (1, "2026-03-01", 100, 10), 2: (1, "2026-03-01", 101, 11), 3: (3, "2026-03-01", 200, 12),
    4: (1, "2026-03-02", 100, 11), 5: (1, "2026-03-02", 101, None), 12: (3, "2026-03-02", 200, 12),
    6: (1, "2026-03-07", 100, 10), 7: (2, "2026-03-08", 100, 11), 8: (2, "2026-03-09", 101, 10),
    9: (3, "2026-03-09", 200, 12), 10: (2, "2026-03-14", 100, None), 11: (3, "2026-03-31", 200, 12),
}
SLOT_ORDER = [1, 2, 3, 4, 5, 12, 6, 7, 8, 9, 10, 11]

SOURCE: dict[str, list[dict[str, Any]]] = {
    "departments": [
        {"id": 1, "name": "Anesthesiology", "timezone": "America/Chicago", "coid": "0100",
         "kronos_department_id": "K-ANES"},
        {"id": 2, "name": "Cardiology", "timezone": "America/New_York", "coid": "0200",
         "kronos_department_id": None},
    ],
    "personnel": [
        _person(12, None, "Cardiology On Call", is_placeholder=True),
        _person(10, "Ana", "Alvarez"),
        _person(11, "Ben", "Baker"),
    ],
    "assignments": [
        {"id": 100, "department_id": 1, "name": "OR Call", "abbreviation": "ORC", "assignment_type": "Call",
         "default_start": "17:00", "default_end": "07:00", "active": True, "updated_at": T0},
        {"id": 101, "department_id": 1, "name": "Day", "abbreviation": "DAY", "assignment_type": "Shift",
         "default_start": "07:00", "default_end": "17:00", "active": True, "updated_at": T0},
        {"id": 200, "department_id": 2, "name": "Cardiology Call", "abbreviation": None,
         "assignment_type": "Call", "default_start": "08:00", "default_end": "08:00", "active": True,
         "updated_at": T0},
    ],
    "schedules": [
        {"id": 3, "department_id": 2, "start_date": "2026-03-01", "end_date": "2026-03-31",
         "status": "published", "published_at": "2026-02-21T08:00:00-05:00", "version": 1},
        {"id": 1, "department_id": 1, "start_date": "2026-03-01", "end_date": "2026-03-07",
         "status": "published", "published_at": "2026-02-20T12:00:00-06:00", "version": 3},
        {"id": 2, "department_id": 1, "start_date": "2026-03-08", "end_date": "2026-03-14", "status": "draft",
         "published_at": None, "version": 1},
    ],
    # written out of order on purpose: the simulator sorts
    "slots": [_slot(sid, *SLOT_ROWS[sid]) for sid in (11, 3, 7, 1, 12, 9, 5, 2, 10, 6, 4, 8)],
    "requests": [
        {"id": 2, "personnel_id": 11, "start_date": "2026-03-20", "end_date": "2026-03-20",
         "request_type": "Day Off", "status": "pending", "created_at": T0, "updated_at": T0},
        {"id": 1, "personnel_id": 10, "start_date": "2026-03-05", "end_date": "2026-03-09",
         "request_type": "Vacation", "status": "approved", "created_at": T0, "updated_at": T0},
    ],
    "tallies": [
        {"personnel_id": 11, "tally_name": "Calls", "period_start": "2026-02-01", "period_end": "2026-02-28",
         "value": 2},
        {"personnel_id": 10, "tally_name": "Weekends", "period_start": "2026-03-01",
         "period_end": "2026-03-31", "value": 1.5},
        {"personnel_id": 10, "tally_name": "Calls", "period_start": "2026-03-01", "period_end": "2026-03-31",
         "value": 4},
    ],
    "change_log": [
        {"id": 1, "changed_at": "2026-02-20T12:00:00-06:00", "user": "admin", "action": "publish",
         "entity": "schedule", "entity_id": 1, "schedule_id": None, "date": None, "field": "status",
         "old_value": "draft", "new_value": "published"},
        {"id": 2, "changed_at": "2026-02-22T10:00:00-06:00", "user": "admin", "action": "update",
         "entity": "slot", "entity_id": 4, "schedule_id": 1, "date": "2026-03-02", "field": "personnel_id",
         "old_value": "10", "new_value": "11"},
    ],
    "view_settings": [
        {"id": 1, "name": "Default", "owner": "admin", "settings": {"columns": ["date", "name"]}},
    ],
}


def write_source(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for entity, records in SOURCE.items():
        lines = [orjson.dumps(r).decode() for r in records]
        (folder / f"{entity}.jsonl").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_source(tmp_path / "source")


@pytest.fixture
def sim(source: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LB_NOW", NOW)
    with Simulator(source, client_id="lb-test", client_secret=SECRET, max_page_size=100) as running:
        yield running


class Api:
    """A bare client for the tests: one session, one token."""

    def __init__(self, sim: Simulator):
        self.url = sim.url
        self.session = requests.Session()
        self.pair = token(sim)
        self.session.headers["Authorization"] = f"Bearer {self.pair['access_token']}"

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.session.get(self.url + path, params=params, timeout=5)

    def data(self, path: str, **params: Any) -> list[dict[str, Any]]:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def all(self, path: str, **params: Any) -> list[list[dict[str, Any]]]:
        """Every page of a paged read."""
        pages = []
        while True:
            body = self.get(path, **params).json()
            pages.append(body["data"])
            if body["next_cursor"] is None:
                return pages
            params["cursor"] = body["next_cursor"]

    def send(self, method: str, path: str, body: Any = None, user: str | None = None) -> requests.Response:
        headers = {"X-LB-User": user} if user else {}
        return self.session.request(method, self.url + path, json=body, headers=headers, timeout=5)


def token(sim: Simulator, secret: str = SECRET, client_id: str = "lb-test") -> dict[str, Any]:
    response = requests.post(
        f"{sim.url}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return response.json()


def refresh(sim: Simulator, refresh_token: str) -> requests.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return requests.post(f"{sim.url}/oauth/token", data=form, timeout=5)


def ids(records: list[dict[str, Any]]) -> list[Any]:
    return [r["id"] for r in records]


@pytest.fixture
def api(sim: Simulator) -> Api:
    return Api(sim)


# -- authentication -------------------------------------------------------------------------


def test_client_credentials_grant_gives_a_bearer_token_that_reads(sim: Simulator) -> None:
    pair = token(sim)
    assert pair["token_type"] == "Bearer" and pair["expires_in"] == 3600
    assert pair["access_token"] and pair["refresh_token"] and pair["access_token"] != pair["refresh_token"]
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    response = requests.get(f"{sim.url}/api/v1/departments", headers=headers, timeout=5)
    assert response.status_code == 200
    assert response.json() == {"data": SOURCE["departments"], "next_cursor": None}  # exactly as stored
    assert sim.stats["client_credentials_grants"] == 1


@pytest.mark.parametrize(
    "client_id, secret", [("lb-test", "wrong"), ("someone-else", SECRET), ("lb-test", "")]
)
def test_wrong_client_credentials_are_refused(sim: Simulator, client_id: str, secret: str) -> None:
    response = requests.post(
        f"{sim.url}/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        timeout=5,
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert sim.stats["client_credentials_grants"] == 0


def test_refresh_gives_a_new_pair_and_consumes_the_old_refresh_token(sim: Simulator) -> None:
    first = token(sim)
    response = refresh(sim, first["refresh_token"])
    assert response.status_code == 200
    second = response.json()
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    headers = {"Authorization": f"Bearer {second['access_token']}"}
    assert requests.get(f"{sim.url}/api/v1/departments", headers=headers, timeout=5).status_code == 200
    again = refresh(sim, first["refresh_token"])
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert refresh(sim, "never-issued").status_code == 400
    assert refresh(sim, second["refresh_token"]).status_code == 200
    stats = sim.stats
    assert (stats["refresh_grants"], stats["refresh_refused"]) == (2, 2)
    assert stats["client_credentials_grants"] == 1


def test_refuse_refresh_answers_invalid_grant(sim: Simulator) -> None:
    pair = token(sim)
    sim.refuse_refresh = True
    response = refresh(sim, pair["refresh_token"])
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    sim.refuse_refresh = False
    assert refresh(sim, pair["refresh_token"]).status_code == 200  # refusing did not consume it


def test_expired_missing_and_unknown_tokens_get_401(sim: Simulator) -> None:
    long_lived = token(sim)
    sim.token_lifetime = 0.2
    short = token(sim)
    assert short["expires_in"] == 0.2
    url = f"{sim.url}/api/v1/departments"

    def status(access: str | None) -> requests.Response:
        headers = {"Authorization": f"Bearer {access}"} if access else {}
        return requests.get(url, headers=headers, timeout=5)

    assert status(short["access_token"]).status_code == 200
    time.sleep(0.3)
    expired = status(short["access_token"])
    assert expired.status_code == 401
    assert expired.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert status(long_lived["access_token"]).status_code == 200
    sim.expire_tokens()
    assert status(long_lived["access_token"]).status_code == 401
    assert status(None).status_code == 401
    assert status("made-up").status_code == 401
    assert sim.stats["unauthorized"] == 4


# -- reads ------------------------------------------------------------------------------------


def test_paging_returns_every_slot_once_in_date_then_id_order(api: Api) -> None:
    pages = api.all("/api/v1/slots", page_size=5)
    assert [ids(p) for p in pages] == [[1, 2, 3, 4, 5], [12, 6, 7, 8, 9], [10, 11]]
    # a last page that is exactly full says so: no empty extra page
    by_four = [ids(p) for p in api.all("/api/v1/slots", page_size=4)]
    assert by_four == [SLOT_ORDER[:4], SLOT_ORDER[4:8], SLOT_ORDER[8:]]
    by_id = {r["id"]: r for r in SOURCE["slots"]}
    assert [r for p in pages for r in p] == [by_id[i] for i in SLOT_ORDER]
    assert ids(api.data("/api/v1/slots")) == SLOT_ORDER  # default page size 500


def test_paging_other_entities_in_key_order(api: Api) -> None:
    assert [ids(p) for p in api.all("/api/v1/personnel", page_size=2)] == [[10, 11], [12]]
    tallies = api.all("/api/v1/tallies", page_size=1)
    keys = [(t["personnel_id"], t["tally_name"]) for p in tallies for t in p]
    assert keys == [(10, "Calls"), (10, "Weekends"), (11, "Calls")]
    assert [ids(p) for p in api.all("/api/v1/changelog", page_size=1)] == [[1], [2]]
    assert api.data("/api/v1/view_settings") == SOURCE["view_settings"]


def test_page_size_is_clamped_to_the_maximum(source: Path) -> None:
    with Simulator(source, client_id="lb-test", client_secret=SECRET, max_page_size=3) as small:
        assert [ids(p) for p in Api(small).all("/api/v1/slots", page_size=1000)][0] == [1, 2, 3]


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"start_date": "2026-03-02", "end_date": "2026-03-08"}, [4, 5, 12, 6, 7]),
        ({"start_date": "2026-03-07", "end_date": "2026-03-07"}, [6]),
        ({"start_date": "2026-03-09"}, [8, 9, 10, 11]),
        ({"end_date": "2026-03-01"}, [1, 2, 3]),
        ({"start_date": "2026-03-03", "end_date": "2026-03-06"}, []),
        ({"start_date": "2026-03-02", "end_date": "2026-03-08", "published_only": "true"}, [4, 5, 12, 6]),
        ({"published_only": "true"}, [1, 2, 3, 4, 5, 12, 6, 9, 11]),
        ({"published_only": "false", "end_date": "2026-03-01"}, [1, 2, 3]),
    ],
)
def test_slot_window_filters(api: Api, params: dict[str, str], expected: list[int]) -> None:
    assert ids(api.data("/api/v1/slots", **params)) == expected
    assert [i for p in api.all("/api/v1/slots", page_size=2, **params) for i in ids(p)] == expected


@pytest.mark.parametrize(
    "path, params, expected",
    [
        ("/api/v1/schedules", {"start_date": "2026-03-07", "end_date": "2026-03-07"}, [1, 3]),
        ("/api/v1/schedules", {"start_date": "2026-03-08"}, [2, 3]),
        ("/api/v1/schedules", {"start_date": "2026-03-14", "end_date": "2026-04-01"}, [2, 3]),
        ("/api/v1/schedules", {"end_date": "2026-02-28"}, []),
        ("/api/v1/schedules", {}, [1, 2, 3]),
        ("/api/v1/requests", {"start_date": "2026-03-09", "end_date": "2026-03-19"}, [1]),
        ("/api/v1/requests", {"start_date": "2026-03-10", "end_date": "2026-03-19"}, []),
        ("/api/v1/requests", {"end_date": "2026-03-20"}, [1, 2]),
        ("/api/v1/personnel", {"start_date": "2030-01-01"}, [10, 11, 12]),  # reference data: no window
    ],
)
def test_range_entities_filter_by_overlap(api: Api, path: str, params: dict, expected: list[int]) -> None:
    assert ids(api.data(path, **params)) == expected


@pytest.mark.parametrize(
    "start, end", [("2026-03-01", "2026-03-01"), ("2026-03-02", "2026-03-09"), ("2026-03-10", "2026-03-31"),
                   ("2026-02-01", "2026-02-27"), ("2026-03-31", "2026-04-30")],
)
def test_windows_follow_the_contract_rule(api: Api, start: str, end: str) -> None:
    """Whatever the window, the API answers exactly what `Entity.in_window` keeps."""
    window = Window(dt.date.fromisoformat(start), dt.date.fromisoformat(end))
    for name in ("slots", "schedules", "requests", "tallies"):
        entity = ENTITIES[name]
        expected = [r for r in SOURCE[name] if entity.in_window(r, window)]
        found = [r for page in api.all(entity.endpoint, start_date=start, end_date=end, page_size=2) for r in page]
        assert sorted(map(orjson.dumps, found)) == sorted(map(orjson.dumps, expected)), name


def test_tallies_filter_by_period_overlap(api: Api) -> None:
    found = api.data("/api/v1/tallies", start_date="2026-02-28", end_date="2026-03-01")
    assert [(t["personnel_id"], t["tally_name"], t["period_start"]) for t in found] == [
        (10, "Calls", "2026-03-01"), (10, "Weekends", "2026-03-01"), (11, "Calls", "2026-02-01"),
    ]
    assert [t["personnel_id"] for t in api.data("/api/v1/tallies", end_date="2026-02-27")] == [11]


def test_changelog_since_id(api: Api) -> None:
    assert ids(api.data("/api/v1/changelog", since_id=1)) == [2]
    assert ids(api.data("/api/v1/changelog", since_id=2)) == []
    assert ids(api.data("/api/v1/changelog")) == [1, 2]
    assert ids(api.data("/api/v1/changelog", since_id=0)) == [1, 2]


@pytest.mark.parametrize(
    "path, params, parameter",
    [
        ("/api/v1/slots", {"start_date": "2026-3-1"}, "start_date"),
        ("/api/v1/slots", {"end_date": "2026-02-30"}, "end_date"),
        ("/api/v1/schedules", {"start_date": "2026-03-09", "end_date": "2026-03-08"}, "end_date"),
        ("/api/v1/slots", {"page_size": "0"}, "page_size"),
        ("/api/v1/slots", {"page_size": "ten"}, "page_size"),
        ("/api/v1/slots", {"published_only": "maybe"}, "published_only"),
        ("/api/v1/changelog", {"since_id": "x"}, "since_id"),
        ("/api/v1/slots", {"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(api: Api, path: str, params: dict, parameter: str):
    response = api.get(path, **params)
    assert response.status_code == 400
    body = response.json()
    assert body["parameter"] == parameter and parameter in body["message"]


def test_a_cursor_belongs_to_its_endpoint_and_filters(api: Api) -> None:
    cursor = api.get("/api/v1/slots", page_size=2, end_date="2026-03-02").json()["next_cursor"]
    assert api.get("/api/v1/personnel", cursor=cursor).status_code == 400
    forged = base64.urlsafe_b64encode(b'{"e":"slots","k":["2026-03-01",1],"f":{"end_date":5}}').decode()
    assert api.get("/api/v1/slots", cursor=forged).status_code == 400
    assert api.get("/api/v1/slots", cursor=cursor, end_date="2026-03-09").status_code == 400
    # repeating the same filters, or leaving them out, continues the same read
    assert ids(api.data("/api/v1/slots", cursor=cursor, end_date="2026-03-02", page_size=2)) == [3, 4]
    assert ids(api.data("/api/v1/slots", cursor=cursor)) == [3, 4, 5, 12]


def test_unknown_path_is_404_and_wrong_method_405(api: Api) -> None:
    missing = api.get("/api/v1/nothing")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert api.get("/elsewhere").status_code == 404
    wrong = api.send("POST", "/api/v1/departments", {})
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"
    assert api.send("GET", "/api/v1/slots/1/assign").status_code == 405
    assert api.send("GET", "/oauth/token").status_code == 405


def test_paging_survives_writes_between_pages(api: Api) -> None:
    first = api.get("/api/v1/slots", page_size=5).json()
    assert ids(first["data"]) == [1, 2, 3, 4, 5]
    assert api.send("DELETE", "/api/v1/slots/12").status_code == 204  # not yet read
    assert api.send("DELETE", "/api/v1/slots/2").status_code == 204  # already read
    early = api.send("POST", "/api/v1/slots", {"schedule_id": 1, "date": "2026-03-01", "assignment_id": 100})
    late = api.send("POST", "/api/v1/slots", {"schedule_id": 3, "date": "2026-03-31", "assignment_id": 200})
    assert (early.json()["id"], late.json()["id"]) == (13, 14)
    rest = api.all("/api/v1/slots", page_size=5, cursor=first["next_cursor"])
    assert [ids(p) for p in rest] == [[6, 7, 8, 9, 10], [11, 14]]


# -- faults ------------------------------------------------------------------------------------


def test_429_carries_retry_after_and_times_is_respected(sim: Simulator, api: Api) -> None:
    sim.inject(path="/api/v1/slots", kind="429", times=2, retry_after=1.0)
    for _ in range(2):
        limited = api.get("/api/v1/slots")
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    assert api.get("/api/v1/slots").status_code == 200
    sim.inject(path="/api/v1/slots", kind="429", retry_after=0.5)
    assert api.get("/api/v1/slots").headers["Retry-After"] == "0.5"
    assert sim.stats["faults_fired"] == 3
    assert sim.stats["requests"]["/api/v1/slots"] == 4


def test_500_only_on_the_matching_prefix(sim: Simulator, api: Api) -> None:
    sim.inject(path="/api/v1/slots", kind="500", times=1)
    assert api.get("/api/v1/personnel").status_code == 200
    assert api.get("/api/v1/slots", start_date="2026-03-01").status_code == 500
    assert api.get("/api/v1/slots").status_code == 200


def test_after_lets_the_first_requests_through(sim: Simulator, api: Api) -> None:
    sim.inject(path="/api/v1/", kind="500", times=1, after=2)
    codes = [api.get("/api/v1/departments").status_code for _ in range(4)]
    assert codes == [200, 200, 500, 200]


def test_times_none_faults_until_cleared(sim: Simulator, api: Api) -> None:
    sim.inject(path="/api/v1/departments", kind="500", times=None)
    assert [api.get("/api/v1/departments").status_code for _ in range(3)] == [500, 500, 500]
    sim.clear_faults()
    assert api.get("/api/v1/departments").status_code == 200


def test_slow_answers_after_the_delay(sim: Simulator, api: Api) -> None:
    sim.inject(path="/api/v1/departments", kind="slow", delay=0.3)
    started = time.monotonic()
    response = api.get("/api/v1/departments")
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 200 and ids(response.json()["data"]) == [1, 2]


def test_drop_gives_the_client_an_incomplete_body(sim: Simulator, api: Api) -> None:
    sim.inject(path="/api/v1/slots", kind="drop")
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        api.get("/api/v1/slots")
    assert ids(api.data("/api/v1/slots")) == SLOT_ORDER  # the next request is whole again
    sim.inject(path="/oauth/token", kind="drop")
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        token(sim)


# -- writes ------------------------------------------------------------------------------------


def test_patch_personnel_logs_each_changed_field(api: Api) -> None:
    response = api.send(
        "PATCH", "/api/v1/personnel/10",
        {"email": "ana.alvarez@example.org", "pager": "4-1234", "cell_phone": "555-0100"},
        user="demographics",
    )
    assert response.status_code == 200
    record = response.json()
    assert record["email"] == "ana.alvarez@example.org" and record["pager"] == "4-1234"
    assert record["updated_at"] == NOW and record["last_name"] == "Alvarez"
    assert api.data("/api/v1/personnel", page_size=1)[0] == record
    entries = api.data("/api/v1/changelog", since_id=2)
    assert entries == [
        {"id": 3, "changed_at": NOW, "user": "demographics", "action": "update", "entity": "personnel",
         "entity_id": 10, "schedule_id": None, "date": None, "field": "email", "old_value": "p10@example.org",
         "new_value": "ana.alvarez@example.org"},
        {"id": 4, "changed_at": NOW, "user": "demographics", "action": "update", "entity": "personnel",
         "entity_id": 10, "schedule_id": None, "date": None, "field": "pager", "old_value": None,
         "new_value": "4-1234"},
    ]
    # the same values again change nothing and log nothing
    assert api.send("PATCH", "/api/v1/personnel/10", {"pager": "4-1234"}).json() == record
    cleared = api.send("PATCH", "/api/v1/personnel/10", {"pager": None}).json()
    assert cleared["pager"] is None
    last = api.data("/api/v1/changelog", since_id=4)
    assert [(e["id"], e["user"], e["old_value"], e["new_value"]) for e in last] == [
        (5, "simulator", "4-1234", None)
    ]


def test_patch_personnel_refusals(api: Api) -> None:
    unknown_field = api.send("PATCH", "/api/v1/personnel/10", {"email": "x@example.org", "last_name": "X"})
    assert unknown_field.status_code == 400 and "last_name" in unknown_field.json()["message"]
    assert api.send("PATCH", "/api/v1/personnel/99", {"email": "x@example.org"}).status_code == 404
    assert api.send("PATCH", "/api/v1/personnel/10", {"custom1": 7}).status_code == 400
    assert api.send("PATCH", "/api/v1/personnel/10", ["email"]).status_code == 400
    assert api.data("/api/v1/personnel")[0] == SOURCE["personnel"][1]  # nothing half-applied
    assert ids(api.data("/api/v1/changelog", since_id=2)) == []


def test_create_slot(api: Api) -> None:
    new = {"schedule_id": 1, "date": "2026-03-03", "assignment_id": 100}
    response = api.send("POST", "/api/v1/slots", new)
    assert response.status_code == 201
    created = {
        "id": 13, "schedule_id": 1, "date": "2026-03-03", "assignment_id": 100, "personnel_id": None,
        "start_time": "17:00", "end_time": "07:00", "notes": None, "updated_at": NOW,
    }
    assert response.json() == created
    assert api.data("/api/v1/slots", start_date="2026-03-03", end_date="2026-03-03") == [created]
    entry = api.data("/api/v1/changelog", since_id=2)
    assert entry == [
        {"id": 3, "changed_at": NOW, "user": "simulator", "action": "create", "entity": "slot",
         "entity_id": 13, "schedule_id": 1, "date": "2026-03-03", "field": None, "old_value": None,
         "new_value": None},
    ]
    another = {"schedule_id": 3, "date": "2026-03-03", "assignment_id": 200, "personnel_id": 12,
               "start_time": "09:00", "notes": "backup"}
    second = api.send("POST", "/api/v1/slots", another)
    assert second.status_code == 201
    assert {k: second.json()[k] for k in ("id", "personnel_id", "start_time", "end_time", "notes")} == {
        "id": 14, "personnel_id": 12, "start_time": "09:00", "end_time": "08:00", "notes": "backup"}


@pytest.mark.parametrize(
    "body",
    [
        {"schedule_id": 9, "date": "2026-03-03", "assignment_id": 100},  # unknown schedule
        {"schedule_id": 1, "date": "2026-03-03", "assignment_id": 999},  # unknown assignment
        {"schedule_id": 1, "date": "2026-03-09", "assignment_id": 100},  # outside the schedule
        {"schedule_id": 1, "date": "2026-03-03", "assignment_id": 200},  # another department's assignment
        {"schedule_id": 1, "date": "2026-03-03", "assignment_id": 100, "personnel_id": 99},
        {"schedule_id": 1, "date": "2026-03-03", "assignment_id": 100, "start_time": "25:00"},
        {"schedule_id": 1, "assignment_id": 100},
    ],
)
def test_create_slot_refusals(api: Api, body: dict[str, Any]) -> None:
    assert api.send("POST", "/api/v1/slots", body).status_code == 400
    assert len(api.data("/api/v1/slots")) == 12


def test_assign_unassign_move_and_delete_slots(api: Api) -> None:
    assigned = api.send("POST", "/api/v1/slots/5/assign", {"personnel_id": 10})
    assert assigned.status_code == 200
    assert assigned.json() == {**_slot(5, *SLOT_ROWS[5][:3], 10), "updated_at": NOW}
    assert api.send("POST", "/api/v1/slots/5/unassign").json()["personnel_id"] is None
    move = {"date": "2026-03-03", "start_time": "18:00", "end_time": "07:00"}
    moved = api.send("POST", "/api/v1/slots/1/move", move)
    assert moved.status_code == 200
    assert (moved.json()["date"], moved.json()["start_time"]) == ("2026-03-03", "18:00")
    assert ids(api.data("/api/v1/slots", end_date="2026-03-03")) == [2, 3, 4, 5, 12, 1]
    assert api.send("DELETE", "/api/v1/slots/2").status_code == 204
    assert ids(api.data("/api/v1/slots", end_date="2026-03-01")) == [3]
    entries = api.data("/api/v1/changelog", since_id=2)
    assert [(e["id"], e["action"], e["entity_id"], e["schedule_id"], e["date"], e["field"], e["old_value"],
             e["new_value"]) for e in entries] == [
        (3, "update", 5, 1, "2026-03-02", "personnel_id", None, "10"),
        (4, "update", 5, 1, "2026-03-02", "personnel_id", "10", None),
        (5, "update", 1, 1, "2026-03-03", "date", "2026-03-01", "2026-03-03"),
        (6, "update", 1, 1, "2026-03-03", "start_time", "17:00", "18:00"),
        (7, "delete", 2, 1, "2026-03-01", None, None, None),
    ]
    assert all(e["entity"] == "slot" and e["changed_at"] == NOW for e in entries)
    # refusals
    assert api.send("DELETE", "/api/v1/slots/2").status_code == 404
    assert api.send("POST", "/api/v1/slots/99/assign", {"personnel_id": 10}).status_code == 404
    assert api.send("POST", "/api/v1/slots/4/assign", {"personnel_id": 99}).status_code == 400
    assert api.send("POST", "/api/v1/slots/4/assign", {}).status_code == 400
    outside = api.send("POST", "/api/v1/slots/4/move", {"date": "2026-03-20"})  # schedule 1 ends 03-07
    assert outside.status_code == 400
    assert api.send("POST", "/api/v1/slots/4/move", {"room": "3"}).status_code == 400
    assert ids(api.data("/api/v1/changelog", since_id=7)) == []


def test_publish_and_unpublish_schedules(api: Api) -> None:
    published = api.send("POST", "/api/v1/schedules/2/publish", user="chief")
    expected = {**SOURCE["schedules"][2], "status": "published", "published_at": NOW, "version": 2}
    assert published.json() == expected
    assert ids(api.data("/api/v1/slots", published_only="true", start_date="2026-03-08")) == [7, 8, 9, 10, 11]
    draft = api.send("POST", "/api/v1/schedules/1/unpublish").json()
    assert (draft["status"], draft["published_at"], draft["version"]) == ("draft", None, 4)
    assert ids(api.data("/api/v1/slots", published_only="true", end_date="2026-03-07")) == [3, 12]
    assert api.data("/api/v1/schedules", start_date="2026-03-01", end_date="2026-03-01")[0] == draft
    entries = api.data("/api/v1/changelog", since_id=2)
    assert [(e["id"], e["user"], e["action"], e["entity"], e["entity_id"], e["schedule_id"], e["field"],
             e["old_value"], e["new_value"]) for e in entries] == [
        (3, "chief", "publish", "schedule", 2, None, "status", "draft", "published"),
        (4, "simulator", "update", "schedule", 1, None, "status", "published", "draft"),
    ]
    again = api.send("POST", "/api/v1/schedules/1/unpublish")
    assert again.json()["version"] == 4  # already a draft: nothing changes
    assert api.send("POST", "/api/v1/schedules/9/publish").status_code == 404


def test_writes_need_a_token(sim: Simulator) -> None:
    response = requests.patch(f"{sim.url}/api/v1/personnel/10", json={"email": "x@example.org"}, timeout=5)
    assert response.status_code == 401


# -- controls over HTTP, logging, loading -----------------------------------------------------


def test_admin_http_endpoints(sim: Simulator, api: Api) -> None:
    base = f"{sim.url}/_sim"
    rules = {"rules": [{"path": "/api/v1/departments", "kind": "429", "times": 1, "retry_after": 2}]}
    assert requests.post(f"{base}/faults", json=rules, timeout=5).status_code == 200
    limited = api.get("/api/v1/departments")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    forever = {"rules": [{"path": "/api/", "kind": "500", "times": None}]}
    requests.post(f"{base}/faults", json=forever, timeout=5)
    assert api.get("/api/v1/departments").status_code == 500
    assert requests.delete(f"{base}/faults", timeout=5).status_code == 200
    assert api.get("/api/v1/departments").status_code == 200
    assert requests.post(f"{base}/faults", json={"rules": [{"path": "/api/", "kind": "boom"}]},
                         timeout=5).status_code == 400
    stats = requests.get(f"{base}/stats", timeout=5).json()
    assert stats["faults_fired"] == 2 and stats["requests"]["/api/v1/departments"] == 3
    assert stats["client_credentials_grants"] == 1 and "/_sim/stats" not in stats["requests"]
    config = requests.post(f"{base}/config", json={"token_lifetime": 5, "refuse_refresh": True}, timeout=5)
    assert config.json() == {"token_lifetime": 5.0, "refuse_refresh": True}
    assert (sim.token_lifetime, sim.refuse_refresh) == (5.0, True)
    assert token(sim)["expires_in"] == 5
    assert refresh(sim, api.pair["refresh_token"]).status_code == 400
    assert requests.post(f"{base}/config", json={"lifetime": 5}, timeout=5).status_code == 400
    assert requests.post(f"{base}/expire_tokens", timeout=5).status_code == 200
    assert api.get("/api/v1/departments").status_code == 401


def test_the_log_never_holds_a_secret_or_token(source: Path) -> None:
    log = io.StringIO()
    with Simulator(source, client_id="lb-test", client_secret=SECRET, verbose=True, log_stream=log) as sim:
        api = Api(sim)
        api.get("/api/v1/slots", page_size=2, access_token=api.pair["access_token"])
        wrong = {"grant_type": "client_credentials", "client_id": "lb-test", "client_secret": "no"}
        requests.post(f"{sim.url}/oauth/token?client_secret={SECRET}", data=wrong, timeout=5)
        refreshed = refresh(sim, api.pair["refresh_token"]).json()
    text = log.getvalue()
    assert '"GET /api/v1/slots?page_size=2&access_token=***" 200' in text
    assert len(text.splitlines()) == 4  # one line per request
    for secret in (SECRET, api.pair["access_token"], api.pair["refresh_token"], refreshed["access_token"]):
        assert secret not in text


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_cli_prints_its_address_and_stops_on_a_signal(source: Path, signum: int) -> None:
    env = {**os.environ, "LB_CLIENT_SECRET": SECRET, "LB_CLIENT_ID": "cli-client"}
    env["LB_SOURCE_DIR"] = str(source)
    process = subprocess.Popen(
        [sys.executable, "-m", "lb_pipelines.lightning_bolt.simulator", "--port", "0", "--verbose"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:")
        url = line.split()[-1]
        response = requests.post(
            f"{url}/oauth/token",
            data={"grant_type": "client_credentials", "client_id": "cli-client", "client_secret": SECRET},
            timeout=5,
        )
        access = response.json()["access_token"]
        slots = requests.get(f"{url}/api/v1/slots", headers={"Authorization": f"Bearer {access}"}, timeout=5)
        assert len(slots.json()["data"]) == 12
        process.send_signal(signum)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert out == ""  # the address line was the only output
    assert "/api/v1/slots" in err and SECRET not in err and access not in err


def test_a_malformed_source_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    folder = write_source(tmp_path / "bad")
    with (folder / "slots.jsonl").open("a") as f:
        f.write('{"id": 50, "date": "2026-03-01"\n')
    with pytest.raises(SourceLoadError, match=r"slots\.jsonl:13"):
        Simulator(folder)
    (folder / "slots.jsonl").write_text('{"id": 1, "date": "2026-03-01"}\n{"id": 1, "date": "2026-03-02"}\n')
    with pytest.raises(SourceLoadError, match="more than once"):
        Simulator(folder)
