"""The feed service: who is on call (JSON), each provider's calendar (iCalendar) and the team
documents of the vendors that poll, over HTTP, read-only (`lb-pipelines serve`, `make serve`; see docs/feeds.md).

It reads the BI copy of the warehouse, never the live one: DuckDB lets no other process open a
file while a run writes it, so a feed request never waits for a run and never holds one up. Each
publish replaces the copy by a rename; the next request sees a new inode (or mtime) and opens the
new file, while requests already running finish on the copy they started with.

The copy is ATTACHed to a private in-memory database rather than opened by path: DuckDB keeps one
instance per path in a process, so a second `connect(path)` while a request still reads the old
copy would hand back the old one.

Only /health and /calendars answer without an API key (calendar programs send no headers: the
token in the URL is the credential). The access log has the method, the path (a calendar token
redacted), the status and the time taken: never a key, a token or a person.
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import logging
import os
import re
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import duckdb
import orjson
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.utils import send_file
from werkzeug.wrappers import Request, Response

from lb_pipelines import clock, settings
from lb_pipelines.feeds.calendar import calendar_for_token
from lb_pipelines.integrations.on_call import (
    SAFE_TEAM,
    feed_entries,
    feed_teams,
    on_call_integrations,
    published_teams_dir,
    utc_text,
)
from lb_pipelines.warehouse.bi_publish import PUBLISHED_NAME
from lb_pipelines.warehouse.sql import string_literal

access_log = logging.getLogger("lb_pipelines.feeds.access")
log = logging.getLogger(__name__)

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8090
API_KEYS_ENV = "LB_FEED_API_KEYS"
NO_COPY = "there is no BI copy of the warehouse yet: run `make run` first"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ALIAS = "bi"


class NoBiCopy(Exception):
    pass


class OpenCopy:
    """One request's view of the BI copy: its own cursor, and what is remembered for that copy
    (answers that depend on the copy alone, not on the moment: forgotten when a publish replaces it)."""

    MEMORY = 256  # answers kept per copy; all forgotten at once past that

    def __init__(self, conn: duckdb.DuckDBPyConnection, memory: dict) -> None:
        self.conn, self._memory = conn, memory

    def remember(self, key: tuple, compute: Callable[[], Any]) -> Any:
        if key not in self._memory:
            if len(self._memory) >= self.MEMORY:
                self._memory.clear()
            self._memory[key] = compute()
        return self._memory[key]


class BiCopy:
    """The BI copy, attached read-only once per process and again after each publish replaced it.

    A request takes its own cursor (DuckDB connections are not shared across threads); checking
    for a new copy is one os.stat per request."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._root: Optional[duckdb.DuckDBPyConnection] = None
        self._memory: dict = {}
        self._identity: Optional[tuple] = None

    def published_at(self) -> Optional[dt.datetime]:
        try:
            return dt.datetime.fromtimestamp(self.path.stat().st_mtime, dt.timezone.utc)
        except FileNotFoundError:
            return None

    def _current(self) -> tuple[duckdb.DuckDBPyConnection, dict]:
        try:
            found = os.stat(self.path)
        except FileNotFoundError:
            raise NoBiCopy(str(self.path)) from None
        identity = (found.st_dev, found.st_ino, found.st_mtime_ns, found.st_size)
        with self._lock:
            if identity != self._identity:
                root = duckdb.connect(":memory:")
                root.execute(f"ATTACH {string_literal(self.path)} AS {_ALIAS} (READ_ONLY)")
                root.execute("SET enable_external_access = false")  # this connection reads the copy, nothing else
                # Small queries, many at once: the server's threads give the parallelism (and on a
                # busy machine one thread per query answered faster in bench/feed.py).
                root.execute("SET threads = 1")
                # The old copy is not closed here: requests in flight hold cursors on it, and it
                # is released (file and memory) when the last of them closes.
                self._root, self._memory, self._identity = root, {}, identity
                log.info("feed: opened the BI copy published at %s", self.published_at())
            return self._root.cursor(), self._memory

    @contextmanager
    def read(self) -> Iterator[OpenCopy]:
        cursor, memory = self._current()
        try:
            cursor.execute(f"USE {_ALIAS}")  # per connection: unqualified names read the copy
            yield OpenCopy(cursor, memory)
        finally:
            cursor.close()


# --- API keys ---------------------------------------------------------------------------------


def api_keys_from_env() -> tuple[str, ...]:
    return tuple(k.strip() for k in os.environ.get(API_KEYS_ENV, "").split(",") if k.strip())


