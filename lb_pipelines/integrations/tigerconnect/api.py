"""TigerConnect's scheduler CSV webhook, as this project sends it (the shape of TigerConnect's own
web SDK; every URL is a setting, so a customer can adjust it and a test points it at a fake).

- Upload: `POST {base_url}/v1/integrations/scheduler/webhook/csv`, `Content-Type: text/csv`, a body
  `JOB_TOKEN,USER_ID,START,END`, one upload per time zone. TigerConnect replaces the rows of every
  job token the upload names; `TOKEN,,,` empties one.
- Download: `POST {base_url}/v1/integrations/scheduler/webhook/csv/download`: what it holds for the
  organization, integration and zone, as the same CSV.
- Both with HTTP Basic `username:password` (environment variables, read when sending, never
  logged) and the headers `TT-X-Organization-Key` (the group id), `TT-X-Integration-Id` and
  `TT-X-Timezone` (IANA). A 401 means the credentials are wrong: the run stops, nothing is marked.
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
from lb_pipelines.integrations.pushing import Change, DesiredState, Observed, TargetUnreadable
from lb_pipelines.integrations.tigerconnect.desired import (
    Row,
    TigerConnectState,
    canonical,
    label_of,
    parse_csv,
    row_order,
    rows_hash,
    tokens_id,
)

UPLOAD_PATH = "/v1/integrations/scheduler/webhook/csv"
DOWNLOAD_PATH = "/v1/integrations/scheduler/webhook/csv/download"
CONTENT_TYPE = "text/csv; charset=utf-8"
PREVIEW_COLUMNS = ["action", "zone", "JOB_TOKEN", "USER_ID", "START", "END"]


class TigerConnectAdapter(VendorHttp):
    """One upload per time zone (chunk size 1); reads each zone back through the download."""

    chunk_size = 1
    readable = True

    def __init__(self, delivery, state: DesiredState):
        super().__init__(delivery, "TigerConnect")
        # What each zone's upload says: its job tokens and rows (the desired CSV, parsed back).
        self.desired_rows: dict[str, list[Row]] = {d.target: parse_csv(d.payload) for d in state.objects}
        self.tokens: dict[str, frozenset[str]] = {
            zone: frozenset(r[0] for r in rows) for zone, rows in self.desired_rows.items()
        }
        extra = state if isinstance(state, TigerConnectState) else TigerConnectState(objects=[])
        self.pushed_tokens = extra.pushed_tokens
        self.held: dict[str, list[Row]] = {}  # per zone read back: every row TigerConnect holds there
        self._lock = threading.Lock()

    # ---- the shape of each request
    def _headers(self, zone: str, content_type: Optional[str] = None) -> dict[str, str]:
        headers = {
            "TT-X-Organization-Key": self.delivery.group_id or "",
            "TT-X-Integration-Id": self.delivery.integration_id or "",
            "TT-X-Timezone": zone,
        }
        return {"Content-Type": content_type, **headers} if content_type else headers

    def request_of(self, change: Change) -> dict[str, Any]:
        """The upload a change becomes (TigerConnect has no delete; the push never plans one)."""
        return {
            "method": "POST", "path": UPLOAD_PATH, "url": self.base_url + UPLOAD_PATH,
            "headers": self._headers(change.target, CONTENT_TYPE),
            "body": change.desired.payload if change.desired is not None else "",
        }

    def vendor_id_of(self, change: Change, answer: Answer) -> Optional[str]:
        """TigerConnect has no object id: the pushed state keeps the job tokens the upload covered."""
        return tokens_id(self.tokens.get(change.target, ()))

    # ---- sending
    def _auth(self) -> tuple[str, str]:
        return env_secret(self.delivery, "username_env"), env_secret(self.delivery, "password_env")

    def _refused(self, answer: Answer) -> CredentialsRefused:
        return CredentialsRefused(
            f"TigerConnect refused the username and password ({short_error(answer)}); check the values of the "
            f"environment variables {self.delivery.username_env} (username_env) and "
            f"{self.delivery.password_env} (password_env)"
        )

    def _post(self, path: str, zone: str, auth: tuple[str, str], body: Optional[str] = None) -> Answer:
        headers = self._headers(zone, CONTENT_TYPE if body is not None else None)
        data = body.encode("utf-8") if body is not None else None
        return request_answer(self._http(), "POST", self.base_url + path, self.delivery.timeout_s,
                              headers=headers, data=data, auth=auth)

    def send(self, target: str, changes: Sequence[Change]) -> list[tuple[Change, Answer, int]]:
        auth = self._auth()
        return self.send_each(changes, lambda c: self._post(UPLOAD_PATH, target, auth, self.request_of(c)["body"]))

    # ---- reading back
    def read(self, target: str, read_range: Optional[tuple[dt.datetime, dt.datetime]]) -> list[Observed]:
        """The zone's upload as TigerConnect holds it: its rows for the job tokens the last accepted
        upload covered (else the ones mapped now), in the desired's canonical form. Job tokens the
        push does not cover are someone else's: ignored (an upload overwrites per token)."""
        auth = self._auth()
        answers = send_with_retries(
            ["read"], lambda _: {"read": self._post(DOWNLOAD_PATH, target, auth)}, self.policy
        )
        answer, _ = answers["read"]
        if answer.status == 401:
            raise self._refused(answer)
        if not answer.ok or not isinstance(answer.body, str):
            raise TargetUnreadable(short_error(answer) if not answer.ok else "the download is not CSV")
        try:
            held = parse_csv(answer.body)
        except ValueError as exc:
            raise TargetUnreadable(f"the download is not TigerConnect's CSV: {exc}") from None
        with self._lock:
            self.held[target] = held
        tokens = self.pushed_tokens.get(target) or self.tokens.get(target, frozenset())
        rows = canonical(tokens, held)
        return [Observed(target, target, tokens_id(tokens), rows_hash(rows), None, label_of(target))]

    # ---- previews
    def preview(self, changes: Sequence[Change], observed: Mapping[str, list[Observed]]):
        """Row by row, what each upload changes in TigerConnect. For a zone read back: `add` (sent,
        not held) and `remove` (held for a job token the upload covers, not sent); rows held as
        sent are not listed. For a zone not read (a dry run, a run on change): every row the upload
        sends (`send`), and `clear` for a job token it empties. The asset masks USER_ID."""
        found: list[tuple] = []
        for change in changes:
            zone = change.target
            sent = [r for r in self.desired_rows.get(zone, []) if r[1]]
            if zone in self.held:
                covered = self.tokens.get(zone, frozenset())
                before = {r for r in canonical(covered, self.held[zone]) if r[1]}
                after = set(sent)
                found += [("add", zone, *r) for r in after - before]
                found += [("remove", zone, *r) for r in before - after]
            else:
                found += [("send", zone, *r) for r in sent]
                found += [("clear", zone, *r) for r in self.desired_rows.get(zone, []) if not r[1]]
        found.sort(key=lambda row: (row[1], *row_order(row[2:]), row[0]))
        return PREVIEW_COLUMNS, found
