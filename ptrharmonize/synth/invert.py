"""A center's shape, read from its mapping: canonical truth -> the center's own files.

The generator does not restate how a demo center writes its data; it inverts the center's
mapping (`mappings/<center>.yaml`): each source block becomes a file (or sheet) with the
block's column names, each code is written as the first source value the value map reads as
that code, numbers in the declared unit (and decimal mark), dates in the declared format,
measurements long (analyte names and units per row) or one column per analyte, below-the-limit
values with the declared prefix or flag. Reading the files back through the same mapping gives
the (quantized) truth: `quantize` rounds the truth to what the center's files can say.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from .. import units as unitreg
from ..cdm import Catalog, ColumnSpec
from ..mapping import Mapping, SourceBlock, ValueMap, roles
from ..mapping.model import ColumnMap, Measurement, Roles
from ..read import format_of

NATIVE_DECIMALS = 2  # a value converted to the center's unit is written with two decimals
ISO_DATE = "%Y-%m-%d"
ISO_TS = "%Y-%m-%dT%H:%M:%S"
EXCEL_EPOCH = pl.datetime(1899, 12, 30)


# ---------------------------------------------------------------------------------- value maps


def forward(vm: ValueMap, s: str) -> str | None:
    """What the mapping reads `s` as (the Python twin of `mapping.values.apply_values`)."""
    key = s.strip().casefold()
    if key in vm.exact:
        return vm.exact[key]
    for rx, target in vm.patterns:
        m = re.search(rx, s, flags=re.IGNORECASE)
        if m:
            return m.expand(target.replace("$", "\\")) if target is not None and "$" in target else target
    return vm.default if vm.has_default else s


def _alternatives(rx: str) -> list[str]:
    """The plain-text alternatives of a pattern like `tocilizumab|actemra` (others skipped)."""
    return [a for a in rx.split("|") if re.fullmatch(r"[\w .()/+-]+", a) and not re.search(r"[.()+]", a)]


def written_as(vm: ValueMap | None, target: str) -> str:
    """The first source value the map reads as `target` (the target itself if none is found)."""
    if vm is None:
        return target
    candidates = [k for k, t in vm.written if t == target] + [target]
    for rx, t in vm.patterns:
        if t == target:
            candidates += _alternatives(rx)
    for c in candidates:
        if forward(vm, c) == target:
            return c
    return target


# ---------------------------------------------------------------------------------- the center


@dataclass
class Profile:
    """What the truth generator needs to know about a center, from its mapping."""

    center_id: str
    id_prefix: str
    products: list[str]
    content: dict[str, float]  # x10^11 platelets in one unit, by product
    crs_scale: str | None
    tables: list[str] = field(default_factory=list)


def _column_maps(mapping: Mapping, table: str, name: str) -> list[ColumnMap]:
    return [b.columns[name] for b in mapping.blocks if b.table == table and name in b.columns]


def profile(mapping: Mapping, catalog: Catalog) -> Profile:
    cdm = roles(catalog)
    content: dict[str, float] = {}
    products: list[str] = []
    scale = None
    for conv in cdm.conventions.values():
        value = mapping.conventions.get(conv.name)
        if conv.multiply is not None and conv.by:
            codes = list(catalog.tables[conv.table].column(conv.by).codes or ())
            given = value if isinstance(value, dict) else {c: value for c in codes} if value is not None else {}
            content = {str(k): float(v) for k, v in given.items() if k != "default"}
            maps = [cm.values for cm in _column_maps(mapping, conv.table, conv.by) if cm.values]
            products = [c for c in codes if any(c in vm.targets() for vm in maps)] or list(content) or codes
            if isinstance(value, dict) and "default" in value:
                content.update({c: float(value["default"]) for c in products if c not in content})
        elif conv.when is not None:
            scale = value
    cid = mapping.center_id or "X"
    prefix = re.sub(r"[^A-Za-z0-9]", "", cid.split("-")[-1]) or "P"
    return Profile(center_id=cid, id_prefix=prefix, products=products, content=content, crs_scale=scale,
                   tables=mapping.tables())


# ---------------------------------------------------------------------------------- measurements


def measurement_blocks(mapping: Mapping, m: Measurement) -> list[tuple[SourceBlock, list[str]]]:
    """Each measurement block with the analytes it writes (an analyte goes to the first block
    that can say it: its unpivot columns, or the targets of its analyte value map)."""
    out, taken = [], set()
    for b in mapping.blocks:
        if b.table != m.table:
            continue
        if b.unpivot is not None:
            can = list(b.unpivot)
        else:
            cm = b.columns.get(m.analyte)
            vm = cm.values if cm else None
            can = [a for a in m.canonical_units if vm is None or a in vm.targets()]
        mine = [a for a in can if a not in taken]
        taken |= set(mine)
        out.append((b, mine))
    return out


def written_unit(block: SourceBlock, m: Measurement, analyte: str) -> str:
    """The unit a block writes an analyte in (its unpivot column's, else units_by_analyte, the
    value's declared unit, else canonical)."""
    if block.unpivot is not None and block.unpivot[analyte].unit:
        return str(block.unpivot[analyte].unit)
    value = block.columns.get(m.value)
    return block.units_by_analyte.get(analyte) or (value.unit if value and value.unit else None) or m.canonical_units[analyte]


def _value_cm(block: SourceBlock, m: Measurement, analyte: str) -> ColumnMap | None:
    return block.unpivot[analyte] if block.unpivot is not None else block.columns.get(m.value)


# ---------------------------------------------------------------------------------- quantize


def round_trip(e: pl.Expr, canon: str, native: str) -> pl.Expr:
    """The canonical value a center means when it writes `e` in its unit with two decimals."""
    return unitreg.convert(unitreg.convert(e, canon, native).round(NATIVE_DECIMALS), native, canon)


def _quantize_labs(df: pl.DataFrame, mapping: Mapping, m: Measurement) -> pl.DataFrame:
    value, below = pl.col(m.value), pl.col(m.below_lod)
    v_chain = pl.when(pl.lit(False)).then(pl.lit(None, pl.Float64))
    b_chain = pl.when(pl.lit(False)).then(pl.lit(None, pl.Boolean))
    keep: list[str] = []
    for block, analytes in measurement_blocks(mapping, m):
        flag = m.below_lod in block.columns and not block.columns[m.below_lod].is_constant
        for a in analytes:
            keep.append(a)
            cm = _value_cm(block, m, a)
            says_lod = flag or bool(cm and cm.below_lod)
            is_a = pl.col(m.analyte) == a
            v_chain = v_chain.when(is_a).then(round_trip(value, m.canonical_units[a], written_unit(block, m, a)))
            b_chain = b_chain.when(is_a).then(below if says_lod else pl.when(value.is_not_null()).then(pl.lit(False)))
    df = df.filter(pl.col(m.analyte).is_in(keep))
    return df.with_columns(v_chain.otherwise(value).alias(m.value), b_chain.otherwise(below).alias(m.below_lod))


def _quantize_column(col: ColumnSpec, cms: list[ColumnMap]) -> pl.Expr | None:
    if not cms:
        return None if col.required else pl.lit(None, col.polars_type).alias(col.name)
    cm = cms[0]
    if cm.is_constant:
        return pl.lit(str(cm.constant)).cast(col.polars_type, strict=False).alias(col.name)
    if cm.unit and col.unit and col.type in ("integer", "decimal"):
        return round_trip(pl.col(col.name), col.unit, cm.unit).alias(col.name)
    return None


def _quantize_conventions(df: pl.DataFrame, table: str, mapping: Mapping, cdm: Roles) -> pl.DataFrame:
    mapped = {c for b in mapping.blocks if b.table == table for c in b.columns}
    for conv in cdm.for_table(table):
        value = mapping.conventions.get(conv.name)
        if value is None or (conv.fills in mapped and conv.multiply is None):
            continue
        if conv.multiply is not None:
            if conv.fills in mapped or conv.multiply not in mapped:
                continue
            per = (pl.col(conv.by).replace_strict({str(k): float(v) for k, v in value.items() if k != "default"},
                                                  default=float(value["default"]) if "default" in value else None,
                                                  return_dtype=pl.Float64)
                   if isinstance(value, dict) else pl.lit(float(value)))
            df = df.with_columns((pl.col(conv.multiply) * per).alias(conv.fills))
        else:
            df = df.with_columns(pl.when(pl.col(conv.when).is_not_null()).then(pl.lit(str(value))).alias(conv.fills))
    return df


def quantize(truth: dict[str, pl.DataFrame], mapping: Mapping, catalog: Catalog) -> dict[str, pl.DataFrame]:
    """The truth as the center's files can say it: only the tables and columns it maps,
    constants as declared, numbers rounded in the center's unit, conventions applied."""
    cdm = roles(catalog)
    out: dict[str, pl.DataFrame] = {}
    for table in mapping.tables():
        if table not in truth:
            continue
        df = truth[table]
        if cdm.is_measurement(table) and cdm.measurement is not None:
            df = _quantize_labs(df, mapping, cdm.measurement)
        exprs = []
        for col in catalog.tables[table].columns:
            m = cdm.measurement
            if cdm.is_measurement(table) and m and col.name in (m.analyte, m.value, m.unit, m.below_lod):
                continue  # measurements: written per analyte (above), the unit always canonical
            e = _quantize_column(col, _column_maps(mapping, table, col.name))
            if e is not None:
                exprs.append(e)
        df = df.with_columns(exprs) if exprs else df
        out[table] = _quantize_conventions(df, table, mapping, cdm)
    return out


# ---------------------------------------------------------------------------------- parts


@dataclass
class Part:
    """One source block's share of the truth, canonical, before it is written the center's way.
    Defects are planted here; row i of a one-row-per-record part is the file's row i."""

    block: SourceBlock
    frame: pl.DataFrame
    analytes: list[str] = field(default_factory=list)

    @property
    def table(self) -> str:
        return self.block.table

    @property
    def kind(self) -> str:
        return format_of(Path(self.block.file), self.block.fmt)

    @property
    def wide(self) -> bool:
        return self.block.unpivot is not None

    def first_row(self) -> int:
        """The file row of the part's first record (header row + 1; SPSS/Parquet record 1 = 2)."""
        opts = self.block.reader_options
        header = int(opts.get("header_row") or (int(opts.get("skip_rows") or 0) + 1))
        return header + 1 + int(opts.get("skip_rows_after_header") or 0)


def split(truth: dict[str, pl.DataFrame], mapping: Mapping, catalog: Catalog) -> list[Part]:
    """The truth over the mapping's blocks (measurements by analyte; other tables: first block)."""
    cdm = roles(catalog)
    parts: list[Part] = []
    done: set[str] = set()
    for block in mapping.blocks:
        df = truth.get(block.table)
        if df is None:
            continue
        if cdm.is_measurement(block.table) and cdm.measurement is not None:
            m = cdm.measurement
            analytes = next(a for b, a in measurement_blocks(mapping, m) if b is block)
            parts.append(Part(block, df.filter(pl.col(m.analyte).is_in(analytes)), analytes))
        elif block.table not in done:
            parts.append(Part(block, df))
            done.add(block.table)
    return parts


def source_of(part: Part, column: str) -> str | None:
    """The source column a part writes a CDM column into."""
    cm = part.block.columns.get(column)
    return cm.column if cm is not None else None
