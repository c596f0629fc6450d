"""Spok Care Connect on-call, as this project sends it: one request per on-call assignment.

The shape (see docs/exports/secure_messaging.md, "Spok"), this project's interface drawn from the
shape of Spok's on-call assignment operations; a hospital whose Spok interface differs adjusts
the paths below, or `assignment_body` in desired.py:

- sign-in as the background user: `POST {base_url}/auth/token` (on_call_api.BackgroundUserClient);
- add: `POST /oncall/assignments` with `{group_id, messaging_id, role, start_date, end_date,
  time_zone, slot_id}` (a placeholder: `messaging_id` null and `contact {name, pager, phone}`)
  answers 201 `{"assignment_id"}`, kept as the pushed state's vendor id;
- update: `PUT /oncall/assignments/{assignment_id}`, the same body (a swap of the person is one);
- delete: `DELETE /oncall/assignments/{assignment_id}` (204; 404 or 410: already gone);
- roles: `GET /groups/{group_id}/roles` answers the group's role names;
- read back: `GET /oncall/assignments?group_id=X` answers the group's assignments, each with its
  `assignment_id` and the body's fields; those without a `slot_id` are not ours and are ignored.

The role check lives here, in `send`: Spok wants the role to exist in the group first. The group's
roles are read once per run, only when something is sent to the group (or in shadow, when it is
read), and a change naming a missing role is answered for Spok without being sent: a refused
answer (422, `role_missing_in_spok`), which the framework records as refused with that reason,
marks nothing and sends again on the next run, while the group's other changes go on. Filtering
in the desired state instead would need Spok's roles there, read on every run (the run on change
included, even with nothing to send) and before the framework's credential handling.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any, Mapping, Optional, Sequence, Union
from urllib.parse import quote, urlencode

from lb_pipelines.delivery.http import Answer, short_error
from lb_pipelines.integrations.on_call import OnCallSettings
from lb_pipelines.integrations.on_call_api import BackgroundUserClient
from lb_pipelines.integrations.pushing import Change, DesiredState, Observed, TargetUnreadable, content_hash
from lb_pipelines.integrations.spok.desired import canonical, entry_key, entry_label, spok_instant

VENDOR = "Spok"
SIGN_IN_PATH = "/auth/token"
ASSIGNMENTS_PATH = "/oncall/assignments"
ROLES_PATH = "/groups/{group_id}/roles"
PREVIEW_COLUMNS = [
    "action", "group", "slot", "role", "start_date", "end_date", "time_zone", "messaging_id", "note",
]

Roles = Union[frozenset, Answer]  # the group's role names, or the answer that said why not


def role_missing(role: str) -> Answer:
    """Spok's refusal of a role the group does not have, answered here without sending."""
    return Answer(422, body={
        "error": "role_missing_in_spok",
        "message": f"role {role!r} does not exist in this Spok group; create it in Spok first (not sent)",
    })


