"""The plan of one source block: a lazy polars query from the center's columns to CDM columns.

Rename (source columns are looked up literally, never as patterns), recode (value maps),
convert (units), parse (numbers, booleans, dates) and fill (the center's conventions), all as
expressions over a LazyFrame, so a submission streams from its files to the validation stage
without being held whole. Values come out as canonical text; a value that does not parse,
convert or recode is left as written, for validation to report at its source row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from .. import units as unitreg
from ..cdm import FILE_COL, ROW_COL, ColumnSpec, TableSpec
from .dates import date_text
from .helpers import Helpers
from .language import CENTER_COLUMN, text_of
from .measure import UnitRule, measured
from .model import ColumnMap, Convention, Mapping, Roles, SourceBlock
from .values import (
    apply_values,
    boolean_text,
    clean,
    integer_text,
    number,
    number_text,
    to_text,
    unparsed,
)


@dataclass
class Source:
    """One source file (or sheet) as a LazyFrame whose source columns have internal names."""

    lf: pl.LazyFrame
    schema: dict[str, pl.DataType]  # internal name -> dtype
    safe: dict[str, str]  # source column name -> internal name
    block: SourceBlock
    excel: bool = False
    helpers: Helpers = field(default_factory=Helpers)  # intermediates computed once (helpers.py)

    def keep(self, expr: pl.Expr) -> pl.Expr:
        return self.helpers.keep(expr)

    def text(self, name: str) -> pl.Expr:
        internal = self.safe[name]
        return self.helpers.keep(clean(to_text(internal, self.schema[internal]), self.block.null_values),
                                 key=("text", name))

    def raw(self, cm: ColumnMap) -> pl.Expr:
        """The cell as cleaned text (a constant, or the date joined to its time column)."""
        if cm.is_constant:
            return pl.lit(text_of(cm.constant), pl.Utf8)
        raw = self.text(cm.column or "")
        if cm.time_column:
            t = self.text(cm.time_column)
            raw = self.helpers.keep(
                pl.when(raw.is_not_null() & t.is_not_null()).then(pl.concat_str([raw, pl.lit(" "), t])).otherwise(raw),
                key=("raw", cm.column, cm.time_column))
        return raw


@dataclass
class Column:
    text: pl.Expr  # canonical text
    num: pl.Expr | None = None  # the number, for numeric columns
    hit: pl.Expr | None = None  # recognized by the value map


def _numeric(src: Source, col: ColumnSpec, cm: ColumnMap, s: pl.Expr, raw: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    n = number(s, cm.decimal, cm.thousands, src.keep)
    raw = unparsed(raw, cm.decimal, cm.thousands)
    if cm.unit and col.unit:
        scale, shift = unitreg.linear(cm.unit, col.unit)
        n = n * scale if scale != 1.0 else n
        n = n + shift if shift != 0.0 else n
    n = src.keep(n)
    if col.type == "integer":
        return integer_text(n, raw)
    return pl.when(n.is_not_null()).then(number_text(n)).otherwise(raw), n


def column(src: Source, col: ColumnSpec, cm: ColumnMap) -> Column:
    """One CDM column from its source: recoded, converted and parsed as the CDM type says."""
    raw = src.raw(cm)
    s, hit = raw, None
    if cm.values is not None:
        s, hit = apply_values(raw, cm.values, src.keep)
        hit = src.keep(hit)
        if cm.unmapped == "null":
            s = pl.when(hit | raw.is_null()).then(s)
        s = src.keep(s)
    if col.type in ("integer", "decimal"):
        text, num = _numeric(src, col, cm, s, raw)
        return Column(text, num, hit)
    if col.type in ("date", "timestamp"):
        ts = col.type == "timestamp"
        b = src.block
        declared = cm.formats or (b.timestamp_formats if ts else b.date_formats)
        if not ts and not cm.formats and b.timestamp_formats:
            declared = [*(declared or []), *b.timestamp_formats]
        return Column(date_text(s, raw, declared, ts, src.excel, src.keep), None, hit)
    if col.type == "boolean":
        return Column(boolean_text(s, raw if cm.values is None else s, src.keep), None, hit)
    return Column(s, None, hit)  # text and codes: the (recoded) text as written


# ---------------------------------------------------------------------------------- conventions


def _content(value: Any, by: pl.Expr | None) -> pl.Expr:
    """The convention's number for each row: one value, or one per code of `by` (+ default)."""
    if not isinstance(value, dict):
        return pl.lit(float(value))
    default = pl.lit(float(value["default"])) if "default" in value else pl.lit(None, pl.Float64)
    codes = {str(k): float(v) for k, v in value.items() if k != "default"}
    if by is None or not codes:
        return default
    return by.replace_strict(list(codes), list(codes.values()), default=default, return_dtype=pl.Float64)


