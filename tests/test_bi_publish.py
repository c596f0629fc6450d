"""BI users read a published copy: never blocked by the pipeline, never blocking it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

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
