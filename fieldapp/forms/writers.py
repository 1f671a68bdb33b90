"""Export writers: stream (columns, rows) into CSV, XLSX or JSON Lines with constant memory.

Every writer takes the columns (`fieldapp.forms.export.Column`) and an iterator of rows (lists of
str, int, float or None, in the columns' order), writes one row at a time, calls
`progress(rows_written)` every `every` rows and once at the end, and returns the number of rows.
They know nothing of forms, so the same writers serve form exports, the attendance long table and
the per-participant summary. The target is a path or a binary file opened for writing.

    n = write_csv("intake.csv", cols, rows(intake, records, opts), progress=bar.update)
    paths = write("xlsx", "intake.xlsx", cols, data, codebook=codebook(intake, opts))

- CSV: UTF-8 with a BOM (so Excel shows accents), the csv module's Excel dialect (comma, CRLF,
  quotes where needed), one header row of `Column.header`.
- XLSX: xlsxwriter in constant_memory mode (rows go to a temporary file as they come; only the
  current row is in memory). Strings are written as strings, never turned into formulas, numbers
  or links; ints and floats as numbers; cells of "date" columns holding an ISO date as real
  dates (yyyy-mm-dd). The header row is bold and frozen, with an autofilter. A sheet holds at most
  1,048,575 data rows; further rows continue on "data (2)", "data (3)", ….
- JSON Lines: one object per line keyed by `Column.name`, UTF-8, raw values (null for empty).

CSV and XLSX pass every string cell, headers included, through `neutralise` against formula
injection; JSON Lines keeps values as they are (it is read by programs, not spreadsheets).
The codebook goes with the data: a second sheet of the XLSX file, a second file beside a CSV or
JSON Lines one (`codebook_path`).
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import json
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import BinaryIO

import xlsxwriter

from fieldapp.forms.export import FORMULA_START, Column, neutralise

FORMATS = ("csv", "xlsx", "jsonl")
SUFFIXES = {"csv": ".csv", "xlsx": ".xlsx", "jsonl": ".jsonl"}
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "jsonl": "application/x-ndjson; charset=utf-8",
}
EVERY = 1000
XLSX_MAX_ROWS = 1_048_576  # rows per worksheet, the header row included
XLSX_MAX_CHARS = 32_767  # characters per cell

Progress = Callable[[int], None]
Target = str | os.PathLike | BinaryIO
Codebook = tuple[Sequence[Column], Iterable[list]]


def _report(progress: Progress | None, every: int) -> Callable[[int], None]:
    if progress is None:
        return lambda n: None
    return lambda n: progress(n) if n % every == 0 else None


def _last(progress: Progress | None, every: int, n: int) -> None:
    """The final count, unless the last report already gave it."""
    if progress is not None and (n == 0 or n % every):
        progress(n)


@contextlib.contextmanager
def _binary(target: Target):
    """A binary file to write to: opened (and closed) here for a path, borrowed otherwise."""
    if isinstance(target, (str, os.PathLike)):
        with open(target, "wb") as f:
            yield f
    else:
        yield target


@contextlib.contextmanager
def _text(target: Target, *, bom: bool, newline: str):
    with _binary(target) as raw:
        if bom:
            raw.write(codecs.BOM_UTF8)
        text = io.TextIOWrapper(raw, encoding="utf-8", newline=newline, write_through=False)
        try:
            yield text
        finally:
            text.flush()
            text.detach()  # the caller's file stays open


# ------------------------------------------------------------------ CSV


def write_csv(target: Target, columns: Sequence[Column], rows: Iterable[list], *,
              progress: Progress | None = None, every: int = EVERY) -> int:
    """CSV with a BOM, one header row; string cells neutralised. Returns the number of rows."""
    report, n = _report(progress, every), 0
    starts = FORMULA_START
    with _text(target, bom=True, newline="") as out:
        writer = csv.writer(out, dialect="excel")
        writer.writerow([neutralise(c.header) for c in columns])
        writerow = writer.writerow
        for row in rows:
            writerow([("'" + v if v.__class__ is str and v[:1] in starts else v) for v in row])
            n += 1
            report(n)
    _last(progress, every, n)
    return n


# ------------------------------------------------------------------ JSON Lines


def write_jsonl(target: Target, columns: Sequence[Column], rows: Iterable[list], *,
                progress: Progress | None = None, every: int = EVERY) -> int:
    """One JSON object per line keyed by column name, raw values. Returns the number of rows."""
    report, n = _report(progress, every), 0
    names = [c.name for c in columns]
    encode = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode
    with _text(target, bom=False, newline="\n") as out:
        write = out.write
        for row in rows:
            write(encode(dict(zip(names, row, strict=True))))
            write("\n")
            n += 1
            report(n)
    _last(progress, every, n)
    return n


# ------------------------------------------------------------------ XLSX


def write_xlsx(target: Target, columns: Sequence[Column], rows: Iterable[list], *,
               codebook: Codebook | None = None, sheet: str = "data", codebook_sheet: str = "codebook",
               progress: Progress | None = None, every: int = EVERY, tmpdir: str | None = None) -> int:
    """An XLSX workbook: the rows on `sheet` (and its overflow sheets), the codebook on its own sheet.

    Returns the number of data rows.
    """
    report, n = _report(progress, every), 0
    options = {
        "constant_memory": True,
        "strings_to_numbers": False, "strings_to_formulas": False, "strings_to_urls": False,
        "nan_inf_to_errors": True,
    }
    if tmpdir:
        options["tmpdir"] = tmpdir
    with _binary(target) as out:
        workbook = xlsxwriter.Workbook(out, options)
        try:
            styles = _Styles(workbook)
            dates = frozenset(i for i, c in enumerate(columns) if c.type == "date")
            part, ws, r = 1, None, XLSX_MAX_ROWS
            for row in rows:
                if r == XLSX_MAX_ROWS:  # the first row, or the sheet is full
                    if ws is not None:
                        _finish(ws, r - 1, len(columns))
                        part += 1
                    ws = workbook.add_worksheet(sheet if part == 1 else f"{sheet} ({part})")
                    _start(ws, columns, styles)
                    write_row, r = _row_writer(ws, dates, styles), 1
                write_row(r, row)
                r += 1
                n += 1
                report(n)
            if ws is None:  # no rows: still a sheet with the headers
                ws = workbook.add_worksheet(sheet)
                _start(ws, columns, styles)
                r = 1
            _finish(ws, r - 1, len(columns))
            if codebook is not None:
                book_columns, book_rows = codebook
                book = workbook.add_worksheet(codebook_sheet)
                _start(book, book_columns, styles)
                write_row, r = _row_writer(book, frozenset(), styles), 1
                for row in book_rows:
                    write_row(r, row)
                    r += 1
                _finish(book, r - 1, len(book_columns))
        finally:
            workbook.close()
    _last(progress, every, n)
    return n


class _Styles:
    def __init__(self, workbook):
        self.header = workbook.add_format({"bold": True})
        self.date = workbook.add_format({"num_format": "yyyy-mm-dd"})


def _start(ws, columns: Sequence[Column], styles: _Styles) -> None:
    for i, c in enumerate(columns):
        width = 12 if c.type == "date" else min(40, max(8, len(c.header) + 2))
        ws.set_column(i, i, width)
    ws.freeze_panes(1, 0)
    ws.write_row(0, 0, [neutralise(c.header) for c in columns], styles.header)


def _finish(ws, last_row: int, width: int) -> None:
    if width:
        ws.autofilter(0, 0, max(last_row, 0), width - 1)


def _row_writer(ws, dates: frozenset[int], styles: _Styles) -> Callable[[int, list], None]:
    """Write one row cell by cell, each with the xlsxwriter method for its type (no guessing)."""
    write_string, write_number = ws.write_string, ws.write_number
    write_datetime, date_style = ws.write_datetime, styles.date
    starts = FORMULA_START

    def write_row(r: int, row: list) -> None:
        for c, v in enumerate(row):
            kind = v.__class__
            if kind is str:
                if not v:
                    continue
                if c in dates:
                    day = _day(v)
                    if day is not None:
                        write_datetime(r, c, day, date_style)
                        continue
                write_string(r, c, "'" + v if v[:1] in starts else v)
            elif kind is int or kind is float:
                write_number(r, c, v)
            elif v is None:
                continue
            elif kind is bool:
                write_number(r, c, int(v))
            else:
                write_string(r, c, neutralise(str(v)))

    return write_row


def _day(iso: str) -> date | None:
    """An ISO date Excel can hold (1900 or later), else None: the cell stays a string."""
    if len(iso) != 10:
        return None
    try:
        day = date.fromisoformat(iso)
    except ValueError:
        return None
    return day if day.year >= 1900 else None


# ------------------------------------------------------------------ one call for data and codebook


def codebook_path(path: str | os.PathLike) -> Path:
    """Where a CSV or JSON Lines export's codebook goes: `intake.csv` → `intake.codebook.csv`."""
    path = Path(path)
    return path.with_name(f"{path.stem}.codebook{path.suffix}")


def write(fmt: str, path: str | os.PathLike, columns: Sequence[Column], rows: Iterable[list], *,
          codebook: Codebook | None = None, progress: Progress | None = None,
          every: int = EVERY) -> tuple[int, list[Path]]:
    """Write an export and its codebook in `fmt`; return (rows written, files written)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")
    path = Path(path)
    if fmt == "xlsx":
        n = write_xlsx(path, columns, rows, codebook=codebook, progress=progress, every=every)
        return n, [path]
    one = write_csv if fmt == "csv" else write_jsonl
    n = one(path, columns, rows, progress=progress, every=every)
    if codebook is None:
        return n, [path]
    book_columns, book_rows = codebook
    one(codebook_path(path), book_columns, book_rows)
    return n, [path, codebook_path(path)]