def _convention(conv: Convention, value: Any, cols: dict[str, Column], mapped: set[str]) -> pl.Expr | None:
    """The column a convention fills (None when the block gives it what it needs)."""
    if conv.multiply is not None:
        base = cols.get(conv.multiply)
        if base is None or base.num is None:
            return None
        by = cols[conv.by].text if conv.by and conv.by in cols else None
        derived = number_text(base.num * _content(value, by))
        given = cols.get(conv.fills)
        return derived if given is None else pl.when(given.text.is_not_null()).then(given.text).otherwise(derived)
    if conv.fills in mapped:
        return None
    when = cols.get(conv.when) if conv.when else None
    if conv.when and when is None:
        return None
    lit = pl.lit(text_of(value), pl.Utf8)
    return lit if when is None else pl.when(when.text.is_not_null()).then(lit)


def _conventions(table: str, mapping: Mapping, roles: Roles, cols: dict[str, Column]) -> dict[str, pl.Expr]:
    out: dict[str, pl.Expr] = {}
    mapped = set(cols)
    for conv in roles.for_table(table):
        value = mapping.conventions.get(conv.name)
        if value is None:
            continue
        e = _convention(conv, value, cols, mapped)
        if e is not None:
            out[conv.fills] = e
    return out


# ---------------------------------------------------------------------------------- blocks


def _finish(lf: pl.LazyFrame, tspec: TableSpec) -> pl.LazyFrame:
    """CDM column order; unmapped optional columns as empty text; unmapped required ones left
    out so that validation reports the column missing once rather than every cell."""
    names = set(lf.collect_schema().names())
    cols = []
    for c in tspec.columns:
        if c.name in names:
            cols.append(pl.col(c.name).cast(pl.Utf8))
        elif not c.required:
            cols.append(pl.lit(None, pl.Utf8).alias(c.name))
    return lf.select([*cols, pl.col(FILE_COL), pl.col(ROW_COL).cast(pl.Int64)])


def _rows(src: Source) -> pl.LazyFrame:
    """The source with its helper columns (every expression of the block is built before this
    is called), filtered to the block's rows."""
    rows = src.block.rows
    filters: list[pl.Expr] = []
    if rows:
        s = src.text(str(rows["column"]))
        if "in" in rows:
            filters.append(s.is_in([text_of(v) for v in rows["in"]]).fill_null(False))
        if "not_in" in rows:
            filters.append(~s.is_in([text_of(v) for v in rows["not_in"]]).fill_null(False))
    lf = src.helpers.apply(src.lf)
    for f in filters:
        lf = lf.filter(f)
    return lf


def _base_columns(src: Source, tspec: TableSpec, skip: set[str]) -> tuple[dict[str, Column], list[pl.Expr]]:
    """The block's mapped columns (except `skip`) and the filters of `unmapped: drop`."""
    cols: dict[str, Column] = {}
    drops: list[pl.Expr] = []
    for name, cm in src.block.columns.items():
        if name in skip:
            continue
        c = column(src, tspec.column(name), cm)
        cols[name] = c
        if cm.unmapped == "drop" and c.hit is not None:
            drops.append(c.hit | src.raw(cm).is_null())
    return cols, drops


