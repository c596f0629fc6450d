"""The delta rule, by hand: what was delivered versus what is true now, as small DuckDB tables."""

import contextlib

import duckdb
import pytest

from lb_pipelines.delivery.deltas import delta_counts_select, delta_select, load_delivered, render_delta, snapshot
from lb_pipelines.delivery.ledger import deliver_and_record
from lb_pipelines.delivery.targets import OutboxTarget

KEY = ("SLOT_ID", "PERSON")
COLUMNS = ("SLOT_ID", "PERSON", "END", "NOTE")
SHAPE = '"SLOT_ID" BIGINT, "PERSON" VARCHAR, "END" VARCHAR, "NOTE" VARCHAR'


@pytest.fixture
def conn():
    with duckdb.connect() as conn:
        conn.execute(f"CREATE TABLE now_true ({SHAPE})")
        conn.execute(f"CREATE TABLE delivered ({SHAPE})")
        yield conn


def fill(conn, table, *rows):
    conn.execute(f"DELETE FROM {table}")
    if rows:
        conn.executemany(f"INSERT INTO {table} VALUES (?, ?, ?, ?)", [(*r, None)[:4] for r in rows])


def delta(conn):
    return conn.execute(delta_select("now_true", "delivered", KEY, COLUMNS)).fetchall()


def test_nothing_delivered_before_is_a_full_file(conn):
    fill(conn, "now_true", (12, "ben", "07:00"), (9, "ana", "17:00"))
    assert delta(conn) == [("ADD", 9, "ana", "17:00", None), ("ADD", 12, "ben", "07:00", None)]  # slot order


def test_add_update_delete_against_the_last_delivery(conn):
    fill(conn, "delivered", (1, "ana", "07:00"), (2, "ben", "15:00"), (3, "cy", "19:00"))
    fill(conn, "now_true", (1, "ana", "07:00"), (2, "ben", "16:00"), (4, "dee", "07:00"))
    assert delta(conn) == [
        ("DELETE", 3, "cy", "19:00", None),  # the old values go out with the DELETE
        ("UPDATE", 2, "ben", "16:00", None),
        ("ADD", 4, "dee", "07:00", None),
    ]
    counts = dict(conn.execute(delta_counts_select("now_true", "delivered", KEY, COLUMNS)).fetchall())
    assert counts == {"DELETE": 1, "UPDATE": 1, "ADD": 1}


def test_reassigned_slot_is_a_delete_and_an_add(conn):
    fill(conn, "delivered", (7, "ana", "07:00"))
    fill(conn, "now_true", (7, "ben", "07:00"))
    assert delta(conn) == [("DELETE", 7, "ana", "07:00", None), ("ADD", 7, "ben", "07:00", None)]


def test_no_change_is_an_empty_delta_and_a_rerun_gives_the_same_rows(conn):
    fill(conn, "delivered", (1, "ana", "07:00"))
    fill(conn, "now_true", (1, "ana", "07:00"))
    assert delta(conn) == []
    fill(conn, "now_true", (1, "ana", "08:00"))
    assert delta(conn) == delta(conn) == [("UPDATE", 1, "ana", "08:00", None)]


def test_an_open_shift_without_a_person_is_a_key_like_any_other(conn):
    fill(conn, "delivered", (5, None, "07:00"))
    fill(conn, "now_true", (5, None, "07:00"))
    assert delta(conn) == []  # not a DELETE and an ADD of the same open shift
    fill(conn, "now_true", (5, None, "09:00", "moved"))
    assert delta(conn) == [("UPDATE", 5, None, "09:00", "moved")]


def test_a_value_that_becomes_empty_is_an_update(conn):
    fill(conn, "delivered", (1, "ana", "07:00", "bring pager"))
    fill(conn, "now_true", (1, "ana", "07:00", None))
    assert delta(conn) == [("UPDATE", 1, "ana", "07:00", None)]


