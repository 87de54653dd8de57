"""Measurements: a value and its unit per row -> the analyte's canonical unit (expressions).

The source unit of a row is, in order: the row's unit column, the column's declared `unit`,
the block's `units_by_analyte`, else the analyte's canonical unit (no conversion). A unit the
registry does not know, or of the wrong dimension, leaves the value and the unit as written, so
validation reports the row. Unit spellings are data: looked up in the registry, never evaluated.
When the analyte and unit are known when the plan is built (one column per analyte) the factor
is a literal; otherwise each batch's distinct (analyte, unit) pairs are looked up once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from .. import units as unitreg
from .helpers import same
from .model import ColumnMap
from .values import apply_values, number, number_text, unparsed

_FACTORS = pl.Struct({"scale": pl.Float64, "shift": pl.Float64, "unit": pl.Utf8})


@dataclass
class UnitRule:
    """Where a measurement's unit comes from when its row does not say."""

    declared: str | None  # the column's `unit`
    by_analyte: dict[str, str]  # the block's units_by_analyte
    canonical: dict[str, str]  # analyte -> canonical unit

    def factor(self, analyte: str | None, unit: str | None) -> tuple[float | None, float | None, str | None]:
        """(scale, shift, unit written out) for a row's analyte and unit text."""
        target = self.canonical.get(analyte) if analyte is not None else None
        src = unit if unit is not None else (self.declared or self.by_analyte.get(analyte or "") or target)
        if target is not None and src is not None:
            try:
                scale, shift = unitreg.linear(src, target)
                return scale, shift, target
            except unitreg.UnitError:
                pass
        return None, None, unit if unit is not None else src


def _batch_lookup(rule: UnitRule) -> Callable[[pl.Series], pl.Series]:
    cache: dict[tuple[str | None, str | None], tuple[float | None, float | None, str | None]] = {}

    def lookup(s: pl.Series) -> pl.Series:
        pairs = s.struct.unnest()
        pairs.columns = ["a", "u"]
        rows = []
        for a, u in pairs.unique().iter_rows():
            if (a, u) not in cache:
                cache[(a, u)] = rule.factor(a, u)
            rows.append((a, u, *cache[(a, u)]))
        table = pl.DataFrame(rows, schema={"a": pl.Utf8, "u": pl.Utf8, "scale": pl.Float64, "shift": pl.Float64,
                                           "unit": pl.Utf8}, orient="row")
        out = pairs.join(table, on=["a", "u"], how="left", nulls_equal=True, maintain_order="left")
        return out.select(pl.struct("scale", "shift", "unit")).to_series()

    return lookup


def _factors(analyte: str | pl.Expr, unit: pl.Expr | None, rule: UnitRule,
             keep: Callable[[pl.Expr], pl.Expr] = same) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    if isinstance(analyte, str) and unit is None:
        scale, shift, out = rule.factor(analyte, None)
        return pl.lit(scale, pl.Float64), pl.lit(shift, pl.Float64), pl.lit(out, pl.Utf8)
    a = pl.lit(analyte, pl.Utf8) if isinstance(analyte, str) else analyte
    u = unit if unit is not None else pl.lit(None, pl.Utf8)
    # One lookup per batch (not one per field read below).
    f = keep(pl.struct(a.alias("a"), u.alias("u")).map_batches(_batch_lookup(rule), return_dtype=_FACTORS,
                                                                is_elementwise=True))
    return f.struct.field("scale"), f.struct.field("shift"), f.struct.field("unit")


def measured(raw: pl.Expr, cm: ColumnMap, analyte: str | pl.Expr, unit: pl.Expr | None,
             rule: UnitRule, keep: Callable[[pl.Expr], pl.Expr] = same) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(value, unit, below_lod) as canonical text for one measured value column.

    A value written with a below-the-limit prefix (`<1.5`) is the limit, flagged; a value that
    is not a number stays as written (and so does its unit, when it does not convert)."""
    s = keep(apply_values(raw, cm.values, keep)[0]) if cm.values is not None else raw
    lod = pl.lit(False)
    if cm.below_lod:
        lod = keep(pl.any_horizontal([s.str.starts_with(p) for p in cm.below_lod]).fill_null(False))
        for p in cm.below_lod:
            s = keep(pl.when(s.str.starts_with(p)).then(s.str.strip_prefix(p).str.strip_chars()).otherwise(s))
    n = keep(number(s, cm.decimal, cm.thousands, keep))
    raw = unparsed(raw, cm.decimal, cm.thousands)
    scale, shift, unit_out = _factors(analyte, unit, rule, keep)
    conv = keep(n * scale + shift)
    value = pl.when(conv.is_not_null()).then(number_text(conv)).when(n.is_not_null()).then(number_text(n)).otherwise(raw)
    below = pl.when(n.is_not_null()).then(pl.when(lod).then(pl.lit("true")).otherwise(pl.lit("false")))
    return value, unit_out, below
