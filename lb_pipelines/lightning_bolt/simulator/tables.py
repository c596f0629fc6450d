"""How the simulator holds a directory source in memory: raw JSON lines beside small keys.

Built to serve millions of slots: each record is kept as its raw line (bytes), in read order,
beside the few values that ordering and filters need (for slots: date, id and schedule id in
compact parallel columns). Pages are slices of those lines, spliced into a response without
re-encoding; a record is parsed and re-encoded only when a write changes it.
"""

from __future__ import annotations

import bisect
from array import array
from pathlib import Path
from typing import Any, Iterator

import orjson

from lb_pipelines.lightning_bolt.source.contract import Entity

NO_SCHEDULE = -(2**63)  # a slot whose schedule_id is not an integer belongs to no schedule


class SourceLoadError(ValueError):
    """The directory source cannot be served (bad JSON, a missing or duplicate key)."""


def is_int(v: Any) -> bool:
    return type(v) is int


def _read_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, stripped line) for every non-blank line of a JSON Lines file, if there is one."""
    if not path.exists():
        return
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.strip()
            if line:
                yield lineno, line


def _parse(path: Path, lineno: int, line: bytes) -> dict[str, Any]:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise SourceLoadError(f"{path}:{lineno}: not valid JSON ({exc})") from None
    if type(record) is not dict:
        raise SourceLoadError(f"{path}:{lineno}: expected a JSON object")
    return record


class RecordTable:
    """Records of one (small or medium) entity in key order: raw lines plus window values."""

    def __init__(self, entity: Entity):
        self.entity = entity
        self.keys: list[Any] = []
        self.lines: list[bytes] = []
        self.first: list[str | None] = []  # window fields of "range" entities
        self.last: list[str | None] = []

    def key_of(self, record: dict[str, Any], where: Any) -> Any:
        if self.entity.key == ("id",):
            key = record.get("id")
            if not is_int(key):
                raise SourceLoadError(f"{where}: 'id' must be an integer to be served")
            return key
        key = tuple(record.get(name) for name in self.entity.key)
        # tallies: (personnel_id, tally_name, period_start)
        if not (is_int(key[0]) and all(type(part) is str for part in key[1:])):
            raise SourceLoadError(f"{where}: key {self.entity.key} is missing or of the wrong type")
        return key

    def _window_of(self, record: dict[str, Any]) -> tuple[str | None, str | None]:
        if self.entity.read != "range":
            return None, None
        lo, hi = (record.get(name) for name in self.entity.window_fields)
        return (lo if type(lo) is str else None), (hi if type(hi) is str else None)

    def load(self, path: Path) -> None:
        rows = []
        for lineno, line in _read_lines(path):
            record = _parse(path, lineno, line)
            rows.append((self.key_of(record, f"{path}:{lineno}"), line, *self._window_of(record), lineno))
        rows.sort(key=lambda row: row[0])
        for previous, row in zip(rows, rows[1:]):
            if previous[0] == row[0]:
                where = f"{path}:{row[4]}"
                raise SourceLoadError(f"{where}: duplicate key {row[0]!r} (also on line {previous[4]})")
        self.keys = [row[0] for row in rows]
        self.lines = [row[1] for row in rows]
        self.first = [row[2] for row in rows]
        self.last = [row[3] for row in rows]

    def find(self, key: Any) -> int | None:
        i = bisect.bisect_left(self.keys, key)
        return i if i < len(self.keys) and self.keys[i] == key else None

    def record(self, i: int) -> dict[str, Any]:
        return orjson.loads(self.lines[i])

    def replace(self, i: int, record: dict[str, Any]) -> None:
        self.lines[i] = orjson.dumps(record)
        self.first[i], self.last[i] = self._window_of(record)

    def append(self, key: Any, record: dict[str, Any]) -> None:
        assert not self.keys or key > self.keys[-1]
        self.keys.append(key)
        self.lines.append(orjson.dumps(record))
        first, last = self._window_of(record)
        self.first.append(first)
        self.last.append(last)

    def page(self, after: Any, start: str | None, end: str | None, size: int) -> tuple[list[bytes], Any]:
        """Up to `size` lines after key `after` in the window; the last key if more follow."""
        i = 0 if after is None else bisect.bisect_right(self.keys, after)
        n = len(self.keys)
        if self.entity.read != "range" or (start is None and end is None):
            j = min(i + size, n)
            return self.lines[i:j], (self.keys[j - 1] if j < n else None)
        picked: list[int] = []
        first, last = self.first, self.last
        while i < n:
            if (start is None or (last[i] is not None and last[i] >= start)) and (
                end is None or (first[i] is not None and first[i] <= end)
            ):
                if len(picked) == size:
                    return [self.lines[k] for k in picked], self.keys[picked[-1]]
                picked.append(i)
            i += 1
        return [self.lines[k] for k in picked], None


class _IdIndex:
    """Slot id -> date: a list when ids are dense (the usual case), else a dict."""

    def __init__(self, ids: array, dates: list[str]):
        top = max(ids, default=0)
        self._list: list[str | None] | None = None
        self._dict: dict[int, str] | None = None
        if min(ids, default=0) >= 0 and top <= 2 * len(ids) + 1024:
            self._list = [None] * (top + 1)
            for slot_id, date in zip(ids, dates):
                if self._list[slot_id] is not None:
                    raise SourceLoadError(f"slot id {slot_id} appears more than once")
                self._list[slot_id] = date
        else:
            self._dict = dict(zip(ids, dates))
            if len(self._dict) != len(ids):
                raise SourceLoadError("slot ids are not unique")

    def get(self, slot_id: int) -> str | None:
        if self._list is not None:
            return self._list[slot_id] if 0 <= slot_id < len(self._list) else None
        return self._dict.get(slot_id)  # type: ignore[union-attr]

    def set(self, slot_id: int, date: str | None) -> None:
        if self._list is not None:
            if slot_id < 0 or slot_id > 2 * len(self._list) + 1024:
                self._dict = {i: d for i, d in enumerate(self._list) if d is not None}
                self._list = None
            else:
                if slot_id >= len(self._list):
                    self._list.extend([None] * (slot_id + 1 - len(self._list)))
                self._list[slot_id] = date
                return
        if date is None:
            self._dict.pop(slot_id, None)  # type: ignore[union-attr]
        else:
            self._dict[slot_id] = date  # type: ignore[index]


class SlotTable:
    """Slots in (date, id) order, as parallel columns: the bulk of any source."""

    def __init__(self) -> None:
        self.dates: list[str] = []  # interned: one object per distinct date
        self.ids = array("q")
        self.schedules = array("q")
        self.lines: list[bytes] = []
        self.index = _IdIndex(self.ids, self.dates)
        self.max_id = 0

    def load(self, path: Path) -> None:
        dates, ids, schedules, lines = self.dates, self.ids, self.schedules, self.lines
        # the hot loop of a multi-million-line load: local names, no tuples
        add_date, add_id, add_schedule, add_line = dates.append, ids.append, schedules.append, lines.append
        intern = {}.setdefault  # one str object per distinct date
        loads, top = orjson.loads, 2**63
        in_order = True
        last_date, last_id = "", NO_SCHEDULE
        for lineno, line in _read_lines(path):
            try:
                record = loads(line)
            except orjson.JSONDecodeError:
                record = None
            if type(record) is not dict:
                _parse(path, lineno, line)  # raises, naming the line and what is wrong
            slot_id, date, schedule_id = record.get("id"), record.get("date"), record.get("schedule_id")
            if type(slot_id) is not int or type(date) is not str:
                where = f"{path}:{lineno}"
                raise SourceLoadError(f"{where}: a slot needs an integer 'id' and a 'date' to be served")
            try:
                add_id(slot_id)
            except OverflowError:
                raise SourceLoadError(f"{path}:{lineno}: slot id {slot_id} is out of range") from None
            date = intern(date, date)
            if in_order and (date < last_date or (date == last_date and slot_id <= last_id)):
                in_order = False
            last_date, last_id = date, slot_id
            add_date(date)
            in_range = type(schedule_id) is int and NO_SCHEDULE < schedule_id < top
            add_schedule(schedule_id if in_range else NO_SCHEDULE)
            add_line(line)
        if not in_order:
            order = _sort_order(dates, ids)
            self.dates = [dates[k] for k in order]
            self.ids = array("q", (ids[k] for k in order))
            self.schedules = array("q", (schedules[k] for k in order))
            self.lines = [lines[k] for k in order]
        try:
            self.index = _IdIndex(self.ids, self.dates)
        except SourceLoadError as exc:
            raise SourceLoadError(f"{path}: {exc}") from None
        self.max_id = max(self.ids, default=0)

    def __len__(self) -> int:
        return len(self.ids)

    def position(self, slot_id: int) -> int | None:
        date = self.index.get(slot_id)
        if date is None:
            return None
        lo = bisect.bisect_left(self.dates, date)
        hi = bisect.bisect_right(self.dates, date, lo)
        i = bisect.bisect_left(self.ids, slot_id, lo, hi)
        return i if i < hi and self.ids[i] == slot_id else None

    def after(self, key: tuple[str, int]) -> int:
        """Position of the first slot after (date, id)."""
        date, slot_id = key
        lo = bisect.bisect_left(self.dates, date)
        hi = bisect.bisect_right(self.dates, date, lo)
        return bisect.bisect_right(self.ids, slot_id, lo, hi)

    def insert(self, record: dict[str, Any]) -> None:
        date, slot_id = record["date"], record["id"]
        i = self.after((date, slot_id))
        self.dates.insert(i, date)
        self.ids.insert(i, slot_id)
        self.schedules.insert(i, _schedule_key(record.get("schedule_id")))
        self.lines.insert(i, orjson.dumps(record))
        self.index.set(slot_id, date)
        self.max_id = max(self.max_id, slot_id)

    def replace(self, i: int, record: dict[str, Any]) -> None:
        """Store a changed record in place; its date and id must be those of position `i`."""
        assert (record["date"], record["id"]) == (self.dates[i], self.ids[i])
        self.lines[i] = orjson.dumps(record)

    def remove(self, i: int) -> None:
        self.index.set(self.ids[i], None)
        del self.dates[i], self.ids[i], self.schedules[i], self.lines[i]

    def page(
        self,
        after: tuple[str, int] | None,
        start: str | None,
        end: str | None,
        published: set[int] | None,
        size: int,
    ) -> tuple[list[bytes], tuple[str, int] | None]:
        """Up to `size` lines after `after` with start <= date <= end (and a published schedule)."""
        i = 0 if start is None else bisect.bisect_left(self.dates, start)
        if after is not None:
            i = max(i, self.after(after))
        stop = len(self.dates) if end is None else bisect.bisect_right(self.dates, end)
        if published is None:
            j = min(i + size, stop)
            more = j < stop
            return self.lines[i:j], ((self.dates[j - 1], self.ids[j - 1]) if more else None)
        picked: list[int] = []
        schedules = self.schedules
        while i < stop:
            if schedules[i] in published:
                if len(picked) == size:
                    k = picked[-1]
                    return [self.lines[p] for p in picked], (self.dates[k], self.ids[k])
                picked.append(i)
            i += 1
        return [self.lines[p] for p in picked], None


def _schedule_key(schedule_id: Any) -> int:
    return schedule_id if is_int(schedule_id) and NO_SCHEDULE < schedule_id < 2**63 else NO_SCHEDULE


def _sort_order(dates: list[str], ids: array) -> array:
    """Positions of the slots in (date, id) order.

    A bucket per date (a few hundred), each kept in file order and sorted by id only when it
    is not already: linear for the usual file written date by date or schedule by schedule,
    and far lighter than sorting millions of tuples.
    """
    buckets: dict[str, array] = {}
    get = buckets.get
    for k, date in enumerate(dates):
        bucket = get(date)
        if bucket is None:
            bucket = buckets[date] = array("q")
        bucket.append(k)
    order = array("q")
    for date in sorted(buckets):
        bucket = buckets.pop(date)
        bucket_ids = [ids[k] for k in bucket]
        if bucket_ids != sorted(bucket_ids):
            bucket = array("q", sorted(bucket, key=ids.__getitem__))
        order.extend(bucket)
    return order
