"""The outbox and dry-run targets: leftovers of killed writes, and failures that the ledger records."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap

import duckdb
import pytest

from lb_pipelines.delivery.ledger import deliver_and_record
from lb_pipelines.delivery.targets import DeliveryError, DryRunTarget, OutboxTarget

# A delivery to the outbox killed after writing its temporary file and before the rename:
# fsync (between the two) says so and waits to be killed.
KILLED_WRITER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from lb_pipelines.delivery.targets import OutboxTarget

    def wait_to_be_killed(fd):
        print("written", flush=True)
        time.sleep(60)

    os.fsync = wait_to_be_killed
    OutboxTarget(Path(sys.argv[1])).deliver("kronos_wfd", "kronos_a.csv", b"half of a file")
    """
)


def test_a_killed_write_leaves_a_temporary_file_that_the_next_delivery_removes(tmp_path):
    outbox = tmp_path / "outbox"
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(outbox)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout.readline().strip() == "written"
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    folder = outbox / "kronos_wfd"
    leftover = folder / f".kronos_a.csv.{writer.pid}.tmp"
    assert leftover.read_bytes() == b"half of a file"
    assert not (folder / "kronos_a.csv").exists()

    alive = subprocess.Popen(["sleep", "60"])  # a writer that still runs: its file is a write in progress
    try:
        untouched = {
            folder / f".kronos_c.csv.{alive.pid}.tmp": b"in progress",
            folder / ".kronos_a.csv.tmp": b"not our name",
            folder / "kronos_0.csv": b"delivered before",
            folder / "dry_run" / f".kronos_d.csv.{writer.pid}.tmp": b"another folder",
        }
        for path, content in untouched.items():
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(content)

        receipt = OutboxTarget(outbox).deliver("kronos_wfd", "kronos_b.csv", b"whole")

        assert not leftover.exists()
        assert (folder / "kronos_b.csv").read_bytes() == b"whole" and receipt.bytes == 5
        assert {path: path.read_bytes() for path in untouched} == untouched
    finally:
        alive.kill()
        alive.wait()


def test_a_failing_dry_run_write_is_a_delivery_error_the_ledger_records(tmp_path):
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    (outbox / "epic_on_call_finder").write_text("a file where the folder should be")  # root may write anywhere
    target = DryRunTarget(outbox)
    with pytest.raises(DeliveryError) as failure:
        target.deliver("epic_on_call_finder", "epic.csv", b"x")
    assert str(failure.value).startswith(f"dry_run: could not write {outbox}/epic_on_call_finder/dry_run/epic.csv: ")
    assert isinstance(failure.value.__cause__, OSError)

    warehouse = tmp_path / "warehouse.duckdb"

    @contextlib.contextmanager
    def connect():
        with duckdb.connect(str(warehouse)) as conn:
            yield conn

    with pytest.raises(DeliveryError, match="dry_run: could not write"):
        deliver_and_record(connect, target, integration="epic_on_call_finder", scope="full",
                           file_name="epic.csv", content=b"x", rows=1, run_id="r1")
    with connect() as conn:
        assert conn.execute("SELECT file_name, status FROM delivery.ledger").fetchall() == [("epic.csv", "failed")]
    assert not os.path.isdir(outbox / "epic_on_call_finder")
