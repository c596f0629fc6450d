"""BI users read a published copy: never blocked by the pipeline, never blocking it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import duckdb
import pytest

from lb_pipelines.warehouse.bi_publish import publish_for_bi
from tiny_system import fresh
from warehouse_helpers import load_system, run_dbt

# A writer that holds the live warehouse like a build does: opens it, writes inside a
# transaction, says "writing", and keeps the file until told to finish on stdin.
WRITER = textwrap.dedent(
    """
    import sys, duckdb
    conn = duckdb.connect(sys.argv[1])
    conn.execute("BEGIN TRANSACTION")
    conn.execute("CREATE TABLE marts.being_built AS SELECT range AS n FROM range(1000)")
    print("writing", flush=True)
    sys.stdin.readline()
    conn.execute("COMMIT")
    conn.close()
    """
)


@pytest.fixture(scope="module")
def built_once(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bi")
    warehouse = load_system(folder / "src", fresh(), folder / "warehouse.duckdb")
    run_dbt(warehouse, "build", "--exclude", "fct_duty_hours")
    return warehouse


@pytest.fixture
def built(built_once, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(built_once, warehouse)
    return warehouse, tmp_path / "bi"


def test_bi_query_succeeds_while_the_pipeline_writes(built):
    warehouse, bi_dir = built
    publish_for_bi(warehouse, bi_dir)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(warehouse)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout.readline().strip() == "writing"
        # The live warehouse is locked against every other process, even read-only...
        with pytest.raises(duckdb.IOException):
            duckdb.connect(str(warehouse), read_only=True)
        # ...while the published copy answers a BI query: 6 slots in tiny_system, 1 unfilled.
        with duckdb.connect(str(bi_dir / "warehouse.duckdb"), read_only=True) as bi:
            assert bi.execute("SELECT count(*) FROM marts.fct_shifts").fetchall() == [(6,)]
            assert bi.execute(
                "SELECT slot_id FROM marts.fct_coverage WHERE coverage_issue = 'unfilled'"
            ).fetchall() == [(5004,)]
        parquet = duckdb.sql(f"SELECT count(*) FROM '{bi_dir}/parquet/fct_shifts.parquet'").fetchall()
        assert parquet == [(6,)]
    finally:
        writer.communicate("done\n", timeout=30)
    assert writer.returncode == 0


def test_publishing_replaces_the_copy_under_an_open_reader(built):
    warehouse, bi_dir = built
    publish_for_bi(warehouse, bi_dir)
    reader = duckdb.connect(str(bi_dir / "warehouse.duckdb"), read_only=True)
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("DELETE FROM marts.fct_shifts WHERE slot_id = 5001")
    published = publish_for_bi(warehouse, bi_dir)  # the pipeline is not blocked by the reader
    # the open reader still sees the copy it opened; a new reader sees the new one
    assert reader.execute("SELECT count(*) FROM marts.fct_shifts").fetchall() == [(6,)]
    reader.close()
    with duckdb.connect(str(published.database), read_only=True) as fresh_reader:
        assert fresh_reader.execute("SELECT count(*) FROM marts.fct_shifts").fetchall() == [(5,)]
    assert {p.name for p in published.parquet} >= {"fct_shifts.parquet", "fct_coverage.parquet", "dim_personnel.parquet"}
    assert not list(bi_dir.glob(".*.tmp")) and not list((bi_dir / "parquet").glob(".*.tmp"))


# A publish in its own process, as the pipeline's run worker does it.
PUBLISHER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from lb_pipelines.warehouse.bi_publish import publish_for_bi
    publish_for_bi(Path(sys.argv[1]), Path(sys.argv[2]))
    """
)


def _made_warehouse(path, sql: str):
    """A warehouse made directly with DuckDB (no dbt): `sql` creates what is in marts."""
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA marts")
        conn.execute(sql)
    return path


def _dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    return ended.pid