def _measure_rule(block: SourceBlock, cm: ColumnMap, canonical: dict[str, str]) -> UnitRule:
    return UnitRule(declared=cm.unit, by_analyte=block.units_by_analyte, canonical=canonical)


def plan_block(src: Source, mapping: Mapping, tspec: TableSpec, roles: Roles) -> pl.LazyFrame:
    """The lazy query of one source block: CDM-named text columns, `_file` and `_row`."""
    block = src.block
    m = roles.measurement if roles.is_measurement(block.table) else None
    if m is not None and block.unpivot is not None:
        return _plan_unpivot(src, mapping, tspec, roles)
    skip = {m.value} if m is not None else set()
    cols, drops = _base_columns(src, tspec, skip)
    exprs = {n: c.text for n, c in cols.items()}
    if CENTER_COLUMN not in exprs:
        exprs[CENTER_COLUMN] = pl.lit(mapping.center_id, pl.Utf8)
    if m is not None and m.value in block.columns:
        cm = block.columns[m.value]
        analyte = exprs.get(m.analyte, pl.lit(None, pl.Utf8))
        value, unit, below = measured(src.raw(cm), cm, analyte, exprs.get(m.unit), _measure_rule(block, cm, m.canonical_units),
                                       src.keep)
        flag = exprs.get(m.below_lod)
        exprs[m.value], exprs[m.unit] = value, unit
        exprs[m.below_lod] = below if flag is None else pl.when(flag == "true").then(pl.lit("true")).otherwise(pl.coalesce([below, flag]))
    exprs.update(_conventions(block.table, mapping, roles, cols))
    lf = _rows(src)
    if drops:
        lf = lf.filter(pl.all_horizontal(drops))
    lf = lf.select([e.alias(n) for n, e in exprs.items()] + [pl.col(FILE_COL), pl.col(ROW_COL).cast(pl.Int64)])
    return _finish(lf, tspec)


def _plan_unpivot(src: Source, mapping: Mapping, tspec: TableSpec, roles: Roles) -> pl.LazyFrame:
    """One measurement row per non-empty analyte cell, in source order (row, then analyte)."""
    block, m = src.block, roles.measurement
    assert m is not None and block.unpivot is not None
    cols, drops = _base_columns(src, tspec, set())
    base = {n: c.text for n, c in cols.items()}
    base.setdefault(CENTER_COLUMN, pl.lit(mapping.center_id, pl.Utf8))
    flag = base.pop(m.below_lod, None)
    parts = []
    for analyte, cm in block.unpivot.items():
        if cm.is_constant:
            continue
        rule = UnitRule(declared=None, by_analyte={analyte: cm.unit} if cm.unit else block.units_by_analyte,
                        canonical=m.canonical_units)
        raw = src.raw(cm)
        value, unit, below = measured(raw, cm, analyte, None, rule, src.keep)
        if flag is not None:
            below = pl.when(flag == "true").then(pl.lit("true")).otherwise(below)
        parts.append(pl.struct(raw.is_not_null().alias("p"), pl.lit(analyte, pl.Utf8).alias(m.analyte),
                               value.alias(m.value), unit.alias(m.unit), below.alias(m.below_lod)))
    lf = _rows(src)
    if drops:
        lf = lf.filter(pl.all_horizontal(drops))
    if not parts:
        lf = lf.select([e.alias(n) for n, e in base.items()] + [pl.col(FILE_COL), pl.col(ROW_COL).cast(pl.Int64)]).head(0)
        return _finish(lf, tspec)
    lf = (
        lf.select([e.alias(n) for n, e in base.items()] + [pl.concat_list(parts).alias("__m"), pl.col(FILE_COL), pl.col(ROW_COL).cast(pl.Int64)])
        .explode("__m")
        .filter(pl.col("__m").struct.field("p"))
        .with_columns(pl.col("__m").struct.field(m.analyte, m.value, m.unit, m.below_lod))
        .drop("__m")
    )
    return _finish(lf, tspec)
