"""A stateful fake of the Microsoft Graph v1.0 calendar API (and its client-credentials token
endpoint), for testing the Outlook push client over real HTTP.

It speaks Graph's shapes: `{"error": {"code", "message"}}` errors, `{"value": [...],
"@odata.nextLink"}` pages, `$batch` of at most 20 parts, `transactionId` de-duplication,
single-value extended properties that only come back when `$expand`ed, and the per-mailbox
concurrency limit (4 requests in flight per app and mailbox) answered with 429 + Retry-After.
Events are indexed by mailbox and id, so every request but a calendarView costs O(1).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Optional
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo

from werkzeug.wrappers import Request, Response

from .server import FakeServer, json_response

GRAPH_SCOPE = "https://graph.microsoft.com/.default"
TOKEN_PATH = "/tenant-id/oauth2/v2.0/token"
BATCH_PATH = "/v1.0/$batch"
BATCH_LIMIT = 20
_PART_FIELDS = ("id", "method", "url")
DEFAULT_PAGE_SIZE = 10  # Graph's calendarView default
EXT = "singleValueExtendedProperties"
# Graph owns these; a body naming them does not change them.
READ_ONLY = frozenset({"id", "createdDateTime", "lastModifiedDateTime", "changeKey", "@odata.etag"})

_USER_PATH = re.compile(r"/v1\.0/users/([^/]+)(/.*)?", re.I)
_EVENTS = re.compile(r"/events/?", re.I)
_EVENT = re.compile(r"/events/([^/]+)", re.I)
_CALENDAR_VIEW = re.compile(r"/calendarview/?", re.I)  # Graph's path segments ignore case
_EVENT_WRITE_PATH = re.compile(r"/events(/|$)", re.I)
_IMMUTABLE_ID = re.compile(r'idtype\s*=\s*"?immutableid"?', re.I)

_ODATA_STRING = r"'((?:[^']|'')*)'"  # a quote inside is doubled
# Graph's documented forms: `...Any(ep: ep/id eq '<id>' and ep/value ne null)` or `eq '<value>'`.
_PROPERTY_FILTER = re.compile(
    r"\s*singleValueExtendedProperties/any\(\s*(\w+)\s*:\s*\1/id\s+eq\s+" + _ODATA_STRING
    + r"\s+and\s+\1/value\s+(?:(ne)\s+null|eq\s+" + _ODATA_STRING + r")\s*\)\s*",
    re.I,
)
_PROPERTY_EXPAND = re.compile(
    r"\s*singleValueExtendedProperties\s*\(\s*\$filter\s*=\s*id\s+eq\s+" + _ODATA_STRING + r"\s*\)\s*", re.I
)


class _Invalid(Exception):
    """A request Graph would refuse with 400; carries the error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class _Stored:
    event: dict[str, Any]  # what Graph holds, extended properties included
    start: datetime  # UTC, for calendarView and ordering
    end: datetime

    def sort_key(self) -> tuple[datetime, str]:
        return self.start, self.event["id"]


@dataclass
class _Part:
    id: str
    method: str
    path: str  # "/v1.0/..." unquoted, as single requests see it
    query: list[tuple[str, str]]
    headers: dict[str, str]  # as the part gave them (logged so)
    body: Any
    mailbox: Optional[str]
    immutable_ids: bool


def error(status: int, code: str, message: str, headers: Optional[dict[str, str]] = None) -> Response:
    return json_response(status, {"error": {"code": code, "message": message}}, headers)


def not_found() -> Response:
    return error(404, "ErrorItemNotFound", "The specified object was not found in the store.")


