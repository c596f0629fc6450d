"""A stateful fake of Spok's on-call assignment operations, as this project's interface shapes them
(docs/exports/secure_messaging.md, "Spok"), to test the push over real HTTP.

- `POST /auth/token` `{"username", "password"}` -> 200 `{"access_token", "expires_in"}`, else 401;
  every other route wants `Authorization: Bearer <a token it issued>` (401 otherwise).
- `GET /groups/{group_id}/roles` -> the group's role names (404: no such group).
- `GET /oncall/assignments?group_id=X` -> the group's assignments, by assignment id.
- `POST /oncall/assignments` -> 201 `{"assignment_id"}`; `PUT /oncall/assignments/{id}` -> 200;
  `DELETE /oncall/assignments/{id}` -> 204 (404: no such assignment).

A body is checked in full before anything is kept: 400 for a missing field, a date not
`DD-MON-YY HH24:MI:SS` (upper-case English month) or not a real date, an end not after its start,
a zone name Spok does not know, a null messaging_id without a contact; 404 for a group it does not
know; 422 for a role the group does not have; 403 for a group in `locked_groups` (the background
user may read it, not change it). The fake's own list of zone names, on purpose not the
production table's, so a typo there fails here.
"""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import datetime
from typing import Any, Iterable, Mapping, Optional

from werkzeug.wrappers import Request, Response

from fakes.server import FakeServer, json_response

TOKEN_PATH = "/auth/token"
ASSIGNMENTS_PATH = "/oncall/assignments"
ZONE_NAMES = frozenset({"EASTERN", "CENTRAL", "MOUNTAIN", "ARIZONA", "PACIFIC", "ALASKA", "HAWAII"})
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DATE = re.compile(r"([0-9]{2})-([A-Z]{3})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")
REQUIRED = ("group_id", "role", "start_date", "end_date", "time_zone")
_ROLES = re.compile(r"^/groups/([^/]+)/roles$")
_ONE = re.compile(rf"^{ASSIGNMENTS_PATH}/([^/]+)$")


class SpokError(ValueError):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra

    def response(self) -> Response:
        return json_response(self.status, {"error": self.code, "message": self.message, **self.extra})


def parse_date(field: str, value: Any) -> datetime:
    """A Spok date (`23-NOV-26 07:00:00`) as a naive wall-clock time; raises SpokError (400)."""
    found = _DATE.fullmatch(value) if isinstance(value, str) else None
    if found is not None and found.group(2) in MONTHS:
        day, month, year, hour, minute, second = found.groups()
        try:
            return datetime(2000 + int(year), MONTHS.index(month) + 1, int(day),
                            int(hour), int(minute), int(second))
        except ValueError:
            pass  # the right shape, an impossible date such as 31-FEB-26
    raise SpokError(400, "invalid_date", f"{field} {value!r} is not a date DD-MON-YY HH24:MI:SS", field=field)


