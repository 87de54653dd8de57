"""Parse a mapping document into its normalized form (`Mapping`), collecting every problem
that needs no data to find. Nothing here reads a submission or raises on a bad mapping."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import polars as pl

from ..cdm import Catalog, TableSpec, load_catalog
from ..center_id import center_id_problem
from ..read import ReadError, format_of
from ..read.encoding import ALIASES
from .centers import (
    several_centers_problems,  # an export of several centers (a REDCap project's groups)
)
from .checks import check_analyte_unit, check_column, check_conventions, check_unit
from .dates import date_format_problem
from .language import (
    ALL_READER_KEYS,
    CENTER_COLUMN,
    COLUMN_KEYS,
    PARSE_KEYS,
    PATTERN_TARGET_KEYS,
    READER_KEYS,
    SOURCE_KEYS,
    TOP_KEYS,
    UNPIVOT_KEYS,
    VALUE_MAP_KEYS,
    check_relative_path,
    formats_of,
    text_of,
)
from .language import problem as _p
from .model import BELOW_LOD, ColumnMap, Mapping, Roles, SourceBlock, ValueMap, roles

Problems = list[dict[str, str]]


def _section(doc: dict[str, Any], key: str, what: str, problems: Problems) -> dict[str, Any]:
    value = doc.get(key) or {}
    if not isinstance(value, dict):
        problems.append(_p("error", key, f"`{key}` must be {what}"))
        return {}
    return value


def parse_mapping(doc: dict[str, Any], path: Path, catalog: Catalog | None = None) -> Mapping:
    """Normalize a mapping document and collect every problem that needs no data to find."""
    catalog = catalog or load_catalog()
    cdm = roles(catalog)
    problems: Problems = []
    for k in set(doc) - TOP_KEYS:
        problems.append(_p("warning", k, f"unknown top-level key '{k}' is ignored; allowed: {', '.join(sorted(TOP_KEYS))}"))
    from ..messages import language_problem

    why = language_problem(doc.get("language"), catalog.root or ".")
    if why:
        problems.append(_p("warning", "language", why))
    center_id, why = center_id_problem(doc.get("center_id"))  # text, NFC, a code (issue 23)
    if why:
        problems.append(_p("error", "center_id", why))
    defaults = _section(doc, "defaults", "a mapping of format options", problems)
    for k in set(defaults) - (ALL_READER_KEYS | PARSE_KEYS):
        problems.append(_p("error", f"defaults.{k}", f"unknown format option '{k}'"))
    conventions = _section(doc, "conventions", "a mapping", problems)
    check_conventions(conventions, catalog, cdm, problems)
    named = _section(doc, "value_maps", "a mapping of name -> value map", problems)
    for name, spec in named.items():  # check each named map once, even if unused
        value_map(spec, f"value_maps.{name}", named, problems)
    required = [t for t in catalog.table_names if catalog.tables[t].required_table]
    tables = doc.get("tables")
    if not isinstance(tables, dict) or not tables:
        problems.append(_p("error", "tables", f"the mapping needs `tables:` with at least {' and '.join(required)}"))
        tables = {}
    ctx = _Parse(catalog=catalog, roles=cdm, defaults=defaults, conventions=conventions, named=named, problems=problems)
    blocks = _blocks(ctx, tables)
    for t in required:
        if t not in tables:
            problems.append(_p("warning", "tables", f"required table '{t}' is not mapped; validation will report it missing"))
    if not center_id and any(CENTER_COLUMN not in b.columns for b in blocks):
        where = next(b.where for b in blocks if CENTER_COLUMN not in b.columns)
        problems.append(_p("error", where, f"no `{CENTER_COLUMN}`: set it at the top of the mapping or map the column"))
    problems += several_centers_problems(doc.get("center_id"), blocks)
    return Mapping(path=Path(path), center_id=center_id, blocks=blocks, conventions=conventions, problems=problems)


def _blocks(ctx: _Parse, tables: dict[str, Any]) -> list[SourceBlock]:
    """Every source block of `tables:` (a table is one block or a list of them)."""
    blocks: list[SourceBlock] = []
    for table, tspec in tables.items():
        if table not in ctx.catalog.tables:
            ctx.error(f"tables.{table}", f"'{table}' is not a CDM table; the tables are: {', '.join(ctx.catalog.table_names)}")
            continue
        specs = tspec if isinstance(tspec, list) else [tspec]
        for i, spec in enumerate(specs):
            where = f"tables.{table}" + (f"[{i}]" if isinstance(tspec, list) else "")
            b = _block(ctx, table, spec, where)
            if b is not None:
                blocks.append(b)
    return blocks


class _Parse:
    """What every block of one mapping is parsed against."""

    def __init__(self, catalog: Catalog, roles: Roles, defaults: dict[str, Any], conventions: dict[str, Any],
                 named: dict[str, Any], problems: Problems) -> None:
        self.catalog, self.roles, self.defaults = catalog, roles, defaults
        self.conventions, self.named, self.problems = conventions, named, problems

    def error(self, where: str, message: str, level: str = "error") -> None:
        self.problems.append(_p(level, where, message))


# ---------------------------------------------------------------------------------- values


def _pattern(pat: Any, where: str, problems: Problems) -> tuple[str, str | None] | None:
    if not isinstance(pat, dict) or "match" not in pat or not (set(PATTERN_TARGET_KEYS) & set(pat)):
        problems.append(_p("error", where, "a pattern is {match: REGEX, code: CODE}"))
        return None
    rx = str(pat["match"])
    try:
        pl.Series(["x"]).str.contains("(?i)" + rx)
    except Exception as exc:  # noqa: BLE001 - polars raises various errors for a bad regex
        problems.append(_p("error", where, f"invalid regular expression '{rx}': {str(exc).splitlines()[0]}"))
        return None
    return rx, text_of(next(pat[k] for k in PATTERN_TARGET_KEYS if k in pat))


def value_map(spec: Any, where: str, named: dict[str, Any], problems: Problems) -> ValueMap | None:
    """A value map, inline or by name: flat {source: code}, or {map:, patterns:, default:}."""
    if isinstance(spec, str):
        if spec not in named:
            problems.append(_p("error", where, f"value map '{spec}' is not defined under `value_maps`"))
            return None
        spec = named[spec]
    if not isinstance(spec, dict):
        problems.append(_p("error", where, "a value map is a mapping {source value: code} or {map:, patterns:, default:}"))
        return None
    structured = bool(spec) and set(spec) <= VALUE_MAP_KEYS and ("map" in spec or "patterns" in spec)
    vm = ValueMap()
    exact = spec.get("map", {}) if structured else spec
    if not isinstance(exact, dict):
        problems.append(_p("error", where + ".map", "`map` must be a mapping {source value: code}"))
        exact = {}
    for k, v in exact.items():
        key = text_of(k)
        if key is None:
            problems.append(_p("error", where, "a value map key may not be empty (null)"))
            continue
        vm.exact[key.strip().casefold()] = text_of(v)
        vm.written.append((key.strip(), text_of(v)))
    if structured:
        for i, pat in enumerate(spec.get("patterns") or []):
            parsed = _pattern(pat, f"{where}.patterns[{i}]", problems)
            if parsed is not None:
                vm.patterns.append(parsed)
        if "default" in spec:
            vm.has_default, vm.default = True, text_of(spec["default"])
    return vm


# ---------------------------------------------------------------------------------- columns


def _source(cm: ColumnMap, spec: dict[str, Any], where: str, problems: Problems) -> bool:
    has_col, has_const = "column" in spec, "constant" in spec
    if has_col == has_const:
        problems.append(_p("error", where, "give exactly one of `column` (a source column) or `constant`"))
        return False
    if has_const:
        cm.is_constant, cm.constant = True, spec["constant"]
        return True
    if not isinstance(spec["column"], str | int) or str(spec["column"]) == "":
        problems.append(_p("error", where, "`column` must be a source column name"))
        return False
    cm.column = str(spec["column"])
    return True


def column_map(cdm_col: str, spec: Any, where: str, source: dict[str, Any], named: dict[str, Any],
               problems: Problems, measured: bool = False) -> ColumnMap | None:
    """One CDM column's source. `measured`: the value of a measurement (a table-wide below-LOD
    notation applies to it; on any other column it is an explicit choice the lint warns about)."""
    if isinstance(spec, str | int) and not isinstance(spec, bool):
        spec = {"column": spec}
    if not isinstance(spec, dict):
        problems.append(_p("error", where, "give a source column name, or {column: NAME, ...}, or {constant: VALUE}"))
        return None
    unknown = set(spec) - COLUMN_KEYS
    if unknown:
        problems.append(_p("error", where, f"unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(COLUMN_KEYS))}"))
    cm = ColumnMap(cdm=cdm_col)
    if not _source(cm, spec, where, problems):
        return None
    if "values" in spec:
        cm.values = value_map(spec["values"], where + ".values", named, problems)
    cm.unit = text_of(spec.get("unit"))
    cm.formats = formats_of(spec.get("format"))
    cm.decimal = str(spec.get("decimal", source.get("decimal", ".")))
    cm.thousands = text_of(spec.get("thousands", source.get("thousands")))
    lod = spec.get(BELOW_LOD, source.get(BELOW_LOD) if measured else None)
    cm.below_lod = formats_of(lod) if lod not in (None, False) else None
    cm.time_column = text_of(spec.get("time_column"))
    cm.description = text_of(spec.get("description"))
    cm.unmapped = str(spec.get("unmapped", "keep"))
    if cm.unmapped not in ("keep", "null", "drop"):
        problems.append(_p("error", where + ".unmapped", "`unmapped` is keep (default), null or drop"))
    return cm


def _columns(ctx: _Parse, table: str, spec: dict[str, Any], where: str, merged: dict[str, Any]) -> dict[str, ColumnMap]:
    tspec = ctx.catalog.tables[table]
    m = ctx.roles.measurement
    cols_spec = spec.get("columns") or {}
    if not isinstance(cols_spec, dict):
        ctx.error(f"{where}.columns", "`columns` maps CDM column -> source column")
        cols_spec = {}
    columns: dict[str, ColumnMap] = {}
    for cdm_col, cspec in cols_spec.items():
        cw = f"{where}.columns.{cdm_col}"
        if cdm_col not in tspec.column_names:
            ctx.error(cw, f"'{cdm_col}' is not a column of {table}; its columns are: {', '.join(tspec.column_names)}")
            continue
        measured = m is not None and m.table == table and cdm_col == m.value
        cm = column_map(cdm_col, cspec, cw, merged, ctx.named, ctx.problems, measured)
        if cm is not None:
            columns[cdm_col] = cm
            check_column(tspec.column(cdm_col), cm, cw, ctx.problems, measured)
    return columns


# ---------------------------------------------------------------------------------- measurements


def _units_by_analyte(ctx: _Parse, table: str, spec: dict[str, Any], where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    if "units_by_analyte" not in spec:
        return out
    uba = spec["units_by_analyte"] or {}
    m = ctx.roles.measurement
    if m is None or table != m.table or not isinstance(uba, dict):
        ctx.error(f"{where}.units_by_analyte", "`units_by_analyte` is for the measurement table: {ANALYTE: unit}")
        return out
    for a, u in uba.items():
        out[str(a)] = str(u)
        check_analyte_unit(str(u), str(a), m.canonical_units, f"{where}.units_by_analyte.{a}", ctx.problems)
    return out


def _unpivot(ctx: _Parse, table: str, spec: dict[str, Any], where: str, merged: dict[str, Any],
             columns: dict[str, ColumnMap]) -> dict[str, ColumnMap] | None:
    if "unpivot" not in spec:
        return None
    m = ctx.roles.measurement
    if m is None or table != m.table:
        ctx.error(f"{where}.unpivot", "`unpivot` (one column per analyte) is only for the measurement table")
        return None
    if not isinstance(spec["unpivot"], dict) or not spec["unpivot"]:
        ctx.error(f"{where}.unpivot", "`unpivot` maps ANALYTE -> source column (or {column:, unit:})")
        return None
    unpivot: dict[str, ColumnMap] = {}
    for analyte, aspec in spec["unpivot"].items():
        aw = f"{where}.unpivot.{analyte}"
        bad = set(aspec) - UNPIVOT_KEYS if isinstance(aspec, dict) else set()
        if bad:
            ctx.error(aw, f"unknown key(s) {', '.join(sorted(bad))}; allowed: {', '.join(sorted(UNPIVOT_KEYS))}")
        cm = column_map(m.value, aspec, aw, merged, ctx.named, ctx.problems, measured=True)
        if cm is None:
            continue
        if str(analyte) not in m.canonical_units:
            ctx.error(aw, f"'{analyte}' is not an analyte code ({', '.join(m.canonical_units)})")
            continue
        if cm.unit:
            check_unit(cm.unit, m.canonical_units[str(analyte)], aw + ".unit", ctx.problems)
        unpivot[str(analyte)] = cm
    for c in (m.analyte, m.value, m.unit):
        if c in columns:
            ctx.error(f"{where}.columns.{c}", f"with `unpivot`, '{c}' comes from the unpivot; do not map it")
    return unpivot


# ---------------------------------------------------------------------------------- blocks


def _reader_checks(ctx: _Parse, kind: str | None, options: dict[str, Any], where: str) -> None:
    if kind in ("csv", "redcap") and "encoding" in options:
        enc = str(options["encoding"])
        try:
            codecs.lookup(ALIASES.get(enc.lower(), enc))
        except LookupError:
            ctx.error(f"{where}.encoding", f"unknown encoding '{enc}'")
    d = options.get("delimiter") if kind in ("csv", "redcap") else None
    if d is not None and (not isinstance(d, str) or (len(d) != 1 and d not in ("\\t", "tab", "TAB"))):
        ctx.error(f"{where}.delimiter", "the delimiter is one character (or \\t)")
    if kind == "redcap":
        _redcap_checks(ctx, options, where)
    for k in ("header_row", "skip_rows", "skip_rows_after_header"):
        v = options.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            ctx.error(f"{where}.{k}", f"`{k}` must be a whole number >= 0")


def _redcap_checks(ctx: _Parse, options: dict[str, Any], where: str) -> None:
    """A REDCap block names its form and the data dictionary (and may name the event mapping)."""
    for k in ("form", "dictionary"):
        if not options.get(k):
            ctx.error(f"{where}.{k}", f"a REDCap block needs `{k}` (the {'instrument whose rows it reads' if k == 'form' else 'data dictionary CSV'})")
    for k in ("dictionary", "events"):
        why = check_relative_path(options[k]) if options.get(k) is not None else None
        if why:
            ctx.error(f"{where}.{k}", why)


def _reader(ctx: _Parse, spec: dict[str, Any], where: str, merged: dict[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
    """(file, declared format, reader options) of a block."""
    file = spec.get("file")
    why = check_relative_path(file)
    if why:
        ctx.error(f"{where}.file", why)
        file = file if isinstance(file, str) else ""
    fmt = merged.get("format")
    kind = None
    try:
        kind = format_of(Path(file or "x"), fmt) if (fmt or file) else None
    except ReadError as exc:
        ctx.error(f"{where}.format", exc.message)
    options = {k: v for k, v in merged.items() if kind and k in READER_KEYS[kind]}
    _reader_checks(ctx, kind, options, where)
    if str(merged.get("decimal", ".")) not in (".", ","):
        ctx.error(f"{where}.decimal", "`decimal` is '.' or ','")
    for key in ("date_format", "timestamp_format"):
        for f in formats_of(merged.get(key)) or []:
            bad = date_format_problem(f)
            if bad:
                ctx.error(f"{where}.{key}", bad)
    return file or "", fmt, options


def _filled(ctx: _Parse, table: str, columns: dict[str, ColumnMap], unpivot: dict[str, ColumnMap] | None) -> set[str]:
    """The CDM columns a block fills: mapped ones, the center, the unpivot's, and conventions'."""
    filled = set(columns) | {CENTER_COLUMN}
    m = ctx.roles.measurement
    if unpivot is not None and m is not None:
        filled |= {m.analyte, m.value, m.unit}
    for conv in ctx.roles.for_table(table):
        if ctx.conventions.get(conv.name) is None:
            continue
        if conv.multiply is None or conv.multiply in columns:
            filled.add(conv.fills)
    return filled


def _warn_no_unit(ctx: _Parse, table: str, columns: dict[str, ColumnMap], where: str) -> None:
    m = ctx.roles.measurement
    if m is None or table != m.table or m.value not in columns:
        return
    if m.unit not in columns and not columns[m.value].unit:
        ctx.error(f"{where}.columns.{m.value}", "no unit for measured values (no unit column, `unit` or "
                  "`units_by_analyte`): they are taken to be in canonical units", "warning")


def _rows(ctx: _Parse, rows: Any, where: str) -> dict[str, Any] | None:
    if rows is not None and (not isinstance(rows, dict) or "column" not in rows or not ({"in", "not_in"} & set(rows))):
        ctx.error(f"{where}.rows", "`rows` selects rows: {column: NAME, in: [values]} or {column:, not_in: [...]}")
        return None
    return rows


def _block(ctx: _Parse, table: str, spec: Any, where: str) -> SourceBlock | None:
    if not isinstance(spec, dict):
        ctx.error(where, "a table is a mapping with `file` and `columns`")
        return None
    tspec: TableSpec = ctx.catalog.tables[table]
    for k in set(spec) - SOURCE_KEYS:
        ctx.error(f"{where}.{k}", f"unknown key '{k}'; allowed: {', '.join(sorted(SOURCE_KEYS))}")
    merged = {**ctx.defaults, **{k: v for k, v in spec.items() if k in ALL_READER_KEYS | PARSE_KEYS}}
    if BELOW_LOD not in merged and ctx.conventions.get(BELOW_LOD) is not None:
        merged[BELOW_LOD] = ctx.conventions[BELOW_LOD]
    file, fmt, options = _reader(ctx, spec, where, merged)
    columns = _columns(ctx, table, spec, where, merged)
    units_by_analyte = _units_by_analyte(ctx, table, spec, where)
    unpivot = _unpivot(ctx, table, spec, where, merged, columns)
    if unpivot is None and not units_by_analyte:
        _warn_no_unit(ctx, table, columns, where)
    rows = _rows(ctx, spec.get("rows"), where)
    filled = _filled(ctx, table, columns, unpivot)
    for c in tspec.columns:
        if c.required and c.name not in filled:
            ctx.error(f"{where}.columns", f"required column '{c.name}' ({c.label}) is not mapped")
    return SourceBlock(
        table=table, where=where, file=file, fmt=fmt, reader_options=options, columns=columns, unpivot=unpivot,
        rows=rows, null_values=[str(x) for x in (merged.get("null_values") or [])],
        date_formats=formats_of(merged.get("date_format")), timestamp_formats=formats_of(merged.get("timestamp_format")),
        units_by_analyte=units_by_analyte,
    )
