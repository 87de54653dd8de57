"""Write a part of the truth the way its mapping reads it: source columns, codes, units, dates.

Text formats (CSV) get text in the declared decimal mark and date formats; typed formats
(Excel, SPSS, Parquet) get typed numbers and dates unless the mapping declares a text format
for the column (`format: "%m/%d/%Y"`, or `excel_serial` for a day number). A value a defect
made unreadable (text in a number or date column) is written exactly as planted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from .. import units as unitreg
from ..cdm import Catalog, ColumnSpec
from ..mapping.dates import EXCEL_SERIAL, has_time
from ..mapping.model import ColumnMap, Measurement, roles
from .invert import NATIVE_DECIMALS, Part, written_as, written_unit

ISO_DATE = "%Y-%m-%d"
ISO_TS = "%Y-%m-%dT%H:%M:%S"


@dataclass
class Written:
    """A part as the center's file holds it: source column names, values as written."""

    part: Part
    frame: pl.DataFrame
    numeric_text: set[str] = field(default_factory=set)  # Excel: text columns that hold numbers
    labels: dict[str, list[str]] = field(default_factory=dict)  # SPSS: value labels, codes 1..n
    booleans: dict[str, tuple[str, str]] = field(default_factory=dict)  # SPSS: (false, true) labels: 0/1
    file_rows: list[int] | None = None  # the file row of each row, where not first_row() + index (REDCap)


def _typed(c: pl.Expr, dtype: pl.DataType, col: ColumnSpec) -> pl.Expr:
    """The typed value of a column a planted defect may have turned into text."""
    if dtype != pl.Utf8 or col.type in ("text", "code"):
        return c
    if col.type in ("integer", "decimal"):
        return c.cast(pl.Float64, strict=False)
    if col.type == "date":
        return c.str.strptime(pl.Date, ISO_DATE, strict=False)
    if col.type == "timestamp":
        return c.str.strptime(pl.Datetime("us"), ISO_TS, strict=False)
    return c.replace_strict({"true": True, "false": False}, default=None, return_dtype=pl.Boolean)


def num_text(n: pl.Expr, decimal: str) -> pl.Expr:
    """A number as a center writes it: whole numbers without decimals, its decimal mark."""
    t = pl.when(n == n.round(0)).then(n.cast(pl.Int64, strict=False).cast(pl.Utf8)).otherwise(n.cast(pl.Utf8))
    return t.str.replace(".", ",", literal=True) if decimal == "," else t


def _date_format(part: Part, cm: ColumnMap, timestamp: bool) -> str | None:
    if cm.formats:
        return cm.formats[0]
    b = part.block
    formats = b.timestamp_formats if timestamp else b.date_formats
    return formats[0] if formats else None


