"""The ledger with real targets: one successful row per delivered file, failures recorded,
state advanced only by a delivery that succeeded — over a real sshd and to the outbox."""

from __future__ import annotations

import contextlib
import os
import threading
import time

import duckdb
import pytest

from lb_pipelines.delivery.deltas import load_delivered, snapshot
from lb_pipelines.delivery.ledger import deliver_and_record
from lb_pipelines.delivery.settings import SftpDelivery
from lb_pipelines.delivery.sftp import SftpTarget
from lb_pipelines.delivery.targets import DeliveryError, OutboxTarget, sha256_hex


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "warehouse.duckdb"

    @contextlib.contextmanager
    def connect():
        with duckdb.connect(str(path)) as conn:
            yield conn

    connect.path = path
    return connect


def state(slot_id, end):
    """A one-shift snapshot, as a delta export makes it."""
    with duckdb.connect() as conn:
        conn.execute("CREATE TABLE shifts AS SELECT ? AS SLOT_ID, ? AS \"END\"", [slot_id, end])
        return snapshot(conn, "shifts")


def ledger(connect):
    with connect() as conn:
        return conn.execute("SELECT file_name, status, rows, sha256, target FROM delivery.ledger ORDER BY delivered_at").fetchall()


def test_dropped_sftp_connection_then_retry_leaves_one_file_and_one_ledger_row(sshd_server, sshd_upload_dir, warehouse, monkeypatch):
    monkeypatch.setenv("LB_TEST_SFTP_PASSWORD", sshd_server.password)
    target = SftpTarget(
        SftpDelivery(**sshd_server.delivery(sshd_upload_dir, password_env="LB_TEST_SFTP_PASSWORD", retries=3, timeout_s=10)),
        backoff_initial=0.05,
    )
    content = os.urandom(24 * 2**20)  # big enough to still be travelling when the connection drops

    dropped = []

    def drop_once_uploading():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(FileNotFoundError):  # a temporary file may vanish mid-look
                if any(p.name.endswith(".tmp") and p.stat().st_size > 2**20 for p in sshd_upload_dir.iterdir()):
                    dropped.append(sshd_server.kill_sessions())
                    return
            time.sleep(0.001)

    dropper = threading.Thread(target=drop_once_uploading)
    dropper.start()
    entry = deliver_and_record(warehouse, target, integration="epic_on_call_finder", scope="full",
                               file_name="epic_ocf_202611020800.csv", content=content, rows=1000, run_id="r1",
                               new_state=state(1, "07:00"))
    dropper.join()
    assert dropped and dropped[0] > 0  # the connection really was cut mid-upload
    assert entry.status == "delivered"
    files = sorted(p.name for p in sshd_upload_dir.iterdir())
    assert files == ["epic_ocf_202611020800.csv"]  # exactly one, no temporary file left
    assert sha256_hex((sshd_upload_dir / files[0]).read_bytes()) == sha256_hex(content)
    assert ledger(warehouse) == [("epic_ocf_202611020800.csv", "delivered", 1000, sha256_hex(content), target.description)]


def test_wrong_host_key_is_a_failed_row_and_the_state_stays(sshd_server, sshd_upload_dir, warehouse, monkeypatch):
    monkeypatch.setenv("LB_TEST_SFTP_PASSWORD", sshd_server.password)
    good = OutboxTarget(warehouse.path.parent / "outbox")
    first = state(1, "07:00")
    deliver_and_record(warehouse, good, integration="kronos_wfd", scope="2026-11-01", file_name="a.csv",
                       content=b"x", rows=1, run_id="r1", new_state=first)
    block = sshd_server.delivery(sshd_upload_dir, password_env="LB_TEST_SFTP_PASSWORD", retries=0)
    block["known_hosts"] = sshd_server.wrong_known_hosts
    with pytest.raises(DeliveryError, match="does not match known_hosts"):
        deliver_and_record(warehouse, SftpTarget(SftpDelivery(**block)), integration="kronos_wfd", scope="2026-11-01",
                           file_name="b.csv", content=b"y", rows=1, run_id="r2",
                           new_state=state(2, "15:00"))
    assert list(sshd_upload_dir.iterdir()) == []
    assert [(f, s) for f, s, *_ in ledger(warehouse)] == [("a.csv", "delivered"), ("b.csv", "failed")]
    with warehouse() as conn:
        conn.execute("CREATE TABLE shifts (SLOT_ID BIGINT, \"END\" VARCHAR)")
        load_delivered(conn, "kronos_wfd", "2026-11-01", like="shifts", into="kept")
        assert conn.execute("SELECT * FROM kept").fetchall() == [(1, "07:00")]  # not advanced
        error = conn.execute("SELECT error FROM delivery.ledger WHERE status = 'failed'").fetchall()[0][0]
    assert "does not match known_hosts" in error and sshd_server.password not in error


def test_a_ledger_write_that_fails_half_way_is_rolled_back_and_the_warehouse_stays_usable(tmp_path):
    """The ledger row, the check and the delivered state are one transaction: a failure after the
    ledger row (here a state whose row count is not a number) leaves none of them, and the same
    connection takes the next delivery."""
    from lb_pipelines.delivery.ledger import StateSnapshot

    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))

    @contextlib.contextmanager
    def shared():  # one connection for both deliveries, as an asset's open warehouse would be
        yield conn

    outbox = OutboxTarget(tmp_path / "outbox")
    broken = StateSnapshot(rows="many", parquet=b"")  # type: ignore[arg-type]
    with pytest.raises(duckdb.ConversionException):
        deliver_and_record(shared, outbox, integration="kronos_wfd", scope="2026-11-01", file_name="a.csv",
                           content=b"A\r\n", rows=0, run_id="r1", new_state=broken)
    counts = [conn.execute(f"SELECT count(*) FROM delivery.{t}").fetchall()[0][0]
              for t in ("ledger", "problem_checks", "delivered_state")]
    assert counts == [0, 0, 0]
    deliver_and_record(shared, outbox, integration="kronos_wfd", scope="2026-11-01", file_name="b.csv",
                       content=b"A\r\n", rows=0, run_id="r2", new_state=state(1, "07:00"))
    assert conn.execute("SELECT file_name, status FROM delivery.ledger").fetchall() == [("b.csv", "delivered")]
    conn.close()
