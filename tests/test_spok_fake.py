"""The Spok fake answers as this project's Spok interface does, over real HTTP: the push's tests rely on it."""

from __future__ import annotations

import pytest
import requests

from fakes.spok import ASSIGNMENTS_PATH, TOKEN_PATH, SpokFake

USER, PASSWORD = "lb-sync", "s3cret-pw"
BODY = {
    "group_id": "G-CARDS", "messaging_id": "U11", "role": "Attending", "start_date": "23-NOV-26 07:00:00",
    "end_date": "24-NOV-26 07:00:00", "time_zone": "ARIZONA", "slot_id": 5001,
}


@pytest.fixture
def fake():
    with SpokFake(username=USER, password=PASSWORD, groups={"G-CARDS": ["Attending", "STEMI"], "G-EMPTY": []}) as server:
        yield server


def sign_in(fake, username=USER, password=PASSWORD):
    return requests.post(fake.base_url + TOKEN_PATH, json={"username": username, "password": password}, timeout=5)


def call(fake, method, path, body=None, token=None, **params):
    token = token or sign_in(fake).json()["access_token"]
    return requests.request(method, fake.base_url + path, json=body, params=params or None,
                            headers={"Authorization": f"Bearer {token}"}, timeout=5)


def test_sign_in_gives_a_token_and_refuses_a_wrong_password(fake):
    good = sign_in(fake)
    bad = sign_in(fake, password="guessed-pw")

    assert good.status_code == 200 and good.json()["expires_in"] == 3600 and good.json()["access_token"]
    assert bad.status_code == 401 and "guessed-pw" not in bad.text and PASSWORD not in bad.text
    assert fake.sign_ins == 1


def test_every_other_route_wants_a_bearer_token_it_issued(fake):
    no_token = requests.get(fake.base_url + "/groups/G-CARDS/roles", timeout=5)
    made_up = call(fake, "GET", "/groups/G-CARDS/roles", token="not-a-token")
    token = sign_in(fake).json()["access_token"]
    fake.expire_tokens()
    expired = call(fake, "GET", "/groups/G-CARDS/roles", token=token)

    assert no_token.status_code == made_up.status_code == expired.status_code == 401


def test_add_read_update_delete_round_trip(fake):
    token = sign_in(fake).json()["access_token"]

    added = call(fake, "POST", ASSIGNMENTS_PATH, BODY, token)
    assert added.status_code == 201
    spok_id = added.json()["assignment_id"]
    listed = call(fake, "GET", ASSIGNMENTS_PATH, token=token, group_id="G-CARDS")
    assert listed.status_code == 200 and listed.json() == [{"assignment_id": spok_id, **BODY}]

    swapped = call(fake, "PUT", f"{ASSIGNMENTS_PATH}/{spok_id}", dict(BODY, messaging_id="U13"), token)
    assert swapped.status_code == 200 and fake.held("G-CARDS")[0]["messaging_id"] == "U13"

    gone = call(fake, "DELETE", f"{ASSIGNMENTS_PATH}/{spok_id}", token=token)
    again = call(fake, "DELETE", f"{ASSIGNMENTS_PATH}/{spok_id}", token=token)
    assert (gone.status_code, again.status_code) == (204, 404)
    assert call(fake, "GET", ASSIGNMENTS_PATH, token=token, group_id="G-CARDS").json() == []
    assert [m for m, _, _ in fake.received] == ["POST", "PUT", "DELETE", "DELETE"]


def test_roles_per_group_and_unknown_groups(fake):
    assert call(fake, "GET", "/groups/G-CARDS/roles").json() == ["Attending", "STEMI"]
    fake.set_roles("G-EMPTY", ["Fellow"])
    assert call(fake, "GET", "/groups/G-EMPTY/roles").json() == ["Fellow"]
    assert call(fake, "GET", "/groups/G-NOPE/roles").status_code == 404
    assert call(fake, "GET", ASSIGNMENTS_PATH, group_id="G-NOPE").status_code == 404
    assert call(fake, "POST", ASSIGNMENTS_PATH, dict(BODY, group_id="G-NOPE")).status_code == 404


def test_a_placeholder_needs_its_contact(fake):
    placeholder = dict(BODY, messaging_id=None, contact={"name": "Cards On Call", "pager": "4999", "phone": None})

    assert call(fake, "POST", ASSIGNMENTS_PATH, placeholder).status_code == 201
    assert call(fake, "POST", ASSIGNMENTS_PATH, dict(BODY, messaging_id=None)).status_code == 400


@pytest.mark.parametrize(
    "changed, field",
    [
        ({"start_date": "2026-11-23 07:00:00"}, "start_date"),  # ISO, not Spok's form
        ({"start_date": "23-Nov-26 07:00:00"}, "start_date"),  # the month in upper case only
        ({"end_date": "31-FEB-26 07:00:00"}, "end_date"),  # the shape, not a date
        ({"end_date": "23-NOV-26 7:00:00"}, "end_date"),  # fixed width
        ({"end_date": "23-NOV-26 07:00:00"}, "end_date"),  # not after the start
        ({"time_zone": "America/Phoenix"}, "time_zone"),  # an IANA name is not Spok's
        ({"time_zone": "CST"}, "time_zone"),
        ({"role": None}, "role"),
    ],
    ids=["iso-date", "lower-case-month", "impossible-date", "not-fixed-width", "end-not-after-start",
         "iana-zone", "abbreviation-zone", "no-role"],
)
def test_a_bad_body_is_400_naming_the_field_and_nothing_is_kept(fake, changed, field):
    answer = call(fake, "POST", ASSIGNMENTS_PATH, dict(BODY, **changed))

    assert answer.status_code == 400 and answer.json()["field"] == field
    assert fake.held() == []


def test_a_role_the_group_does_not_have_is_422_and_a_locked_group_is_403(fake):
    assert call(fake, "POST", ASSIGNMENTS_PATH, dict(BODY, role="Fellow")).status_code == 422
    spok_id = fake.preload(BODY)
    fake.locked_groups.add("G-CARDS")

    assert call(fake, "GET", ASSIGNMENTS_PATH, group_id="G-CARDS").status_code == 200  # read, not change
    assert call(fake, "POST", ASSIGNMENTS_PATH, BODY).status_code == 403
    assert call(fake, "PUT", f"{ASSIGNMENTS_PATH}/{spok_id}", BODY).status_code == 403
    assert call(fake, "DELETE", f"{ASSIGNMENTS_PATH}/{spok_id}").status_code == 403
    assert [a["assignment_id"] for a in fake.held()] == [spok_id]


def test_hand_edits_and_injected_answers(fake):
    spok_id = fake.preload(BODY)
    fake.edit(spok_id, messaging_id="U99")
    assert fake.held("G-CARDS")[0]["messaging_id"] == "U99"
    fake.answer("POST", f"{ASSIGNMENTS_PATH}$", 429, headers={"Retry-After": "2"})

    throttled = call(fake, "POST", ASSIGNMENTS_PATH, BODY)
    added = call(fake, "POST", ASSIGNMENTS_PATH, BODY)

    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "2"
    assert added.status_code == 201 and len(fake.held()) == 2  # the 429 came instead of adding
    fake.remove(spok_id)
    assert [a["assignment_id"] for a in fake.held()] == [added.json()["assignment_id"]]
    assert all(r.headers.get("Authorization") in (None, "***") for r in fake.requests())  # masked in the log
