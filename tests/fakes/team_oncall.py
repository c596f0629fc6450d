"""A stateful fake of the replace-per-team on-call interface that PerfectServe, Amtelco, Voalte and
Epic Secure Chat speak in this project (docs/exports/secure_messaging.md), over real HTTP.

Written from the documented shape, not from the adapters:
- `POST /auth/token` with JSON `{"username", "password"}` -> 200 `{"access_token", "expires_in"}`;
  wrong credentials -> 401. Every other route wants `Authorization: Bearer <token>` (401 without).
- `PUT /teams/<team_id>/oncall` with `{"team_id": <the same id>, "oncall": [entries]}` replaces the
  team's list (200). An entry needs position (1, 2, ... in order), role, call_order, start and end
  (`YYYY-MM-DDTHH:MM:SSZ`, end after start) and exactly one of `user_id` (a user the vendor knows,
  when `users` is set) or `placeholder` (with a name). Anything wrong -> 422 naming the entry and
  field, the team left as it was. A team in `unknown_teams` -> 404.
- `GET /teams/<team_id>/oncall` -> the list held (404 when none).
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from datetime import datetime
from typing import Any, Iterable, Optional

from werkzeug.wrappers import Request, Response

from fakes.server import FakeServer, json_response

TEAM_PATH = re.compile(r"^/teams/(?P<team>[^/]+)/oncall$")
_UTC = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")


class TeamOnCallFake(FakeServer):
    def __init__(self, username: str, password: str, *, users: Optional[Iterable[str]] = None,
                 unknown_teams: Iterable[str] = ()) -> None:
        super().__init__()
        self.username, self.password = username, password
        self.users = set(users) if users is not None else None
        self.unknown_teams = set(unknown_teams)
        self.held: dict[str, dict[str, Any]] = {}
        self.tokens: set[str] = set()
        self.sign_ins = 0

    @property
    def base_url(self) -> str:
        return self.url

    # ---- for tests
    def puts(self) -> list[str]:
        """The teams PUT since the log was cleared, in order (accepted or not)."""
        return [TEAM_PATH.match(r.path)["team"] for r in self.requests("PUT")]

    def edit_by_hand(self, team: str, body: dict[str, Any]) -> None:
        with self.lock:
            self.held[team] = body

    def reset(self) -> None:
        with self.lock:
            self.held.clear()
            self.tokens.clear()
        self.clear_log()
        self.clear_injected()

    # ---- serving
    def handle(self, request: Request) -> Response:
        if request.path == "/auth/token" and request.method == "POST":
            return self.with_injection("POST", request.path, lambda: self._sign_in(request))
        match = TEAM_PATH.match(request.path)
        if match is None:
            return json_response(404, {"error": "no such route"})
        if not self._signed_in(request):
            return json_response(401, {"error": "sign in first"})
        team = match["team"]
        if request.method == "GET":
            return self.with_injection("GET", request.path, lambda: self._get(team))
        if request.method == "PUT":
            return self.with_injection("PUT", request.path, lambda: self._put(team, request))
        return json_response(405, {"error": "method not allowed"})

    def _sign_in(self, request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        good = hmac.compare_digest(str(body.get("username", "")), self.username) and hmac.compare_digest(
            str(body.get("password", "")), self.password)
        if not good:
            return json_response(401, {"error": "invalid username or password"})
        token = secrets.token_hex(16)
        with self.lock:
            self.tokens.add(token)
            self.sign_ins += 1
        return json_response(200, {"access_token": token, "expires_in": 3600})

    def _signed_in(self, request: Request) -> bool:
        auth = request.headers.get("Authorization", "")
        with self.lock:
            return auth.startswith("Bearer ") and auth[7:] in self.tokens

    def _get(self, team: str) -> Response:
        with self.lock:
            held = self.held.get(team)
        return json_response(200, held) if held is not None else json_response(404, {"error": "no list held"})

    def _put(self, team: str, request: Request) -> Response:
        if team in self.unknown_teams:
            return json_response(404, {"error": f"team {team} does not exist"})
        body = request.get_json(silent=True)
        problem = self._invalid(team, body)
        if problem:
            return json_response(422, {"error": problem})
        with self.lock:
            self.held[team] = json.loads(json.dumps(body))
        return json_response(200, {"team_id": team, "entries": len(body["oncall"])})

    def _invalid(self, team: str, body: Any) -> Optional[str]:
        if not isinstance(body, dict) or body.get("team_id") != team or not isinstance(body.get("oncall"), list):
            return "the body must be {team_id: <the team in the path>, oncall: [...]}"
        for i, e in enumerate(body["oncall"], start=1):
            if not isinstance(e, dict) or e.get("position") != i:
                return f"entry {i}: position must be {i}"
            for key in ("role", "call_order", "start", "end"):
                if e.get(key) in (None, ""):
                    return f"entry {i}: {key} is missing"
            if not (_UTC.match(str(e["start"])) and _UTC.match(str(e["end"]))):
                return f"entry {i}: start and end must be UTC, YYYY-MM-DDTHH:MM:SSZ"
            if datetime.fromisoformat(e["end"]) <= datetime.fromisoformat(e["start"]):
                return f"entry {i}: end must be after start"
            has_user, has_placeholder = bool(e.get("user_id")), isinstance(e.get("placeholder"), dict)
            if has_user == has_placeholder:
                return f"entry {i}: exactly one of user_id and placeholder"
            if has_placeholder and not e["placeholder"].get("name"):
                return f"entry {i}: placeholder.name is missing"
            if has_user and self.users is not None and e["user_id"] not in self.users:
                return f"entry {i}: user_id is not a user here"
        return None
