"""The HTTP side every secure-messaging vendor shares: signing in as the background user, and the
replace-per-team list (PerfectServe, Amtelco, Voalte, Epic Secure Chat).

Each vendor's module (`<vendor>/api.py`) names its shape in a `TeamListShape`: where it signs in,
where a team's list lives, and what it calls the list and the user. A hospital whose vendor API
differs adjusts that module only.

- Sign-in: `POST {base_url}{sign_in_path}` with `{"username", "password"}` (the background user,
  from environment variables read when sending) answers `{"access_token", "expires_in"}`; the
  token is reused until shortly before it expires, and signed in again once if a request answers
  401. A refused sign-in stops the run: nothing is marked.
- A team's list: `PUT {base_url}{team_path}` with `{"team_id", <list_key>: [entries]}` replaces
  what the vendor holds for the team; `GET` on the same path answers the same shape (404: nothing
  held), which is how a reconcile finds hand edits and a shadow run shows the first overwrite.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence
from urllib.parse import quote

from lb_pipelines.delivery.http import (
    Answer,
    ClientCredentialsToken,
    CredentialsRefused,
    VendorHttp,
    env_secret,
    SignInUnreachable,
    request_answer,
    send_with_retries,
    short_error,
)
from lb_pipelines.integrations.on_call import OnCallPush, Entry, entry_body, on_call_push, team_label, team_lists
from lb_pipelines.integrations.pushing import Change, DesiredState, Observed, TargetUnreadable, content_hash


@dataclass(frozen=True)
class TeamListShape:
    """How one vendor takes a team's on-call list."""

    vendor: str  # as the hospital calls it: "PerfectServe"
    sign_in_path: str  # "/auth/token"
    team_path: str  # "/teams/{team_id}/oncall" ({team_id} is URL-quoted)
    list_key: str = "oncall"  # the body's key holding the ordered list
    user_key: str = "user_id"  # an entry's key naming the vendor's user

    def body(self, team_id: str, entries: list[Entry]) -> dict[str, Any]:
        return {"team_id": team_id, self.list_key: [entry_body(e, self.user_key) for e in entries]}

    def path(self, team_id: str) -> str:
        return self.team_path.format(team_id=quote(team_id, safe=""))


class BackgroundUserToken(ClientCredentialsToken):
    """The background user's session token: signed in with JSON username and password."""

    refused = "the vendor refused the background user's sign-in"

    DOWN_S = 10.0  # after a sign-in got no answer, the run's other requests do not try again for this long

    def __init__(self, sign_in_url: str, username: str, password: str, timeout_s: float = 30.0):
        super().__init__(sign_in_url, username, password, scope="", timeout_s=timeout_s)
        self._down: Optional[tuple[float, str]] = None  # (until, why): the vendor did not answer

    def _sign_in(self) -> dict[str, Any]:
        return {"json": {"username": self.client_id, "password": self._secret}}

    def _fetch(self, s) -> None:
        # Under the token's lock: one sign-in at a time; a vendor that is down is tried once per
        # DOWN_S, not once per request, so a run against it ends after one round of retries.
        if self._down is not None and time.monotonic() < self._down[0]:
            raise SignInUnreachable(self._down[1])
        try:
            super()._fetch(s)
            self._down = None
        except SignInUnreachable as exc:
            self._down = (time.monotonic() + self.DOWN_S, str(exc))
            raise


_TOKENS: dict[tuple[str, str], BackgroundUserToken] = {}  # per (sign-in URL, user): reused across runs
_TOKENS_LOCK = threading.Lock()


def forget_tokens() -> None:
    """Drop every cached session token (tests; a password change)."""
    with _TOKENS_LOCK:
        _TOKENS.clear()


