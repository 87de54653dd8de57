"""Read a canonical extract: a folder with `<table>.csv` or `<table>.parquet` per CDM table.

CSV files are UTF-8 (a BOM is accepted), comma-separated, and every value is kept as the text
written, so that the validation engine can report each cell it cannot parse. Parquet columns
keep their stored types. Absent tables are simply absent from `Submission.tables` (the engine
reports a missing required table); files that name no CDM table are ignored.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ..cdm import load_catalog
from ..submission import Submission
from . import ReadError, display_name
from .bounded import bounded
from .csv import read_csv
from .parquet import read_parquet


def canonical_files(path: Path) -> dict[str, Path]:
    """CDM table name -> the file holding it in a canonical extract folder."""
    path = Path(path)
    if not path.exists():
        raise ReadError(str(path), message="folder not found")
    if not path.is_dir():
        raise ReadError(str(path), message="a canonical extract is a folder with one file per table, not a file")
    found: dict[str, Path] = {}
    by_name = {p.name.lower(): p for p in path.iterdir() if p.is_file()}
    root = path.resolve()
    for table in load_catalog().table_names:
        hits = [by_name[n] for n in (f"{table}.csv", f"{table}.parquet") if n in by_name]
        if len(hits) > 1:
            raise ReadError(
                hits[1].name,
                message=f"both {hits[0].name} and {hits[1].name} are present; keep one file per table",
            )
        if hits:
            try:
                hits[0].resolve().relative_to(root)
            except ValueError:
                # A symbolic link to a file elsewhere: a submission is the files in its folder.
                raise ReadError(
                    hits[0].name,
                    message="is a link to a file outside the submission folder; copy the file itself into the folder",
                ) from None
            found[table] = hits[0]
    return found


def _csv_has_data(path: Path) -> bool:
    """Whether a CSV file has a non-blank line after its header (reads at most 64 KiB)."""
    with path.open("rb") as fh:
        head = fh.read(64 * 1024 + 1)
    if len(head) > 64 * 1024:
        return True
    lines = head.lstrip(b"\xef\xbb\xbf").replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
    return any(line.strip(b" \t,;|\"") for line in lines[1:])


def read_canonical(path: Path, lazy: bool = False) -> Submission:
    """Read a canonical extract folder into a Submission (text values for CSV, typed for Parquet).

    Every frame has the file's columns as written plus `_file` (file name) and `_row` (header = 1,
    first data row = 2). `center_id` is set when the patients file names exactly one center.
    With `lazy=True` the frames are LazyFrames (a malformed CSV then fails on collect)."""
    path = Path(path)
    files = canonical_files(path)
    catalog = load_catalog()
    tables: dict[str, pl.DataFrame | pl.LazyFrame] = {}
    for table, file in files.items():
        # Each reader runs bounded in time and memory in a child process (read.bounded).
        if file.suffix.lower() == ".parquet":
            tables[table] = bounded(display_name(file, path), read_parquet, file, path, lazy=lazy,
                                    retry_eager={"lazy": False})
        else:
            tables[table] = bounded(display_name(file, path), read_csv, file, path, delimiter=",",
                                    encoding="utf-8", lazy=lazy, duplicate_columns="error",
                                    retry_eager={"lazy": False})
            if catalog.tables[table].required_table and not _csv_has_data(file):
                raise ReadError(
                    file.name, row=1,
                    message=f"the file has a header but no data rows; the {table} table is required "
                    f"and must hold at least one row",
                )

    center_id = None
    patients = tables.get("patients")
    if patients is not None and "center_id" in patients.collect_schema().names():
        try:
            centers = (
                patients.lazy()
                .select(pl.col("center_id").cast(pl.Utf8).drop_nulls().unique())
                .collect()
                .to_series()
                .to_list()
            )
        except pl.exceptions.PolarsError as exc:
            raise ReadError(files["patients"].name, message=f"not a readable file: {str(exc).splitlines()[0]}") from None
        if len(centers) == 1:
            center_id = centers[0]
    return Submission(tables=tables, source_path=path, center_id=center_id, files=list(files.values()))
