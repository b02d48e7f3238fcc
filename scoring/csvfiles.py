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

DELIMITERS = (",", ";", "\t", "|")
# Cell values read as "no value" (compared lower-cased, after stripping).
MISSING_MARKERS = frozenset({"", "na", "n/a", "nan", "null", "none"})
NOT_TEXT = (
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

    @property
    def decimal_comma(self) -> bool:
        # French Excel separates cells with ';' because ',' is its decimal separator.
        return self.delimiter == ";"


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith(b"PK\x03\x04"):
        raise CsvInputError("This is an Excel workbook, not a CSV file: save it as “CSV UTF-8” and upload that.")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise CsvInputError(NOT_TEXT)
    try:
        text, encoding = data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        if b"\x00" in data:
            raise CsvInputError(NOT_TEXT) from None
        try:
            text, encoding = data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            raise CsvInputError(NOT_TEXT) from None
    if "\x00" in text:
        raise CsvInputError("The file is not a text file: upload a CSV file.")
    return text, encoding


def csv_read(data: bytes, *, max_rows: int | None = None, reserved_columns: tuple[str, ...] = ()) -> CsvFile:
    """The header and rows of a CSV file, or a CsvInputError saying what is wrong with it.

    ``reserved_columns`` are names the caller writes itself: a file that already has one is refused.
    """
    text, encoding = _decode(data)
    if not text.strip():
        raise CsvInputError("The file is empty.")
    first_line = text.lstrip("\r\n").split("\n", 1)[0]
    delimiter = max(DELIMITERS, key=first_line.count) if any(d in first_line for d in DELIMITERS) else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next((row for row in reader if any(cell.strip() for cell in row)), None)
        if header is None:
            raise CsvInputError("The file is empty.")
        columns = _header_columns(header, reserved_columns)
        rows: list[dict[str, str]] = []
        ragged: dict[int, str] = {}
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue
            if max_rows is not None and len(rows) >= max_rows:
                raise CsvInputError(f"The file has more than {max_rows:,} rows; split it into smaller files.")
            if len(cells) > len(columns) and any(cell.strip() for cell in cells[len(columns) :]):
                ragged[len(rows)] = f"The row has {len(cells)} cells; the header names {len(columns)} columns."
            rows.append(dict(zip(columns, cells, strict=False)))
    except csv.Error as exc:
        raise CsvInputError(f"Line {reader.line_num} cannot be read as CSV: {exc}.") from None
    return CsvFile(
        columns=columns,
        rows=rows,
        delimiter=delimiter,
        bom=data.startswith(codecs.BOM_UTF8),
        encoding=encoding,
        ragged=ragged,
    )


def _header_columns(header: list[str], reserved: tuple[str, ...]) -> list[str]:
    columns = [name.strip() for name in header]
    while columns and not columns[-1]:  # spreadsheets may end lines with empty cells
        columns.pop()
    for position, name in enumerate(columns, start=1):
        if not name:
            raise CsvInputError(f"Column {position} has no name in the header line.")
    duplicates = sorted({name for name in columns if columns.count(name) > 1})
    if duplicates:
        raise CsvInputError(f"The header names these columns twice: {', '.join(duplicates)}.")
    taken = [name for name in columns if name in reserved]
    if taken:
        raise CsvInputError(f"The file already has a column named {', '.join(taken)}, which scoring writes: rename it.")
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
