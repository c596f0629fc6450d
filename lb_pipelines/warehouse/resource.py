"""The warehouse as a Dagster resource: a DuckDB connection that is closed on every path.

dagster-duckdb's `DuckDBResource.get_connection` closes its connection only when the body ends
normally: a load that raises leaves a read-write connection open in the process, and the next
open of the same file with another configuration (the CLI's read-only summary) then fails with
"Can't open a connection to same database file with a different configuration".
"""

from contextlib import contextmanager
from typing import Iterator

import dagster as dg
import duckdb
import tenacity
from dagster_duckdb import DuckDBResource

from lb_pipelines import settings

# Another process writing the file refuses even our open: wait for it. (A dbt build orphaned by a
# killed run keeps writing for a while after its parent is gone.)
_OPEN_WAIT_SECONDS = 300


class WarehouseResource(DuckDBResource):
    """`DuckDBResource` whose connection is closed even when the body raises."""

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        for attempt in tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(duckdb.IOException),
            stop=tenacity.stop_after_delay(_OPEN_WAIT_SECONDS),
            wait=tenacity.wait_exponential(multiplier=0.1, max=5),
            reraise=True,
        ):
            with attempt:
                conn = duckdb.connect(self.database, read_only=False, config=dict(self.connection_config))
        try:
            yield conn
        finally:
            conn.close()


def warehouse_resource() -> dg.ConfigurableResource:
    return WarehouseResource(database=str(settings.warehouse_path()))
