"""A stateful fake of TigerConnect's scheduler CSV webhook, to test the API push over real HTTP.

Two routes under `base_url`, both POST with HTTP Basic auth and the headers
`TT-X-Organization-Key`, `TT-X-Integration-Id` and `TT-X-Timezone`:

- `/v1/integrations/scheduler/webhook/csv`: a `text/csv` body `JOB_TOKEN,USER_ID,START,END`
  (START/END `YYYY-MM-DD HH:MM`, wall-clock in the header's zone). Overwrite per job token: every
  token in the upload has its rows replaced by the upload's; a row `TOKEN,,,` empties that token.
- `/v1/integrations/scheduler/webhook/csv/download`: every row held for (organization,
  integration id, zone) as CSV, sorted by JOB_TOKEN, START, USER_ID, END.

Data is kept per (organization, integration id, zone, job token) as a set of
(user id, start, end): the same row twice is held once. An upload is checked in full before
any of it is applied, so a 400 leaves the fake as it was.
"""

from __future__ import annotations

import csv
import hmac
import io
import re
import time
from datetime import datetime
from typing import Iterable, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from werkzeug.wrappers import Request, Response

from fakes.server import FakeServer, json_response

UPLOAD_PATH = "/v1/integrations/scheduler/webhook/csv"
DOWNLOAD_PATH = "/v1/integrations/scheduler/webhook/csv/download"
CSV_HEADER = ["JOB_TOKEN", "USER_ID", "START", "END"]
ORG_HEADER = "TT-X-Organization-Key"
INTEGRATION_HEADER = "TT-X-Integration-Id"
ZONE_HEADER = "TT-X-Timezone"

# strptime alone accepts "2026-1-2 7:00"; the wire format is fixed-width.
_WALL_CLOCK = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}")
_WALL_CLOCK_FORMAT = "%Y-%m-%d %H:%M"

Key = tuple[str, str, str]  # (organization, integration id, zone)
Row = tuple[str, str, str, str]  # (job token, user id, start, end)


