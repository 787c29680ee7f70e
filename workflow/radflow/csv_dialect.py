"""The CSV files users bring (clinical tables, input manifests) as spreadsheet programs write them.

Excel's "CSV" is not one format: on Western European Windows it is Windows-1252, not UTF-8; where the comma is the
decimal separator (German, French, Dutch, ... locales) the fields are separated by semicolons and numbers written
"12,5"; its "Unicode text" is tab-separated UTF-16. ``sniff`` finds which, from the bytes and the header line, so that
such a file is read as meant instead of failing with a UnicodeDecodeError or as one column named
"patient_id;outcome;...". Pure Python: the Snakefile's pre-flight reads these files in Snakemake's own environment.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

DELIMITERS = (",", ";", "\t")
ENCODING_NAMES = {"utf-8-sig": "UTF-8", "utf-16": "UTF-16", "cp1252": "Windows-1252", "latin-1": "Latin-1"}
# the first bytes of an .xlsx (a zip archive) and of an old .xls (an OLE2 compound file)
ZIP_MAGIC, OLE2_MAGIC = b"PK\x03\x04", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# "12,5" or "-0,75": a number with a decimal comma
DECIMAL_COMMA_NUMBER = re.compile(r"[-+]?\d+,\d+")


@dataclass(frozen=True)
class CsvDialect:
    encoding: str  # a Python codec name
    delimiter: str
    decimal: str  # "." or ","

    def describe(self) -> str | None:
        """What differs from a plain UTF-8, comma-separated file, for a note to the user (None: nothing)."""
        parts = []
        if self.encoding != "utf-8-sig":
            parts.append(ENCODING_NAMES[self.encoding] + (" (not UTF-8)" if self.encoding != "utf-16" else ""))
        if self.delimiter != ",":
            parts.append({";": "semicolon", "\t": "tab"}[self.delimiter] + "-separated")
        if self.decimal == ",":
            parts.append("decimal commas")
        return ", ".join(parts) or None


def encoding_of(data: bytes) -> str:
    """UTF-16 by its byte-order mark, else UTF-8 (with or without a BOM) when the bytes decode as UTF-8, else
    Windows-1252 (Excel's ANSI code page in Western Europe), else Latin-1 (which decodes any byte)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return encoding
    return "latin-1"


def _fields(line: str, delimiter: str) -> int:
    return len(next(csv.reader([line], delimiter=delimiter), []))


def sniff(path: Path | str) -> CsvDialect:
    """The encoding, field delimiter and decimal separator of a CSV file. The delimiter is the one of comma,
    semicolon and tab that splits the header line into the most fields (comma on a tie); decimal commas are assumed
    only in a file not separated by commas, and only when a cell holds a number written with one."""
    data = Path(path).read_bytes()
    if data.startswith((ZIP_MAGIC, OLE2_MAGIC)):
        raise ValueError(f"{Path(path).name} is a spreadsheet workbook (.xlsx / .xls), not a CSV file: save it as "
                         "CSV (File > Save As > CSV UTF-8)")
    encoding = encoding_of(data)
    text = data.decode(encoding)
    header = text.splitlines()[0] if text else ""
    delimiter = max(DELIMITERS, key=lambda d: (_fields(header, d), d == ","))
    decimal = "."
    if delimiter != ",":
        cells = (cell for row in csv.reader(io.StringIO(text), delimiter=delimiter) for cell in row)
        if any(DECIMAL_COMMA_NUMBER.fullmatch(cell.strip()) for cell in cells):
            decimal = ","
    return CsvDialect(encoding, delimiter, decimal)


def read_rows(path: Path | str, dialect: CsvDialect | None = None) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows as column -> cell text) of a CSV file in its dialect (``sniff``): column names stripped, spaces
    after a delimiter ("a, b") skipped, empty lines left out; numbers written with a decimal comma come back with a
    point."""
    header, numbered = numbered_rows(path, dialect)
    return header, [row for _, row in numbered]


def numbered_rows(path: Path | str, dialect: CsvDialect | None = None
                  ) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """``read_rows`` with each row's line in the file (the header is line 1; the empty lines left out still count,
    so a message's line is the one an editor shows)."""
    dialect = dialect or sniff(path)
    numbered = []
    with open(path, newline="", encoding=dialect.encoding) as fh:
        reader = csv.reader(fh, delimiter=dialect.delimiter, skipinitialspace=True)
        header = [name.strip() for name in next(reader, [])]
        for cells in reader:
            if any(cell.strip() for cell in cells):
                numbered.append((reader.line_num, dict(zip(header, cells))))
    if dialect.decimal == ",":
        for _, row in numbered:
            for column, cell in row.items():
                if isinstance(cell, str) and DECIMAL_COMMA_NUMBER.fullmatch(cell.strip()):
                    row[column] = cell.strip().replace(",", ".")
    return header, numbered


def pandas_options(dialect: CsvDialect) -> dict:
    """``pandas.read_csv`` keyword arguments for ``dialect`` (spaces after a delimiter skipped, as ``read_rows``
    does; the caller strips the column names' trailing spaces). Empty lines are kept, as rows of missing values,
    so that a row's index + 2 is its line in the file; the caller drops them (``dropna(how="all")``)."""
    return {"encoding": dialect.encoding, "sep": dialect.delimiter, "decimal": dialect.decimal,
            "skipinitialspace": True, "skip_blank_lines": False}
