"""Microsoft Graph v1.0's shape for the Outlook push: the only vendor API here that Microsoft publishes.

- Token: client credentials, cached until shortly before expiry (one per process and app).
- Writes: `POST /users/{id}/events` (with transactionId), `PATCH` and `DELETE /users/{id}/events/{event id}`,
  always inside `POST /$batch` (at most 20, one mailbox per batch, each answer checked on its own),
  with `Prefer: IdType="ImmutableId"` so event ids survive a move between folders.
- Reads: `GET /users/{id}/calendarView` filtered and expanded on the lbSlotId extended property, so
  the reconcile finds its own events even when the pushed state is lost.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any, Mapping, Optional, Sequence
from urllib.parse import quote

from lb_pipelines.delivery.http import (
    Answer,
    ClientCredentialsToken,
    CredentialsRefused,
    LazySession,
    env_secret,
    RetryPolicy,
    request_answer,
    send_with_retries,
    short_error,
)
from lb_pipelines.integrations.outlook.desired import SLOT_PROPERTY, controlled
from lb_pipelines.integrations.pushing import Change, Observed, TargetUnreadable, content_hash

IMMUTABLE_IDS = 'IdType="ImmutableId"'
READ_PREFER = f'{IMMUTABLE_IDS}, outlook.body-content-type="text", outlook.timezone="UTC"'
_TOKENS: dict[tuple[str, str], ClientCredentialsToken] = {}
_TOKENS_LOCK = threading.Lock()
PREVIEW_COLUMNS = ["action", "person_slot", "mailbox", "subject", "start_utc", "end_utc", "show_as"]


def _token(delivery) -> ClientCredentialsToken:
    """The app's token cache (kept for the process: a daemon's runs and a benchmark reuse it)."""
    with _TOKENS_LOCK:
        key = (delivery.token_url, delivery.client_id)
        if key not in _TOKENS:
            secret = env_secret(delivery, "client_secret_env")
            _TOKENS[key] = ClientCredentialsToken(delivery.token_url, delivery.client_id, secret, delivery.scope,
                                                  delivery.timeout_s)
        return _TOKENS[key]


def forget_tokens() -> None:
    with _TOKENS_LOCK:
        _TOKENS.clear()


class GraphAdapter:
    readable = True

    def __init__(self, delivery):
        self.delivery = delivery
        self.base_url = delivery.base_url.rstrip("/")
        self.description = self.base_url
        self.chunk_size = delivery.batch_size
        self.max_in_flight = delivery.max_in_flight
        self.policy = RetryPolicy(attempts=delivery.attempts, max_seconds=delivery.max_retry_seconds)
        self._http = LazySession(delivery.workers + 4)

    # ---- the shape of each request
    @staticmethod
    def _user(target: str) -> str:
        return f"/users/{quote(target, safe='@')}"

    def request_of(self, change: Change) -> dict[str, Any]:
        events = f"{self._user(change.target)}/events"
        if change.action == "create":
            return {"method": "POST", "path": events, "url": self.base_url + events,
                    "headers": {"Prefer": IMMUTABLE_IDS, "Content-Type": "application/json"},
                    "body": change.desired.payload}
        path = f"{events}/{quote(change.vendor_id or '', safe='')}"
        if change.action == "update":
            body = {k: v for k, v in change.desired.payload.items()
                    if k not in ("transactionId", "singleValueExtendedProperties")}
            return {"method": "PATCH", "path": path, "url": self.base_url + path,
                    "headers": {"Prefer": IMMUTABLE_IDS, "Content-Type": "application/json"}, "body": body}
        return {"method": "DELETE", "path": path, "url": self.base_url + path, "headers": {"Prefer": IMMUTABLE_IDS}}

    def vendor_id_of(self, change: Change, answer: Answer) -> Optional[str]:
        if isinstance(answer.body, dict) and answer.body.get("id"):
            return answer.body["id"]
        return change.vendor_id

    # ---- sending

    def _authorized(self, method: str, url: str, **kwargs: Any) -> Answer:
        """One request with the cached token; a 401 renews the token once, then is refused for good."""
        token = _token(self.delivery)
        s = self._http()
        headers = kwargs.pop("headers", {})
        for _ in range(2):
            answer = request_answer(s, method, url, self.delivery.timeout_s,
                                    headers={**headers, "Authorization": f"Bearer {token.get(s)}"}, **kwargs)
            if answer.status != 401:
                return answer
            token.invalidate()
        raise CredentialsRefused(f"Microsoft Graph refused the app's token: {short_error(answer)}")

    def send(self, target: str, changes: Sequence[Change]) -> list[tuple[Change, Answer, int]]:
        by_id = {str(i): c for i, c in enumerate(changes)}

        def send_once(pending: Sequence[str]) -> Mapping[str, Answer]:
            parts = []
            for part_id in pending:
                request = self.request_of(by_id[part_id])
                part = {"id": part_id, "method": request["method"], "url": request["path"],
                        "headers": request["headers"]}
                if "body" in request:
                    part["body"] = request["body"]
                parts.append(part)
            outer = self._authorized("POST", f"{self.base_url}/$batch", json={"requests": parts},
                                     headers={"Prefer": IMMUTABLE_IDS})
            if not outer.ok or not isinstance(outer.body, dict):
                return {p: outer for p in pending}  # the whole batch failed: each part has its answer
            got = {str(r.get("id")): Answer(r.get("status"), r.get("headers") or {}, r.get("body"))
                   for r in outer.body.get("responses", [])}
            return {p: got.get(p, Answer(None, error="no answer for this part in the batch")) for p in pending}

        answered = send_with_retries(list(by_id), send_once, self.policy)
        for part_id, (answer, _) in answered.items():
            if answer.status == 401:
                raise CredentialsRefused(f"Microsoft Graph refused the app's token: {short_error(answer)}")
        return [(by_id[p], *answered[p]) for p in by_id]

    # ---- reading back
    def read(self, target: str, read_range: Optional[tuple[dt.datetime, dt.datetime]]) -> list[Observed]:
        start, end = read_range
        prop = SLOT_PROPERTY.replace("'", "''")
        params = {
            "startDateTime": _iso_utc(start), "endDateTime": _iso_utc(end),
            "$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{prop}' and ep/value ne null)",
            "$expand": f"singleValueExtendedProperties($filter=id eq '{prop}')",
            "$select": "subject,body,start,end,showAs,categories",
            "$top": "1000",
        }
        url: Optional[str] = f"{self.base_url}{self._user(target)}/calendarView"
        found: list[Observed] = []
        while url:
            answers = send_with_retries(
                ["page"], lambda _: {"page": self._authorized("GET", url, params=params, headers={"Prefer": READ_PREFER})},
                self.policy,
            )
            answer, _ = answers["page"]
            if not answer.ok or not isinstance(answer.body, dict):
                raise TargetUnreadable(short_error(answer).replace(target, "(the mailbox)"))
            for evt in answer.body.get("value", []):
                slot = next((p.get("value") for p in evt.get("singleValueExtendedProperties") or []
                             if str(p.get("id", "")).lower() == SLOT_PROPERTY.lower()), None)
                if slot is None:
                    continue
                fields = controlled(evt)
                starts = dt.datetime.fromisoformat(fields["start"]).replace(tzinfo=dt.timezone.utc) if fields["start"] else None
                found.append(Observed(target, str(slot), evt.get("id"), content_hash(fields), starts, f"slot {slot}"))
            url, params = answer.body.get("@odata.nextLink"), None  # the next link carries the query
        return found

    # ---- previews
    def preview(self, changes: Sequence[Change], observed: Mapping[str, list[Observed]]):
        """The changes, one row each; the asset masks the mailbox, the shadow's file keeps it."""
        return PREVIEW_COLUMNS, [_preview_row(c) for c in changes]


def _preview_row(change: Change) -> tuple:
    payload = change.desired.payload if change.desired else {}
    return (
        change.action, change.label, change.target, payload.get("subject", ""),
        (payload.get("start") or {}).get("dateTime", change.start_at.isoformat() if change.start_at else ""),
        (payload.get("end") or {}).get("dateTime", ""), payload.get("showAs", ""),
    )


def _iso_utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