def presented_key(request: Request) -> Optional[str]:
    key = request.headers.get("X-API-Key")
    if key:
        return key.strip()
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def key_is_valid(presented: Optional[str], keys: tuple[str, ...]) -> bool:
    """Compared with every key in constant time, whether or not an earlier one matched."""
    if not presented:
        return False
    given = presented.encode("utf-8")
    matches = [hmac.compare_digest(given, key.encode("utf-8")) for key in keys]
    return any(matches)


# --- JSON -------------------------------------------------------------------------------------


class BadRequest(Exception):
    """A 4xx answer with a JSON error naming what was wrong."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def person_json(row: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The person of an entry; None for a gap (an unfilled slot: nobody to call)."""
    if row["file_outcome"] == "coverage_gap":
        return None
    return {
        "personnel_id": row["personnel_id"],
        "name": row["display_name"],
        "vendor_user_id": row["vendor_user_id"],
        "pager": row["pager"],
        "cell_phone": row["cell_phone"],
        "placeholder": row["person_status"] == "placeholder",
    }


def entry_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "position": row["position"],
        "role": row["role"],
        "call_order": row["call_order"],
        "assignment": {"id": row["assignment_id"], "name": row["assignment_name"]},
        "start": utc_text(row["start_at"]),
        "end": utc_text(row["end_at"]),
        "time_zone": row["time_zone"],
        "person": person_json(row),
    }


