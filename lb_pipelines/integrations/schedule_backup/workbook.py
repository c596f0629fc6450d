"""The backup workbook: one sheet per department, written with XlsxWriter.

Written for a person at a unit during downtime, on screen or on paper: a bold, frozen header
row with a filter, columns wide enough to read, dates and times as real date cells (so they
sort and filter as dates), and each sheet printed landscape, one page wide, its header row on
every page. XlsxWriter writes the 1,600 sheets of a large backup about three times as fast as
openpyxl did; it keeps the cells in memory until the file is closed (a backup of 50,000 rows:
well under 100 MB), and the same rows with the same `created` give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from xlsxwriter import Workbook
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

MAX_SHEET_NAME = 31  # Excel's limit
# Excel refuses these in a sheet name; control characters cannot be written at all.
_NOT_IN_SHEET_NAME = re.compile(r"[\[\]:*?/\\\x00-\x1f]")
_RESERVED_SHEET_NAMES = {"history"}  # Excel keeps it for change tracking
EMPTY_SHEET = "No published slots"  # the one sheet of a backup with no rows
# A date or date-time cell in a column without a format in `formats` (as openpyxl wrote them).
DATE_FORMAT, DATETIME_FORMAT = "yyyy-mm-dd", "yyyy-mm-dd h:mm:ss"
# Pixels per character of a column width: the widest digit of Calibri 11, Excel's default font.
_DIGIT_PIXELS = 7


def _cut(text: str, length: int) -> str:
    """`text` in at most `length` characters, "…" at the end when cut (the full name is in the
    DEPARTMENT column); never ending in a space or an apostrophe, which Excel refuses."""
    if len(text) > length:
        text = text[: length - 1].rstrip(" '") + "…"
    return text


def unique_sheet_name(name: str, taken: set[str]) -> str:
    """`name` as a sheet name Excel accepts and that no sheet in `taken` has (case does not
    count, as in Excel); added to `taken`. Forbidden characters become "-", a name longer than
    31 characters is cut, and a second "Cardiology" becomes "Cardiology (2)"."""
    base = _NOT_IN_SHEET_NAME.sub("-", name).strip(" '") or "Department"
    if base.casefold() in _RESERVED_SHEET_NAMES:
        base += " (department)"
    candidate, n = _cut(base, MAX_SHEET_NAME), 1
    while candidate.casefold() in taken:
        n += 1
        suffix = f" ({n})"
        candidate = _cut(base, MAX_SHEET_NAME - len(suffix)) + suffix
    taken.add(candidate.casefold())
    return candidate


@dataclass(frozen=True)
class Sheet:
    title: str  # a valid sheet name (unique_sheet_name)
    widths: Sequence[float]  # one per column, in characters
    rows: Iterable[Sequence[Any]]


class _Writer:
    """Cells for one workbook: the header's (bold), dates and times with their number format,
    and text always as text (write_string: a note "=see board" is never a formula, a "0042"
    never a number, a URL never a link)."""

    def __init__(self, book: Workbook, formats: Mapping[int, str]):
        self.bold = book.add_format({"bold": True})
        self.date = book.add_format({"num_format": DATE_FORMAT})
        self.datetime = book.add_format({"num_format": DATETIME_FORMAT})
        self.formats: dict[int, Format] = {
            index: book.add_format({"num_format": number_format})
            for index, number_format in sorted(formats.items())
        }

    def header(self, ws: Worksheet, names: Sequence[str]) -> None:
        for column, name in enumerate(names):
            ws.write_string(0, column, name, self.bold)

    def row(self, ws: Worksheet, row: int, values: Sequence[Any]) -> None:
        for column, value in enumerate(values):
            if value is None:
                continue
            if isinstance(value, str):
                ws.write_string(row, column, value)
            elif isinstance(value, dt.datetime):
                ws.write_datetime(row, column, value, self.formats.get(column, self.datetime))
            elif isinstance(value, dt.date):
                ws.write_datetime(row, column, value, self.formats.get(column, self.date))
            elif isinstance(value, bool):
                ws.write_boolean(row, column, value)
            elif isinstance(value, (int, float)):
                ws.write_number(row, column, value, self.formats.get(column))
            else:
                ws.write_string(row, column, str(value))


def write_workbook(
    header: Sequence[str],
    sheets: Iterable[Sheet],
    formats: Mapping[int, str],
    created: dt.datetime | None = None,
) -> bytes:
    """The .xlsx bytes: each sheet with `header` as its bold, frozen, filtered first row, then its
    rows; the cell of column `i` (from 0) gets number format `formats[i]` (dates and times).
    With no sheet at all, one header-only sheet (EMPTY_SHEET): a workbook needs one.
    `created` is the workbook's creation time (its properties): the same rows and the same
    `created` give the same bytes; without it, the current time."""
    out = io.BytesIO()
    # in_memory: no temporary files; strings_to_*: off, though only write_string writes text.
    book = Workbook(out, {"in_memory": True, "strings_to_formulas": False,
                          "strings_to_numbers": False, "strings_to_urls": False})
    if created is not None and created.tzinfo is not None:
        created = created.astimezone(dt.timezone.utc).replace(tzinfo=None)  # stored as UTC
    book.set_properties({"author": "lb-pipelines",
                         "created": created or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)})
    writer = _Writer(book, formats)
    written = 0
    for sheet in sheets:
        _write_sheet(book, writer, header, sheet)
        written += 1
    if not written:
        _write_sheet(book, writer, header, Sheet(EMPTY_SHEET, [len(h) + 2 for h in header], ()))
    book.close()
    return out.getvalue()


def _write_sheet(book: Workbook, writer: _Writer, header: Sequence[str], sheet: Sheet) -> None:
    ws = book.add_worksheet(sheet.title)
    ws.freeze_panes(1, 0)  # the header row stays on screen (pane at A2)
    ws.repeat_rows(0)  # ...and is printed on every page
    ws.set_landscape()
    ws.fit_to_pages(1, 0)  # one page wide, as many pages tall as it takes
    for column, width in enumerate(sheet.widths):
        # The width as given, counted as Excel stores it (the 5-pixel cell padding included,
        # as openpyxl wrote it): set_column would add the padding on top.
        ws.set_column_pixels(column, column, round(width * _DIGIT_PIXELS))
    writer.header(ws, header)
    rows = 0
    for rows, values in enumerate(sheet.rows, start=1):
        writer.row(ws, rows, values)
    ws.autofilter(0, 0, rows, len(header) - 1)
