"""The simulator's API semantics over its in-memory tables: pages, filters, cursors, writes.

Choices the contract leaves open (also written down in the docs):
- Order: slots by (date, id), tallies by their key, everything else by id.
- A cursor is opaque to clients; it carries the last key served and the filters of the read,
  so a record unchanged during a paged read is neither skipped nor repeated even when writes
  insert or delete records between pages. Repeating the filters with a cursor is allowed;
  changing them is a 400.
- A write that changes nothing (same values) stamps nothing and logs nothing.
- New slot ids continue after the highest id ever held; ids of deleted slots are not reused.
- A slot is created or moved only within its schedule's dates, with an assignment of the
  schedule's department.
- Writes live in memory only: the files on disk are never modified.
"""

from __future__ import annotations

import base64
import binascii
import threading
from pathlib import Path
from typing import Any

import orjson

from lb_pipelines import clock
from lb_pipelines.lightning_bolt.source.contract import (
    CHANGE_LOG,
    ENTITIES,
    PATCHABLE_PERSONNEL_FIELDS,
    SLOTS,
    Entity,
)
# the contract's own checks, so that the simulator refuses exactly what a record may not hold
from lb_pipelines.lightning_bolt.source.records import _is_date, _is_time
from lb_pipelines.lightning_bolt.simulator.tables import RecordTable, SlotTable, SourceLoadError, is_int

__all__ = ["SimulatorError", "SimulatorStore", "SourceLoadError"]

DEFAULT_PAGE_SIZE = 500


class SimulatorError(Exception):
    """An answer other than success: HTTP status, error code and a message for the client."""

    def __init__(self, status: int, error: str, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.extra = extra

    def body(self) -> bytes:
        return orjson.dumps({"error": self.error, "message": self.message, **self.extra})


def _bad_request(message: str, **extra: Any) -> SimulatorError:
    return SimulatorError(400, "invalid_request", message, **extra)


def _not_found(what: str, ident: Any) -> SimulatorError:
    return SimulatorError(404, "not_found", f"{what} {ident} does not exist")


def _as_text(value: Any) -> str | None:
    """A change-log value: text, with null kept null."""
    if value is None or type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) in (int, float):
        return str(value)
    return orjson.dumps(value).decode()


def _encode_cursor(entity: str, key: Any, filters: dict[str, Any]) -> bytes:
    payload = orjson.dumps({"e": entity, "k": key, "f": filters})
    return base64.urlsafe_b64encode(payload).rstrip(b"=")


def _decode_cursor(cursor: str, entity: Entity) -> tuple[Any, dict[str, Any]]:
    bad = _bad_request("cursor is not valid for this endpoint", parameter="cursor")
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise bad from None
    if type(payload) is not dict or payload.get("e") != entity.name or type(payload.get("f")) is not dict:
        raise bad
    key = payload.get("k")
    if entity is SLOTS:
        ok = type(key) is list and len(key) == 2 and type(key[0]) is str and is_int(key[1])
    elif entity.key == ("id",):
        ok = is_int(key)
    else:
        ok = type(key) is list and len(key) == 3 and is_int(key[0]) and all(type(p) is str for p in key[1:])
    filters = payload["f"]
    ok = ok and all(_is_date(filters[name]) for name in ("start_date", "end_date") if name in filters)
    ok = ok and filters.get("published_only", True) is True and is_int(filters.get("since_id", 0))
    if not ok or set(filters) - {"start_date", "end_date", "published_only", "since_id"}:
        raise bad
    return (tuple(key) if type(key) is list else key), filters


