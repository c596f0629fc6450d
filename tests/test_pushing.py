"""The push rules on small hand-made cases: the difference, what is ours to delete, drift, retries."""

from __future__ import annotations

import datetime as dt

from lb_pipelines.delivery.http import Answer, RetryPolicy, retry_after_seconds, send_with_retries
from lb_pipelines.delivery.push_state import Pushed
from lb_pipelines.integrations.pushing import Desired, DesiredState, Observed, drift, plan

UTC = dt.timezone.utc
DAY = dt.datetime(2026, 3, 8, tzinfo=UTC)
SPAN = (DAY, DAY + dt.timedelta(days=2))


def desired(key: str, h: str = "h1", target: str = "a@x.org", start: dt.datetime = DAY) -> Desired:
    return Desired(target, key, {"k": key}, h, f"slot {key}", start)


def pushed(key: str, h: str = "h1", target: str = "a@x.org", start: dt.datetime = DAY) -> Pushed:
    return Pushed(target, key, f"ev-{key}", h, start, f"slot {key}")


def actions(p) -> list[tuple[str, str, str]]:
    return sorted((c.action, c.target, c.key) for c in p.changes)


def test_first_push_creates_each_object_and_a_rerun_sends_nothing():
    state = DesiredState([desired("1"), desired("2", target="b@x.org")], span=SPAN)
    first = plan(state, {})
    assert actions(first) == [("create", "a@x.org", "1"), ("create", "b@x.org", "2")]
    again = plan(state, {("a@x.org", "1"): pushed("1"), ("b@x.org", "2"): pushed("2", target="b@x.org")})
    assert again.changes == [] and again.unchanged == 2


def test_a_changed_object_is_one_update_with_its_vendor_id():
    state = DesiredState([desired("1", h="moved")], span=SPAN)
    p = plan(state, {("a@x.org", "1"): pushed("1")})
    assert actions(p) == [("update", "a@x.org", "1")] and p.changes[0].vendor_id == "ev-1"


def test_reassigned_slot_deletes_from_the_old_mailbox_and_creates_in_the_new():
    state = DesiredState([desired("1", target="b@x.org")], span=SPAN)
    p = plan(state, {("a@x.org", "1"): pushed("1")})
    assert actions(p) == [("create", "b@x.org", "1"), ("delete", "a@x.org", "1")]


def test_objects_outside_the_span_or_kept_are_never_deleted():
    yesterday = DAY - dt.timedelta(hours=3)  # started before the window: history
    kept_inside = DAY + dt.timedelta(hours=1)  # inside the span, but known to be outside the window
    state = DesiredState([], span=SPAN, keep=frozenset({("a@x.org", "3")}))
    current = {
        ("a@x.org", "1"): pushed("1", start=yesterday),
        ("a@x.org", "2"): pushed("2", start=DAY + dt.timedelta(days=1)),
        ("a@x.org", "3"): pushed("3", start=kept_inside),
        ("a@x.org", "4"): pushed("4", start=SPAN[1]),  # the span's end is not in it
    }
    assert actions(plan(state, current)) == [("delete", "a@x.org", "2")]


def test_reading_back_adopts_what_is_already_right_and_deletes_duplicates():
    state = DesiredState([desired("1")], span=SPAN)
    found = Observed("a@x.org", "1", "ev-found", "h1", DAY)
    copy = Observed("a@x.org", "1", "ev-copy", "h1", DAY)
    p = plan(state, {("a@x.org", "1"): found}, extra=[copy], adopting=True)
    assert [d.key for d in p.adopt] == ["1"]
    assert [(c.action, c.vendor_id) for c in p.changes] == [("delete", "ev-copy")]


def test_drift_is_what_changed_in_the_target_since_the_push_in_targets_read():
    before = {
        ("a@x.org", "1"): pushed("1"), ("a@x.org", "2"): pushed("2"), ("a@x.org", "3"): pushed("3"),
        ("c@x.org", "9"): pushed("9", target="c@x.org"),  # not read this time: no drift known
    }
    now = {("a@x.org", "1"): Observed("a@x.org", "1", "ev-1", "h1"), ("a@x.org", "2"): Observed("a@x.org", "2", "ev-2", "edited")}
    assert sorted((d.kind, d.key) for d in drift(before, now, {"a@x.org"})) == [
        ("changed_in_target", "2"), ("deleted_in_target", "3"),
    ]


def test_retry_after_in_seconds_or_as_an_http_date():
    assert retry_after_seconds({"Retry-After": "2"}) == 2.0
    assert retry_after_seconds({"retry-after": "0"}) == 0.0
    now = dt.datetime(2026, 3, 8, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds({"Retry-After": "Sun, 08 Mar 2026 12:00:07 GMT"}, now) == 7.0
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_retries_send_only_what_is_still_pending_and_wait_what_the_target_asks():
    script = {
        "a": [Answer(201)],
        "b": [Answer(429, {"Retry-After": "3"}), Answer(201)],
        "c": [Answer(403)],  # refused for good: not retried
        "d": [Answer(500), Answer(None, error="dropped"), Answer(500), Answer(500)],
    }
    sent: list[list[str]] = []
    slept: list[float] = []

    def send_once(items):
        sent.append(sorted(items))
        return {i: script[i].pop(0) if len(script[i]) > 1 else script[i][0] for i in items}

    got = send_with_retries(["a", "b", "c", "d"], send_once, RetryPolicy(attempts=4, backoff_s=0.01, max_wait_s=5),
                            sleep=slept.append)
    assert sent == [["a", "b", "c", "d"], ["b", "d"], ["d"], ["d"]]
    assert slept[0] == 3.0  # the throttled part's Retry-After, not a guess
    assert {k: (a.status, n) for k, (a, n) in got.items()} == {"a": (201, 1), "b": (201, 2), "c": (403, 1), "d": (500, 4)}