def _now_text() -> str:
    """Graph's timestamps: UTC, seven fractional digits, Z."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _new_change_key() -> str:
    return base64.b64encode(secrets.token_bytes(21)).decode()


def _new_event_id() -> str:
    # Immutable ids are long url-safe base64; the prefix keeps a leading "-" away.
    return "AAMk" + secrets.token_urlsafe(48)


def _zone(name: str):
    if name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ValueError, OSError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise _Invalid("ErrorInvalidRequest", f"Time zone '{name}' is not supported.") from exc


def _event_time(value: Any, field: str) -> datetime:
    """A `{dateTime, timeZone}` as UTC; a dateTime's own offset, if any, wins over timeZone."""
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str) \
            or not isinstance(value.get("timeZone"), str):
        raise _Invalid("ErrorInvalidRequest", f"'{field}' needs dateTime and timeZone.")
    try:
        moment = datetime.fromisoformat(value["dateTime"])
    except ValueError as exc:
        raise _Invalid("ErrorInvalidRequest", f"'{field}.dateTime' is not a date and time.") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_zone(value["timeZone"]))
    return moment.astimezone(timezone.utc)


def _event_times(event: dict[str, Any]) -> tuple[datetime, datetime]:
    start, end = _event_time(event.get("start"), "start"), _event_time(event.get("end"), "end")
    if end < start:
        raise _Invalid("ErrorCalendarEndDateIsEarlierThanStartDate",
                       "The end date occurs before the start date.")
    return start, end


def _validate_new(event: Any) -> tuple[datetime, datetime]:
    if not isinstance(event, dict):
        raise _Invalid("ErrorInvalidRequest", "The request body must be a JSON event.")
    if not isinstance(event.get("subject"), str):
        raise _Invalid("ErrorInvalidRequest", "The event needs a subject.")
    return _event_times(event)


