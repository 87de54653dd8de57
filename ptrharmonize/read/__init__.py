"""Readers: one small module per source format.

Every reader returns a polars frame of the source columns plus `_file` (the file name
relative to the submission folder, as sent) and `_row` (the row a person sees in the file:
header = 1, first data row = 2; for Excel the real sheet row; for Parquet and SPSS the
record number + 1). CSV and Excel cells are read as text, so that a bad cell never fails the
read: the validation engine parses the text and reports each bad cell as one issue.

Problems that stop a file being read at all (missing file, undecodable bytes, a file that is
not a table, an empty file) raise `ReadError`, whose message is written for the person who
sent the file; the CLI prints it and exits 2, with no traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import polars as pl

from ..errors import UserError


class ReadError(UserError):
    """A source file could not be read. `file`, `row` and `column` say where, when known.
    A `UserError`: the CLI prints it as one line and exits 2."""

    def __init__(
        self,
        file: str | Path | None,
        row: int | None = None,
        column: str | None = None,
        message: str = "",
    ) -> None:
        self.file = str(file) if file is not None else None
        self.row = row
        self.column = column
        self.message = message
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column '{self.column}'")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


# File suffix -> format name understood by `read_source`.
FORMATS: dict[str, str] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".xlsx": "excel",
    ".xlsm": "excel",
    ".xls": "excel",
    ".ods": "excel",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".sav": "spss",
    ".zsav": "spss",
}


def format_of(path: Path, declared: str | None = None) -> str:
    """The reader to use for `path`: the declared format, else the one its suffix names."""
    if declared:
        fmt = declared.lower()
        if fmt in ("xlsx", "xls", "xlsm", "ods"):
            fmt = "excel"
        if fmt in ("sav", "zsav"):
            fmt = "spss"
        if fmt not in ("csv", "excel", "parquet", "spss", "redcap"):
            raise ReadError(path.name, message=f"unknown format '{declared}' (csv, excel, parquet, spss or redcap)")
        return fmt
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise ReadError(
            path.name,
            message=f"cannot tell the format of '{path.name}' from its suffix; "
            "declare `format: csv|excel|parquet|spss` in the mapping",
        ) from None


def header_names(texts: Iterable[str | None]) -> list[str]:
    """Column names from a header row's cell texts, as every reader names them: a blank cell
    (None or white space) is `column_<position>`, a repeated name gets `.1`, `.2`, ... in the
    order it repeats (the first keeps its name). Texts are stripped; cleaning beyond that (a
    byte-order mark) is the caller's."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for i, text in enumerate(texts):
        n = (text or "").strip() or f"column_{i + 1}"
        if n in seen:
            seen[n] += 1
            n = f"{n}.{seen[n]}"
        else:
            seen[n] = 0
        names.append(n)
    return names


def display_name(path: Path, root: Path | None) -> str:
    """The file name as the center sent it: relative to the submission folder when inside it."""
    if root is not None:
        try:
            return path.resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            pass
    return path.name


# A spreadsheet cell holds at most 32,767 characters (Excel's limit). A longer cell is not a
# registry value: it is text pasted into the wrong place, or a quote that was opened and never
# closed, swallowing the lines after it. It is refused with its file, row and column; its
# content is never repeated (it may be anything, identifiers included).
MAX_CELL_CHARS = 32_767


def check_cell_lengths(df: pl.DataFrame, display: str, limit: int = MAX_CELL_CHARS) -> None:
    """Raise ReadError at the first cell (by `_row`) of a text column longer than `limit`."""
    if df.height == 0 or "_row" not in df.columns:
        return
    rows = df.get_column("_row")
    worst: tuple[int, str, int] | None = None
    # Series, not pl.col(name): a column named '*' or '^x$' is data, not a selector.
    for col in df.get_columns():
        if col.dtype != pl.Utf8 or col.name in ("_file", "_row"):
            continue
        s = col.alias("v")  # Series methods run as expressions on the Series' name
        # Byte lengths come from the offsets (no scan); characters only where bytes exceed.
        if (s.str.len_bytes().max() or 0) <= limit:
            continue
        n = s.str.len_chars()
        hits = (n > limit).arg_true()
        if len(hits):
            i = int(hits[0])
            row = int(rows[i])
            if worst is None or row < worst[0]:
                worst = (row, col.name, int(n[i]))
    if worst is not None:
        row, col, n = worst
        raise ReadError(
            display, row=row, column=col,
            message=f"this cell holds {n:,} characters, more than a spreadsheet cell can ({limit:,}); "
            "it is not a registry value: check for text pasted into the wrong cell or a quote (\") "
            "that is opened and never closed",
        )


def cell_length_guard(cols: list[pl.Expr], limit: int = MAX_CELL_CHARS) -> pl.Expr:
    """0 on every row, and a failing strict cast where a cell of `cols` is longer than `limit`.

    Polars has no assertion expression; a lazily read file adds this to `_row` (which every
    consumer reads), so the query fails on such a file and the caller's eager re-read (which
    runs `check_cell_lengths`) names the cell. Costs one length per cell."""
    if not cols:
        return pl.lit(0, pl.Int64)
    parts = [
        pl.when(c.str.len_bytes() > limit).then(pl.lit(limit, pl.Int64) - c.str.len_chars().cast(pl.Int64))
        .otherwise(pl.lit(0, pl.Int64)).cast(pl.UInt32, strict=True)
        for c in cols
    ]
    return pl.sum_horizontal(parts).cast(pl.Int64)


def read_source(
    path: Path,
    root: Path | None = None,
    fmt: str | None = None,
    **options: Any,
) -> pl.DataFrame:
    """Read one source file with the reader its format needs; options go to that reader. The
    reader runs bounded in time and memory in a child process (`read.bounded`)."""
    from .bounded import bounded

    path = Path(path)
    return bounded(display_name(path, root), _read_source, path, root, fmt, **options)


def _read_source(path: Path, root: Path | None, fmt: str | None, **options: Any) -> pl.DataFrame:
    kind = format_of(path, fmt)
    if kind == "csv":
        from .csv import read_csv

        return read_csv(path, root, **options)
    if kind == "excel":
        from .excel import read_excel

        return read_excel(path, root, **options)
    if kind == "parquet":
        from .parquet import read_parquet

        return read_parquet(path, root, **options)
    if kind == "redcap":  # one form of a REDCap records export (its dictionary among the options)
        from .redcap import read_redcap

        return read_redcap(path, root, **options)
    from .spss import read_spss

    return read_spss(path, root, **options)


__all__ = ["ReadError", "FORMATS", "MAX_CELL_CHARS", "check_cell_lengths", "cell_length_guard", "format_of",
           "display_name", "read_source"]


def require_file(path: Path, display: str, allow_empty: bool = False) -> None:
    """Refuse a path that is missing, a folder, or (unless allowed) empty, naming it as sent."""
    if not path.exists():
        raise ReadError(display, message="file not found")
    if not path.is_file():
        raise ReadError(display, message="is a folder, not a file")
    if not allow_empty and path.stat().st_size == 0:
        raise ReadError(display, message="the file is empty")
