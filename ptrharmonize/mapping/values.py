"""Source cells -> text, value maps, booleans and numbers (polars expressions).

Everything here is an expression over one source column, so a block's plan stays lazy and a
value that does not recode or parse is kept as written for validation to report.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import polars as pl

from .dates import DATE_OUT, TIMESTAMP_OUT
from .helpers import same
from .model import ValueMap

BOOL_WORDS = {"true": "true", "false": "false", "t": "true", "f": "false", "1": "true", "0": "false",
              "yes": "true", "no": "false", "y": "true", "n": "false"}


def to_text(name: str, dtype: pl.DataType) -> pl.Expr:
    """A source column as text, whatever its stored type (Parquet/SPSS keep types)."""
    c = pl.col(name)
    if dtype == pl.Utf8:
        return c
    if dtype == pl.Boolean:
        return pl.when(c).then(pl.lit("true")).when(~c).then(pl.lit("false"))
    if dtype == pl.Date:
        return c.dt.strftime(DATE_OUT)
    if isinstance(dtype, pl.Datetime):
        return c.dt.strftime(TIMESTAMP_OUT)
    if dtype.is_float():
        return pl.when(c.is_finite() & (c == c.round(0)) & (c.abs() < 1e15)).then(c.cast(pl.Int64).cast(pl.Utf8)).otherwise(c.cast(pl.Utf8))
    return c.cast(pl.Utf8)


def clean(e: pl.Expr, null_values: list[str]) -> pl.Expr:
    """Trimmed text; empty cells and the center's declared "unknown" spellings become null."""
    s = e.str.strip_chars()
    cond = (s == "") | s.is_null()
    if null_values:
        cond = cond | s.str.to_lowercase().is_in([v.strip().lower() for v in null_values])
    return pl.when(cond).then(pl.lit(None, pl.Utf8)).otherwise(s)


def apply_values(s: pl.Expr, vm: ValueMap, keep: Callable[[pl.Expr], pl.Expr] = same) -> tuple[pl.Expr, pl.Expr]:
    """(recoded text, whether the value was recognized by the map)."""
    key = keep(s.str.to_lowercase())
    expr = pl.when(pl.lit(False)).then(pl.lit(None, pl.Utf8))
    hit = pl.lit(False)
    if vm.exact:
        keys = list(vm.exact)
        in_map = key.is_in(keys)
        expr = pl.when(in_map).then(key.replace_strict(keys, [vm.exact[k] for k in keys], default=None, return_dtype=pl.Utf8))
        hit = in_map
    for rx, target in vm.patterns:
        m = keep(s.str.contains("(?i)" + rx))
        val = s.str.replace("(?i)" + rx, target) if target is not None and "$" in target else pl.lit(target, pl.Utf8)
        expr = expr.when(m).then(val)
        hit = hit | m.fill_null(False)
    if vm.has_default:
        expr = expr.when(s.is_not_null()).then(pl.lit(vm.default, pl.Utf8))
        hit = hit | s.is_not_null()
    return expr.otherwise(s), hit.fill_null(False)


def boolean_text(s: pl.Expr, fallback: pl.Expr, keep: Callable[[pl.Expr], pl.Expr] = same) -> pl.Expr:
    """`true`/`false` for the usual spellings (t/f, 1/0, yes/no, y/n), else `fallback`."""
    b = keep(s.str.to_lowercase().replace_strict(list(BOOL_WORDS), list(BOOL_WORDS.values()), default=None, return_dtype=pl.Utf8))
    return pl.when(b.is_not_null()).then(b).otherwise(fallback)


def number(s: pl.Expr, decimal: str, thousands: str | None, keep: Callable[[pl.Expr], pl.Expr] = same) -> pl.Expr:
    """The number a cell writes (thousands separator and spaces removed, decimal comma read),
    or null when the text is not a finite number written with the declared separators.

    Separators are checked, not just removed (issue 23): in a decimal-comma file `1.234` is not
    1.234 but, only when the mapping declares `thousands: "."`, 1234; undeclared it is reported.
    A declared thousands separator must group by three (`1.234.567,5`), so `1.5` in that file
    and `1,5` under `thousands: ","` are reported too, never read as another number."""
    t = keep(s.str.replace_all(" ", "", literal=True))
    d = re.escape(decimal)
    ok = t.str.contains(rf"^[+-]?([0-9]+({d}[0-9]*)?|{d}[0-9]+)([eE][+-]?[0-9]+)?$")
    if thousands:
        th = re.escape(thousands)
        ok = ok | t.str.contains(rf"^[+-]?[0-9]{{1,3}}({th}[0-9]{{3}})+({d}[0-9]*)?$")
        t = t.str.replace_all(thousands, "", literal=True)
    if decimal == ",":
        t = t.str.replace_all(",", ".", literal=True)
    f = keep(pl.when(ok).then(t).cast(pl.Float64, strict=False))
    return pl.when(f.is_finite()).then(f)


def unparsed(raw: pl.Expr, decimal: str, thousands: str | None) -> pl.Expr:
    """The text handed on for a cell `number` could not read. When that text would parse as a
    canonical number with another meaning (`1.234` in a decimal-comma column is not 1.234), it
    says why, so that the engine reports it instead of storing the other number (issue 23)."""
    if decimal == "." and not thousands:
        return raw
    sep = f"decimal '{decimal}'" + (f", thousands '{thousands}'" if thousands else ", no thousands separator")
    looks = raw.str.strip_chars().cast(pl.Float64, strict=False).is_not_null()
    return pl.when(looks).then(raw + pl.lit(f" (not a number as declared: {sep})")).otherwise(raw)


def number_text(f: pl.Expr) -> pl.Expr:
    return f.cast(pl.Utf8)


def integer_text(n: pl.Expr, raw: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(canonical text of a whole number, else the raw text; the number where it is whole)."""
    r = n.round(0)
    ok = (n - r).abs() <= 1e-9 * pl.max_horizontal(pl.lit(1.0), r.abs())
    return pl.when(n.is_not_null() & ok).then(r.cast(pl.Int64).cast(pl.Utf8)).otherwise(raw), pl.when(ok).then(n)