def _range_bound(text: Optional[str], name: str) -> datetime:
    """calendarView's bounds: ISO 8601, with or without an offset; naive means UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError) as exc:
        raise _Invalid("ErrorInvalidParameter", f"'{name}' is not a valid date and time: {text!r}.") from exc
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _odata_text(quoted: str) -> str:
    return quoted.replace("''", "'")


def _property_value(event: dict[str, Any], prop_id: str) -> Optional[str]:
    wanted = prop_id.lower()
    for prop in event.get(EXT) or ():
        if isinstance(prop, dict) and str(prop.get("id", "")).lower() == wanted:
            return prop.get("value")
    return None


def _merge_properties(current: list, given: Any) -> list:
    """Given extended properties replace those with the same id (ids ignore case), the rest stay."""
    if not isinstance(given, list):
        raise _Invalid("ErrorInvalidRequest", f"'{EXT}' must be a list.")
    merged = list(current or ())
    position = {str(p.get("id", "")).lower(): i for i, p in enumerate(merged) if isinstance(p, dict)}
    for prop in given:
        if not isinstance(prop, dict) or not isinstance(prop.get("id"), str):
            raise _Invalid("ErrorInvalidRequest", "Each extended property needs an id.")
        key = prop["id"].lower()
        if key in position:
            merged[position[key]] = dict(prop)
        else:
            position[key] = len(merged)
            merged.append(dict(prop))
    return merged


def _clone(value: Any) -> Any:
    """A deep copy of JSON-shaped data for the test helpers, so callers cannot reach into the
    fake's state (a few times faster than copy.deepcopy or a JSON round trip)."""
    if isinstance(value, dict):
        return {key: _clone(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clone(item) for item in value]
    return value


def _asks_immutable_ids(prefer: Optional[str]) -> bool:
    return bool(prefer) and _IMMUTABLE_ID.search(prefer) is not None


class GraphFake(FakeServer):
    """Graph's calendar endpoints under `base_url`, tokens from `token_url`.

    Mailboxes are compared ignoring case (Graph does) and keyed in lower case.
    """

    def __init__(
        self, client_id: str = "lb-client", client_secret: str = "s3cret", token_lifetime_s: float = 3599,
        max_in_flight_per_mailbox: int = 4, page_size_max: int = 1000,
    ) -> None:
        super().__init__()
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime_s = token_lifetime_s
        self.max_in_flight_per_mailbox = max_in_flight_per_mailbox
        self.page_size_max = page_size_max
        self.forbidden_mailboxes: set[str] = set()
        self.tokens_issued = 0
        self.concurrency_refusals = 0
        self.requests_without_immutable_id = 0
        self.max_in_flight: dict[str, int] = {}
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry
        self._mailboxes: dict[str, dict[str, _Stored]] = {}  # mailbox -> event id -> event
        self._transactions: dict[str, dict[str, str]] = {}  # mailbox -> transactionId -> event id
        self._in_flight: dict[str, int] = {}

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1.0"

    @property
    def token_url(self) -> str:
        return f"{self.url}{TOKEN_PATH}"

    # ---- tokens
    def expire_tokens(self) -> None:
        """Every token issued so far stops working (as when they reach their lifetime)."""
        with self.lock:
            self._tokens.clear()

    def _issue_token(self, request: Request) -> Response:
        form = request.form
        if form.get("grant_type") != "client_credentials":
            return json_response(400, {"error": "invalid_request",
                                       "error_description": "The grant_type must be client_credentials."})
        if form.get("scope") != GRAPH_SCOPE:
            return json_response(400, {"error": "invalid_request",
                                       "error_description": f"The scope must be {GRAPH_SCOPE}."})
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return json_response(401, {"error": "invalid_client",
                                       "error_description": "Invalid client id or client secret provided."})
        token = secrets.token_urlsafe(32)
        with self.lock:
            self._tokens[token] = time.monotonic() + self.token_lifetime_s
            self.tokens_issued += 1
        return json_response(200, {"token_type": "Bearer", "expires_in": self.token_lifetime_s,
                                   "ext_expires_in": self.token_lifetime_s, "access_token": token})

    def _authorized(self, header: Optional[str]) -> bool:
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        with self.lock:
            expiry = self._tokens.get(token.strip())
        return expiry is not None and time.monotonic() < expiry

    # ---- serving
    def _wsgi(self, environ, start_response):
        # Unlike the base, the latency is slept inside handle(), while the request counts as in
        # flight for its mailbox: otherwise concurrency could never be observed.
        request = Request(environ)
        response = self.handle(request)
        self.record(request.method, request.path, response.status_code, dict(request.headers))
        return response(environ, start_response)

    def _sleep(self) -> None:
        if self.latency_s:
            time.sleep(self.latency_s)

    def handle(self, request: Request) -> Response:
        path, method = request.path, request.method
        if path == TOKEN_PATH:
            self._sleep()
            if method != "POST":
                return error(405, "BadRequest", "The token endpoint takes POST.")
            return self._issue_token(request)
        if not path.startswith("/v1.0/"):
            self._sleep()
            return error(404, "ResourceNotFound", f"No such endpoint: {path}")
        if path != BATCH_PATH and not _asks_immutable_ids(request.headers.get("Prefer")):
            with self.lock:
                self.requests_without_immutable_id += 1
        if not self._authorized(request.headers.get("Authorization")):
            self._sleep()
            return error(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.")
        if path == BATCH_PATH:
            if method != "POST":
                return error(405, "BadRequest", "$batch takes POST.")
            return self.with_injection(method, path, lambda: self._batch(request))
        return self._single(request)

    def _single(self, request: Request) -> Response:
        match = _USER_PATH.fullmatch(request.path)
        mailbox = match[1].lower() if match else None
        if mailbox is not None and not self._enter([mailbox]):
            return self._refused(1)
        try:
            self._sleep()
            body: Any = None
            if request.method in ("POST", "PATCH", "PUT"):
                try:
                    body = json.loads(request.get_data() or b"null")
                except ValueError:
                    return error(400, "BadRequest", "Unable to read JSON request payload.")
            return self._operate(request.method, request.path, list(request.args.items(multi=True)), body)
        finally:
            if mailbox is not None:
                self._leave([mailbox])

    # ---- per-mailbox concurrency
    def _enter(self, mailboxes: Iterable[str]) -> set[str]:
        """Counts the request in flight for each mailbox with room; returns those admitted."""
        admitted = set()
        with self.lock:
            for mailbox in mailboxes:
                count = self._in_flight.get(mailbox, 0)
                if count >= self.max_in_flight_per_mailbox:
                    continue
                self._in_flight[mailbox] = count + 1
                self.max_in_flight[mailbox] = max(self.max_in_flight.get(mailbox, 0), count + 1)
                admitted.add(mailbox)
        return admitted

    def _leave(self, mailboxes: Iterable[str]) -> None:
        with self.lock:
            for mailbox in mailboxes:
                self._in_flight[mailbox] -= 1

    def _refused(self, count: int) -> Response:
        with self.lock:
            self.concurrency_refusals += count
        return error(429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.",
                     {"Retry-After": "1"})

    # ---- one operation (a single request, or a part of a batch)
    def _operate(self, method: str, path: str, query: list[tuple[str, str]], body: Any) -> Response:
        match = _USER_PATH.fullmatch(path)
        if match is None:
            return error(400, "BadRequest", f"Resource not found for the segment in '{path}'.")
        mailbox, rest = match[1].lower(), match[2] or ""
        # A copy first: tests change the set while server threads read it.
        if mailbox in {m.lower() for m in self.forbidden_mailboxes.copy()}:
            return error(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        return self.with_injection(
            method, path, lambda: self._apply(method, path, mailbox, rest, query, body)
        )

    def _apply(self, method: str, path: str, mailbox: str, rest: str, query: list[tuple[str, str]],
               body: Any) -> Response:
        try:
            if _EVENTS.fullmatch(rest):
                if method == "POST":
                    return self._create(mailbox, body)
            elif event := _EVENT.fullmatch(rest):
                event_id = event[1]
                if method == "GET":
                    return self._get(mailbox, event_id, query)
                if method == "PATCH":
                    return self._patch(mailbox, event_id, body)
                if method == "DELETE":
                    return self._delete(mailbox, event_id)
            elif _CALENDAR_VIEW.fullmatch(rest):
                if method == "GET":
                    return self._calendar_view(mailbox, path, query)
            else:
                return error(400, "BadRequest", f"Resource not found for the segment '{rest}'.")
            return error(405, "BadRequest", f"{method} is not supported on {rest}.")
        except _Invalid as invalid:
            return error(400, invalid.code, str(invalid))

    def _render(self, stored: _Stored, expand: Optional[str] = None) -> dict[str, Any]:
        """The event as Graph answers it: extended properties only when $expand names them."""
        event = {k: v for k, v in stored.event.items() if k != EXT}
        event["@odata.etag"] = f'W/"{stored.event["changeKey"]}"'
        if expand is not None:
            props = [p for p in stored.event.get(EXT) or () if str(p.get("id", "")).lower() == expand]
            if props:
                event[EXT] = props
        return event

    def _insert(self, mailbox: str, event: dict[str, Any], start: datetime, end: datetime) -> _Stored:
        """Stores `event` (owned by the fake from now on) under a new id; call holding the lock."""
        for key in READ_ONLY:
            event.pop(key, None)
        now = _now_text()
        event.update(
            id=_new_event_id(), createdDateTime=now, lastModifiedDateTime=now, changeKey=_new_change_key()
        )
        stored = _Stored(event, start, end)
        self._mailboxes.setdefault(mailbox, {})[event["id"]] = stored
        if event.get("transactionId"):
            self._transactions.setdefault(mailbox, {})[event["transactionId"]] = event["id"]
        return stored

    def _create(self, mailbox: str, body: Any) -> Response:
        start, end = _validate_new(body)
        with self.lock:
            transaction = body.get("transactionId")
            if transaction:
                known = self._transactions.get(mailbox, {}).get(transaction)
                existing = self._mailboxes.get(mailbox, {}).get(known) if known else None
                if existing is not None:  # Graph's de-duplication: the first event, not a second
                    return json_response(201, self._render(existing))
            event = self._render(self._insert(mailbox, body, start, end))
        return json_response(201, event)

    def _expanded_property(self, query: list[tuple[str, str]]) -> Optional[str]:
        expand = {k.lower(): v for k, v in query}.get("$expand")
        if expand is None:
            return None
        match = _PROPERTY_EXPAND.fullmatch(expand)
        if match is None:
            raise _Invalid("BadRequest", f"Unsupported $expand: {expand}")
        return _odata_text(match[1]).lower()

    def _get(self, mailbox: str, event_id: str, query: list[tuple[str, str]]) -> Response:
        expand = self._expanded_property(query)
        with self.lock:
            stored = self._mailboxes.get(mailbox, {}).get(event_id)
            if stored is None:
                return not_found()
            event = self._render(stored, expand)
        return json_response(200, event)

    def _change(self, mailbox: str, event_id: str, fields: dict[str, Any]) -> Optional[_Stored]:
        """Shallow-merges `fields` into the event, as PATCH does; None when there is no such event.
        Call holding the lock."""
        stored = self._mailboxes.get(mailbox, {}).get(event_id)
        if stored is None:
            return None
        merged = dict(stored.event)
        for key, value in fields.items():
            if key in READ_ONLY:
                continue
            merged[key] = _merge_properties(merged.get(EXT), value) if key == EXT else value
        start, end = _event_times(merged)  # validated before anything changes
        old_transaction = stored.event.get("transactionId")
        merged["lastModifiedDateTime"] = _now_text()
        merged["changeKey"] = _new_change_key()
        stored.event, stored.start, stored.end = merged, start, end
        if merged.get("transactionId") != old_transaction:
            self._forget_transaction(mailbox, old_transaction, event_id)
            if merged.get("transactionId"):
                self._transactions.setdefault(mailbox, {})[merged["transactionId"]] = event_id
        return stored

    def _forget_transaction(self, mailbox: str, transaction: Optional[str], event_id: str) -> None:
        known = self._transactions.get(mailbox, {})
        if transaction and known.get(transaction) == event_id:
            del known[transaction]

    def _patch(self, mailbox: str, event_id: str, body: Any) -> Response:
        if not isinstance(body, dict):
            raise _Invalid("ErrorInvalidRequest", "The request body must be a JSON object.")
        with self.lock:
            stored = self._change(mailbox, event_id, body)
            if stored is None:
                return not_found()
            event = self._render(stored)
        return json_response(200, event)

    def _remove(self, mailbox: str, event_id: str) -> bool:
        with self.lock:
            stored = self._mailboxes.get(mailbox, {}).pop(event_id, None)
            if stored is None:
                return False
            self._forget_transaction(mailbox, stored.event.get("transactionId"), event_id)
            return True

    def _delete(self, mailbox: str, event_id: str) -> Response:
        return Response(status=204) if self._remove(mailbox, event_id) else not_found()

    def _calendar_view(self, mailbox: str, path: str, query: list[tuple[str, str]]) -> Response:
        params = {k.lower(): v for k, v in query}
        if "startdatetime" not in params or "enddatetime" not in params:
            raise _Invalid("ErrorInvalidParameter", "This request requires a time window specified by the "
                                                    "query string parameters StartDateTime and EndDateTime.")
        range_start = _range_bound(params["startdatetime"], "startDateTime")
        range_end = _range_bound(params["enddatetime"], "endDateTime")
        wanted_id = wanted_value = None
        if "$filter" in params:
            match = _PROPERTY_FILTER.fullmatch(params["$filter"])
            if match is None:
                raise _Invalid("ErrorInvalidUrlQueryFilter", f"Unsupported $filter: {params['$filter']}")
            wanted_id = _odata_text(match[2])
            wanted_value = None if match[3] else _odata_text(match[4])
        expand = self._expanded_property(query)
        page_size = self.page_size_max
        if "$top" in params:
            try:
                top = int(params["$top"])
            except ValueError:
                top = 0
            if top < 1:
                raise _Invalid("BadRequest", f"Invalid $top: {params['$top']!r}")
            page_size = min(top, page_size)
        else:
            page_size = min(DEFAULT_PAGE_SIZE, page_size)
        offset = self._skipped(params.get("$skiptoken"))

        def wanted(stored: _Stored) -> bool:
            if not (stored.start < range_end and stored.end > range_start):
                return False
            if wanted_id is None:
                return True
            value = _property_value(stored.event, wanted_id)
            return value is not None if wanted_value is None else value == wanted_value

        with self.lock:
            found = sorted(filter(wanted, self._mailboxes.get(mailbox, {}).values()), key=_Stored.sort_key)
            page = [self._render(stored, expand) for stored in found[offset:offset + page_size]]
        answer: dict[str, Any] = {"value": page}
        if offset + page_size < len(found):
            answer["@odata.nextLink"] = self._next_link(path, query, offset + page_size)
        return json_response(200, answer)

    # Offsets, not snapshots: an event added or removed between pages shifts the pages after it.
    @staticmethod
    def _skipped(token: Optional[str]) -> int:
        if token is None:
            return 0
        try:
            return int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
        except (ValueError, KeyError, TypeError) as exc:
            raise _Invalid("BadRequest", "Invalid $skiptoken.") from exc

    def _next_link(self, path: str, query: list[tuple[str, str]], offset: int) -> str:
        token = base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()
        kept = [(k, v) for k, v in query if k.lower() != "$skiptoken"] + [("$skiptoken", token)]
        return f"{self.url}{quote(path, safe='/@$')}?" + urlencode(kept, quote_via=quote, safe="$'(),:/@")

    # ---- $batch
    def _batch(self, request: Request) -> Response:
        try:
            payload = json.loads(request.get_data() or b"null")
        except ValueError:
            return error(400, "BadRequest", "Unable to read JSON request payload.")
        raw_parts = payload.get("requests") if isinstance(payload, dict) else None
        if not isinstance(raw_parts, list) or not raw_parts:
            return error(400, "BadRequest", "Invalid batch payload format.")
        if len(raw_parts) > BATCH_LIMIT:
            return error(400, "BadRequest", f"Number of batch requests exceeds the limit of {BATCH_LIMIT}.")
        outer_immutable = _asks_immutable_ids(request.headers.get("Prefer"))
        try:
            parts = self._parse_parts(raw_parts, outer_immutable)
        except _Invalid as invalid:
            return error(400, invalid.code, str(invalid))
        with self.lock:
            self.requests_without_immutable_id += sum(1 for part in parts if not part.immutable_ids)
        mailboxes = {part.mailbox for part in parts if part.mailbox is not None}
        admitted = self._enter(mailboxes)
        try:
            self._sleep()
            responses = []
            for part in parts:
                if part.mailbox is not None and part.mailbox not in admitted:
                    # Graph throttles a batch's parts one by one, each with its own 429.
                    response = self._refused(1)
                else:
                    response = self._operate(part.method, part.path, part.query, part.body)
                self.record(part.method, part.path, response.status_code, part.headers, in_batch=True)
                responses.append(self._as_part(part.id, response))
        finally:
            self._leave(admitted)
        return json_response(200, {"responses": responses})

    @staticmethod
    def _parse_parts(raw_parts: list, outer_immutable: bool) -> list[_Part]:
        parts, seen = [], set()
        for raw in raw_parts:
            if not isinstance(raw, dict) or not all(isinstance(raw.get(k), str) for k in _PART_FIELDS):
                raise _Invalid("BadRequest", "Each batch request needs a string id, method and url.")
            if raw["id"].lower() in seen:
                raise _Invalid("BadRequest", f"Batch request id '{raw['id']}' is not unique.")
            seen.add(raw["id"].lower())
            headers = raw.get("headers") or {}
            if not isinstance(headers, dict):
                raise _Invalid("BadRequest", f"Request id : {raw['id']} has headers that are not an object.")
            lower_headers = {str(k).lower(): str(v) for k, v in headers.items()}
            method = raw["method"].upper()
            # Graph's documented rule: a body needs a Content-Type header, and a write needs both.
            if ("body" in raw or method in ("POST", "PATCH", "PUT")) and (
                    "body" not in raw or "content-type" not in lower_headers):
                raise _Invalid("BadRequest", f"Write request id : {raw['id']} does not contain Content-Type "
                                             "header or body.")
            split = urlsplit(raw["url"])
            if split.scheme or split.netloc:
                raise _Invalid("BadRequest", f"Request id : {raw['id']} needs a url relative to /v1.0.")
            path = "/v1.0/" + unquote(split.path.lstrip("/"))
            match = _USER_PATH.fullmatch(path)
            parts.append(_Part(
                id=raw["id"], method=method, path=path, query=parse_qsl(split.query, keep_blank_values=True),
                headers=dict(headers), body=raw.get("body"), mailbox=match[1].lower() if match else None,
                immutable_ids=outer_immutable or _asks_immutable_ids(lower_headers.get("prefer")),
            ))
        return parts

    @staticmethod
    def _as_part(part_id: str, response: Response) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "id": part_id, "status": response.status_code,
            "headers": {k: v for k, v in response.headers.items() if k.lower() != "content-length"},
        }
        data = response.get_data()
        if data:
            answer["body"] = json.loads(data)
        return answer

    # ---- test helpers
    def events_of(self, mailbox: str) -> list[dict[str, Any]]:
        """The mailbox's live events as stored (extended properties included), by start then id."""
        with self.lock:
            found = sorted(self._mailboxes.get(mailbox.lower(), {}).values(), key=_Stored.sort_key)
            return [_clone(stored.event) for stored in found]

    def all_events(self) -> dict[str, list[dict[str, Any]]]:
        """Lower-cased mailbox -> its live events, for every mailbox holding any."""
        with self.lock:
            return {mailbox: self.events_of(mailbox) for mailbox, events in self._mailboxes.items() if events}

    @staticmethod
    def slot_property(event: dict[str, Any], prop_id: str) -> Optional[str]:
        """The value of the extended property `prop_id` (id compared ignoring case), or None."""
        return _property_value(event, prop_id)

    def delete_by_hand(self, mailbox: str, event_id: str) -> None:
        """As a person deleting the event in Outlook; KeyError when there is no such event."""
        if not self._remove(mailbox.lower(), event_id):
            raise KeyError(event_id)

    def edit_by_hand(self, mailbox: str, event_id: str, **fields: Any) -> dict[str, Any]:
        """As a person editing the event in Outlook (e.g. subject=..., start={...}); returns it.
        A new start without a new end moves the event, keeping its length, as dragging it does.
        KeyError when there is no such event, ValueError when the result is not a valid event."""
        fields = _clone(fields)
        mailbox = mailbox.lower()
        try:
            with self.lock:
                stored = self._mailboxes.get(mailbox, {}).get(event_id)
                if stored is None:
                    raise KeyError(event_id)
                if "start" in fields and "end" not in fields:
                    new_end = _event_time(fields["start"], "start") + (stored.end - stored.start)
                    zone = stored.event["end"]["timeZone"]
                    local = new_end.astimezone(_zone(zone)).replace(tzinfo=None)
                    fields["end"] = {"dateTime": local.isoformat(), "timeZone": zone}
                return _clone(self._change(mailbox, event_id, fields).event)
        except _Invalid as invalid:
            raise ValueError(str(invalid)) from None

    def add_by_hand(self, mailbox: str, event: dict[str, Any]) -> str:
        """As a person adding an event in Outlook; returns its new id."""
        event = _clone(event)
        try:
            start, end = _validate_new(event)
        except _Invalid as invalid:
            raise ValueError(str(invalid)) from None
        with self.lock:
            return self._insert(mailbox.lower(), event, start, end).event["id"]

    def writes(self):
        """Logged POST/PATCH/DELETE on events, batch parts included (not $batch itself nor tokens)."""
        return [
            r for r in self.requests()
            if r.method in ("POST", "PATCH", "DELETE") and _EVENT_WRITE_PATH.search(r.path)
        ]

    def reset(self) -> None:
        """Back to empty: no events, log, pending injected answers or counters. Tokens already
        issued stay valid, and the configuration (limits, forbidden mailboxes, latency) stays."""
        with self.lock:
            self._mailboxes.clear()
            self._transactions.clear()
            self.log.clear()
            self._injected.clear()
            self.max_in_flight.clear()
            self.concurrency_refusals = 0
            self.requests_without_immutable_id = 0
            self.tokens_issued = 0
