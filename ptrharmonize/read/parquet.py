"""Parquet reader: typed columns as stored, plus `_file` and `_row` (record number + 1)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from . import ReadError, cell_length_guard, check_cell_lengths, display_name, require_file


def read_parquet(path: Path, root: Path | None = None, *, lazy: bool = False) -> pl.DataFrame | pl.LazyFrame:
    """Read a Parquet file. The first record is `_row` 2, as if a header were row 1."""
    path = Path(path)
    display = display_name(path, root)
    require_file(path, display)
    try:
        schema = pl.read_parquet_schema(path)  # (no glob expansion)
    except Exception as exc:  # noqa: BLE001 - any failure here means "not a Parquet file"
        raise ReadError(display, message=f"not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    clash = [c for c in ("_file", "_row") if c in schema]
    if clash:
        raise ReadError(display, column=clash[0], message="a column may not be named _file or _row (reserved)")
    names = list(schema.keys())
    internal = [f"__c{i}" for i in range(len(names))]
    # A text cell longer than a spreadsheet cell can hold is refused as in CSV and Excel (issue
    # 23: cells are capped before the identifier patterns run on them); lazily, through `_row`.
    texts = [pl.col(i) for i, n in zip(internal, names, strict=True) if schema[n] in (pl.Utf8, pl.String)]
    guard = cell_length_guard(texts) if lazy else pl.lit(0, pl.Int64)
    # Positional internal names: a column called '*' or '^x$' is data, not a selector.
    lf = (
        pl.scan_parquet(path, glob=False)  # a path, never a pattern (`G[1]` is not `G1`)
        .rename(dict(zip(names, internal, strict=True)))
        .with_row_index("_row", offset=2)
        .with_columns((pl.col("_row").cast(pl.Int64) + guard).alias("_row"), pl.lit(display, pl.Utf8).alias("_file"))
        .select([*(pl.col(c) for c in internal), pl.col("_file"), pl.col("_row")])
        .rename(dict(zip(internal, names, strict=True)))
    )
    if lazy:
        return lf
    try:
        df = lf.collect()
    except pl.exceptions.PolarsError as exc:
        raise ReadError(display, message=f"not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    check_cell_lengths(df, display)
    return df