class SpokFake(FakeServer):
    """`with SpokFake(groups={"G1": ["Attending"]}) as fake:` then point the client at `fake.base_url`."""

    def __init__(self, username: str = "lb-sync", password: str = "pw",
                 groups: Optional[Mapping[str, Iterable[str]]] = None) -> None:
        super().__init__()
        self.username, self.password = username, password
        self.groups: dict[str, list[str]] = {g: list(roles) for g, roles in (groups or {}).items()}
        self.locked_groups: set[str] = set()
        self.sign_ins = 0
        self._tokens: set[str] = set()
        self._assignments: dict[str, dict[str, Any]] = {}
        self._next_id = 1
        self.received: list[tuple[str, str, Any]] = []  # (method, path, JSON body) of every write

    @property
    def base_url(self) -> str:
        return self.url

    # ---- helpers for tests (thread-safe)
    def set_roles(self, group: str, roles: Iterable[str]) -> None:
        with self.lock:
            self.groups[group] = list(roles)

    def held(self, group: Optional[str] = None) -> list[dict[str, Any]]:
        """Every assignment held (of one group), by assignment id, each with its `assignment_id`."""
        with self.lock:
            return [dict(a) for _, a in sorted(self._assignments.items())
                    if group is None or a["group_id"] == group]

    def id_of(self, group: str, slot_id: int, role: Optional[str] = None) -> str:
        """The Spok id of the one assignment of `slot_id` (and role) in `group`."""
        (found,) = [a["assignment_id"] for a in self.held(group)
                    if a.get("slot_id") == slot_id and (role is None or a["role"] == role)]
        return found

    def preload(self, body: Mapping[str, Any]) -> str:
        """Hold an assignment as if entered before the test (checked as an add is); its id."""
        checked = self._checked(dict(body))
        with self.lock:
            return self._add(checked)

    def edit(self, assignment_id: str, **fields: Any) -> None:
        """A hand edit in Spok's own screens."""
        with self.lock:
            self._assignments[assignment_id].update(fields)

    def remove(self, assignment_id: str) -> None:
        """A hand delete in Spok's own screens."""
        with self.lock:
            del self._assignments[assignment_id]

    def expire_tokens(self) -> None:
        with self.lock:
            self._tokens.clear()

    def writes(self) -> list:
        """The logged adds, updates and deletes (the sign-in is not one)."""
        return [r for r in self.requests() if r.method in ("POST", "PUT", "DELETE") and r.path != TOKEN_PATH]

    def reset(self) -> None:
        with self.lock:
            self._assignments.clear()
            self._tokens.clear()
            self.received.clear()
            self.log.clear()
        self.clear_injected()

    # ---- serving
    def handle(self, request: Request) -> Response:
        if request.method in ("POST", "PUT", "DELETE") and request.path != TOKEN_PATH:
            with self.lock:
                self.received.append((request.method, request.path, request.get_json(silent=True)))
        return self.with_injection(request.method, request.path, lambda: self._route(request))

    def _route(self, request: Request) -> Response:
        try:
            if request.path == TOKEN_PATH and request.method == "POST":
                return self._sign_in(request)
            self._authorize(request)
            roles = _ROLES.match(request.path)
            if roles and request.method == "GET":
                return json_response(200, list(self._group(roles.group(1))))
            if request.path == ASSIGNMENTS_PATH and request.method == "GET":
                group = request.args.get("group_id", "")
                self._group(group)
                return json_response(200, self.held(group))
            if request.path == ASSIGNMENTS_PATH and request.method == "POST":
                body = self._checked(request.get_json(silent=True), write=True)
                with self.lock:
                    return json_response(201, {"assignment_id": self._add(body)})
            one = _ONE.match(request.path)
            if one and request.method in ("PUT", "DELETE"):
                return self._change(request, one.group(1))
            raise SpokError(404, "not_found", f"no route {request.method} {request.path}")
        except SpokError as error:
            return error.response()

    def _sign_in(self, request: Request) -> Response:
        body = request.get_json(silent=True)
        body = body if isinstance(body, dict) else {}
        user_ok = hmac.compare_digest(str(body.get("username", "")).encode(), self.username.encode())
        password_ok = hmac.compare_digest(str(body.get("password", "")).encode(), self.password.encode())
        if not (user_ok and password_ok):
            raise SpokError(401, "invalid_grant", "invalid username or password")
        token = secrets.token_hex(16)
        with self.lock:
            self._tokens.add(token)
            self.sign_ins += 1
        return json_response(200, {"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    def _authorize(self, request: Request) -> None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        with self.lock:
            known = scheme == "Bearer" and token in self._tokens
        if not known:
            raise SpokError(401, "unauthorized", "a valid bearer token is required")

    def _group(self, group: str) -> list[str]:
        with self.lock:
            if group not in self.groups:
                raise SpokError(404, "group_not_found", f"unknown group {group}")
            return list(self.groups[group])

    def _checked(self, body: Any, write: bool = False) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise SpokError(400, "invalid_body", "the body must be a JSON object")
        missing = [k for k in REQUIRED if body.get(k) in (None, "")]
        if missing:
            raise SpokError(400, "missing_field", f"missing {', '.join(missing)}", field=missing[0])
        if body["time_zone"] not in ZONE_NAMES:
            raise SpokError(400, "invalid_time_zone", f"unknown time zone name {body['time_zone']!r}",
                            field="time_zone")
        if parse_date("end_date", body["end_date"]) <= parse_date("start_date", body["start_date"]):
            # compared as the wall-clock times sent: a daylight-saving change is not judged
            raise SpokError(400, "invalid_dates", "end_date is not after start_date", field="end_date")
        contact = body.get("contact")
        if body.get("messaging_id") is None and not (isinstance(contact, dict) and contact.get("name")):
            raise SpokError(400, "missing_field", "an assignment without messaging_id needs contact.name",
                            field="contact")
        roles = self._group(body["group_id"])
        if write and body["group_id"] in self.locked_groups:
            raise SpokError(403, "forbidden", "the user may not change this group's assignments")
        if body["role"] not in roles:
            raise SpokError(422, "unknown_role", f"role {body['role']!r} does not exist in the group",
                            field="role")
        return {k: v for k, v in body.items() if k != "assignment_id"}

    def _add(self, body: dict[str, Any]) -> str:  # under self.lock
        assignment_id = f"SPK-{self._next_id:06d}"
        self._next_id += 1
        self._assignments[assignment_id] = {"assignment_id": assignment_id, **body}
        return assignment_id

    def _change(self, request: Request, assignment_id: str) -> Response:
        with self.lock:
            held = self._assignments.get(assignment_id)
        if held is None:
            raise SpokError(404, "assignment_not_found", f"no assignment {assignment_id}")
        if held["group_id"] in self.locked_groups:
            raise SpokError(403, "forbidden", "the user may not change this group's assignments")
        if request.method == "DELETE":
            with self.lock:
                self._assignments.pop(assignment_id, None)
            return Response(status=204)
        body = self._checked(request.get_json(silent=True), write=True)
        with self.lock:
            self._assignments[assignment_id] = {"assignment_id": assignment_id, **body}
        return json_response(200, {"assignment_id": assignment_id})
