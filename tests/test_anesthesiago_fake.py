"""The AnesthesiaGo fake answers as the schedule API does, over real HTTP: the push's tests rely on it."""

from __future__ import annotations

import copy

import pytest
import requests

from fakes.anesthesiago import AnesthesiaGoFake

TOKEN = "ag-s3cret-token"
DATE = "2026-11-01"
# Chicago falls back on 2026-11-01 at 02:00: 07:00 CST is 13:00 UTC (it was 12:00 UTC the day before).
ANA = {"emp_id": "100011", "assignment_id": 102, "slot_id": 7011, "time_zone": "America/Chicago",
       "start_local": "2026-11-01T07:00:00", "end_local": "2026-11-01T15:00:00",
       "start_utc": "2026-11-01T13:00:00Z", "end_utc": "2026-11-01T21:00:00Z"}
CY = {"emp_id": "100013", "assignment_id": 201, "slot_id": 7008, "time_zone": "America/Phoenix",
      "start_local": "2026-11-01T07:00:00", "end_local": "2026-11-02T07:00:00",
      "start_utc": "2026-11-01T14:00:00Z", "end_utc": "2026-11-02T14:00:00Z"}


@pytest.fixture
def fake():
    with AnesthesiaGoFake(token=TOKEN) as server:
        yield server


def put(fake, date, body, token=TOKEN, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.put(f"{fake.base_url}/schedule/{date}", json=body, headers=headers, timeout=5, **kwargs)


def get(fake, date, token=TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{fake.base_url}/schedule/{date}", headers=headers, timeout=5)


def test_put_then_get_round_trip_and_a_put_replaces_the_date(fake):
    first = put(fake, DATE, {"date": DATE, "providers": [ANA, CY]})
    second = put(fake, DATE, {"date": DATE, "providers": [CY]})
    other = put(fake, "2026-11-02", {"date": "2026-11-02", "providers": []})

    assert first.status_code == 200 and first.json() == {"date": DATE, "providers": 2}
    assert second.json() == {"date": DATE, "providers": 1}
    assert other.json() == {"date": "2026-11-02", "providers": 0}
    got = get(fake, DATE)
    assert got.status_code == 200 and got.json() == {"date": DATE, "providers": [CY]}
    assert get(fake, "2026-11-02").json() == {"date": "2026-11-02", "providers": []}
    assert fake.puts() == [DATE, DATE, "2026-11-02"]


def test_get_of_a_date_never_sent_is_404(fake):
    answer = get(fake, "2026-11-05")

    assert answer.status_code == 404 and answer.json()["error"] == "not_found"


def test_wrong_or_missing_token_is_401_and_the_body_does_not_echo_it(fake):
    wrong = put(fake, DATE, {"date": DATE, "providers": [ANA]}, token="guessed-token-77")
    missing = get(fake, DATE, token=None)

    assert wrong.status_code == 401 == missing.status_code
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")
    assert "guessed-token-77" not in wrong.text and TOKEN not in wrong.text
    assert fake.held == {} and fake.puts() == []


def _with(provider, **changes):
    changed = copy.deepcopy(provider)
    for key, value in changes.items():
        if value is None:
            changed.pop(key)
        else:
            changed[key] = value
    return changed


@pytest.mark.parametrize(
    "body, field",
    [
        ({"date": "2026-11-02", "providers": []}, "date"),
        ({"date": DATE}, "providers"),
        ({"date": DATE, "providers": [ANA, _with(CY, emp_id=None)]}, "providers[1].emp_id"),
        ({"date": DATE, "providers": [_with(ANA, assignment_id="102")]}, "providers[0].assignment_id"),
        ({"date": DATE, "providers": [_with(ANA, time_zone="America/Gotham")]}, "providers[0].time_zone"),
        ({"date": DATE, "providers": [_with(ANA, start_utc="2026-11-01T13:00:00")]}, "providers[0].start_utc"),
        # 07:00 CDT, as if there were no fall-back: the local time is not the instant's wall clock
        ({"date": DATE, "providers": [_with(ANA, start_utc="2026-11-01T12:00:00Z")]}, "providers[0].start_local"),
        ({"date": DATE, "providers": [_with(ANA, name="Ana Reyes")]}, "providers[0].name"),
    ],
    ids=["date-mismatch", "no-providers", "no-emp-id", "assignment-as-text", "unknown-zone", "utc-without-z",
         "local-not-utc-on-the-wall-clock", "unknown-field"],
)
def test_a_bad_body_is_400_naming_the_field_and_nothing_is_kept(fake, body, field):
    answer = put(fake, DATE, body)

    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field and answer.json()["message"].startswith(field)
    assert fake.held == {} and fake.puts() == []


def test_a_body_that_is_not_json_is_400_and_not_json_typed_is_415(fake):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    broken = requests.put(f"{fake.base_url}/schedule/{DATE}", data=b"{not json",
                          headers=headers | {"Content-Type": "application/json"}, timeout=5)
    text = requests.put(f"{fake.base_url}/schedule/{DATE}", data=b"{}",
                        headers=headers | {"Content-Type": "text/plain"}, timeout=5)

    assert broken.status_code == 400 and broken.json()["error"] == "invalid_json"
    assert text.status_code == 415
    assert fake.puts() == []


def test_an_impossible_date_is_400_and_an_unknown_route_404(fake):
    assert put(fake, "2026-02-30", {"date": "2026-02-30", "providers": []}).status_code == 400
    assert requests.get(f"{fake.base_url}/schedules/{DATE}", timeout=5).status_code == 404


def test_injected_answers_come_first_and_after_apply_keeps_the_put(fake):
    fake.answer("PUT", DATE, 500, after_apply=True)
    fake.answer("PUT", DATE, 429, headers={"Retry-After": "2"})

    lost = put(fake, DATE, {"date": DATE, "providers": [ANA]})
    throttled = put(fake, DATE, {"date": DATE, "providers": []})
    kept = get(fake, DATE)

    assert lost.status_code == 500
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
    # The 500 came after keeping the PUT; the 429 came instead of keeping it (the date is not emptied).
    assert kept.json() == {"date": DATE, "providers": [ANA]}
    assert fake.puts() == [DATE]
    assert [r.status for r in fake.requests("PUT")] == [500, 429]


def test_edits_by_hand_are_checked_and_held(fake):
    fake.edit_by_hand(DATE, {"date": DATE, "providers": [CY]})
    with pytest.raises(ValueError, match="providers"):
        fake.edit_by_hand("2026-11-02", {"date": "2026-11-02", "providers": None})

    assert get(fake, DATE).json() == {"date": DATE, "providers": [CY]}
    fake.remove_by_hand(DATE)
    assert get(fake, DATE).status_code == 404 and fake.puts() == []
