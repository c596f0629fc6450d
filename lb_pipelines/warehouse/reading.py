"""Reading the warehouse from another process than the run's: a sensor, the CLI.

While a process writes a DuckDB file, no other process may open it, even read-only. Readers
outside the run try again briefly, then do without (counts only, the BI copy): they never wait
for a run to end.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, TypeVar

import duckdb
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_fixed

T = TypeVar("T")


def read_when_free(read: Callable[[Path], T], database: Path, *, attempts: int, wait_seconds: float) -> T:
    """`read(database)`, tried again while the file is held by a writer (DuckDB's IOException);
    the last IOException is raised when it stays held."""
    for attempt in Retrying(
        retry=retry_if_exception_type(duckdb.IOException),
        stop=stop_after_attempt(attempts),
        wait=wait_fixed(wait_seconds),
        reraise=True,
    ):
        with attempt:
            return read(database)
    raise AssertionError("not reached: Retrying re-raises the last error")
