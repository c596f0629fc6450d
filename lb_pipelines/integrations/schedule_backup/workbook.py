"""The backup workbook: one sheet per department, written row by row with openpyxl.

Written for a person at a unit during downtime, on screen or on paper: a bold, frozen header
row with a filter, columns wide enough to read, dates and times as real date cells (so they
sort and filter as dates), and each sheet printed landscape, one page wide, its header row on
every page. openpyxl's write-only mode streams the rows to the file, so a large backup never
sits in memory as cells.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font, NamedStyle
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

MAX_SHEET_NAME = 31  # Excel's limit
# Excel refuses these in a sheet name; control characters cannot be written at all.
_NOT_IN_SHEET_NAME = re.compile(r"[\[\]:*?/\\\x00-\x1f]")
_RESERVED_SHEET_NAMES = {"history"}  # Excel keeps it for change tracking
EMPTY_SHEET = "No published slots"  # the one sheet of a backup with no rows


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


def _is_formula_like(value: Any) -> bool:
    return isinstance(value, str) and len(value) > 1 and value.startswith("=")


class _Writer:
    """Cells for one workbook: the header's, the formatted ones, and text that must stay text."""

    def __init__(self, book: Workbook, formats: Mapping[int, str]):
        self.book = book
        self.styles: dict[int, str] = {}
        for number, (index, number_format) in enumerate(sorted(formats.items())):
            style = NamedStyle(name=f"lb_format_{number}", number_format=number_format)
            book.add_named_style(style)
            self.styles[index] = style.name
        self.bold = Font(bold=True)

    def header(self, sheet: WriteOnlyWorksheet, names: Sequence[str]) -> list[WriteOnlyCell]:
        cells = []
        for name in names:
            cell = WriteOnlyCell(sheet, name)
            cell.font = self.bold
            cells.append(cell)
        return cells

    def row(self, sheet: WriteOnlyWorksheet, values: Sequence[Any]) -> list[Any]:
        cells = list(values)
        for index, style in self.styles.items():
            if cells[index] is not None:
                cell = WriteOnlyCell(sheet, cells[index])
                cell.style = style
                cells[index] = cell
        for index, value in enumerate(cells):
            if _is_formula_like(value):  # a note "=see board" is text, never a formula
                cell = WriteOnlyCell(sheet, value)
                cell.data_type = "s"
                cells[index] = cell
        return cells


def write_workbook(header: Sequence[str], sheets: Iterable[Sheet], formats: Mapping[int, str]) -> bytes:
    """The .xlsx bytes: each sheet with `header` as its bold, frozen, filtered first row, then its
    rows; the cell of column `i` (from 0) gets number format `formats[i]` (dates and times).
    With no sheet at all, one header-only sheet (EMPTY_SHEET): a workbook needs one."""
    book = Workbook(write_only=True)
    book.properties.creator = "lb-pipelines"
    writer = _Writer(book, formats)
    last_column = get_column_letter(len(header))
    written = 0
    for sheet in sheets:
        _write_sheet(book, writer, header, sheet, last_column)
        written += 1
    if not written:
        _write_sheet(book, writer, header, Sheet(EMPTY_SHEET, [len(h) + 2 for h in header], ()), last_column)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _write_sheet(
    book: Workbook, writer: _Writer, header: Sequence[str], sheet: Sheet, last_column: str
) -> None:
    ws = book.create_sheet(sheet.title)
    ws.freeze_panes = "A2"
    ws.print_title_rows = "1:1"
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    for index, width in enumerate(sheet.widths, start=1):
        ws.column_dimensions[get_column_letter(index)].width = width
    ws.append(writer.header(ws, header))
    rows = 0
    for values in sheet.rows:
        ws.append(writer.row(ws, values))
        rows += 1
    ws.auto_filter.ref = f"A1:{last_column}{rows + 1}"