def teams_json(teams: list[tuple[str, str]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every team asked for, in the order given, each with its entries (maybe none)."""
    entries: dict[tuple[str, str], list] = {team: [] for team in teams}
    for row in rows:
        entries.setdefault((row["vendor"], row["team_id"]), []).append(entry_json(row))
    return [{"vendor": vendor, "team_id": team, "on_call": found} for (vendor, team), found in entries.items()]


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status=status, content_type="application/json",
                    headers={"Cache-Control": "no-store"})


def error_response(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


def _parameters(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:
        raise BadRequest(400, f"unknown parameter {', '.join(unknown)} (this path takes {', '.join(allowed)})")
    found = {}
    for name in allowed:
        if name in request.args:
            value = request.args[name].strip()
            if not value:
                raise BadRequest(400, f"parameter {name} is empty")
            found[name] = value
    return found


def parse_day(value: Optional[str]) -> dt.date:
    if value is None:
        raise BadRequest(400, "parameter date is missing: /oncall?date=YYYY-MM-DD (or /oncall/now)")
    try:
        if not _DATE.match(value):
            raise ValueError
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadRequest(400, "parameter date must be a date written YYYY-MM-DD") from None


# --- the app ----------------------------------------------------------------------------------

ROUTES = Map(
    [
        Rule("/health", endpoint="health", methods=["GET"]),
        Rule("/oncall/now", endpoint="on_call_now", methods=["GET"]),
        Rule("/oncall", endpoint="on_call_day", methods=["GET"]),
        Rule("/calendars/<token>.ics", endpoint="calendar", methods=["GET"]),
        Rule("/<vendor>/teams/<team_id>.json", endpoint="team_document", methods=["GET"]),
    ],
    strict_slashes=False,
)
OPEN_ENDPOINTS = frozenset({"health", "calendar"})  # answered without an API key


def logged_path(request: Request, endpoint: Optional[str]) -> str:
    """The path as the access log shows it: no calendar token; an unknown path by its first part
    only (a mistyped calendar URL still holds a token)."""
    if endpoint == "calendar":
        return "/calendars/<redacted>.ics"
    if endpoint is not None:
        return request.path
    first = request.path.lstrip("/").split("/", 1)
    return "/" + first[0][:40] + ("/..." if len(first) > 1 else "")


class FeedApp:
    """The WSGI app. Paths, keys and the clock are read when it is made (the clock per request)."""

    def __init__(
        self,
        bi_copy: Optional[Path] = None,
        api_keys: Optional[tuple[str, ...]] = None,
        now: Callable[[], dt.datetime] = clock.now,
    ) -> None:
        self.bi = BiCopy(bi_copy or settings.bi_dir() / PUBLISHED_NAME)
        self.api_keys = api_keys_from_env() if api_keys is None else tuple(api_keys)
        # The vendors that poll (their push publishes one document per team), and where.
        self.documents = {i.slug: published_teams_dir(i.slug) for i in on_call_integrations() if i.publishes_documents}
        self.now = now

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        request = Request(environ)
        endpoint = None
        try:
            endpoint, values = ROUTES.bind_to_environ(environ).match()
            response = self.dispatch(request, endpoint, values)
        except MethodNotAllowed as exc:
            response = error_response(405, "read-only: GET only")
            response.headers["Allow"] = ", ".join(exc.valid_methods or ["GET", "HEAD"])
        except NotFound:
            response = error_response(404, "no such path")
        except HTTPException as exc:
            response = error_response(exc.code or 400, exc.description or exc.name)
        except Exception:  # a feed request must never take the server down
            log.exception("feed: %s failed", logged_path(request, endpoint))
            response = error_response(500, "internal error (see the server's log)")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        access_log.info(
            "%s %s %d %.1f ms", request.method, logged_path(request, endpoint), response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response(environ, start_response)

    def dispatch(self, request: Request, endpoint: str, values: dict[str, str]) -> Response:
        if endpoint not in OPEN_ENDPOINTS and not key_is_valid(presented_key(request), self.api_keys):
            response = error_response(401, "an API key is required: X-API-Key: <key> or Authorization: Bearer <key>")
            response.headers["WWW-Authenticate"] = 'Bearer realm="lb-pipelines feeds"'
            return response
        try:
            return getattr(self, endpoint)(request, **values)
        except BadRequest as exc:
            return error_response(exc.status, str(exc))
        except NoBiCopy:
            return error_response(503, NO_COPY)

    # ---- endpoints

    def health(self, request: Request) -> Response:
        published = self.bi.published_at()
        if published is None:
            return json_response({"status": "no BI copy", "bi_copy_published_at": None, "error": NO_COPY}, 503)
        return json_response({"status": "ok", "bi_copy_published_at": published.isoformat()})

    def on_call_now(self, request: Request) -> Response:
        given = _parameters(request, ("team", "vendor"))
        now = self.now()
        with self.bi.read() as copy:
            teams = self._teams(copy, given)
            rows = feed_entries(copy.conn, now, team=given.get("team"), vendor=given.get("vendor"))
        return json_response({"as_of": now.isoformat(), "teams": teams_json(teams, rows)})

    def on_call_day(self, request: Request) -> Response:
        given = _parameters(request, ("date", "team", "vendor"))
        day = parse_day(given.get("date"))
        team, vendor = given.get("team"), given.get("vendor")
        with self.bi.read() as copy:
            teams = self._teams(copy, given)

            def answer() -> bytes:
                rows = feed_entries(copy.conn, self.now(), day=day, team=team, vendor=vendor)
                return orjson.dumps({"date": day.isoformat(), "teams": teams_json(teams, rows)})

            # A day's entries depend on the copy alone, not on the moment: remembered per copy.
            body = copy.remember(("day", day, team, vendor), answer)
        return json_response(orjson.Fragment(body))

    @staticmethod
    def _teams(copy: OpenCopy, given: dict[str, str]) -> list[tuple[str, str]]:
        """The mapped teams asked for; a team or vendor that maps nothing is a 404."""
        teams = copy.remember(("teams",), lambda: feed_teams(copy.conn))
        if "vendor" in given:
            teams = [t for t in teams if t[0] == given["vendor"]]
            if not teams:
                raise BadRequest(404, f"no enabled on-call vendor {given['vendor']!r} with a mapped team")
        if "team" in given:
            teams = [t for t in teams if t[1] == given["team"]]
            if not teams:
                raise BadRequest(404, f"no mapped team {given['team']!r}")
        return teams

    def calendar(self, request: Request, token: str) -> Response:
        with self.bi.read() as copy:
            body = calendar_for_token(copy.conn, token, self.now())
        if body is None:  # unknown or revoked: nothing said about which
            return Response("not found\n", status=404, content_type="text/plain; charset=utf-8")
        return Response(body, content_type="text/calendar; charset=utf-8", headers={
            "Cache-Control": "private, no-cache", "Referrer-Policy": "no-referrer",
        })

    def team_document(self, request: Request, vendor: str, team_id: str) -> Response:
        folder = self.documents.get(vendor)
        if folder is None or not SAFE_TEAM.match(team_id) or team_id.startswith("."):
            return error_response(404, "no such team document")
        try:
            # conditional: the vendor's poller gets a 304 while the document is unchanged
            response = send_file(folder / f"{team_id}.json", request.environ, mimetype="application/json", max_age=0)
        except (FileNotFoundError, IsADirectoryError):
            return error_response(404, f"no such team document (is the {vendor} integration on and published?)")
        response.headers["Cache-Control"] = "no-cache"
        return response


# --- the server -------------------------------------------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's own request line holds the full path (a calendar token): FeedApp logs instead."""

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass


def make_feed_server(app: FeedApp, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> BaseWSGIServer:
    """A threaded werkzeug server for `app` (port 0: any free port; `server.port` says which)."""
    return make_server(host, port, app, threaded=True, request_handler=_QuietHandler)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
