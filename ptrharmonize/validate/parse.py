"""Parse canonical text into CDM types, keeping the text of every cell that does not parse.

A value that does not parse (`<5` in a numeric column, `31/02/2019` as a date) must become one
issue on that cell, not a failed read: so parsing is a polars expression that yields null on
failure, and the original text is kept beside it (`__raw__<column>`) only where it failed.
"""

from __future__ import annotations

import polars as pl

from ..cdm import ColumnSpec
from .checks import RAW_PREFIX  # the one definition, beside the check types that read it

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
        d = s.str.strptime(pl.Date, "%Y-%m-%d", strict=False, cache=False)
        return pl.when(s.str.len_chars() == 10).then(d)
    if col.type == "timestamp":
        attempts = [s.str.strptime(pl.Datetime("us"), f, strict=False, cache=False) for f in TIMESTAMP_FORMATS]
        # A bare date is accepted as midnight: centers often record the day only.
        date_only = pl.when(s.str.len_chars() == 10).then(
            s.str.strptime(pl.Date, "%Y-%m-%d", strict=False, cache=False).cast(pl.Datetime("us"))
        )
        ts = pl.coalesce([*attempts, date_only])
        return _year_window(ts)
    raise ValueError(f"unknown CDM type {col.type!r}")


def _year_window(ts: pl.Expr) -> pl.Expr:
    year = ts.dt.year()
    return pl.when((year >= 1900) & (year <= 2200)).then(ts)


def parse_expr(dtype: pl.DataType, col: ColumnSpec) -> tuple[pl.Expr, pl.Expr]:
    """(typed value, raw text kept only where parsing failed) for one column of a frame."""
    e = pl.col(col.name)
    target = col.polars_type
    if (dtype == pl.Utf8 or dtype == pl.String) and col.type in ("text", "code"):
        # Text is its own typed value: nothing can fail to parse, so nothing raw to keep.
        typed = _clean_text(e)
        raw = pl.lit(None, dtype=pl.Utf8)
    elif dtype == pl.Utf8 or dtype == pl.String:
        typed = _parse_text(e, col)
        raw_present = _clean_text(e).is_not_null()
        raw = pl.when(raw_present & typed.is_null()).then(_clean_text(e))
    elif dtype == pl.Null:
        typed = pl.lit(None, dtype=target)
        raw = pl.lit(None, dtype=pl.Utf8)
    else:
        # Already typed (Parquet, SPSS, a mapping): cast, and treat a failed cast like a bad cell.
        typed = _typed_cast(e, dtype, col, target)
        if col.type == "decimal":
            typed = pl.when(typed.is_finite()).then(typed)
        raw = pl.when(e.is_not_null() & typed.is_null()).then(_as_text(e, dtype))
    return typed.cast(target).alias(col.name), raw.cast(pl.Utf8).alias(RAW_PREFIX + col.name)


