"""Checking one record against the contract, with errors that say where and why.

Both ways in (the directory source and the API) hand every record to `check_record`, so a
malformed record is refused the same way wherever it came from.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Callable

from lb_pipelines.lightning_bolt.source.contract import Entity


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


_TIME = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]\Z")


def _is_time(v: Any) -> bool:
    return type(v) is str and _TIME.match(v) is not None


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


_KINDS: dict[type, str] = {
    bool: "true or false", int: "a number", float: "a number", str: "text", list: "a list", dict: "a JSON object"
}


def _got(value: Any, personal: bool) -> str:
    """What a wrong value was: itself (an id, a date), or only its kind for a personal field, so a
    malformed phone number or e-mail never reaches a step's error message and run storage."""
    return _KINDS.get(type(value), "another value") if personal else f"{value!r:.60}"


_FieldChecks = tuple[tuple[str, bool, bool, Callable[[Any], bool], str], ...]
_FIELD_CHECKS: dict[str, _FieldChecks] = {}


def _field_checks(entity: Entity) -> _FieldChecks:
    """(name, required, personal, check, expected) per field, worked out once per entity: this runs per record.

    Keyed by name: hashing the frozen Entity itself would cost more than the checks.
    """
    checks = _FIELD_CHECKS.get(entity.name)
    if checks is None:
        checks = _FIELD_CHECKS[entity.name] = tuple(
            (f.name, f.required, f.personal, *_CHECKS[f.type]) for f in entity.fields
        )
    return checks


def check_record(entity: Entity, record: Any, where: str) -> dict[str, Any]:
    """Return `record` if it has every field of `entity` with the right type, else raise.

    Extra keys are allowed (a newer API may add fields) and ignored by the loader.
    """
    if type(record) is not dict:
        raise SourceRecordError(where, f"expected a JSON object, got {type(record).__name__}")
    get = record.get
    for name, required, personal, check, expected in _field_checks(entity):
        value = get(name)
        if value is None:
            if required:
                reason = "required field is missing" if name not in record else "required field is null"
                raise SourceRecordError(where, reason, name)
        elif not check(value):
            raise SourceRecordError(where, f"expected {expected}, got {_got(value, personal)}", name)
    return record
