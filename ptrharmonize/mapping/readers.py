"""Glue between a mapping's source blocks and the readers (`ptrharmonize.read`): every source
opens as a LazyFrame, so a block's plan streams from the file to the validation stage.

CSV (transcoded to UTF-8 on disk first when it is not) and Parquet are scanned by polars.
SPSS is read in chunks of cases (pyreadstat's row ranges), Excel one sheet when the plan runs
(not when the mapping is applied), both through a polars IO source; the file's header is read
up front, so a mapping that names a column the file lacks still fails before any data moves.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
from polars.io.plugins import register_io_source

from ..cdm import FILE_COL, ROW_COL
from ..read import format_of, read_source
from .model import SourceBlock

SPSS_CHUNK = 200_000  # cases per chunk: ~100 MB of a wide file at most


def _conform(df: pl.DataFrame, schema: dict[str, pl.DataType], columns: list[str] | None) -> pl.DataFrame:
    """A chunk with exactly the declared columns and types (the plan was built on them)."""
    names = columns if columns is not None else list(schema)
    return df.select([
        (pl.col(n).cast(schema[n], strict=False) if n in df.columns else pl.lit(None, schema[n])).alias(n) for n in names
    ])


def _source(schema: dict[str, pl.DataType], chunks: Any, name: str) -> pl.LazyFrame:
    """A LazyFrame over `chunks()` (a generator of DataFrames), honouring projection, filter
    and row limit as polars asks."""

    def io(with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None,
           batch_size: int | None) -> Iterator[pl.DataFrame]:
        left = n_rows
        for df in chunks():
            df = _conform(df, schema, with_columns)
            if predicate is not None:
                df = df.filter(predicate)
            if left is not None:
                df = df.head(left)
                left -= df.height
            yield df
            if left is not None and left <= 0:
                return

    return register_io_source(io, schema=schema, is_pure=True, explain_name=name)


def _spss(path: Path, root: Path, options: dict[str, Any]) -> pl.LazyFrame:
    from ..read.spss import read_spss

    first = read_spss(path, root, row_limit=1, **options)
    if first.height == 0:
        return first.lazy()
    schema = dict(first.schema)

    def chunks() -> Iterator[pl.DataFrame]:
        offset = 0
        while True:
            df = read_spss(path, root, row_offset=offset, row_limit=SPSS_CHUNK, **options)
            if df.height == 0:
                return
            yield df
            offset += df.height
            if df.height < SPSS_CHUNK:
                return

    return _source(schema, chunks, f"spss {path.name}")


def _header_only(path: Path, root: Path, options: dict[str, Any]) -> list[str]:
    """The sheet's column names as the reader names them, from its header row (calamine parses
    the sheet natively; no Python object per cell). [] when the header cannot be read this way
    (the caller then reads the sheet now, and the reader reports the problem)."""
    import python_calamine

    from ..read import display_name, header_names
    from ..read.excel import _pick_sheet, cell_text, check_sheet_size

    header_row = int(options.get("header_row") or int(options.get("skip_rows") or 0) + 1)
    try:
        wb = python_calamine.CalamineWorkbook.from_path(str(path))
        name = _pick_sheet(list(wb.sheet_names), options.get("sheet"), display_name(path, root))
        # The sheet's extent first: calamine aborts the process on a cell at XFD1048576.
        check_sheet_size(path, name, display_name(path, root))
        sheet = wb.get_sheet_by_name(name)
        row: list[Any] = []
        for i, r in enumerate(sheet.iter_rows(), start=1):
            if i == header_row:
                row = list(r)
                break
    except Exception:  # noqa: BLE001 - any failure: read the sheet now, the reader explains
        return []
    names = header_names(cell_text(v) for v in row)
    while names and names[-1].startswith("column_"):
        names.pop()
    return names


def _excel(path: Path, root: Path, options: dict[str, Any]) -> pl.LazyFrame:
    from ..read.excel import read_excel

    names = _header_only(path, root, options) if path.suffix.lower() in (".xlsx", ".xlsm") else []
    if not names:
        return read_excel(path, root, **options).lazy()
    schema = {**dict.fromkeys(names, pl.Utf8()), FILE_COL: pl.Utf8(), ROW_COL: pl.Int64()}
    return _source(schema, lambda: iter([read_excel(path, root, **options)]), f"excel {path.name}")


REDCAP_FILES = ("dictionary", "events")  # a REDCap block's other files, beside its records export


def companion_files(block: SourceBlock) -> list[str]:
    """The files a block reads besides `file` (a REDCap export's dictionary and event mapping)."""
    return [str(block.reader_options[k]) for k in REDCAP_FILES if block.reader_options.get(k)]


def _redcap(path: Path, root: Path, options: dict[str, Any]) -> pl.LazyFrame:
    from ..read.redcap import read_redcap
    from .language import resolve_in

    for k in REDCAP_FILES:
        if options.get(k):
            options[k] = resolve_in(root, str(options[k]))
    return read_redcap(path, root, **options).lazy()


def open_source(path: Path, root: Path, block: SourceBlock, stream: bool = True) -> pl.LazyFrame:
    """The block's file as a LazyFrame of its columns plus `_file` and `_row`. `stream=False`
    reads it whole first, so that every problem of the file is a ReadError here. The reader runs
    bounded in time and memory in a child process (`read.bounded`), which hands the file back as
    Arrow IPC: every problem of the file, a panic included, is a ReadError here."""
    from ..read import display_name
    from ..read.bounded import bounded

    return bounded(display_name(path, root), _open_source, path, root, block, stream=stream,
                   retry_eager={"stream": False})


def _open_source(path: Path, root: Path, block: SourceBlock, stream: bool = True) -> pl.LazyFrame:
    kind = format_of(path, block.fmt)
    options = dict(block.reader_options)
    if kind == "redcap":
        return _redcap(path, root, options)
    if not stream:
        return read_source(path, root, block.fmt, **options).lazy()
    if kind == "csv":
        from ..read.csv import read_csv

        lf = read_csv(path, root, lazy=True, **options)
        assert isinstance(lf, pl.LazyFrame)
        return lf
    if kind == "parquet":
        from ..read.parquet import read_parquet

        lf = read_parquet(path, root, lazy=True)
        assert isinstance(lf, pl.LazyFrame)
        return lf
    if kind == "spss":
        return _spss(path, root, options)
    if kind == "excel":
        return _excel(path, root, options)
    return read_source(path, root, block.fmt, **options).lazy()
