"""The audit trail: every sign-in, refusal and change made through the UI, appended to a SQLite
table nobody using the UI can change (triggers refuse UPDATE and DELETE; the UI has no way to
the file) and written to the log. No token, cookie or secret is ever recorded.

Default file `$DAGSTER_HOME/audit.sqlite` (`LB_UI_AUDIT_DB`): keep it on the same backed-up
volume as the instance, and ship the `lb_pipelines.ui.audit` log lines to the hospital's SIEM.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("lb_pipelines.ui.audit")

_DDL = (
    """CREATE TABLE IF NOT EXISTS audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, who TEXT, role TEXT, address TEXT,
        event TEXT NOT NULL, operation TEXT, target TEXT, outcome TEXT NOT NULL, detail TEXT)""",
    """CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
)
COLUMNS = ("at", "who", "role", "address", "event", "operation", "target", "outcome", "detail")


class Audit:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        with self._connect() as conn:
            for statement in _DDL:
                conn.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10, isolation_level=None)  # autocommit: each row at once

    def record(self, event: str, outcome: str, *, who: str = "", role: str = "", address: str = "",
               operation: str = "", target: Any = "", detail: str = "") -> None:
        """One row: event is sign_in | sign_out | mutation | post | refused_*; outcome allowed | refused | ok."""
        at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")  # real time: this is evidence
        target_text = target if isinstance(target, str) else json.dumps(target, sort_keys=True, default=str)
        row = (at, who, role, address, event, operation, target_text, outcome, detail)
        with self._lock, self._connect() as conn:
            conn.execute(f"INSERT INTO audit ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", row)
        log.info("audit %s", " ".join(f"{k}={v!r}" for k, v in zip(COLUMNS, row) if v))

    def rows(self) -> list[dict[str, str]]:
        with self._connect() as conn:
            cursor = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM audit ORDER BY id")
            return [dict(zip(COLUMNS, r)) for r in cursor.fetchall()]