class Writer:
    """Writes the columns of one part."""

    def __init__(self, part: Part, catalog: Catalog) -> None:
        self.part, self.catalog = part, catalog
        self.tspec = catalog.tables[part.table]
        self.text = part.kind in ("csv", "redcap")
        self.labels_on = part.kind == "spss" and bool(part.block.reader_options.get("value_labels"))
        self.out = Written(part, pl.DataFrame())

    def _labelled(self, name: str, cm: ColumnMap, col: ColumnSpec, values: dict[str, str]) -> None:
        if not self.labels_on:
            return
        if col.type == "boolean":
            self.out.booleans[name] = (values.get("false", "false"), values.get("true", "true"))
        else:
            self.out.labels[name] = list(dict.fromkeys(values.values()))

    def codes(self, c: pl.Expr, cm: ColumnMap, col: ColumnSpec, name: str, domain: list[str]) -> pl.Expr:
        """Codes (or true/false) as the center writes them: the value map inverted."""
        values = {d: written_as(cm.values, d) for d in domain}
        self._labelled(name, cm, col, values)
        return c.replace_strict(values, default=c, return_dtype=pl.Utf8)

    def number(self, raw: pl.Expr, c: pl.Expr, col: ColumnSpec, cm: ColumnMap, unit: str | None) -> pl.Expr:
        n = c
        if unit and col.unit:
            n = unitreg.convert(c, col.unit, unit).round(NATIVE_DECIMALS)
        if self.text or raw is not c:
            keep = raw if raw is not c else None
            t = num_text(n, cm.decimal)
            return t if keep is None else pl.when(n.is_not_null()).then(t).otherwise(keep)
        return n

    def date(self, raw: pl.Expr, c: pl.Expr, col: ColumnSpec, cm: ColumnMap) -> tuple[pl.Expr, pl.Expr | None]:
        """(the date cell, the time cell when the mapping joins a time column)."""
        ts = col.type == "timestamp"
        fmt = _date_format(self.part, cm, ts)
        if fmt == EXCEL_SERIAL:
            days = (c.cast(pl.Datetime("us")) - pl.datetime(1899, 12, 30)).dt.total_seconds() / 86400
            return (days.cast(pl.Utf8) if self.text else days), None
        if cm.time_column:
            dfmt, _, tfmt = (fmt or f"{ISO_DATE} %H:%M:%S").partition(" ")
            return c.dt.strftime(dfmt), c.dt.strftime(tfmt or "%H:%M:%S")
        if fmt is None and not self.text and raw is c:
            return c, None  # a typed date cell
        out = c.dt.strftime(fmt or (ISO_TS if ts else ISO_DATE))
        if fmt is not None and not ts and has_time(fmt):
            out = c.cast(pl.Datetime("us")).dt.strftime(fmt)
        return (out if raw is c else pl.when(c.is_not_null()).then(out).otherwise(raw)), None

    def column(self, name: str, cm: ColumnMap, dtype: pl.DataType) -> list[pl.Expr]:
        """The source cell(s) of one CDM column (two with a time column; none for a constant)."""
        if cm.is_constant or cm.column is None:
            return []
        col = self.tspec.column(name)
        raw = pl.col(name)
        c = _typed(raw, dtype, col)
        if col.type == "boolean":
            out = self._boolean(c, cm, col)
        elif col.type in ("integer", "decimal") and cm.values is not None:
            text = num_text(c, ".")
            domain = self.part.frame.select(text.alias("t")).get_column("t").drop_nulls().unique().to_list()
            out = self.codes(text, cm, col, cm.column, domain)
        elif col.type in ("integer", "decimal"):
            out = self.number(raw, c, col, cm, cm.unit)
        elif col.type in ("date", "timestamp"):
            out, time = self.date(raw, c, col, cm)
            if time is not None:
                return [out.alias(cm.column), time.alias(cm.time_column or "")]
        elif cm.values is not None:
            out = self.codes(c, cm, col, cm.column, list(col.codes or ()) or self._domain(name))
        else:
            out = c
        return [out.alias(cm.column)]

    def _boolean(self, c: pl.Expr, cm: ColumnMap, col: ColumnSpec) -> pl.Expr:
        if cm.values is not None or self.text:
            text = pl.when(c).then(pl.lit("true")).when(~c).then(pl.lit("false"))
            return self.codes(text, cm, col, cm.column or "", ["true", "false"])
        return c.cast(pl.Float64) if self.part.kind == "spss" else c

    def _domain(self, name: str) -> list[str]:
        return [v for v in self.part.frame.get_column(name).unique().to_list() if v is not None]

    def rows_filter(self) -> list[pl.Expr]:
        rows = self.part.block.rows
        if not rows or "in" not in rows:
            return []
        return [pl.lit(str(rows["in"][0])).alias(str(rows["column"]))]

    def base(self, skip: set[str]) -> list[pl.Expr]:
        schema = self.part.frame.schema
        exprs: list[pl.Expr] = []
        for name, cm in self.part.block.columns.items():
            if name not in skip:
                exprs += self.column(name, cm, schema[name])
        return exprs + self.rows_filter()


# ---------------------------------------------------------------------------------- measurements


