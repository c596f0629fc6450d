"""AnesthesiaGo's schedule API, as this project sends it (every URL is a setting, so a customer can
adjust it and a test points it at a fake).

- `PUT {base_url}/schedule/{YYYY-MM-DD}`, `Content-Type: application/json`, the body
  `{"date": ..., "providers": [...]}` (see desired.py): the date's schedule is replaced by it.
- `GET {base_url}/schedule/{YYYY-MM-DD}`: the date's schedule as held, the same shape; `404`:
  nothing held for that date.
- Both with `Authorization: Bearer <token>`, the background user's API token from the environment
  variable `token_env` names, read when a request goes out, never logged. A missing variable or a
  `401` stops the run; nothing is marked pushed.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any, Mapping, Optional, Sequence

from lb_pipelines.delivery.http import (
    Answer,
    CredentialsRefused,
    VendorHttp,
    env_secret,
    request_answer,
    send_with_retries,
    short_error,
)
from lb_pipelines.integrations.anesthesiago.desired import (
    PROVIDER_FIELDS,
    Provider,
    body_hash,
    label_of,
    provider_order,
    providers_of,
)
from lb_pipelines.integrations.pushing import Change, DesiredState, Observed, TargetUnreadable

PREVIEW_COLUMNS = ["action", "date", "emp_id", "assignment_id", "start_local", "end_local"]
_SHOWN = [PROVIDER_FIELDS.index(c) for c in PREVIEW_COLUMNS[2:]]


def schedule_path(date: str) -> str:
    return f"/schedule/{date}"


class AnesthesiaGoAdapter(VendorHttp):
    """One PUT per date (chunk size 1); reads each date of the window back with a GET."""

    chunk_size = 1
    readable = True

    def __init__(self, delivery, state: DesiredState):
        super().__init__(delivery, "AnesthesiaGo")
        self.bodies: dict[str, Any] = {d.key: d.payload for d in state.objects}
        self.held: dict[str, list[Provider]] = {}  # per date read back: its providers (none when 404)
        self._lock = threading.Lock()

    # ---- the shape of each request
    def request_of(self, change: Change) -> dict[str, Any]:
        """The PUT a change becomes (AnesthesiaGo has no delete; the push never plans one)."""
        path = schedule_path(change.key)
        return {
            "method": "PUT", "path": path, "url": self.base_url + path,
            "headers": {"Content-Type": "application/json"},
            "body": change.desired.payload if change.desired is not None else None,
        }

    def vendor_id_of(self, change: Change, answer: Answer) -> Optional[str]:
        return None  # a schedule is known by its date; AnesthesiaGo gives it no other id

    # ---- sending
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {env_secret(self.delivery, 'token_env')}"}

    def _refused(self, answer: Answer) -> CredentialsRefused:
        return CredentialsRefused(
            f"AnesthesiaGo refused the API token ({short_error(answer)}); check the value of the "
            f"environment variable {self.delivery.token_env} (token_env)"
        )

    def _request(self, method: str, date: str, auth: dict[str, str], body: Any = None) -> Answer:
        kwargs: dict[str, Any] = {"headers": auth}
        if body is not None:
            kwargs["json"] = body
        return request_answer(self._http(), method, self.base_url + schedule_path(date), self.delivery.timeout_s,
                              **kwargs)

    def send(self, target: str, changes: Sequence[Change]) -> list[tuple[Change, Answer, int]]:
        auth = self._auth()
        return self.send_each(changes, lambda c: self._request("PUT", c.key, auth, c.desired.payload))

    # ---- reading back
    def read(self, target: str, read_range: Optional[tuple[dt.datetime, dt.datetime]]) -> list[Observed]:
        """Each date of the window as AnesthesiaGo holds it (a 404: nothing held, no object). Dates
        pushed before that have left the window are not read: they stand as last accepted
        (`pushing.run_push` compares only what the run wants or may delete)."""
        found: list[Observed] = []
        if not self.bodies:
            return found
        auth = self._auth()
        for date in sorted(self.bodies):
            answer, _ = send_with_retries(
                [date], lambda pending: {date: self._request("GET", date, auth)}, self.policy
            )[date]
            if answer.status == 401:
                raise self._refused(answer)
            if answer.status == 404:
                with self._lock:
                    self.held[date] = []
                continue
            if not answer.ok:
                raise TargetUnreadable(f"date {date}: {short_error(answer)}")
            try:
                providers = providers_of(answer.body)
                digest = body_hash(answer.body)
            except ValueError as exc:
                raise TargetUnreadable(f"date {date}: not AnesthesiaGo's schedule shape ({exc})") from None
            with self._lock:
                self.held[date] = providers
            found.append(Observed(target, date, None, digest, None, label_of(date)))
        return found

    # ---- previews
    def preview(self, changes: Sequence[Change], observed: Mapping[str, list[Observed]]):
        """Provider by provider, what each PUT changes. For a date read back: `add` (sent, not held)
        and `remove` (held, not sent); providers held as sent are not listed. For a date not read (a
        dry run, a run on change): every provider sent (`send`), and `clear` for a date sent empty.
        The asset masks emp_id."""
        rows: list[tuple[tuple, tuple]] = []  # (sort key, row)

        def add(action: str, date: str, p: Provider) -> None:
            rows.append(((date, *provider_order(p), action), (action, date, *(p[i] for i in _SHOWN))))

        for change in changes:
            date = change.key
            sent = providers_of(self.bodies.get(date, {"providers": []}))
            if date in self.held:
                before, after = set(self.held[date]), set(sent)
                for p in after - before:
                    add("add", date, p)
                for p in before - after:
                    add("remove", date, p)
            else:
                for p in sent:
                    add("send", date, p)
                if not sent:
                    rows.append(((date, "", -1, "", -1, "clear"), ("clear", date, "", "", "", "")))
        rows.sort(key=lambda r: r[0])
        return PREVIEW_COLUMNS, [row for _, row in rows]
