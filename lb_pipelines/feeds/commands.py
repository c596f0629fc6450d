"""The feed service's commands: `lb-pipelines serve [--demo]` and `lb-pipelines calendar-token ...`.

Tokens are issued and revoked in the LIVE warehouse (the only writable one), then the BI copy is
published again so the server, which reads only that copy, sees the change at once.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Optional

import duckdb

from lb_pipelines import clock, settings
from lb_pipelines.warehouse.bi_publish import PUBLISHED_NAME, publish_for_bi

DEMO_LABEL = "make serve demo"
BASE_URL_ENV = "LB_FEED_BASE_URL"  # the URL people reach the service at (behind the TLS proxy)


class CommandError(Exception):
    """A refusal to print and exit non-zero with."""


def base_url(host: str, port: int) -> str:
    return os.environ.get(BASE_URL_ENV, "").strip().rstrip("/") or f"http://{host}:{port}"


def _warehouse() -> Path:
    warehouse = settings.warehouse_path()
    if not warehouse.exists():
        raise CommandError(f"no warehouse at {warehouse}: run `make run` first")
    return warehouse


def _connect_live(warehouse: Path) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(warehouse))
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise CommandError(
                f"the warehouse {warehouse} is in use (a run is writing it): try again when it ends"
            ) from None
        raise


def _republish(warehouse: Path) -> None:
    published = publish_for_bi(warehouse, settings.bi_dir())
    print(f"lb-pipelines: BI copy republished ({published.database}): the feed server sees the change now")


# --- calendar tokens --------------------------------------------------------------------------


def issue(personnel_id: int, label: Optional[str], url: str) -> int:
    from lb_pipelines.feeds.tokens import issue_token

    warehouse = _warehouse()
    with _connect_live(warehouse) as conn:
        try:
            token_id, token = issue_token(conn, personnel_id, label, clock.now())
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    _republish(warehouse)
    print(f"token id:  {token_id}   (quote it to revoke: lb-pipelines calendar-token revoke {token_id})")
    print(f"token:     {token}")
    print(f"feed URL:  {url}/calendars/{token}.ics")
    print("Shown once: only the token's hash is stored. Give the URL to the person: "
          "anyone holding it reads the calendar.")
    return 0


def revoke(token_id: str) -> int:
    from lb_pipelines.feeds.tokens import revoke_token

    warehouse = _warehouse()
    with _connect_live(warehouse) as conn:
        revoked = revoke_token(conn, token_id, clock.now())
    if not revoked:
        raise CommandError(f"no live calendar token {token_id!r} (unknown, or revoked already)")
    _republish(warehouse)
    print(f"token {token_id} revoked: its feed URL now answers 404")
    return 0


def list_all() -> int:
    from lb_pipelines.feeds.tokens import list_tokens

    with _connect_live(_warehouse()) as conn:
        tokens = list_tokens(conn)
    print(f"{'token id':<14} {'personnel':>9}  {'issued at':<25} {'revoked at':<25} label")
    for t in tokens:
        revoked = t.revoked_at.isoformat(timespec="seconds") if t.revoked_at else "-"
        issued = t.issued_at.isoformat(timespec="seconds")
        print(f"{t.token_id:<14} {t.personnel_id:>9}  {issued:<25} {revoked:<25} {t.label or ''}")
    print(f"{len(tokens)} token(s); {sum(t.revoked_at is None for t in tokens)} live")
    return 0


# --- serve ------------------------------------------------------------------------------------

# A real person with published shifts around now: the most such shifts, then the lowest id.
DEMO_PERSON_SQL = """
SELECT shifts.personnel_id
FROM marts.fct_shifts AS shifts
JOIN marts.dim_personnel AS people ON people.personnel_id = shifts.personnel_id
WHERE shifts.is_published AND NOT people.is_placeholder
  AND shifts.start_at BETWEEN $now - INTERVAL 30 DAY AND $now + INTERVAL 30 DAY
GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1
"""


def demo_token(now) -> tuple[int, str, str]:
    """(personnel_id, token_id, token) of a fresh demo token; the previous demo token revoked."""
    from lb_pipelines.feeds.tokens import ensure_token_table, issue_token, list_tokens, revoke_token

    warehouse = _warehouse()
    with _connect_live(warehouse) as conn:
        ensure_token_table(conn)
        for old in list_tokens(conn):
            if old.label == DEMO_LABEL and old.revoked_at is None:
                revoke_token(conn, old.token_id, now)
        found = conn.execute(DEMO_PERSON_SQL, {"now": now}).fetchall()
        if not found:
            raise CommandError("no real provider with published shifts within 30 days of now: no demo calendar")
        personnel_id = found[0][0]
        token_id, token = issue_token(conn, personnel_id, DEMO_LABEL, now)
    publish_for_bi(warehouse, settings.bi_dir())
    return personnel_id, token_id, token


def serve(host: str, port: int, demo: bool = False) -> int:
    """Serve until interrupted. `demo` (make serve): refuse without a BI copy, make up a session
    key when none is set, issue a demo calendar token, and print URLs to try."""
    from lb_pipelines.feeds.server import API_KEYS_ENV, FeedApp, api_keys_from_env, is_loopback, make_feed_server

    bi_copy = settings.bi_dir() / PUBLISHED_NAME
    now = clock.now()  # a bad LB_NOW stops us here, not on the first request
    lines = []
    if demo:
        if not bi_copy.exists():
            raise CommandError(f"no BI copy at {bi_copy}: run `make run` first")
        if not api_keys_from_env():
            key = secrets.token_urlsafe(24)
            os.environ[API_KEYS_ENV] = key
            lines.append(f"API key for this session: {key}")
            lines.append(f"  (made up because {API_KEYS_ENV} is unset; forgotten when the server stops; "
                         f"set {API_KEYS_ENV}=key1,key2 to choose your own)")
            curl_key = key
        else:
            curl_key = f"<one of {API_KEYS_ENV}>"
        url = base_url(host, port)
        lines += [
            f"who is on call now:  {url}/oncall/now",
            f"on call on a day:    {url}/oncall?date={clock.today().isoformat()}",
        ]
        try:
            personnel_id, token_id, token = demo_token(now)
            lines.append(f"a calendar (demo):   {url}/calendars/{token}.ics   "
                         f"(personnel_id {personnel_id}, token id {token_id}, label {DEMO_LABEL!r})")
        except CommandError as exc:
            lines.append(f"(no demo calendar: {exc})")
        lines.append(f'try:  curl -H "X-API-Key: {curl_key}" {url}/oncall/now')
    elif not bi_copy.exists():
        print(f"lb-pipelines: no BI copy at {bi_copy} yet: the feeds answer 503 until a run publishes one",
              file=sys.stderr)
    if not api_keys_from_env():
        print(f"lb-pipelines: {API_KEYS_ENV} is unset: only /health and /calendars answer (every other path 401)",
              file=sys.stderr)
    if not is_loopback(host):
        print(f"lb-pipelines: WARNING: listening on {host}, reachable from other machines, in plain HTTP: "
              "put it behind a TLS reverse proxy (docs/feeds.md)", file=sys.stderr)

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server = make_feed_server(FeedApp(), host, port)
    print(f"lb-pipelines: feeds on http://{host}:{server.port}, reading {bi_copy} (Ctrl-C stops)")
    for line in lines:
        print(f"  {line}")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