def _parse_filters(entity: Entity, params: dict[str, str]) -> dict[str, Any]:
    """The filters a request names (only those it names), validated."""
    filters: dict[str, Any] = {}
    for name in ("start_date", "end_date"):
        if name in params:
            if not _is_date(params[name]):
                message = f"{name} must be a date YYYY-MM-DD, got {params[name]!r:.40}"
                raise _bad_request(message, parameter=name)
            filters[name] = params[name]
    if filters.get("start_date", "") > filters.get("end_date", "9999-12-31"):
        raise _bad_request("end_date is before start_date", parameter="end_date")
    if entity is SLOTS and "published_only" in params:
        value = params["published_only"].lower()
        if value not in ("true", "false", "1", "0"):
            raise _bad_request("published_only must be true or false", parameter="published_only")
        if value in ("true", "1"):  # false is the default: left out so that cursors compare equal
            filters["published_only"] = True
    if entity is CHANGE_LOG and "since_id" in params:
        try:
            since_id = int(params["since_id"])
        except ValueError:
            raise _bad_request("since_id must be an integer", parameter="since_id") from None
        if since_id:  # 0 is the default
            filters["since_id"] = since_id
    return filters


def _parse_page_size(params: dict[str, str], max_page_size: int) -> int:
    raw = params.get("page_size")
    if raw is None:
        return min(DEFAULT_PAGE_SIZE, max_page_size)
    try:
        size = int(raw)
    except ValueError:
        raise _bad_request("page_size must be an integer", parameter="page_size") from None
    if size < 1:
        raise _bad_request("page_size must be at least 1", parameter="page_size")
    return min(size, max_page_size)


_NEW_SLOT_FIELDS = ("schedule_id", "date", "assignment_id", "personnel_id", "start_time", "end_time", "notes")


def _apply(record: dict[str, Any], body: dict[str, Any]) -> tuple[list[tuple[str, Any, Any]], str]:
    """Set `body`'s values on `record`: the (field, old, new) that changed, and the write's time.

    `updated_at` is stamped only when something changed, with the same instant that the
    change-log entries carry.
    """
    now = clock.now().isoformat()
    changed = [(name, record.get(name), value) for name, value in body.items() if record.get(name) != value]
    for name, _, value in changed:
        record[name] = value
    if changed:
        record["updated_at"] = now
    return changed, now


