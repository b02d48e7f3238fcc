"""The one CSV reader for the files teams send us: bulk scoring uploads and training books.

Files come from spreadsheets, most of them French: UTF-8 with or without a BOM,
or Windows-1252 as Excel's plain "CSV" saves it; cells separated by ``,``, ``;``
(French Excel, whose decimal separator is the comma) or a tab. The reader finds
the encoding and the delimiter, checks the header, keeps every cell as text and
notes rows with more cells than the header names. What the cells mean is up to
the caller: bulk scoring parses them row by row (``scoring.bulk.rows``), training
turns them into typed columns (``csv_frame``).
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass, field

import pandas as pd
from django.utils.formats import number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

DELIMITERS = (",", ";", "\t", "|")
# Cell values read as "no value" (compared lower-cased, after stripping).
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none"})
NOT_TEXT = gettext_lazy(
    "The file is not UTF-8 text, nor the Windows-1252 text French Excel saves: save it as “CSV UTF-8” and upload that."
)


class CsvInputError(ValueError):
    """A file that cannot be read as CSV at all; the message is written for whoever sent it."""


@dataclass
class CsvFile:
    columns: list[str]
    rows: list[dict[str, str]]
    delimiter: str = ","
    bom: bool = False
    encoding: str = "utf-8"
    # Rows (by index in ``rows``) holding more non-empty cells than the header names, and why.
    ragged: dict[int, str] = field(default_factory=dict)
    # The line of the file each row starts on (1 is the first line), for reports that name it.
    lines: list[int] = field(default_factory=list)

    @property
    def decimal_comma(self) -> bool:
        # French Excel separates cells with ';' because ',' is its decimal separator.
        return self.delimiter == ";"


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith(b"PK\x03\x04"):
        raise CsvInputError(_("This is an Excel workbook, not a CSV file: save it as “CSV UTF-8” and upload that."))
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise CsvInputError(str(NOT_TEXT))
    try:
        text, encoding = data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        if b"\x00" in data:
            raise CsvInputError(str(NOT_TEXT)) from None
        try:
            text, encoding = data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            raise CsvInputError(str(NOT_TEXT)) from None
    if "\x00" in text:
        raise CsvInputError(_("The file is not a text file: upload a CSV file."))
    return text, encoding


def csv_read(data: bytes, *, max_rows: int | None = None, reserved_columns: tuple[str, ...] = ()) -> CsvFile:
    """The header and rows of a CSV file, or a CsvInputError saying what is wrong with it.

    ``reserved_columns`` are names the caller writes itself: a file that already has one is refused.
    """
    text, encoding = _decode(data)
    if not text.strip():
        raise CsvInputError(_("The file is empty."))
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    delimiter = max(DELIMITERS, key=first_line.count) if any(d in first_line for d in DELIMITERS) else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next((row for row in reader if any(cell.strip() for cell in row)), None)
        if header is None:
            raise CsvInputError(_("The file is empty."))
        columns = _header_columns(header, reserved_columns)
        rows: list[dict[str, str]] = []
        ragged: dict[int, str] = {}
        lines: list[int] = []
        line = reader.line_num + 1  # where the next record starts (a quoted cell may span lines)
        for cells in reader:
            start, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            if max_rows is not None and len(rows) >= max_rows:
                raise CsvInputError(
                    _("The file has more than %(count)s rows; split it into smaller files.")
                    % {"count": number_format(max_rows, force_grouping=True)}
                )
            if len(cells) > len(columns) and any(cell.strip() for cell in cells[len(columns) :]):
                ragged[len(rows)] = _("The row has %(cells)s cells; the header names %(columns)s columns.") % {
                    "cells": len(cells),
                    "columns": len(columns),
                }
            rows.append(dict(zip(columns, cells, strict=False)))
            lines.append(start)
    except csv.Error as exc:
        raise CsvInputError(
            _("Line %(line)s cannot be read as CSV: %(problem)s.") % {"line": reader.line_num, "problem": exc}
        ) from None
    return CsvFile(
        columns=columns,
        rows=rows,
        delimiter=delimiter,
        bom=data.startswith(codecs.BOM_UTF8),
        encoding=encoding,
        ragged=ragged,
        lines=lines,
    )


def _header_columns(header: list[str], reserved: tuple[str, ...]) -> list[str]:
    columns = [name.strip() for name in header]
    while columns and not columns[-1]:  # spreadsheets may end lines with empty cells
        columns.pop()
    for position, name in enumerate(columns, start=1):
        if not name:
            raise CsvInputError(_("Column %(position)s has no name in the header line.") % {"position": position})
    duplicates = sorted({name for name in columns if columns.count(name) > 1})
    if duplicates:
        raise CsvInputError(_("The header names these columns twice: %(names)s.") % {"names": ", ".join(duplicates)})
    taken = [name for name in columns if name in reserved]
    if taken:
        raise CsvInputError(
            _("The file already has a column named %(names)s, which scoring writes: rename it.")
            % {"names": ", ".join(taken)}
        )
    return columns


def is_missing_text(text: str | None) -> bool:
    return text is None or text.strip().lower() in MISSING_MARKERS


def csv_frame(csv_file: CsvFile) -> pd.DataFrame:
    """The file as a DataFrame: a column whose every present value is a number becomes numeric, others stay text.

    Missing markers (empty, NA, null…) become missing values. Numbers written with
    decimal commas stay text here; the caller decides whether a column is numeric.
    """
    frame = {}
    for name in csv_file.columns:
        values = [None if is_missing_text(row.get(name)) else row[name].strip() for row in csv_file.rows]
        present = sum(value is not None for value in values)
        numbers = pd.to_numeric(pd.Series(values, dtype="object"), errors="coerce")
        if present == 0 or numbers.notna().sum() == present:
            frame[name] = numbers.astype("float64") if present == 0 else numbers
        else:
            frame[name] = pd.Series(values)
    return pd.DataFrame(frame, columns=csv_file.columns)
