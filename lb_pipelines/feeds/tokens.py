"""Calendar feed tokens: the unguessable, revocable part of a provider's feed URL.

`delivery.calendar_tokens` lists every token by a short public id (what an analyst quotes to
revoke one) and the sha256 of the token; the token itself is shown once, when issued, and
stored nowhere. A feed request is looked up by the hash of the token it brings, so the
warehouse never compares secrets and a copy of the table (the BI copy) holds none.

Issue and revoke on the live warehouse; the feed server reads the BI copy, so a new or revoked
token takes effect with the next publish of that copy.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Optional

import duckdb

TABLE = "delivery.calendar_tokens"  # beside the delivery ledger, in the same schema

_DDL = (
    "CREATE SCHEMA IF NOT EXISTS delivery",
    f"""CREATE TABLE IF NOT EXISTS {TABLE} (
        token_id VARCHAR PRIMARY KEY, token_sha256 VARCHAR NOT NULL UNIQUE, personnel_id BIGINT NOT NULL,
        label VARCHAR, issued_at TIMESTAMPTZ NOT NULL, revoked_at TIMESTAMPTZ)""",
)
_LONGEST_TOKEN = 256  # anything longer is not one of ours: not even hashed


@dataclass(frozen=True)
class CalendarToken:
    """A token as listed: never the token, never its hash."""

    token_id: str
    personnel_id: int
    label: Optional[str]
    issued_at: dt.datetime
    revoked_at: Optional[dt.datetime]


def ensure_token_table(conn: duckdb.DuckDBPyConnection) -> None:
    for statement in _DDL:
        conn.execute(statement)


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(
    conn: duckdb.DuckDBPyConnection, personnel_id: int, label: Optional[str], now: dt.datetime
) -> tuple[str, str]:
    """A new token for a real person: (token_id, token). The token is not stored; show it once."""
    ensure_token_table(conn)
    try:
        found = conn.execute(
            "SELECT count(*) FROM marts.dim_personnel WHERE personnel_id = ? AND NOT is_placeholder",
            [personnel_id],
        ).fetchall()[0][0]
    except duckdb.CatalogException:
        raise ValueError("marts.dim_personnel is not built yet: build the warehouse before issuing calendar tokens") from None
    if not found:
        raise ValueError(
            f"personnel_id {personnel_id} is not a person in marts.dim_personnel (unknown, or a placeholder): "
            "no calendar token issued"
        )
    token = secrets.token_urlsafe(32)
    token_id = secrets.token_hex(6)
    conn.execute(
        f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?, ?, NULL)",
        [token_id, token_sha256(token), personnel_id, label, now],
    )
    return token_id, token


def revoke_token(conn: duckdb.DuckDBPyConnection, token_id: str, now: dt.datetime) -> bool:
    """Revoke a token by its public id; False when there is no such token or it was revoked already."""
    ensure_token_table(conn)
    revoked = conn.execute(
        f"UPDATE {TABLE} SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL RETURNING token_id",
        [now, token_id],
    ).fetchall()
    return bool(revoked)


def list_tokens(conn: duckdb.DuckDBPyConnection) -> list[CalendarToken]:
    """Every token, revoked ones too, oldest first (read-only: none when the table is missing)."""
    try:
        rows = conn.execute(
            f"SELECT token_id, personnel_id, label, issued_at, revoked_at FROM {TABLE} ORDER BY issued_at, token_id"
        ).fetchall()
    except duckdb.CatalogException:
        return []
    return [CalendarToken(*row) for row in rows]


def person_of_token(conn: duckdb.DuckDBPyConnection, token: str, now: dt.datetime) -> Optional[int]:
    """The personnel_id a live token belongs to; None when unknown, revoked (as of `now`) or malformed.

    Read-only: works on the BI copy, where the table may not exist yet (no token issued)."""
    if not isinstance(token, str) or not token or len(token) > _LONGEST_TOKEN:
        return None
    try:
        rows = conn.execute(
            f"SELECT personnel_id FROM {TABLE} WHERE token_sha256 = ? AND (revoked_at IS NULL OR revoked_at > ?)",
            [token_sha256(token), now],
        ).fetchall()
    except duckdb.CatalogException:
        return None
    return rows[0][0] if rows else None