class SimulatorStore:
    """Every entity of one directory source, read and written under one lock."""

    def __init__(self, source_dir: str | Path):
        self.source_dir = Path(source_dir)
        if not self.source_dir.is_dir():
            raise SourceLoadError(f"source directory {self.source_dir} does not exist")
        self.lock = threading.Lock()
        self.tables: dict[str, RecordTable] = {}
        for entity in ENTITIES.values():
            if entity is not SLOTS:
                self.tables[entity.name] = table = RecordTable(entity)
                table.load(self.source_dir / entity.file_name)
        self.slots = SlotTable()
        self.slots.load(self.source_dir / SLOTS.file_name)
        schedules = self.tables["schedules"]
        self.published = {
            key for i, key in enumerate(schedules.keys) if schedules.record(i).get("status") == "published"
        }

    # -- reads ---------------------------------------------------------------------------

    def page(self, entity: Entity, params: dict[str, str], max_page_size: int) -> bytes:
        """One page of `entity` as the response body `{"data": [...], "next_cursor": ...}`."""
        size = _parse_page_size(params, max_page_size)
        filters = _parse_filters(entity, params)
        after = None
        if params.get("cursor"):
            after, issued = _decode_cursor(params["cursor"], entity)
            for name, value in filters.items():
                if issued.get(name) != value:
                    raise _bad_request(f"cursor was issued for a different {name}", parameter=name)
            filters = issued
        start, end = filters.get("start_date"), filters.get("end_date")
        with self.lock:
            if entity is SLOTS:
                published = self.published if filters.get("published_only") else None
                lines, last = self.slots.page(after, start, end, published, size)
            else:
                since = filters.get("since_id")
                if since is not None:
                    after = since if after is None else max(after, since)
                lines, last = self.tables[entity.name].page(after, start, end, size)
            data = b",".join(lines)
        cursor = b"null" if last is None else b'"' + _encode_cursor(entity.name, last, filters) + b'"'
        return b"".join((b'{"data":[', data, b'],"next_cursor":', cursor, b"}"))

    # -- writes --------------------------------------------------------------------------

    def _log(
        self,
        now: str,
        user: str,
        action: str,
        entity: str,
        entity_id: int,
        *,
        schedule_id: int | None = None,
        date: str | None = None,
        field: str | None = None,
        old: Any = None,
        new: Any = None,
    ) -> None:
        """Append one change-log entry (the store's lock is held)."""
        log = self.tables[CHANGE_LOG.name]
        entry_id = (log.keys[-1] if log.keys else 0) + 1
        log.append(entry_id, {
            "id": entry_id,
            "changed_at": now,
            "user": user,
            "action": action,
            "entity": entity,
            "entity_id": entity_id,
            "schedule_id": schedule_id,
            "date": date,
            "field": field,
            "old_value": _as_text(old),
            "new_value": _as_text(new),
        })

    def _record(self, table: str, key: int, what: str) -> tuple[int, dict[str, Any]]:
        i = self.tables[table].find(key)
        if i is None:
            raise _not_found(what, key)
        return i, self.tables[table].record(i)

    def patch_personnel(self, personnel_id: int, body: Any, user: str) -> dict[str, Any]:
        with self.lock:
            i, record = self._record("personnel", personnel_id, "personnel")
            if type(body) is not dict:
                raise _bad_request("body must be a JSON object of fields to change")
            for name, value in body.items():
                if name not in PATCHABLE_PERSONNEL_FIELDS:
                    raise _bad_request(
                        f"field {name!r} cannot be changed; allowed: {', '.join(PATCHABLE_PERSONNEL_FIELDS)}",
                        field=name,
                    )
                if value is not None and type(value) is not str:
                    raise _bad_request(f"field {name!r} must be a string or null", field=name)
            changed, now = _apply(record, body)
            if changed:
                self.tables["personnel"].replace(i, record)
                for name, old, new in changed:
                    self._log(now, user, "update", "personnel", personnel_id, field=name, old=old, new=new)
            return record

    def _check_slot_fields(
        self, body: dict[str, Any], allowed: tuple[str, ...], schedule: dict[str, Any]
    ) -> None:
        for name in body:
            if name not in allowed:
                raise _bad_request(f"unknown field {name!r}; allowed: {', '.join(allowed)}", field=name)
        if "date" in body:
            if not _is_date(body["date"]):
                raise _bad_request("date must be a date YYYY-MM-DD", field="date")
            if not schedule.get("start_date", "") <= body["date"] <= schedule.get("end_date", ""):
                raise _bad_request(
                    f"date {body['date']} is outside schedule {schedule['id']} "
                    f"({schedule.get('start_date')}..{schedule.get('end_date')})",
                    field="date",
                )
        for name in ("start_time", "end_time"):
            if body.get(name) is not None and not _is_time(body[name]):
                raise _bad_request(f"{name} must be a time HH:MM", field=name)
        person = body.get("personnel_id")
        if person is not None:
            if not is_int(person) or self.tables["personnel"].find(person) is None:
                raise _bad_request(f"personnel {body['personnel_id']!r} does not exist", field="personnel_id")
        if body.get("notes") is not None and type(body["notes"]) is not str:
            raise _bad_request("notes must be a string or null", field="notes")

    def create_slot(self, body: Any, user: str) -> dict[str, Any]:
        if type(body) is not dict:
            raise _bad_request("body must be a JSON object")
        with self.lock:
            refs = {}
            for name, table in (("schedule_id", "schedules"), ("assignment_id", "assignments")):
                i = self.tables[table].find(body.get(name)) if is_int(body.get(name)) else None
                if i is None:
                    raise _bad_request(f"{name} {body.get(name)!r} does not exist", field=name)
                refs[table] = self.tables[table].record(i)
            schedule, assignment = refs["schedules"], refs["assignments"]
            if "date" not in body:
                raise _bad_request("date is required", field="date")
            self._check_slot_fields(body, _NEW_SLOT_FIELDS, schedule)
            if assignment.get("department_id") != schedule.get("department_id"):
                raise _bad_request(
                    f"assignment {assignment['id']} belongs to another department "
                    f"than schedule {schedule['id']}",
                    field="assignment_id",
                )
            now = clock.now().isoformat()
            record = {
                "id": self.slots.max_id + 1,
                "schedule_id": schedule["id"],
                "date": body["date"],
                "assignment_id": assignment["id"],
                "personnel_id": body.get("personnel_id"),
                "start_time": body.get("start_time") or assignment.get("default_start"),
                "end_time": body.get("end_time") or assignment.get("default_end"),
                "notes": body.get("notes"),
                "updated_at": now,
            }
            self.slots.insert(record)
            self._log(
                now, user, "create", "slot", record["id"], schedule_id=schedule["id"], date=record["date"]
            )
            return record

    def _slot(self, slot_id: int) -> tuple[int, dict[str, Any]]:
        i = self.slots.position(slot_id)
        if i is None:
            raise _not_found("slot", slot_id)
        return i, orjson.loads(self.slots.lines[i])

    def update_slot(self, slot_id: int, body: Any, allowed: tuple[str, ...], user: str) -> dict[str, Any]:
        """Assign, unassign or move: set the fields of `body` (among `allowed`) on a slot."""
        if type(body) is not dict:
            raise _bad_request("body must be a JSON object")
        with self.lock:
            i, record = self._slot(slot_id)
            schedule_id = record.get("schedule_id")
            si = self.tables["schedules"].find(schedule_id) if is_int(schedule_id) else None
            schedule = self.tables["schedules"].record(si) if si is not None else {"id": schedule_id}
            self._check_slot_fields(body, allowed, schedule)
            changed, now = _apply(record, body)
            if changed:
                if any(name == "date" for name, _, _ in changed):  # a new place in (date, id) order
                    self.slots.remove(i)
                    self.slots.insert(record)
                else:
                    self.slots.replace(i, record)
                for name, old, new in changed:
                    self._log(
                        now, user, "update", "slot", slot_id,
                        schedule_id=schedule_id, date=record["date"], field=name, old=old, new=new,
                    )
            return record

    def assign_slot(self, slot_id: int, body: Any, user: str) -> dict[str, Any]:
        if type(body) is not dict or not is_int(body.get("personnel_id")):
            raise _bad_request("body must be {\"personnel_id\": <id>}", field="personnel_id")
        return self.update_slot(slot_id, body, ("personnel_id",), user)

    def unassign_slot(self, slot_id: int, user: str) -> dict[str, Any]:
        return self.update_slot(slot_id, {"personnel_id": None}, ("personnel_id",), user)

    def move_slot(self, slot_id: int, body: Any, user: str) -> dict[str, Any]:
        if type(body) is dict:
            for name in ("date", "start_time", "end_time"):
                if name in body and body[name] is None:
                    raise _bad_request(f"{name} cannot be null", field=name)
        return self.update_slot(slot_id, body, ("date", "start_time", "end_time"), user)

    def delete_slot(self, slot_id: int, user: str) -> None:
        with self.lock:
            i, record = self._slot(slot_id)
            self.slots.remove(i)
            now = clock.now().isoformat()
            schedule_id = record.get("schedule_id")
            self._log(now, user, "delete", "slot", slot_id, schedule_id=schedule_id, date=record["date"])

    def set_schedule_status(self, schedule_id: int, publish: bool, user: str) -> dict[str, Any]:
        """Publish (again) or unpublish a schedule; unpublishing a draft changes nothing."""
        with self.lock:
            i, record = self._record("schedules", schedule_id, "schedule")
            old = record.get("status")
            if not publish and old != "published":
                return record
            now = clock.now().isoformat()
            record["status"] = "published" if publish else "draft"
            record["published_at"] = now if publish else None
            record["version"] = (record["version"] if is_int(record.get("version")) else 0) + 1
            self.tables["schedules"].replace(i, record)
            if publish:
                self.published.add(schedule_id)
            else:
                self.published.discard(schedule_id)
            action = "publish" if publish else "update"
            self._log(
                now, user, action, "schedule", schedule_id, field="status", old=old, new=record["status"]
            )
            return record