class BackgroundUserClient(VendorHttp):
    """Requests signed in as the background user, with the retries of `delivery.http`."""

    def __init__(self, delivery, sign_in_path: str, vendor: str = "the vendor"):
        super().__init__(delivery, vendor)
        self.sign_in_url = self.base_url + sign_in_path

    def token(self) -> BackgroundUserToken:
        values = [env_secret(self.delivery, "username_env"), env_secret(self.delivery, "password_env")]
        with _TOKENS_LOCK:
            key = (self.sign_in_url, values[0])
            if key not in _TOKENS or _TOKENS[key]._secret != values[1]:
                _TOKENS[key] = BackgroundUserToken(self.sign_in_url, values[0], values[1], self.delivery.timeout_s)
            return _TOKENS[key]

    def request(self, method: str, path: str, json_body: Any = None) -> Answer:
        token = self.token()
        try:
            answer = self._once(token, method, path, json_body)
        except SignInUnreachable as exc:  # the vendor is down: this request is not delivered, retried next run
            return Answer(None, error=str(exc))
        if answer.status == 401:  # the session ended early: sign in again, once
            token.invalidate()
            try:
                answer = self._once(token, method, path, json_body)
            except SignInUnreachable as exc:
                return Answer(None, error=str(exc))
            if answer.status == 401:
                raise CredentialsRefused(
                    f"{self.base_url} refused the background user's token ({short_error(answer)}); check the "
                    f"user's rights and the environment variables {self.delivery.username_env} and "
                    f"{self.delivery.password_env}"
                )
        return answer

    def _once(self, token: BackgroundUserToken, method: str, path: str, json_body: Any) -> Answer:
        headers = {"Authorization": f"Bearer {token.get(self._http())}"}
        return request_answer(self._http(), method, self.base_url + path, self.delivery.timeout_s,
                              headers=headers, json=json_body)

    def with_retries(self, method: str, path: str, json_body: Any = None) -> tuple[Answer, int]:
        answered = send_with_retries(["one"], lambda _: {"one": self.request(method, path, json_body)}, self.policy)
        return answered["one"]


PREVIEW_COLUMNS = ["action", "team", "position", "role", "call_order", "start", "end", "user"]


def preview_lists(shape: TeamListShape, changes: Sequence[Change]) -> tuple[list[str], list[tuple]]:
    """The lists a run would replace, one row per entry (an empty list says nobody)."""
    rows = []
    for change in changes:
        entries = (change.desired.payload if change.desired is not None else {}).get(shape.list_key, [])
        if not entries:
            rows.append((change.action, change.target, None, None, None, None, None, "(nobody: an empty list)"))
        for e in entries:
            who = e.get(shape.user_key) or ("placeholder" if "placeholder" in e else None)
            rows.append((change.action, change.target, e["position"], e["role"], e["call_order"], e["start"],
                         e["end"], who))
    return PREVIEW_COLUMNS, rows


class TeamListAdapter:
    """One PUT per team whose list changed (chunk size 1); reads each team's list back with GET."""

    chunk_size = 1
    readable = True

    def __init__(self, delivery, state: DesiredState, shape: TeamListShape):
        self.shape = shape
        self.client = BackgroundUserClient(delivery, shape.sign_in_path, shape.vendor)
        self.base_url = self.client.base_url
        self.description = self.client.description
        self.max_in_flight = delivery.max_in_flight

    def request_of(self, change: Change) -> dict[str, Any]:
        path = self.shape.path(change.target)
        return {"method": "PUT", "path": path, "url": self.base_url + path,
                "headers": {"Content-Type": "application/json"},
                "body": change.desired.payload if change.desired is not None else None}

    def vendor_id_of(self, change: Change, answer: Answer) -> Optional[str]:
        return None  # a team's list has no id of its own: the team id is the key

    def send(self, target: str, changes: Sequence[Change]) -> list[tuple[Change, Answer, int]]:
        return [(c, *self.client.with_retries("PUT", self.shape.path(c.target), c.desired.payload)) for c in changes]

    def read(self, target: str, read_range: Optional[tuple[dt.datetime, dt.datetime]]) -> list[Observed]:
        answer, _ = self.client.with_retries("GET", self.shape.path(target))
        if answer.status == 404:
            return []  # the vendor holds no list for the team
        if not answer.ok or not isinstance(answer.body, dict):
            raise TargetUnreadable(short_error(answer) if not answer.ok else "the answer is not a JSON object")
        return [Observed(target, target, None, content_hash(answer.body), None, team_label(target))]

    def preview(self, changes: Sequence[Change], observed: Mapping[str, list[Observed]]) -> tuple[list[str], list[tuple]]:
        return preview_lists(self.shape, changes)


def team_list_push(*, slug: str, shape: TeamListShape) -> OnCallPush:
    """The declaration of a replace-per-team vendor: the engine's lists, sent with `shape`."""
    return on_call_push(
        slug=slug,
        title=shape.vendor,
        description=f"Who is on call now and next for each mapped {shape.vendor} team, in call order: the "
        "team's whole list replaced in one request when it changed (on every schedule change, reconciled "
        "every 10 minutes).",
        desired=lambda conn, settings, now: team_lists(conn, slug, settings, now, shape.body),
        adapter=lambda settings, state: TeamListAdapter(settings.delivery, state, shape),
        personal_preview_columns=frozenset({"user"}),
    )
