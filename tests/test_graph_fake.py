"""The Graph fake over real HTTP: tokens, events, calendarView, $batch, injected answers,
forbidden mailboxes and the per-mailbox concurrency limit."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from fakes.graph import GraphFake

SLOT = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name lbSlotId"
ADA = "ada@example.org"
IMMUTABLE = {"Prefer": 'IdType="ImmutableId"'}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def fake():
    with GraphFake() as graph:
        yield graph


def get_token(fake: GraphFake, **overrides) -> requests.Response:
    form = {"grant_type": "client_credentials", "scope": "https://graph.microsoft.com/.default",
            "client_id": "lb-client", "client_secret": "s3cret", **overrides}
    return requests.post(fake.token_url, data=form, timeout=5)


@pytest.fixture
def graph(fake: GraphFake) -> requests.Session:
    """A session holding a valid token and asking for immutable ids."""
    session = requests.Session()
    session.headers.update(IMMUTABLE, Authorization="Bearer " + get_token(fake).json()["access_token"])
    return session


def event(subject: str, start: str, end: str, *, zone: str = "UTC", slot: str | None = None, **more) -> dict:
    body = {"subject": subject, "start": {"dateTime": start, "timeZone": zone},
            "end": {"dateTime": end, "timeZone": zone}, **more}
    if slot is not None:
        body["singleValueExtendedProperties"] = [{"id": SLOT, "value": slot}]
    return body


def test_token_flow_and_authentication(fake: GraphFake):
    assert get_token(fake, client_secret="wrong").status_code == 401
    assert get_token(fake, client_secret="wrong").json()["error"] == "invalid_client"
    wrong_scope = get_token(fake, scope="https://graph.microsoft.com/Calendars.ReadWrite")
    assert wrong_scope.status_code == 400 and wrong_scope.json()["error"] == "invalid_request"
    assert get_token(fake, grant_type="password").status_code == 400
    events_url = f"{fake.base_url}/users/{ADA}/events/x"
    refused = requests.get(events_url, timeout=5)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "InvalidAuthenticationToken"

    answer = get_token(fake)
    assert answer.status_code == 200
    assert answer.json()["token_type"] == "Bearer" and answer.json()["expires_in"] == 3599
    headers = {"Authorization": "Bearer " + answer.json()["access_token"]}
    assert requests.get(events_url, headers=headers, timeout=5).status_code == 404  # in, but no such event
    assert fake.tokens_issued == 1
    fake.expire_tokens()
    assert requests.get(events_url, headers=headers, timeout=5).status_code == 401


def test_token_lifetime():
    with GraphFake(token_lifetime_s=0) as fake:
        token = get_token(fake).json()["access_token"]
        answer = requests.get(f"{fake.base_url}/users/{ADA}/events/x", timeout=5,
                              headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 401


def test_create_get_patch_delete(fake: GraphFake, graph: requests.Session):
    url = f"{fake.base_url}/users/{ADA}/events"
    created = graph.post(url, json=event("Call", "2026-11-02T07:00:00", "2026-11-02T19:00:00", slot="41"))
    assert created.status_code == 201
    body = created.json()
    assert re.fullmatch(r"[A-Za-z0-9_-]{40,}", body["id"])
    assert {"createdDateTime", "lastModifiedDateTime", "changeKey"} <= body.keys()
    assert "singleValueExtendedProperties" not in body  # Graph only returns them when expanded

    fetched = graph.get(f"{url}/{body['id']}").json()
    assert fetched["subject"] == "Call" and "singleValueExtendedProperties" not in fetched
    expanded = graph.get(f"{url}/{body['id']}", params={
        "$expand": f"singleValueExtendedProperties($filter=id eq '{SLOT.lower()}')"}).json()
    assert fake.slot_property(expanded, SLOT) == "41"

    patched = graph.patch(f"{url}/{body['id']}", json={
        "subject": "Call (changed)", "singleValueExtendedProperties": [{"id": SLOT.upper(), "value": "42"}]})
    assert patched.status_code == 200
    assert patched.json()["subject"] == "Call (changed)"
    assert patched.json()["changeKey"] != body["changeKey"]
    assert patched.json()["start"] == body["start"]  # keys not given stay
    [stored] = fake.events_of(ADA)
    assert len(stored["singleValueExtendedProperties"]) == 1 and fake.slot_property(stored, SLOT) == "42"

    assert graph.delete(f"{url}/{body['id']}").status_code == 204
    for method in ("get", "patch", "delete"):
        gone = getattr(graph, method)(f"{url}/{body['id']}", json={"subject": "x"})
        assert gone.status_code == 404
        assert gone.json()["error"]["code"] == "ErrorItemNotFound"
    missing_subject = graph.post(url, json={"start": body["start"], "end": body["end"]})
    assert missing_subject.status_code == 400
    assert missing_subject.json()["error"]["code"] == "ErrorInvalidRequest"
    assert [r.method for r in fake.writes()] == ["POST", "PATCH", "DELETE", "PATCH", "DELETE", "POST"]
    assert fake.requests_without_immutable_id == 0


def test_transaction_id_deduplicates(fake: GraphFake, graph: requests.Session):
    url = f"{fake.base_url}/users/{ADA}/events"
    body = event("Call", "2026-11-02T07:00:00", "2026-11-02T19:00:00", transactionId="slot-41-v1")
    first, again = graph.post(url, json=body), graph.post(url, json=body)
    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert len(fake.events_of(ADA)) == 1
    fake.delete_by_hand(ADA, first.json()["id"])
    assert graph.post(url, json=body).json()["id"] != first.json()["id"]  # only live events count


def test_calendar_view_overlap_filter_expand_and_paging(fake: GraphFake, graph: requests.Session):
    url = f"{fake.base_url}/users/{ADA}/events"
    # Ends just as the window starts: not in it.
    graph.post(url, json=event("Before", "2026-11-01T00:00:00", "2026-11-02T00:00:00", slot="1"))
    graph.post(url, json=event("Overnight", "2026-11-01T20:00:00", "2026-11-02T08:00:00", slot="2"))
    # 06:00 in Chicago is 12:00 UTC (CST, UTC-6).
    graph.post(url, json=event("Chicago", "2026-11-02T06:00:00", "2026-11-02T07:00:00",
                               zone="America/Chicago", slot="3"))
    graph.post(url, json=event("Personal", "2026-11-02T09:00:00", "2026-11-02T10:00:00"))
    graph.post(url, json=event("After", "2026-11-03T00:00:00", "2026-11-03T01:00:00", slot="5"))
    view = f"{fake.base_url}/users/{ADA}/calendarView"
    window = {"startDateTime": "2026-11-02T00:00:00Z", "endDateTime": "2026-11-02T18:00:00-06:00"}

    subjects = [e["subject"] for e in graph.get(view, params=window).json()["value"]]
    assert subjects == ["Overnight", "Personal", "Chicago"]

    has_slot = f"singleValueExtendedProperties/Any(ep: ep/id eq '{SLOT}' and ep/value ne null)"
    expand = f"singleValueExtendedProperties($filter=id eq '{SLOT}')"
    ours = graph.get(view, params={**window, "$filter": has_slot, "$expand": expand}).json()["value"]
    assert [(e["subject"], fake.slot_property(e, SLOT)) for e in ours] == [
        ("Overnight", "2"), ("Chicago", "3")]
    bare = graph.get(view, params={**window, "$filter": has_slot}).json()["value"]
    assert all("singleValueExtendedProperties" not in e for e in bare) and len(bare) == 2
    one = f"singleValueExtendedProperties/Any(ep: ep/id eq '{SLOT.lower()}' and ep/value eq '3')"
    only_three = graph.get(view, params={**window, "$filter": one}).json()["value"]
    assert [e["subject"] for e in only_three] == ["Chicago"]

    pages, link = [], view
    params = {**window, "$top": "2", "$select": "subject"}
    while link:
        page = graph.get(link, params=params).json()
        pages.append([e["subject"] for e in page["value"]])
        link, params = page.get("@odata.nextLink"), None
    assert pages == [["Overnight", "Personal"], ["Chicago"]]
    assert graph.get(view, params={"startDateTime": window["startDateTime"]}).status_code == 400


def test_batch_with_a_throttled_part_and_the_limit(fake: GraphFake, graph: requests.Session):
    fake.answer("POST", r"/users/ben@example.org/events$", 429, headers={"Retry-After": "2"})
    parts = [
        {"id": str(i), "method": "POST", "url": f"{'/' if i % 2 else ''}users/{who}/events", "headers": JSON,
         "body": event(f"Call {i}", "2026-11-02T07:00:00", "2026-11-02T19:00:00")}
        for i, who in enumerate([ADA, "ben@example.org", "cy@example.org"], start=1)
    ]
    answer = graph.post(f"{fake.base_url}/$batch", json={"requests": parts})
    assert answer.status_code == 200
    responses = {r["id"]: r for r in answer.json()["responses"]}
    assert [responses[i]["status"] for i in ("1", "2", "3")] == [201, 429, 201]
    assert responses["2"]["headers"]["Retry-After"] == "2"
    assert responses["1"]["body"]["subject"] == "Call 1"
    assert sorted(fake.all_events()) == [ADA, "cy@example.org"]
    assert [(r.path, r.status) for r in fake.writes()] == [
        (f"/v1.0/users/{ADA}/events", 201), ("/v1.0/users/ben@example.org/events", 429),
        ("/v1.0/users/cy@example.org/events", 201)]
    assert all(r.in_batch for r in fake.writes())

    twenty_one = [dict(parts[0], id=str(i)) for i in range(21)]
    too_many = graph.post(f"{fake.base_url}/$batch", json={"requests": twenty_one})
    assert too_many.status_code == 400
    assert too_many.json()["error"] == {
        "code": "BadRequest", "message": "Number of batch requests exceeds the limit of 20."}
    assert len(fake.all_events()[ADA]) == 1  # nothing of the refused batch ran


def test_answer_lost_after_the_event_was_created(fake: GraphFake, graph: requests.Session):
    fake.answer("POST", r"/events$", 500, after_apply=True)
    lost = graph.post(f"{fake.base_url}/users/{ADA}/events", json=event("Call", "2026-11-02T07:00:00",
                                                                        "2026-11-02T19:00:00"))
    assert lost.status_code == 500
    assert [e["subject"] for e in fake.events_of(ADA)] == ["Call"]


def test_forbidden_mailbox(fake: GraphFake, graph: requests.Session):
    fake.forbidden_mailboxes.add("Locked@Example.org")
    body = event("Call", "2026-11-02T07:00:00", "2026-11-02T19:00:00")
    refused = graph.post(f"{fake.base_url}/users/locked@example.org/events", json=body)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "ErrorAccessDenied"
    batch = graph.post(f"{fake.base_url}/$batch", json={"requests": [
        {"id": "1", "method": "POST", "url": "/users/locked@example.org/events", "headers": JSON,
         "body": body}]})
    assert batch.json()["responses"][0]["status"] == 403
    assert fake.all_events() == {}


def test_by_hand_helpers_and_immutable_id_counting(fake: GraphFake, graph: requests.Session):
    event_id = fake.add_by_hand(ADA, event("Lunch", "2026-11-02T12:00:00", "2026-11-02T13:00:00"))
    fake.edit_by_hand(ADA, event_id, subject="Long lunch",
                      end={"dateTime": "2026-11-02T14:00:00", "timeZone": "UTC"})
    plain = requests.get(f"{fake.base_url}/users/{ADA}/events/{event_id}",
                         headers={"Authorization": graph.headers["Authorization"]})
    assert plain.json()["subject"] == "Long lunch"
    assert plain.json()["end"]["dateTime"] == "2026-11-02T14:00:00"
    moved = fake.edit_by_hand(ADA, event_id,
                              start={"dateTime": "2026-11-02T09:00:00", "timeZone": "America/Chicago"})
    assert moved["end"] == {"dateTime": "2026-11-02T17:00:00", "timeZone": "UTC"}  # 15:00 UTC + its 2 h
    assert fake.requests_without_immutable_id == 1
    # Parts count as asking for immutable ids when the outer request does.
    graph.post(f"{fake.base_url}/$batch", json={"requests": [
        {"id": "1", "method": "DELETE", "url": f"/users/{ADA}/events/{event_id}"}]})
    assert fake.requests_without_immutable_id == 1 and fake.events_of(ADA) == []
    fake.reset()
    assert fake.log == [] and fake.requests_without_immutable_id == 0


def test_mailbox_concurrency_limit():
    with GraphFake() as fake:
        token = get_token(fake).json()["access_token"]
        fake.latency_s = 0.3
        start = threading.Barrier(6)

        def view(_):
            start.wait()  # all six leave together, well within one latency
            return requests.get(
                f"{fake.base_url}/users/{ADA}/calendarView", timeout=5,
                params={"startDateTime": "2026-11-01", "endDateTime": "2026-11-03"},
                headers={"Authorization": f"Bearer {token}", **IMMUTABLE},
            )

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(view, range(6)))
        refused = [a for a in answers if a.status_code == 429]
        assert sorted(a.status_code for a in answers) == [200] * 4 + [429] * 2
        assert all(a.headers["Retry-After"] == "1" for a in refused)
        assert refused[0].json()["error"]["code"] == "ApplicationThrottled"
        assert fake.concurrency_refusals == 2
        assert fake.max_in_flight == {ADA: 4}
