"""An issue's `value` as the center wrote it (issue 19: "the value as written").

The engine reports the value it checked: for a mapped column that is the recoded, converted or
reformatted text (`M` for `männlich`, `1750` for `17,5` m, `2020-01-31` for `31.01.2020`).
Here, for the flagged rows only, the source cell is looked up (`Submission.written`, lazy
queries of the reader's scratch files: nothing is carried through the stage) and replaces the
value, when the value is that cell's: the staged cell, shown as the engine shows values, equals
the issue's value. A value a rule composes from several cells (`grade 2, 37.1`) is not one cell
and is left as the rule wrote it; so is every value of a submission in the CDM's own columns.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ..cdm import FILE_COL, ROW_COL, Catalog
from ..mapping.written import WRITTEN_ANALYTE
from .issue_rows import _display, _truncate
from .parse import RAW_PREFIX

_KEYS = ["table", "file", "row", "column"]


def _staged_cells(path: Path, keys: pl.DataFrame, columns: list[str], analyte: str | None) -> pl.DataFrame:
    """(file, row, [analyte], column, cell) of the flagged rows, each cell shown as an issue
    value is (`_display`, cut), for comparison with the issue's value."""
    lf = pl.scan_parquet(path, glob=False)
    names = set(lf.collect_schema().names())
    cols = [c for c in columns if c in names]
    if not cols:
        return pl.DataFrame()

    def shown(c: str) -> pl.Expr:
        typed = pl.col(c).cast(pl.Utf8)
        e = pl.coalesce([pl.col(RAW_PREFIX + c), typed]) if RAW_PREFIX + c in names else typed
        return _truncate(_display(e)).alias(c)

    extra = [pl.col(analyte).cast(pl.Utf8).alias(WRITTEN_ANALYTE)] if analyte and analyte in names else []
    return (lf.select(pl.col(FILE_COL).cast(pl.Utf8).alias("file"), pl.col(ROW_COL).cast(pl.Int64).alias("row"),
                      *extra, *(shown(c) for c in cols))
            .join(keys.lazy(), on=["file", "row"], how="semi")
            .unpivot(index=["file", "row", *([WRITTEN_ANALYTE] if extra else [])], on=cols,
                     variable_name="column", value_name="cell")
            .collect())


def _written_cells(frame: pl.LazyFrame, keys: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    names = frame.collect_schema().names()
    cols = [c for c in columns if c in names]
    if not cols:
        return pl.DataFrame()
    index = ["file", "row", *([WRITTEN_ANALYTE] if WRITTEN_ANALYTE in names else [])]
    return (frame.rename({FILE_COL: "file", ROW_COL: "row"})
            .select(*index, *(pl.col(c).cast(pl.Utf8) for c in cols))
            .join(keys.lazy(), on=["file", "row"], how="semi")
            .unpivot(index=index, on=cols, variable_name="column", value_name="written")
            .filter(pl.col("written").is_not_null())
            .collect())


def as_written(issues: pl.DataFrame, staged: dict[str, Path], written: dict[str, list[pl.LazyFrame]],
               catalog: Catalog) -> pl.DataFrame:
    """`issues` (the engine's table: rule_id ... value, message) with each cell's value as
    written where the submission is mapped and the value is the cell's."""
    if not written or issues.height == 0:
        return issues
    from ..mapping.model import roles

    m = roles(catalog).measurement
    analyte_column = m.analyte if m is not None else None
    located = issues.filter(pl.col("row").is_not_null() & pl.col("column").is_not_null()
                            & pl.col("value").is_not_null() & pl.col("table").is_in(list(written)))
    if located.height == 0:
        return issues
    found = []
    for (table,), hit in located.group_by("table"):
        path = staged.get(str(table))
        if path is None:
            continue
        keys = hit.select("file", "row").unique()
        columns = hit.get_column("column").unique().to_list()
        cells = _staged_cells(path, keys, columns, analyte_column if m is not None and table == m.table else None)
        if cells.height == 0:
            continue
        for frame in written[str(table)]:
            w = _written_cells(frame, keys, columns)
            if w.height == 0:
                continue
            on = ["file", "row", "column"] + ([WRITTEN_ANALYTE] if WRITTEN_ANALYTE in w.columns
                                              and WRITTEN_ANALYTE in cells.columns else [])
            pairs = cells.join(w, on=on, how="inner").select("file", "row", "column", "cell", "written")
            found.append(pairs.with_columns(pl.lit(str(table)).alias("table")))
    if not found:
        return issues
    match = (pl.concat(found).unique(["table", "file", "row", "column", "cell"], keep="first", maintain_order=True)
             .rename({"cell": "value"}))
    out = issues.join(match, on=[*_KEYS, "value"], how="left", nulls_equal=False, maintain_order="left")
    return out.with_columns(pl.coalesce(_truncate(pl.col("written")), pl.col("value")).alias("value")).drop("written")