def _as_text(e: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A typed value as the text the issue shows (a zone-aware time with its offset)."""
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return e.dt.strftime("%Y-%m-%dT%H:%M:%S%:z")
    return e.cast(pl.Utf8, strict=False)


def _typed_cast(e: pl.Expr, dtype: pl.DataType, col: ColumnSpec, target: pl.DataType) -> pl.Expr:
    """A typed column cast to the CDM type, null wherever the cast would change the value (issue
    23), so that the cell is reported like a text cell that does not parse, never silently
    changed: a fraction into an integer (19.7 is not 19), a number into a date or a timestamp
    (42511 is an Excel or SAS day number, not days since 1970), a zone-aware timestamp (the CDM's
    are the hospital's wall-clock time: converting would shift it by the zone's offset), a
    date-time with a time of day into a date, and a number other than 0/1 into a boolean."""
    numeric = dtype.is_numeric()
    if col.type in ("text", "code"):
        return _clean_text(e.cast(pl.Utf8))
    if col.type in ("date", "timestamp") and (numeric or dtype == pl.Boolean):
        return pl.lit(None, dtype=target)
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        return pl.lit(None, dtype=target)
    if col.type == "date" and isinstance(dtype, pl.Datetime):
        return pl.when(e.dt.time() == pl.time(0, 0, 0)).then(e.dt.date())
    if col.type == "integer" and dtype.is_float():
        return pl.when(e.is_finite() & (e == e.round(0)) & (e.abs() < 9e15)).then(e).cast(pl.Int64, strict=False)
    if col.type == "boolean" and numeric:
        return pl.when(e == 1).then(True).when(e == 0).then(False).otherwise(None).cast(pl.Boolean)
    return e.cast(target, strict=False)


# `cache=False` on every strptime: the cache of unique strings only pays for a column of few
# distinct values, and a lab series has millions (measured: 0.63 s vs 0.09 s per million rows).
TEXT_TMP = "__text__"
NUM_TMP = "__num__"
TYPED_TMP = "__typed__"


def parse_steps(dtype: pl.DataType, col: ColumnSpec) -> tuple[list[list[pl.Expr]], pl.Expr, pl.Expr]:
    """`parse_expr` for a frame evaluated in steps: (steps, typed, raw), the same values.

    `steps` are lists of expressions to apply with `with_columns`, one list after another;
    they add helper columns (`__text__<col>`, ...) that the final select leaves out. Each
    intermediate is computed once as a column instead of being re-evaluated wherever the
    one-expression form repeats it (the streaming engine does not share common
    subexpressions), which halves the cost of parsing numbers and booleans.

    A timestamp written as text is parsed with the first accepted format, and the other formats
    are tried only on the cells it failed on (the others are masked to null, which costs
    nothing), instead of every format on every cell: the first format matches almost every
    cell of a canonical extract, and a failed strptime attempt is ~10x slower than a
    successful one. At most three steps per column: each step is a node of the streaming
    plan, and every node holds morsels of every column in flight (memory).
    Typed input and text/code columns have no steps: `parse_expr` unchanged.
    """
    if not (dtype == pl.Utf8 or dtype == pl.String) or col.type in ("text", "code"):
        typed, raw = parse_expr(dtype, col)
        return [], typed, raw
    name = col.name
    text, num, typed_col = pl.col(TEXT_TMP + name), pl.col(NUM_TMP + name), pl.col(TYPED_TMP + name)
    steps: list[list[pl.Expr]] = [[_clean_text(pl.col(name)).alias(TEXT_TMP + name)]]
    if col.type == "decimal":
        steps.append([text.cast(pl.Float64, strict=False).alias(NUM_TMP + name)])
        steps.append([pl.when(num.is_finite()).then(num).alias(TYPED_TMP + name)])
    elif col.type == "integer":
        steps.append([text.cast(pl.Float64, strict=False).alias(NUM_TMP + name)])
        ok = num.is_finite() & (num == num.round(0)) & (num.abs() < 9e15)
        steps.append([pl.when(ok).then(num).cast(pl.Int64, strict=False).alias(TYPED_TMP + name)])
    elif col.type == "boolean":
        steps.append([text.str.to_lowercase().alias(NUM_TMP + name)])
        steps.append([pl.when(num.is_in(TRUE_WORDS)).then(True).when(num.is_in(FALSE_WORDS)).then(False)
                      .otherwise(None).cast(pl.Boolean).alias(TYPED_TMP + name)])
    elif col.type == "date":
        # Exactly 10 characters: rejects `20219-01-01` and trailing garbage.
        d = text.str.strptime(pl.Date, "%Y-%m-%d", strict=False, cache=False)
        steps.append([pl.when(text.str.len_chars() == 10).then(d).alias(TYPED_TMP + name)])
    elif col.type == "timestamp":
        dt_us = pl.Datetime("us")
        first = pl.col(NUM_TMP + name)
        steps.append([text.str.strptime(dt_us, TIMESTAMP_FORMATS[0], strict=False, cache=False)
                      .alias(NUM_TMP + name)])
        # The other formats only where the first failed: a failed cell is tried against all of
        # them, and coalesce keeps the first that parses, in the order of TIMESTAMP_FORMATS.
        failed = pl.when(first.is_null()).then(text)
        later = [failed.str.strptime(dt_us, f, strict=False, cache=False) for f in TIMESTAMP_FORMATS[1:]]
        # A bare date is accepted as midnight: centers often record the day only.
        date_only = (
            pl.when(first.is_null() & (text.str.len_chars() == 10)).then(text)
            .str.strptime(pl.Date, "%Y-%m-%d", strict=False, cache=False).cast(dt_us)
        )
        steps.append([_year_window(pl.coalesce([first, *later, date_only])).alias(TYPED_TMP + name)])
    else:
        raise ValueError(f"unknown CDM type {col.type!r}")
    raw = pl.when(text.is_not_null() & typed_col.is_null()).then(text)
    return (steps, typed_col.cast(col.polars_type).alias(name),
            raw.cast(pl.Utf8).alias(RAW_PREFIX + name))
