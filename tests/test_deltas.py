"""The delta rule, by hand: what was delivered versus what is true now."""

from lb_pipelines.delivery.deltas import ADD, DELETE, UPDATE, compute_delta, row_hash, state_rows


def rows(*pairs):
    return state_rows([(key, values) for key, values in pairs])


def as_dict(rows_):
    return {r.key: r for r in rows_}


def test_nothing_delivered_before_is_a_full_file():
    current = rows(("b", {"start": "07:00"}), ("a", {"start": "17:00"}))
    assert [(a, r.key) for a, r in compute_delta(None, current)] == [(ADD, "a"), (ADD, "b")]


def test_add_update_delete_against_the_last_delivery():
    delivered = as_dict(rows(("1|ana", {"end": "07:00"}), ("2|ben", {"end": "15:00"}), ("3|cy", {"end": "19:00"})))
    current = rows(("1|ana", {"end": "07:00"}), ("2|ben", {"end": "16:00"}), ("4|dee", {"end": "07:00"}))
    delta = compute_delta(delivered, current)
    assert [(a, r.key, r.values["end"]) for a, r in delta] == [
        (DELETE, "3|cy", "19:00"),  # the old values go out with the DELETE
        (UPDATE, "2|ben", "16:00"),
        (ADD, "4|dee", "07:00"),
    ]


def test_reassigned_slot_is_a_delete_and_an_add():
    delivered = as_dict(rows(("7|ana", {"person": "ana"})))
    current = rows(("7|ben", {"person": "ben"}))
    assert [(a, r.key) for a, r in compute_delta(delivered, current)] == [(DELETE, "7|ana"), (ADD, "7|ben")]


def test_no_change_is_an_empty_delta_and_the_same_state_gives_the_same_rows():
    delivered = as_dict(rows(("1|ana", {"end": "07:00"})))
    current = rows(("1|ana", {"end": "07:00"}))
    assert compute_delta(delivered, current) == []
    changed = rows(("1|ana", {"end": "08:00"}))
    assert compute_delta(delivered, changed) == compute_delta(delivered, changed)


def test_row_hash_ignores_key_order_but_not_values():
    assert row_hash({"a": 1, "b": 2}) == row_hash({"b": 2, "a": 1})
    assert row_hash({"a": 1}) != row_hash({"a": "1"})
