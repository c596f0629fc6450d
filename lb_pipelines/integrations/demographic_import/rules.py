"""The rules of the demographic import, as pure functions: read the file, match each row to
exactly one person, check and normalize its values, and keep only the fields that change.

Stricter than the vendor on purpose (a wrong match pages the wrong doctor):
- the key must match exactly one person (placeholders are not people), and appear on one line;
- a row with any bad value changes nothing (no half-applied row);
- an empty cell never clears a field;
- a value that differs only in how it is written (`(312) 555-0111` for `312-555-0111`, the
  case of an e-mail address) is not a change.
Reasons never quote a value: they go to the report, the asset's table and the alert e-mail.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from lb_pipelines.lightning_bolt.source.contract import PATCHABLE_PERSONNEL_FIELDS

KEY_FIELDS = ("unique_id", "custom1", "custom2", "custom3", "custom4", "emp_id")
PHONE_FIELDS = ("cell_phone", "pager")
ID_FIELDS = ("unique_id", "custom1", "custom2", "custom3", "custom4")
MAX_ID_LENGTH = 100
PAGER_ID = re.compile(r"^\d{3,10}$")  # a pager's own number (4011), not a phone number
# Header names as HR systems write them, beyond the field's own name (compared without case,
# spaces or punctuation: "Cell Phone", "cell_phone" and "CELLPHONE" are one).
ALIASES = {
    "uniqueid": "unique_id", "empid": "emp_id", "employeeid": "emp_id", "emailaddress": "email",
    "mobile": "cell_phone", "mobilephone": "cell_phone", "cell": "cell_phone", "cellnumber": "cell_phone",
    "pagernumber": "pager",
}

OUTCOMES = ("updated", "unchanged", "unmatched", "ambiguous", "invalid", "refused", "failed")


class FileRefused(ValueError):
    """The file cannot be read as a demographic file: it goes to failed/, nothing applied."""


@dataclass(frozen=True)
class ColumnNote:
    """A column that is never applied: unknown, or a field the settings do not let the import change."""

    column: int  # 1-based position in the header
    header: str
    kind: str  # unknown_column | field_not_allowed
    reason: str


@dataclass(frozen=True)
class SourceRow:
    line: int  # the physical line of the file the record starts on
    values: dict[str, str]  # field → the cell as written (key and allowed fields only)
    problem: str | None = None  # a row that cannot be read (wrong number of cells)


@dataclass(frozen=True)
class DemographicFile:
    key_field: str
    rows: list[SourceRow]
    columns: list[str]  # the fields the file may change, in header order
    notes: list[ColumnNote] = field(default_factory=list)


@dataclass(frozen=True)
class RowPlan:
    """What one row does. `outcome` here is the plan's: updated (to send), unchanged, unmatched,
    ambiguous or invalid; sending turns an `updated` into refused or failed when it must."""

    line: int
    key: str
    outcome: str
    person_id: int | None = None
    changes: dict[str, str] = field(default_factory=dict)  # field → new value, only those that change
    field: str = ""  # the field a problem is about
    reason: str = ""


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_KNOWN = {_squash(f): f for f in (*PATCHABLE_PERSONNEL_FIELDS, "emp_id")} | ALIASES


def read_file(content: bytes, key_field: str, allowed: Sequence[str]) -> DemographicFile:
    """The header and rows of a demographic CSV (UTF-8, with or without BOM; CRLF or LF)."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileRefused(f"not UTF-8 text (byte {exc.start + 1} cannot be read); save the file as UTF-8 CSV") from None
    records = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(records, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(records, None)  # blank lines before the header
        if header is None:
            raise FileRefused("the file is empty: no header line")
        return _read_rows(records, header, key_field, allowed)
    except csv.Error as exc:
        raise FileRefused(f"line {records.line_num}: not valid CSV ({exc})") from None


def _read_rows(records, header: list[str], key_field: str, allowed: Sequence[str]) -> DemographicFile:
    named: dict[str, int] = {}
    notes: list[ColumnNote] = []
    positions: dict[int, str] = {}  # column index → field, for the key and the allowed fields
    for index, raw in enumerate(header):
        name = raw.strip()
        known = _KNOWN.get(_squash(name))
        if not name:
            continue  # a trailing comma; its cells are checked below
        if known in named:
            raise FileRefused(
                f"line 1: column {index + 1} ({name}) is {known} again (first in column {named[known] + 1}); "
                "a field may appear once"
            )
        if known is not None:
            named[known] = index
        if known == key_field or known in allowed:
            positions[index] = known
        elif known is None:
            notes.append(ColumnNote(index + 1, name, "unknown_column",
                                    "not a field the import knows; the column is ignored"))
        else:
            notes.append(ColumnNote(index + 1, name, "field_not_allowed",
                                    f"{known} is not in the settings' update_fields; the column is ignored"))
    if key_field not in named:
        raise FileRefused(
            f"line 1: no key column {key_field} (the settings' personnel_id_field); the header has: "
            + ", ".join(h.strip() or "(blank)" for h in header)
        )
    columns = [f for i, f in sorted(positions.items()) if f != key_field]
    if not columns:
        raise FileRefused(f"line 1: no column the import may change (update_fields: {', '.join(allowed)})")
    nameless = [i for i, raw in enumerate(header) if not raw.strip()]
    rows: list[SourceRow] = []
    line = records.line_num
    for record in records:
        start, line = line + 1, records.line_num
        if not any(cell.strip() for cell in record):
            continue  # a blank line
        values = {f: record[i].strip() for i, f in positions.items() if i < len(record)}
        if len(record) != len(header):
            rows.append(SourceRow(start, values, f"{len(record)} cells where the header has {len(header)}"))
            continue
        if any(record[i].strip() for i in nameless):
            rows.append(SourceRow(start, values, "a value under a column without a name"))
            continue
        rows.append(SourceRow(start, values))
    return DemographicFile(key_field, rows, columns, notes)


# -- values -----------------------------------------------------------------------------------

class BadValue(ValueError):
    pass


def normalize_email(value: str) -> str:
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise BadValue(f"not a valid e-mail address: {exc}") from None


def _format_phone(number: phonenumbers.PhoneNumber, region: str, style: str) -> str:
    if style == "e164":
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if style == "national":
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    if style == "dashed" and number.country_code == phonenumbers.country_code_for_region(region):
        return international.split(" ", 1)[1]  # "+1 312-555-0111" → "312-555-0111"
    return international


def normalize_phone(value: str, region: str, style: str, *, pager: bool = False) -> str:
    """A phone number in one format; a pager may also be its own short number (3 to 10 digits)."""
    if pager and PAGER_ID.match(value):
        return value
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        kind = "phone number, nor a pager number of 3 to 10 digits" if pager else "phone number"
        raise BadValue(f"not a valid {kind} (read as region {region})")
    return _format_phone(number, region, style)


def normalize_id(value: str) -> str:
    if len(value) > MAX_ID_LENGTH:
        raise BadValue(f"longer than {MAX_ID_LENGTH} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise BadValue("contains a control character")
    return value


def normalize(field_name: str, value: str, region: str, style: str) -> str:
    if field_name == "email":
        return normalize_email(value)
    if field_name in PHONE_FIELDS:
        return normalize_phone(value, region, style, pager=field_name == "pager")
    return normalize_id(value)


def same(field_name: str, new: str, current: Any, region: str, style: str) -> bool:
    """Whether Lightning Bolt already holds `new` (normalized), however it wrote it."""
    if current is None or str(current).strip() == "":
        return False
    current = str(current).strip()
    if field_name == "email":
        return new.lower() == current.lower()
    if field_name in PHONE_FIELDS:
        try:
            return normalize(field_name, current, region, style) == new
        except BadValue:
            return False  # a malformed number in Lightning Bolt is replaced by a good one
    return new == current


# -- matching and planning ----------------------------------------------------------------------

def people_by_key(people: Iterable[Mapping[str, Any]], key_field: str) -> dict[str, list[Mapping[str, Any]]]:
    """Every person (placeholders are not people) under their key value, as written without spaces around."""
    index: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for person in people:
        value = person.get(key_field)
        if person.get("is_placeholder") or value is None or str(value).strip() == "":
            continue
        index[str(value).strip()].append(person)
    return index


def plan_rows(
    file: DemographicFile, people: Iterable[Mapping[str, Any]], *, region: str = "US", phone_format: str = "dashed"
) -> list[RowPlan]:
    """One plan per row, in file order."""
    index = people_by_key(people, file.key_field)
    lines_of: dict[str, list[int]] = defaultdict(list)
    for row in file.rows:
        if row.problem is None and row.values.get(file.key_field):
            lines_of[row.values[file.key_field]].append(row.line)
    return [_plan(row, file, index, lines_of, region, phone_format) for row in file.rows]


def _plan(row: SourceRow, file: DemographicFile, index, lines_of, region: str, style: str) -> RowPlan:
    key = row.values.get(file.key_field, "")
    if row.problem is not None:
        return RowPlan(row.line, key, "invalid", reason=row.problem)
    if not key:
        return RowPlan(row.line, key, "invalid", field=file.key_field, reason=f"no {file.key_field} (the key) on this row")
    if len(lines_of[key]) > 1:
        others = ", ".join(str(n) for n in lines_of[key] if n != row.line)
        return RowPlan(row.line, key, "ambiguous", field=file.key_field,
                       reason=f"the same {file.key_field} is also on line {others}; neither row is applied")
    matches = index.get(key, [])
    if not matches:
        return RowPlan(row.line, key, "unmatched", field=file.key_field,
                       reason=f"no person in Lightning Bolt has this {file.key_field}")
    if len(matches) > 1:
        ids = ", ".join(str(p["id"]) for p in sorted(matches, key=lambda p: p["id"]))
        return RowPlan(row.line, key, "ambiguous", field=file.key_field,
                       reason=f"{len(matches)} people have this {file.key_field} (personnel {ids}); none is changed")
    person = matches[0]
    wanted: dict[str, str] = {}
    bad: list[tuple[str, str]] = []
    for name in file.columns:
        value = row.values.get(name, "")
        if not value:
            continue  # an empty cell never clears a field
        try:
            wanted[name] = normalize(name, value, region, style)
        except BadValue as exc:
            bad.append((name, str(exc)))
    if bad:
        return RowPlan(row.line, key, "invalid", person["id"], field=", ".join(n for n, _ in bad),
                       reason="; ".join(f"{n}: {why}" for n, why in bad) + "; nothing on this row is applied")
    changes = {n: v for n, v in wanted.items() if not same(n, v, person.get(n), region, style)}
    if not changes:
        return RowPlan(row.line, key, "unchanged", person["id"])
    return RowPlan(row.line, key, "updated", person["id"], changes, field=", ".join(changes))


def holds(person: Mapping[str, Any] | None, changes: Mapping[str, str]) -> bool:
    """Whether a person read back already holds every value of a PATCH (its answer was lost)."""
    return person is not None and all(person.get(name) == value for name, value in changes.items())