def test_a_publish_killed_mid_copy_leaves_a_temporary_file_that_the_next_publish_removes(tmp_path):
    rows = 15_000_000  # about 250 MB: the copy and the Parquet export take seconds, long enough to kill
    warehouse = _made_warehouse(
        tmp_path / "warehouse.duckdb",
        f"CREATE TABLE marts.big AS SELECT range AS n, hash(range) AS h, hash(range + 1) AS h2 FROM range({rows})",
    )
    bi_dir = tmp_path / "bi"
    publisher = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, str(warehouse), str(bi_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    tmp_db = bi_dir / f".warehouse.duckdb.{publisher.pid}.tmp"
    deadline = time.monotonic() + 60
    while not tmp_db.exists() and publisher.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    publisher.send_signal(signal.SIGKILL)
    publisher.wait()
    assert publisher.returncode == -signal.SIGKILL, "the publish ended before it was killed: the test proves nothing"
    left = sorted(p for p in bi_dir.rglob(".*.tmp"))
    assert tmp_db in left
    assert not (bi_dir / "warehouse.duckdb").exists()

    published = publish_for_bi(warehouse, bi_dir)

    assert sorted(published.removed_leftovers) == left
    assert not list(bi_dir.rglob(".*.tmp"))
    with duckdb.connect(str(published.database), read_only=True) as bi:
        assert bi.execute("SELECT count(*) FROM marts.big").fetchall() == [(rows,)]
    assert duckdb.sql(f"SELECT count(*) FROM '{bi_dir}/parquet/big.parquet'").fetchall() == [(rows,)]


def test_only_leftover_temporaries_of_ours_are_removed(tmp_path):
    warehouse = _made_warehouse(tmp_path / "warehouse.duckdb", "CREATE TABLE marts.fct_x AS SELECT 1 AS n")
    bi_dir, parquet_dir = tmp_path / "bi", tmp_path / "bi" / "parquet"
    parquet_dir.mkdir(parents=True)
    alive = subprocess.Popen(["sleep", "60"])  # another process that is still running
    dead = _dead_pid()
    try:
        stale = [
            bi_dir / f".warehouse.duckdb.{dead}.tmp",
            bi_dir / f".warehouse.duckdb.{os.getpid()}.tmp",  # ours: this process publishes now
            parquet_dir / f".fct_x.parquet.{dead}.tmp",
            parquet_dir / f".fct_gone.parquet.{dead}.tmp",
            parquet_dir / ".fct_x.parquet.tmp",  # as earlier versions named it
        ]
        kept = [
            bi_dir / f".warehouse.duckdb.{alive.pid}.tmp",  # its writer still runs
            bi_dir / f".other.duckdb.{dead}.tmp",  # not a name we publish
            bi_dir / "notes.txt",
            parquet_dir / f".notes.txt.{dead}.tmp",
            parquet_dir / "notes.txt",
        ]
        for path in stale + kept:
            path.write_bytes(b"left")
        published = publish_for_bi(warehouse, bi_dir)
        assert all(path.exists() for path in kept)
        assert not any(path.exists() for path in stale)
        assert sorted(published.removed_leftovers) == sorted(stale)
        assert published.removed_parquet == []
    finally:
        alive.kill()
        alive.wait()


def test_views_in_marts_get_parquet_and_a_dropped_mart_loses_its_file(tmp_path):
    warehouse = _made_warehouse(
        tmp_path / "warehouse.duckdb",
        "CREATE TABLE marts.fct_a AS SELECT range AS n FROM range(5);"
        "CREATE TABLE marts.fct_b AS SELECT 1 AS n;"
        "CREATE VIEW marts.fct_open AS SELECT n FROM marts.fct_a WHERE n >= 3;"
        "CREATE SCHEMA staging; CREATE TABLE staging.stg_x AS SELECT 1 AS n",
    )
    bi_dir = tmp_path / "bi"
    first = publish_for_bi(warehouse, bi_dir)
    assert sorted(p.name for p in first.parquet) == ["fct_a.parquet", "fct_b.parquet", "fct_open.parquet"]
    assert duckdb.sql(f"SELECT n FROM '{bi_dir}/parquet/fct_open.parquet' ORDER BY n").fetchall() == [(3,), (4,)]
    (bi_dir / "parquet" / "notes.txt").write_text("not a mart's file")

    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("DROP TABLE marts.fct_b")
    second = publish_for_bi(warehouse, bi_dir)

    assert second.removed_parquet == [bi_dir / "parquet" / "fct_b.parquet"]
    assert sorted(p.name for p in (bi_dir / "parquet").iterdir()) == ["fct_a.parquet", "fct_open.parquet", "notes.txt"]
    with duckdb.connect(str(second.database), read_only=True) as bi:  # the view reads in the copy too
        assert bi.execute("SELECT count(*) FROM marts.fct_open").fetchall() == [(2,)]