class CsvError(ValueError):
    """What is wrong with an upload, and on which physical line (header = line 1)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


def _sort_key(row: Row) -> tuple[str, str, str, str]:
    token, user_id, start, end = row
    return (token, start, user_id, end)  # fixed-width START sorts as text


def _check_wall_clock(line: int, column: str, value: str) -> datetime:
    if _WALL_CLOCK.fullmatch(value):
        try:
            return datetime.strptime(value, _WALL_CLOCK_FORMAT)
        except ValueError:
            pass  # right shape, impossible date such as 2026-02-30
    raise CsvError(line, f"{column} {value!r} is not a date and time YYYY-MM-DD HH:MM")


def check_row(line: int, fields: list[str]) -> tuple[str, Optional[tuple[str, str, str]]]:
    """(job token, (user id, start, end)), or (job token, None) for an "empty this token" row."""
    if len(fields) != len(CSV_HEADER):
        raise CsvError(line, f"expected {len(CSV_HEADER)} fields, got {len(fields)}")
    token, user_id, start, end = fields
    if not token:
        raise CsvError(line, "JOB_TOKEN is empty")
    if not (user_id or start or end):
        return token, None
    for column, value in (("USER_ID", user_id), ("START", start), ("END", end)):
        if not value:
            raise CsvError(
                line, f"{column} is empty (leave USER_ID, START and END all empty to clear a job token)"
            )
    # Compared as the wall-clock times sent: the zone is not applied (a DST change is not judged).
    if _check_wall_clock(line, "END", end) <= _check_wall_clock(line, "START", start):
        raise CsvError(line, f"END {end!r} is not after START {start!r}")
    return token, (user_id, start, end)


def parse_upload(body: bytes) -> tuple[dict[str, set[tuple[str, str, str]]], list[Row]]:
    """The upload's rows grouped by job token (a cleared token maps to an empty set), and its
    rows as sent, in file order (a clearing row as (token, "", "", "")). Raises CsvError."""
    try:
        text = body.decode("utf-8-sig")  # drops an optional BOM
    except UnicodeDecodeError as error:
        # Name the line the bad byte is on, so the message is as useful as the others.
        raise CsvError(body[: error.start].count(b"\n") + 1, "the bytes are not UTF-8") from None
    # newline="" keeps CR, LF and CRLF as line ends and lets csv count physical lines.
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        raise CsvError(1, f"the body is empty; it needs the header {','.join(CSV_HEADER)}")
    if header != CSV_HEADER:
        raise CsvError(1, f"header must be {','.join(CSV_HEADER)}, got {','.join(header)!r}")
    by_token: dict[str, set[tuple[str, str, str]]] = {}
    sent: list[Row] = []
    line_end = reader.line_num
    for fields in reader:
        line, line_end = line_end + 1, reader.line_num  # a quoted newline makes a record span lines
        if not fields:
            continue  # a blank line, such as a trailing one
        token, row = check_row(line, fields)
        rows = by_token.setdefault(token, set())
        if row is None:
            sent.append((token, "", "", ""))
        else:
            rows.add(row)
            sent.append((token, *row))
    return by_token, sent


def check_zone(zone: str) -> bool:
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):  # ValueError: a malformed key such as "../x"
        return False
    return True


class TigerConnectFake(FakeServer):
    """`with TigerConnectFake() as fake:` then point the client at `fake.base_url`."""

    def __init__(
        self, username: str = "lb-sync", password: str = "pw", organizations: Iterable[str] = ("org-1",)
    ) -> None:
        super().__init__()
        self.username = username
        self.password = password
        self.organizations = frozenset(organizations)
        self._held: dict[Key, dict[str, set[tuple[str, str, str]]]] = {}
        self._uploads: list[dict] = []

    @property
    def base_url(self) -> str:
        return self.url

    # ---- helpers for tests (thread-safe)
    def held(self, org: str, integration_id: str, zone: str) -> list[Row]:
        """Every row held for (org, integration id, zone), sorted as the download."""
        with self.lock:
            by_token = self._held.get((org, integration_id, zone), {})
            rows = [(token, *row) for token, held in by_token.items() for row in held]
        return sorted(rows, key=_sort_key)

    def preload(self, org: str, integration_id: str, zone: str, rows: Iterable[Row]) -> None:
        """Hold `rows` (job token, user id, start, end) as if uploaded before the test; they are
        added to what is held, and checked as an upload's rows are (a typo fails loudly here)."""
        if org not in self.organizations:
            raise ValueError(f"unknown organization {org!r}; the fake knows {sorted(self.organizations)}")
        if not check_zone(zone):
            raise ValueError(f"unknown time zone {zone!r}")
        checked = []
        for index, fields in enumerate(rows, start=1):
            try:
                token, row = check_row(index, list(fields))
            except CsvError as error:
                raise ValueError(f"preload row {index}: {error.message}") from None
            if row is None:
                raise ValueError(f"preload row {index}: a row needs USER_ID, START and END")
            checked.append((token, row))
        with self.lock:
            by_token = self._held.setdefault((org, integration_id, zone), {})
            for token, row in checked:
                by_token.setdefault(token, set()).add(row)

    @property
    def uploads(self) -> list[dict]:
        """Every accepted upload, in order: {org, integration_id, zone, rows, at (time.monotonic())}."""
        with self.lock:
            return [dict(upload, rows=list(upload["rows"])) for upload in self._uploads]

    def reset(self) -> None:
        """Back to as started: no data, no uploads, no logged requests, no pending injected answers."""
        with self.lock:
            self._held.clear()
            self._uploads.clear()
            self.log.clear()
        self.clear_injected()

    # ---- serving
    def handle(self, request: Request) -> Response:
        return self.with_injection(request.method, request.path, lambda: self._route(request))

    def _route(self, request: Request) -> Response:
        if request.path not in (UPLOAD_PATH, DOWNLOAD_PATH):
            return _error(404, "not_found", f"no route {request.path}")
        if request.method != "POST":
            return _error(405, "method_not_allowed", "use POST", headers={"Allow": "POST"})
        if not self._authorized(request):
            challenge = {"WWW-Authenticate": 'Basic realm="TigerConnect"'}
            return _error(401, "unauthorized", "invalid credentials", headers=challenge)
        key_or_error = self._key(request)
        if isinstance(key_or_error, Response):
            return key_or_error
        if request.path == DOWNLOAD_PATH:
            return self._download(key_or_error)
        return self._upload(request, key_or_error)

    def _authorized(self, request: Request) -> bool:
        auth = request.authorization
        if auth is None or auth.type != "basic" or auth.username is None or auth.password is None:
            return False
        # Both compared in full and in constant time: nothing tells which of the two was wrong.
        user_ok = hmac.compare_digest(auth.username.encode(), self.username.encode())
        password_ok = hmac.compare_digest(auth.password.encode(), self.password.encode())
        return user_ok and password_ok

    def _key(self, request: Request) -> Key | Response:
        values = {}
        for name in (ORG_HEADER, INTEGRATION_HEADER, ZONE_HEADER):
            value = request.headers.get(name, "").strip()
            if not value:
                return _error(400, "missing_header", f"header {name} is missing or empty", header=name)
            values[name] = value
        org, integration_id, zone = values[ORG_HEADER], values[INTEGRATION_HEADER], values[ZONE_HEADER]
        if org not in self.organizations:
            # The key is a credential of sorts: say which header, not what was sent.
            return _error(403, "forbidden", f"unknown {ORG_HEADER}", header=ORG_HEADER)
        if not check_zone(zone):
            message = f"header {ZONE_HEADER}: unknown IANA time zone {zone!r}"
            return _error(400, "invalid_header", message, header=ZONE_HEADER)
        return (org, integration_id, zone)

    def _download(self, key: Key) -> Response:
        out = io.StringIO()
        writer = csv.writer(out)  # default dialect: CRLF line ends
        writer.writerow(CSV_HEADER)
        writer.writerows(self.held(*key))
        return Response(out.getvalue(), status=200, content_type="text/csv; charset=utf-8")

    def _upload(self, request: Request, key: Key) -> Response:
        charset = request.mimetype_params.get("charset", "utf-8").lower()
        if request.mimetype != "text/csv" or charset not in ("utf-8", "utf8"):
            sent = request.headers.get("Content-Type", "")
            message = f"Content-Type must be text/csv (UTF-8), got {sent!r}"
            return _error(415, "unsupported_media_type", message)
        try:
            by_token, sent_rows = parse_upload(request.get_data())
        except CsvError as error:
            return _error(400, "invalid_csv", str(error), line=error.line)
        with self.lock:  # replace all of the upload's tokens at once, so a download never sees half
            held = self._held.setdefault(key, {})
            for token, rows in by_token.items():
                if rows:
                    held[token] = set(rows)
                else:
                    held.pop(token, None)  # "nobody scheduled": keep no row for it
            org, integration_id, zone = key
            self._uploads.append({
                "org": org, "integration_id": integration_id, "zone": zone,
                "rows": sent_rows, "at": time.monotonic(),
            })
        stored = sum(len(rows) for rows in by_token.values())
        return json_response(200, {"status": "ok", "rows": stored, "job_tokens": len(by_token)})


def _error(
    status: int, code: str, message: str, headers: Optional[dict[str, str]] = None, **extra
) -> Response:
    return json_response(status, {"error": code, "message": message, **extra}, headers)