def test_the_delivered_snapshot_is_what_the_next_delta_compares_with(conn, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"

    @contextlib.contextmanager
    def connect():
        with duckdb.connect(str(warehouse)) as c:
            yield c

    fill(conn, "now_true", (1, "ana", "07:00", "x,\"y\""), (2, None, "15:00"))
    state = snapshot(conn, "now_true")
    assert state.rows == 2
    deliver_and_record(connect, OutboxTarget(tmp_path / "outbox"), integration="kronos_wfd", scope="2026-11-01",
                       file_name="k.csv", content=b"k", rows=2, run_id="r1", new_state=state)
    with connect() as c:
        c.execute(f"CREATE TABLE now_true ({SHAPE})")
        load_delivered(c, "kronos_wfd", "2026-11-01", like="now_true", into="kept")
        assert sorted(c.execute("SELECT * FROM kept").fetchall()) == [(1, "ana", "07:00", 'x,"y"'), (2, None, "15:00", None)]
        load_delivered(c, "kronos_wfd", "2026-11-15", like="now_true", into="other")  # another pay period
        assert c.execute("SELECT count(*) FROM other").fetchall() == [(0,)]


# --- render_delta: the whole sequence a delta integration runs, through the real ledger ---------

ROWS = '(SELECT * FROM now_true WHERE "SLOT_ID" >= $first)'  # what is true now, with a parameter


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "warehouse.duckdb"

    @contextlib.contextmanager
    def connect():
        with duckdb.connect(str(path)) as c:
            yield c

    with connect() as c:
        c.execute(f"CREATE TABLE now_true ({SHAPE})")
    return connect


def render(conn, delivered_filter=None):
    return render_delta(conn, "kronos_wfd", "2026-11-01", ROWS, KEY, COLUMNS, {"first": 1},
                        delivered_filter=delivered_filter)


def deliver(connect, tmp_path, delta, name):
    deliver_and_record(connect, OutboxTarget(tmp_path / "outbox"), integration="kronos_wfd", scope="2026-11-01",
                       file_name=name, content=delta.content, rows=delta.rows, run_id=name, new_state=delta.new_state)


def test_render_delta_first_a_full_file_then_the_changes(warehouse, tmp_path):
    with warehouse() as c:
        fill(c, "now_true", (2, "ben", "15:00"), (1, "ana", "07:00", "bring pager"), (0, "zed", "07:00"))
        first = render(c)
    assert first.content == b'ACTION,SLOT_ID,PERSON,END,NOTE\r\nADD,1,ana,07:00,bring pager\r\nADD,2,ben,15:00,\r\n'
    assert (first.rows, first.full_file, first.counts, first.new_state.rows) == (
        2, True, {"ADD": 2, "UPDATE": 0, "DELETE": 0}, 2)  # slot 0 is not in the relation ($first = 1)
    deliver(warehouse, tmp_path, first, "first.csv")
    with warehouse() as c:
        fill(c, "now_true", (1, "ana", "08:00"), (3, "cy", "19:00"))
        later = render(c)
        temp = c.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'kronos_wfd_delivered_rows'").fetchall()
    assert later.content == (b"ACTION,SLOT_ID,PERSON,END,NOTE\r\n"
                             b"DELETE,2,ben,15:00,\r\nUPDATE,1,ana,08:00,\r\nADD,3,cy,19:00,\r\n")
    assert (later.rows, later.full_file, later.counts, later.new_state.rows) == (
        3, False, {"ADD": 1, "UPDATE": 1, "DELETE": 1}, 2)
    assert temp == [(0,)]  # the delivered rows' temporary table is gone


def test_render_delta_against_an_undelivered_file_is_unchanged(warehouse, tmp_path):
    with warehouse() as c:
        fill(c, "now_true", (1, "ana", "07:00"))
        deliver(warehouse, tmp_path, render(c), "first.csv")
        fill(c, "now_true", (1, "ana", "09:00"))
        not_sent = render(c)  # never delivered: the state stays the first file's
        again = render(c)
    assert not_sent.content == again.content == b"ACTION,SLOT_ID,PERSON,END,NOTE\r\nUPDATE,1,ana,09:00,\r\n"


def test_render_delta_compares_only_the_delivered_rows_the_filter_keeps(warehouse, tmp_path):
    # Slot 1 was delivered, then left the relation by the filter's rule (an aged-out row): no
    # DELETE, and the new state no longer holds it. Slot 2 really went: a DELETE.
    with warehouse() as c:
        fill(c, "now_true", (1, "ana", "07:00"), (2, "ben", "15:00"), (3, "cy", "19:00"))
        deliver(warehouse, tmp_path, render(c), "first.csv")
        fill(c, "now_true", (3, "cy", "19:00"))
        delta = render(c, delivered_filter='"SLOT_ID" >= $first + 1')
    assert delta.content == b"ACTION,SLOT_ID,PERSON,END,NOTE\r\nDELETE,2,ben,15:00,\r\n"
    assert (delta.counts, delta.new_state.rows) == ({"ADD": 0, "UPDATE": 0, "DELETE": 1}, 1)
