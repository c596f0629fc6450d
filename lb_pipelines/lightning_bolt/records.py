"""Checking one record against the contract, with errors that say where and why.

Both ways in (the directory source and the API) hand every record to `check_record`, so a
malformed record is refused the same way wherever it came from.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from lb_pipelines.lightning_bolt.contract import Entity


class SourceRecordError(ValueError):
    """A record that does not meet the contract: names where it is, the field, and why."""

    def __init__(self, where: str, reason: str, field: str | None = None):
        self.where = where
        self.field = field
        self.reason = reason
        at_field = f", field '{field}'" if field else ""
        super().__init__(f"{where}{at_field}: {reason}")


def _is_int(v: Any) -> bool:
    return type(v) is int  # bool is an int subclass; a JSON true is not an id


def _is_date(v: Any) -> bool:
    if type(v) is not str or len(v) != 10:
        return False
    try:
        dt.date.fromisoformat(v)
    except ValueError:
        return False
    return True


def _is_time(v: Any) -> bool:
    return (
        type(v) is str
        and len(v) == 5
        and v[2] == ":"
        and v[:2].isdigit()
        and v[3:].isdigit()
        and int(v[:2]) < 24
        and int(v[3:]) < 60
    )


def _is_timestamp(v: Any) -> bool:
    if type(v) is not str:
        return False
    try:
        parsed = dt.datetime.fromisoformat(v)
    except ValueError:
        return False
    return parsed.tzinfo is not None  # the contract says "with offset": a naive one is ambiguous


_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "int": (_is_int, "an integer"),
    "str": (lambda v: type(v) is str, "a string"),
    "bool": (lambda v: type(v) is bool, "true or false"),
    "number": (lambda v: type(v) in (int, float), "a number"),
    "date": (_is_date, "a date YYYY-MM-DD"),
    "time": (_is_time, "a time HH:MM"),
    "timestamp": (_is_timestamp, "an ISO 8601 timestamp with offset"),
    "int_list": (lambda v: type(v) is list and all(_is_int(i) for i in v), "a list of integers"),
    "json": (lambda v: type(v) is dict, "a JSON object"),
}


def check_record(entity: Entity, record: Any, where: str) -> dict[str, Any]:
    """Return `record` if it has every field of `entity` with the right type, else raise.

    Extra keys are allowed (a newer API may add fields) and ignored by the loader.
    """
    if type(record) is not dict:
        raise SourceRecordError(where, f"expected a JSON object, got {type(record).__name__}")
    for field in entity.fields:
        value = record.get(field.name)
        if value is None:
            if field.required:
                reason = "required field is missing" if field.name not in record else "required field is null"
                raise SourceRecordError(where, reason, field.name)
            continue
        check, expected = _CHECKS[field.type]
        if not check(value):
            raise SourceRecordError(where, f"expected {expected}, got {value!r:.60}", field.name)
    return record
