"""Parse canonical text into CDM types, keeping the text of every cell that does not parse.

A value that does not parse (`<5` in a numeric column, `31/02/2019` as a date) must become one
issue on that cell, not a failed read: so parsing is a polars expression that yields null on
failure, and the original text is kept beside it (`__raw__<column>`) only where it failed.
"""

from __future__ import annotations

import polars as pl

from ..cdm import ColumnSpec

RAW_PREFIX = "__raw__"
TRUE_WORDS = ["true", "t", "1", "yes", "y"]
FALSE_WORDS = ["false", "f", "0", "no", "n"]
TIMESTAMP_FORMATS = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M",
                     "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]


def _clean_text(e: pl.Expr) -> pl.Expr:
    s = e.str.strip_chars()
    return pl.when(s.str.len_chars() == 0).then(None).otherwise(s)


def _parse_text(e: pl.Expr, col: ColumnSpec) -> pl.Expr:
    s = _clean_text(e)
    if col.type in ("text", "code"):
        return s
    if col.type == "decimal":
        f = s.cast(pl.Float64, strict=False)
        return pl.when(f.is_finite()).then(f)
    if col.type == "integer":
        f = s.cast(pl.Float64, strict=False)
        ok = f.is_finite() & (f == f.round(0)) & (f.abs() < 9e15)
        return pl.when(ok).then(f).cast(pl.Int64, strict=False)
    if col.type == "boolean":
        low = s.str.to_lowercase()
        return (
            pl.when(low.is_in(TRUE_WORDS)).then(True)
            .when(low.is_in(FALSE_WORDS)).then(False)
            .otherwise(None)
            .cast(pl.Boolean)
        )
    if col.type == "date":
        # Exactly 10 characters: rejects `20219-01-01` and trailing garbage.
        d = s.str.strptime(pl.Date, "%Y-%m-%d", strict=False)
        return pl.when(s.str.len_chars() == 10).then(d)
    if col.type == "timestamp":
        attempts = [s.str.strptime(pl.Datetime("us"), f, strict=False) for f in TIMESTAMP_FORMATS]
        # A bare date is accepted as midnight: centers often record the day only.
        date_only = pl.when(s.str.len_chars() == 10).then(
            s.str.strptime(pl.Date, "%Y-%m-%d", strict=False).cast(pl.Datetime("us"))
        )
        ts = pl.coalesce([*attempts, date_only])
        year = ts.dt.year()
        return pl.when((year >= 1900) & (year <= 2200)).then(ts)
    raise ValueError(f"unknown CDM type {col.type!r}")


def parse_expr(dtype: pl.DataType, col: ColumnSpec) -> tuple[pl.Expr, pl.Expr]:
    """(typed value, raw text kept only where parsing failed) for one column of a frame."""
    e = pl.col(col.name)
    target = col.polars_type
    if dtype == pl.Utf8 or dtype == pl.String:
        typed = _parse_text(e, col)
        raw_present = _clean_text(e).is_not_null()
        raw = pl.when(raw_present & typed.is_null()).then(_clean_text(e))
    elif dtype == pl.Null:
        typed = pl.lit(None, dtype=target)
        raw = pl.lit(None, dtype=pl.Utf8)
    else:
        # Already typed (Parquet, SPSS, a mapping): cast, and treat a failed cast like a bad cell.
        if col.type in ("text", "code"):
            typed = _clean_text(e.cast(pl.Utf8))
        elif col.type == "date" and dtype == pl.Datetime:
            typed = e.dt.date()
        else:
            typed = e.cast(target, strict=False)
        if col.type == "decimal":
            typed = pl.when(typed.is_finite()).then(typed)
        raw = pl.when(e.is_not_null() & typed.is_null()).then(e.cast(pl.Utf8, strict=False))
    return typed.cast(target).alias(col.name), raw.cast(pl.Utf8).alias(RAW_PREFIX + col.name)