def _lab_value(w: Writer, m: Measurement, analytes: dict[str, ColumnMap], prefix: bool) -> pl.Expr:
    """Each row's value in the unit the block writes its analyte in, with the LOD prefix."""
    v = _typed(pl.col(m.value), w.part.frame.schema[m.value], w.tspec.column(m.value))
    chain = pl.when(pl.lit(False)).then(pl.lit(None, pl.Utf8))
    for a, cm in analytes.items():
        unit = written_unit(w.part.block, m, a)
        n = unitreg.convert(v, m.canonical_units[a], unit).round(NATIVE_DECIMALS)
        text = num_text(n, cm.decimal if w.text else ".")
        if prefix and cm.below_lod:
            text = pl.when(pl.col(m.below_lod)).then(pl.lit(cm.below_lod[0]) + text).otherwise(text)
        chain = chain.when(pl.col(m.analyte) == a).then(text)
    value = chain.otherwise(pl.lit(None, pl.Utf8))
    if w.part.frame.schema[m.value] == pl.Utf8:  # a planted text value stays as written
        value = pl.when(v.is_null() & pl.col(m.value).is_not_null()).then(pl.col(m.value)).otherwise(value)
    return value


def _write_long(w: Writer, m: Measurement) -> Written:
    b, df = w.part.block, w.part.frame
    value_cm = b.columns[m.value]
    exprs = w.base({m.analyte, m.value, m.unit, m.below_lod})
    acm = b.columns.get(m.analyte)
    if acm is not None and acm.column:
        names = {a: written_as(acm.values, a) for a in w.part.analytes}
        if w.labels_on:
            w.out.labels[acm.column] = list(names.values())
        exprs.append(pl.col(m.analyte).replace_strict(names, default=pl.col(m.analyte), return_dtype=pl.Utf8).alias(acm.column))
    flag = b.columns.get(m.below_lod)
    exprs.append(_lab_value(w, m, dict.fromkeys(w.part.analytes, value_cm), prefix=flag is None).alias(value_cm.column or m.value))
    ucm = b.columns.get(m.unit)
    if ucm is not None and ucm.column:
        units = {a: written_unit(b, m, a) for a in w.part.analytes}
        exprs.append(pl.col(m.analyte).replace_strict(units, default=None, return_dtype=pl.Utf8).alias(ucm.column))
    if flag is not None:
        exprs += w.column(m.below_lod, flag, df.schema[m.below_lod])
    w.out.frame = df.select(exprs)
    if w.part.kind == "excel":
        w.out.numeric_text = {value_cm.column or m.value}
    elif w.part.kind == "spss" and df.schema[m.value] != pl.Utf8:
        w.out.frame = w.out.frame.with_columns(pl.col(value_cm.column or m.value).cast(pl.Float64, strict=False))
    return w.out


def _write_wide(w: Writer, m: Measurement) -> Written:
    b, df = w.part.block, w.part.frame
    assert b.unpivot is not None
    ids = w.base({m.below_lod})
    id_names = [e.meta.output_name() for e in ids]
    analytes = {a: b.unpivot[a] for a in w.part.analytes}
    long = df.select([*ids, pl.col(m.analyte).replace_strict({a: cm.column for a, cm in analytes.items()},
                                                             return_dtype=pl.Utf8).alias("__label"),
                      _lab_value(w, m, analytes, prefix=True).alias("__value")])
    labels = [str(cm.column) for cm in analytes.values()]
    wide = (long.pivot(on="__label", index=id_names, values="__value", aggregate_function="first", maintain_order=True)
            if long.height else pl.DataFrame(schema={n: long.schema[n] for n in id_names}))
    wide = wide.with_columns([pl.lit(None, pl.Utf8).alias(x) for x in labels if x not in wide.columns])
    w.out.frame = wide.select([*id_names, *labels])
    if w.part.kind == "excel":
        w.out.numeric_text = set(labels)
    return w.out


def write_part(part: Part, catalog: Catalog) -> Written:
    """The part as its file holds it."""
    w = Writer(part, catalog)
    cdm = roles(catalog)
    if cdm.is_measurement(part.table) and cdm.measurement is not None:
        return _write_wide(w, cdm.measurement) if part.wide else _write_long(w, cdm.measurement)
    w.out.frame = part.frame.select(w.base(set()))
    return w.out
