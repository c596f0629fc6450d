"""A stateful fake of AnesthesiaGo's schedule API, to test the API push over real HTTP.

One route under `base_url`, `/schedule/<YYYY-MM-DD>`, with `Authorization: Bearer <token>`:

- `PUT`: a JSON body `{"date": "<the path's date>", "providers": [...]}`, each provider
  `{emp_id, assignment_id, slot_id, time_zone, start_local, end_local, start_utc, end_utc}`;
  it replaces the date's schedule. The body is checked in full before anything is kept (a `400`
  names the field), including that each local time is its UTC instant on the zone's wall clock.
- `GET`: the date's schedule as last kept, the same shape; `404` when nothing is held.

Schedules are kept per date, exactly as sent. `edit_by_hand` and `remove_by_hand` stand for
someone changing AnesthesiaGo directly.
"""

from __future__ import annotations

import copy
import datetime as dt
import hmac
import re
from typing import Any, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from werkzeug.wrappers import Request, Response

from fakes.server import FakeServer, json_response

_PATH = re.compile(r"^/schedule/([0-9]{4}-[0-9]{2}-[0-9]{2})$")
_LOCAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")
_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
FIELDS = ("emp_id", "assignment_id", "slot_id", "time_zone", "start_local", "end_local", "start_utc", "end_utc")


class BodyError(ValueError):
    """What is wrong with a PUT's body, and which field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _date(value: str) -> Optional[dt.date]:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def _integer(field: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise BodyError(field, f"must be a positive integer, got {value!r}")
    return value


def _time(field: str, value: Any, pattern: re.Pattern, utc: bool) -> dt.datetime:
    if isinstance(value, str) and pattern.fullmatch(value):
        try:
            parsed = dt.datetime.fromisoformat(value.removesuffix("Z"))
            return parsed.replace(tzinfo=dt.timezone.utc) if utc else parsed
        except ValueError:
            pass  # right shape, impossible date
    shape = "YYYY-MM-DDTHH:MM:SSZ" if utc else "YYYY-MM-DDTHH:MM:SS (no offset)"
    raise BodyError(field, f"must be {shape}, got {value!r}")


def check_provider(at: str, provider: Any) -> None:
    if not isinstance(provider, dict):
        raise BodyError(at, "must be an object")
    for name in provider:
        if name not in FIELDS:
            raise BodyError(f"{at}.{name}", "is not a known field")
    for name in FIELDS:
        if name not in provider:
            raise BodyError(f"{at}.{name}", "is missing")
    if not isinstance(provider["emp_id"], str) or not provider["emp_id"].strip():
        raise BodyError(f"{at}.emp_id", "must be a non-empty string")
    _integer(f"{at}.assignment_id", provider["assignment_id"])
    _integer(f"{at}.slot_id", provider["slot_id"])
    zone_name = provider["time_zone"]
    try:
        zone = ZoneInfo(zone_name) if isinstance(zone_name, str) else None
    except (ZoneInfoNotFoundError, ValueError):
        zone = None
    if zone is None:
        raise BodyError(f"{at}.time_zone", f"unknown IANA time zone {zone_name!r}")
    for edge in ("start", "end"):
        local = _time(f"{at}.{edge}_local", provider[f"{edge}_local"], _LOCAL, utc=False)
        instant = _time(f"{at}.{edge}_utc", provider[f"{edge}_utc"], _UTC, utc=True)
        if instant.astimezone(zone).replace(tzinfo=None) != local:
            raise BodyError(f"{at}.{edge}_local", f"is not {edge}_utc on the wall clock of {zone_name}")
    if provider["end_utc"] <= provider["start_utc"]:
        raise BodyError(f"{at}.end_utc", "is not after start_utc")


def check_body(date: str, body: Any) -> None:
    """Raises BodyError naming the first field that is wrong."""
    if not isinstance(body, dict):
        raise BodyError("body", "must be a JSON object")
    for name in body:
        if name not in ("date", "providers"):
            raise BodyError(name, "is not a known field")
    if body.get("date") != date:
        raise BodyError("date", f"must be the path's date {date}, got {body.get('date')!r}")
    if not isinstance(body.get("providers"), list):
        raise BodyError("providers", "must be a list (empty when nobody is scheduled)")
    for index, provider in enumerate(body["providers"]):
        check_provider(f"providers[{index}]", provider)


class AnesthesiaGoFake(FakeServer):
    """`with AnesthesiaGoFake(token=...) as fake:` then point the client at `fake.base_url`."""

    def __init__(self, token: str = "ag-token") -> None:
        super().__init__()
        self.token = token
        self._held: dict[str, dict] = {}
        self._puts: list[str] = []

    @property
    def base_url(self) -> str:
        return self.url

    # ---- helpers for tests (thread-safe)
    @property
    def held(self) -> dict[str, dict]:
        """Every date's schedule as held, by date."""
        with self.lock:
            return copy.deepcopy(self._held)

    def puts(self) -> list[str]:
        """The dates of every accepted PUT, in order."""
        with self.lock:
            return list(self._puts)

    def edit_by_hand(self, date: str, body: dict) -> None:
        """Someone changes the date in AnesthesiaGo (checked as a PUT's body is: a typo fails here)."""
        check_body(date, body)
        with self.lock:
            self._held[date] = copy.deepcopy(body)

    def remove_by_hand(self, date: str) -> None:
        with self.lock:
            self._held.pop(date)

    def reset(self) -> None:
        """Back to as started: nothing held, no PUTs, no logged requests, no pending injected answers."""
        with self.lock:
            self._held.clear()
            self._puts.clear()
            self.log.clear()
        self.clear_injected()

    # ---- serving
    def handle(self, request: Request) -> Response:
        return self.with_injection(request.method, request.path, lambda: self._route(request))

    def _route(self, request: Request) -> Response:
        match = _PATH.match(request.path)
        if match is None:
            return _error(404, "not_found", f"no route {request.path}")
        if request.method not in ("GET", "PUT"):
            return _error(405, "method_not_allowed", "use GET or PUT", headers={"Allow": "GET, PUT"})
        if not self._authorized(request):
            return _error(401, "unauthorized", "invalid or missing API token",
                          headers={"WWW-Authenticate": 'Bearer realm="AnesthesiaGo"'})
        date = match.group(1)
        if _date(date) is None:
            return _error(400, "invalid_date", f"{date} is not a calendar date", field="date")
        if request.method == "GET":
            with self.lock:
                body = copy.deepcopy(self._held.get(date))
            if body is None:
                return _error(404, "not_found", f"no schedule held for {date}")
            return json_response(200, body)
        return self._put(request, date)

    def _authorized(self, request: Request) -> bool:
        sent = request.headers.get("Authorization", "")
        scheme, _, token = sent.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), self.token.encode())

    def _put(self, request: Request, date: str) -> Response:
        if request.mimetype != "application/json":
            sent = request.headers.get("Content-Type", "")
            return _error(415, "unsupported_media_type", f"Content-Type must be application/json, got {sent!r}")
        body = request.get_json(silent=True)
        if body is None:
            return _error(400, "invalid_json", "the body is not JSON", field="body")
        try:
            check_body(date, body)
        except BodyError as error:
            return _error(400, "invalid_body", str(error), field=error.field)
        with self.lock:  # the whole date at once, so a GET never sees half
            self._held[date] = body
            self._puts.append(date)
        return json_response(200, {"date": date, "providers": len(body["providers"])})


def _error(status: int, code: str, message: str, headers: Optional[dict[str, str]] = None, **extra) -> Response:
    return json_response(status, {"error": code, "message": message, **extra}, headers)