class SpokAdapter:
    """One request per assignment added, updated or deleted; each group read back with one GET."""

    chunk_size = 1
    readable = True

    def __init__(self, delivery, state: DesiredState):
        self.client = BackgroundUserClient(delivery, SIGN_IN_PATH, VENDOR)
        self.base_url = self.client.base_url
        self.description = self.client.description
        self.max_in_flight = delivery.max_in_flight
        self.roles_on_read = delivery.type == "shadow"  # a shadow shows the changes a missing role would stop
        self._roles: dict[str, Roles] = {}
        self._group_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str], dict[str, Any]] = {}  # what reads found: a preview's deletes

    # ---- the shape of each request
    def request_of(self, change: Change) -> dict[str, Any]:
        if change.action == "create":
            method, path = "POST", ASSIGNMENTS_PATH
        else:
            method = "PUT" if change.action == "update" else "DELETE"
            path = f"{ASSIGNMENTS_PATH}/{quote(change.vendor_id or '', safe='')}"
        request: dict[str, Any] = {"method": method, "path": path, "url": self.base_url + path, "headers": {}}
        if change.desired is not None:
            request["headers"] = {"Content-Type": "application/json"}
            request["body"] = change.desired.payload
        return request

    def vendor_id_of(self, change: Change, answer: Answer) -> Optional[str]:
        if isinstance(answer.body, dict) and answer.body.get("assignment_id") not in (None, ""):
            return str(answer.body["assignment_id"])
        return change.vendor_id

    # ---- sending
    def send(self, target: str, changes: Sequence[Change]) -> list[tuple[Change, Answer, int]]:
        answered = []
        for change in changes:
            refusal = self._role_refusal(target, change)
            if refusal is not None:
                answered.append((change, refusal, 0))  # not sent: no attempt
                continue
            sent = self.request_of(change)
            answer, attempts = self.client.with_retries(sent["method"], sent["path"], sent.get("body"))
            answered.append((change, answer, attempts))
        return answered

    def _role_refusal(self, group: str, change: Change) -> Optional[Answer]:
        """Why a change cannot go (its role missing, or the group's roles unreadable), or None."""
        if change.desired is None:
            return None  # a delete names no role
        roles = self.roles(group)
        if isinstance(roles, Answer):
            return roles  # the roles read's own answer: refused (404: no such group) or failed (sent again)
        role = change.desired.payload["role"]
        return None if role in roles else role_missing(role)

    def roles(self, group: str) -> Roles:
        """The group's role names, read once per run (per adapter)."""
        with self._lock:
            lock = self._group_locks.setdefault(group, threading.Lock())
        with lock:
            if group not in self._roles:
                answer, _ = self.client.with_retries("GET", ROLES_PATH.format(group_id=quote(group, safe="")))
                if answer.ok and isinstance(answer.body, list):
                    self._roles[group] = frozenset(str(r) for r in answer.body)
                elif answer.ok:
                    not_list = {"error": "roles_unreadable", "message": "the roles answer is not a JSON list"}
                    self._roles[group] = Answer(502, body=not_list)
                else:
                    self._roles[group] = answer
            return self._roles[group]

    # ---- reading back
    def read(self, target: str, read_range: Optional[tuple[dt.datetime, dt.datetime]]) -> list[Observed]:
        answer, _ = self.client.with_retries("GET", f"{ASSIGNMENTS_PATH}?{urlencode({'group_id': target})}")
        if not answer.ok or not isinstance(answer.body, list):
            raise TargetUnreadable(short_error(answer) if not answer.ok else "the answer is not a JSON list")
        if self.roles_on_read:
            self.roles(target)
        found = []
        for item in answer.body:
            if not isinstance(item, dict) or item.get("slot_id") in (None, ""):
                continue  # not one of ours (entered in Spok, or by another interface)
            key = entry_key(item["slot_id"], item.get("role"))
            with self._lock:
                self._held[(target, key)] = item
            found.append(Observed(
                target, key, None if item.get("assignment_id") is None else str(item["assignment_id"]),
                content_hash(canonical(item)), spok_instant(item.get("start_date"), item.get("time_zone")),
                entry_label(target, item["slot_id"]),
            ))
        return found

    # ---- previews
    def preview(
        self, changes: Sequence[Change], observed: Mapping[str, list[Observed]]
    ) -> tuple[list[str], list[tuple]]:
        """One row per change; the asset masks the messaging id, the shadow's file keeps it."""
        return PREVIEW_COLUMNS, [self._preview_row(c) for c in changes]

    def _preview_row(self, change: Change) -> tuple:
        if change.desired is not None:
            shown = change.desired.payload
        else:  # a delete: as the read found it (a run on change reads nothing: the key only)
            shown = self._held.get((change.target, change.key), {})
        slot = shown.get("slot_id", change.key.split("/", 1)[0])
        who = shown.get("messaging_id") or ("placeholder" if shown.get("contact") else "")
        note = ""
        roles = self._roles.get(change.target)  # known only when already read (a shadow reads them)
        if change.desired is not None and roles is not None:
            if isinstance(roles, Answer):
                note = f"roles unreadable ({short_error(roles)}): not sent"
            elif shown["role"] not in roles:
                note = "role missing in Spok: not sent"
        return (change.action, change.target, slot, shown.get("role", ""), shown.get("start_date", ""),
                shown.get("end_date", ""), shown.get("time_zone", ""), who, note)


def adapter(settings: OnCallSettings, state: DesiredState) -> SpokAdapter:
    return SpokAdapter(settings.delivery, state)
