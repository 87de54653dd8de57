"""Apply a declarative center mapping (`mappings/<center>.yaml`) to a submission folder.

The mapping says, per CDM table, which source file(s) to read and how (format, encoding,
delimiter, sheet, header row), which source column feeds each CDM column (or a constant),
value maps for codes, date formats, the unit of each numeric source column, and the center's
conventions (platelet content per unit, CRS scale, below-LOD notation). See docs/mappings.md.

`apply_mapping` returns a `Submission` whose frames have the CDM column names, values as
canonical text (ISO dates `YYYY-MM-DD`, timestamps `YYYY-MM-DDTHH:MM:SS`, `true`/`false`,
numbers with a '.' decimal, in the CDM's units), and `_file`/`_row` of the SOURCE file. A value
that does not parse, convert or recode is left as the original text, so the validation engine
reports it at the center's own row and column; nothing here fails on a bad cell.

Everything in a mapping is data: source column names are looked up literally (never as
regular expressions or code), and nothing from a mapping is ever put into SQL.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import polars as pl
import yaml

from . import units as unitreg
from .cdm import FILE_COL, ROW_COL, Catalog, ColumnSpec, TableSpec, load_catalog
from .center_id import center_id_problem
from .read import ReadError, format_of, read_source, safe_yaml
from .submission import Submission

# ---------------------------------------------------------------------------------------
# Vocabulary of the mapping language
# ---------------------------------------------------------------------------------------

TOP_KEYS = {"mapping_version", "center_id", "center_name", "description", "defaults", "conventions", "value_maps", "tables"}
READER_KEYS = {
    "csv": {"delimiter", "encoding", "quote", "header_row", "skip_rows", "skip_rows_after_header", "comment"},
    "excel": {"sheet", "header_row", "skip_rows", "skip_rows_after_header"},
    "parquet": set(),
    "spss": {"value_labels", "encoding"},
}
ALL_READER_KEYS = set().union(*READER_KEYS.values()) | {"format"}
PARSE_KEYS = {"decimal", "thousands", "null_values", "date_format", "timestamp_format", "below_lod"}
SOURCE_KEYS = ALL_READER_KEYS | PARSE_KEYS | {"file", "columns", "unpivot", "rows", "units_by_analyte", "description", "note"}
COLUMN_KEYS = {"column", "constant", "values", "unit", "format", "decimal", "thousands", "below_lod", "time_column", "unmapped", "description", "note"}
UNPIVOT_KEYS = {"column", "unit", "values", "decimal", "thousands", "below_lod", "description", "note"}
CONVENTION_KEYS = {"crs_scale", "platelet_content_e11", "below_lod"}
VALUE_MAP_KEYS = {"map", "patterns", "default", "description", "note"}
ISO_DATE_FORMATS = ["%Y-%m-%d"]
ISO_TIMESTAMP_FORMATS = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
EXCEL_SERIAL = "excel_serial"
BOOL_WORDS = {"true": "true", "false": "false", "t": "true", "f": "false", "1": "true", "0": "false", "yes": "true", "no": "false", "y": "true", "n": "false"}
DATE_OUT = "%Y-%m-%d"
TIMESTAMP_OUT = "%Y-%m-%dT%H:%M:%S"


class MappingError(ReadError):
    """The mapping file is invalid, or does not fit the submission (the CLI exits 2)."""

    def __init__(self, file: str | Path | None, message: str, problems: list[dict[str, str]] | None = None) -> None:
        self.problems = problems or []
        super().__init__(file, None, None, message)


# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """SafeLoader that reads only true/false as booleans (YAML 1.2), so `Y`, `N`, `yes`, `no`,
    `on`, `off` stay text: they are source values in value maps, not booleans."""


_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"] for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_mapping(path: Path) -> dict[str, Any]:
    """Parse a mapping file (safe YAML; yes/no/on/off stay text)."""
    path = Path(path)
    if not path.is_file():
        raise MappingError(str(path), "mapping file not found")
    try:
        with path.open(encoding="utf-8-sig") as fh:
            doc = safe_yaml.load(fh, path.name, _Loader)  # aliases and size capped (issue 23)
    except yaml.YAMLError as exc:
        raise MappingError(path.name, f"not valid YAML: {exc}") from None
    except UnicodeDecodeError:
        raise MappingError(path.name, "a mapping file must be UTF-8 text") from None
    if not isinstance(doc, dict):
        raise MappingError(path.name, "a mapping file is a YAML mapping with `center_id` and `tables`")
    return doc


def text_of(v: Any) -> str | None:
    """A YAML scalar as the text it stands for in data (true -> 'true', 3 -> '3')."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def check_relative_path(file: Any) -> str | None:
    """Why `file` is not an acceptable path inside a submission folder (None when it is)."""
    if not isinstance(file, str) or not file.strip():
        return "`file` must be a file name inside the submission folder"
    if "\x00" in file:
        return f"file '{file}' contains a NUL character"
    for flavour in (PurePosixPath(file), PureWindowsPath(file)):
        if flavour.is_absolute() or flavour.anchor or flavour.drive:
            return f"file '{file}' is an absolute path; give a path relative to the submission folder"
        if ".." in flavour.parts:
            return f"file '{file}' leaves the submission folder ('..'); give a path inside it"
    if file.startswith("~"):
        return f"file '{file}' must be relative to the submission folder"
    return None


def resolve_in(root: Path, file: str) -> Path:
    """The path of `file` inside `root`, refusing anything that escapes it (also via symlinks)."""
    why = check_relative_path(file)
    if why:
        raise MappingError(file, why)
    root_r = Path(root).resolve()
    p = (root_r / file.replace("\\", "/")).resolve()
    try:
        p.relative_to(root_r)
    except ValueError:
        raise MappingError(file, f"file '{file}' resolves outside the submission folder") from None
    return p


# ---------------------------------------------------------------------------------------
# The normalized form of a mapping
# ---------------------------------------------------------------------------------------


@dataclass
class ValueMap:
    exact: dict[str, str | None] = field(default_factory=dict)  # casefolded key -> target
    patterns: list[tuple[str, str | None]] = field(default_factory=list)  # (regex, target or $-template)
    default: str | None = None
    has_default: bool = False

    def targets(self) -> list[str | None]:
        out = list(self.exact.values()) + [t for _, t in self.patterns if t is None or "$" not in t]
        if self.has_default:
            out.append(self.default)
        return out


@dataclass
class ColumnMap:
    cdm: str
    column: str | None = None
    constant: Any = None
    is_constant: bool = False
    values: ValueMap | None = None
    unit: str | None = None
    formats: list[str] | None = None
    decimal: str = "."
    thousands: str | None = None
    below_lod: list[str] | None = None
    time_column: str | None = None
    unmapped: str = "keep"


def _value_map(spec: Any, where: str, named: dict[str, Any], problems: list[dict[str, str]]) -> ValueMap | None:
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
    if structured:
        for i, pat in enumerate(spec.get("patterns") or []):
            if not isinstance(pat, dict) or "match" not in pat or not ({"code", "value"} & set(pat)):
                problems.append(_p("error", f"{where}.patterns[{i}]", "a pattern is {match: REGEX, code: CODE}"))
                continue
            rx = str(pat["match"])
            try:
                pl.Series(["x"]).str.contains("(?i)" + rx)
            except Exception as exc:  # noqa: BLE001 - polars raises various errors for a bad regex
                problems.append(_p("error", f"{where}.patterns[{i}]", f"invalid regular expression '{rx}': {str(exc).splitlines()[0]}"))
                continue
            vm.patterns.append((rx, text_of(pat.get("code", pat.get("value")))))
        if "default" in spec:
            vm.has_default = True
            vm.default = text_of(spec["default"])
    return vm


def _p(level: str, where: str, message: str) -> dict[str, str]:
    return {"level": level, "where": where, "message": message}


def _formats(v: Any) -> list[str] | None:
    if v is None:
        return None
    if isinstance(v, str):
        return [v]
    return [str(x) for x in v]


def _column_map(
    cdm_col: str, spec: Any, where: str, source: dict[str, Any], named: dict[str, Any], problems: list[dict[str, str]]
) -> ColumnMap | None:
    if isinstance(spec, str):
        spec = {"column": spec}
    if not isinstance(spec, dict):
        problems.append(_p("error", where, "give a source column name, or {column: NAME, ...}, or {constant: VALUE}"))
        return None
    unknown = set(spec) - COLUMN_KEYS
    if unknown:
        problems.append(_p("error", where, f"unknown key(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(COLUMN_KEYS))}"))
    has_col = "column" in spec
    has_const = "constant" in spec
    if has_col == has_const:
        problems.append(_p("error", where, "give exactly one of `column` (a source column) or `constant`"))
        return None
    cm = ColumnMap(cdm=cdm_col)
    if has_col:
        if not isinstance(spec["column"], str | int) or str(spec["column"]) == "":
            problems.append(_p("error", where, "`column` must be a source column name"))
            return None
        cm.column = str(spec["column"])
    else:
        cm.is_constant = True
        cm.constant = spec["constant"]
    if "values" in spec:
        cm.values = _value_map(spec["values"], where + ".values", named, problems)
    cm.unit = text_of(spec.get("unit"))
    cm.formats = _formats(spec.get("format"))
    cm.decimal = str(spec.get("decimal", source.get("decimal", ".")))
    cm.thousands = text_of(spec.get("thousands", source.get("thousands")))
    # A table-wide below-LOD notation applies to lab values only; on other columns it is an
    # explicit (and questionable) choice the lint warns about.
    lod = spec.get("below_lod", source.get("below_lod") if cdm_col == "value" else None)
    cm.below_lod = _formats(lod) if lod not in (None, False) else None
    cm.time_column = text_of(spec.get("time_column"))
    cm.unmapped = str(spec.get("unmapped", "keep"))
    if cm.unmapped not in ("keep", "null", "drop"):
        problems.append(_p("error", where + ".unmapped", "`unmapped` is keep (default), null or drop"))
    return cm


@dataclass
class SourceBlock:
    table: str
    where: str
    file: str
    fmt: str | None
    reader_options: dict[str, Any]
    columns: dict[str, ColumnMap]
    unpivot: dict[str, ColumnMap] | None
    rows: dict[str, Any] | None
    null_values: list[str]
    date_formats: list[str] | None
    timestamp_formats: list[str] | None
    units_by_analyte: dict[str, str]


@dataclass
class Mapping:
    path: Path
    center_id: str | None
    blocks: list[SourceBlock]
    conventions: dict[str, Any]
    problems: list[dict[str, str]]

    def tables(self) -> list[str]:
        return list(dict.fromkeys(b.table for b in self.blocks))


def parse_mapping(doc: dict[str, Any], path: Path, catalog: Catalog | None = None) -> Mapping:
    """Normalize a mapping document and collect every problem that needs no data to find."""
    catalog = catalog or load_catalog()
    problems: list[dict[str, str]] = []
    for k in set(doc) - TOP_KEYS:
        problems.append(_p("warning", k, f"unknown top-level key '{k}' is ignored; allowed: {', '.join(sorted(TOP_KEYS))}"))
    center_id, why = center_id_problem(doc.get("center_id"))  # text, NFC, a code (issue 23)
    if why:
        problems.append(_p("error", "center_id", why))
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        problems.append(_p("error", "defaults", "`defaults` must be a mapping of format options"))
        defaults = {}
    for k in set(defaults) - (ALL_READER_KEYS | PARSE_KEYS):
        problems.append(_p("error", f"defaults.{k}", f"unknown format option '{k}'"))
    conventions = doc.get("conventions") or {}
    if not isinstance(conventions, dict):
        problems.append(_p("error", "conventions", "`conventions` must be a mapping"))
        conventions = {}
    _check_conventions(conventions, catalog, problems)
    named = doc.get("value_maps") or {}
    if not isinstance(named, dict):
        problems.append(_p("error", "value_maps", "`value_maps` must be a mapping of name -> value map"))
        named = {}
    for name, spec in named.items():  # check each named map once, even if unused
        _value_map(spec, f"value_maps.{name}", named, problems)
    tables = doc.get("tables")
    if not isinstance(tables, dict) or not tables:
        problems.append(_p("error", "tables", "the mapping needs `tables:` with at least patients and treatments"))
        tables = {}
    blocks: list[SourceBlock] = []
    for table, tspec in tables.items():
        if table not in catalog.tables:
            problems.append(_p("error", f"tables.{table}", f"'{table}' is not a CDM table; the tables are: {', '.join(catalog.table_names)}"))
            continue
        specs = tspec if isinstance(tspec, list) else [tspec]
        for i, spec in enumerate(specs):
            where = f"tables.{table}" + (f"[{i}]" if isinstance(tspec, list) else "")
            b = _block(table, spec, where, defaults, conventions, named, catalog, problems)
            if b is not None:
                blocks.append(b)
    for t in ("patients", "treatments"):
        if t in catalog.tables and catalog.tables[t].required_table and t not in tables:
            problems.append(_p("warning", "tables", f"required table '{t}' is not mapped; validation will report it missing"))
    for b in blocks:
        if "center_id" not in b.columns and not center_id:
            problems.append(_p("error", b.where, "no `center_id`: set it at the top of the mapping or map the column"))
            break
    return Mapping(path=Path(path), center_id=center_id, blocks=blocks, conventions=conventions, problems=problems)


def _check_conventions(conv: dict[str, Any], catalog: Catalog, problems: list[dict[str, str]]) -> None:
    for k in set(conv) - CONVENTION_KEYS:
        problems.append(_p("warning", f"conventions.{k}", f"unknown convention '{k}' is ignored; known: {', '.join(sorted(CONVENTION_KEYS))}"))
    scale = conv.get("crs_scale")
    if scale is not None:
        codes = catalog.tables["crs_assessments"].column("reported_scale").codes or ()
        if scale not in codes:
            problems.append(_p("error", "conventions.crs_scale", f"'{scale}' is not a CRS scale code ({', '.join(codes)})"))
    content = conv.get("platelet_content_e11")
    if content is not None:
        products = catalog.tables["transfusions"].column("product").codes or ()
        items = content.items() if isinstance(content, dict) else [("(all)", content)]
        for prod, val in items:
            if prod not in (*products, "(all)", "default"):
                problems.append(_p("error", f"conventions.platelet_content_e11.{prod}", f"'{prod}' is not a product code ({', '.join(products)}, or default)"))
            if isinstance(val, bool) or not isinstance(val, int | float) or val <= 0:
                problems.append(_p("error", f"conventions.platelet_content_e11.{prod}", "the content of one unit must be a positive number (x10^11 platelets)"))


def _block(
    table: str,
    spec: Any,
    where: str,
    defaults: dict[str, Any],
    conventions: dict[str, Any],
    named: dict[str, Any],
    catalog: Catalog,
    problems: list[dict[str, str]],
) -> SourceBlock | None:
    if not isinstance(spec, dict):
        problems.append(_p("error", where, "a table is a mapping with `file` and `columns`"))
        return None
    tspec = catalog.tables[table]
    for k in set(spec) - SOURCE_KEYS:
        problems.append(_p("error", f"{where}.{k}", f"unknown key '{k}'; allowed: {', '.join(sorted(SOURCE_KEYS))}"))
    merged = {**defaults, **{k: v for k, v in spec.items() if k in ALL_READER_KEYS | PARSE_KEYS}}
    if "below_lod" not in merged and conventions.get("below_lod") is not None:
        merged["below_lod"] = conventions["below_lod"]
    file = spec.get("file")
    why = check_relative_path(file)
    if why:
        problems.append(_p("error", f"{where}.file", why))
        file = file if isinstance(file, str) else ""
    fmt = merged.get("format")
    kind = None
    try:
        kind = format_of(Path(file or "x"), fmt) if (fmt or file) else None
    except ReadError as exc:
        problems.append(_p("error", f"{where}.format", exc.message))
    reader_options = {k: v for k, v in merged.items() if kind and k in READER_KEYS[kind]}
    if kind == "csv":
        if "encoding" in reader_options:
            try:
                import codecs

                from .read.encoding import ALIASES

                codecs.lookup(ALIASES.get(str(reader_options["encoding"]).lower(), str(reader_options["encoding"])))
            except LookupError:
                problems.append(_p("error", f"{where}.encoding", f"unknown encoding '{reader_options['encoding']}'"))
        d = reader_options.get("delimiter")
        if d is not None and (not isinstance(d, str) or (len(d) != 1 and d not in ("\\t", "tab", "TAB"))):
            problems.append(_p("error", f"{where}.delimiter", "the delimiter is one character (or \\t)"))
    for k in ("header_row", "skip_rows", "skip_rows_after_header"):
        v = reader_options.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
            problems.append(_p("error", f"{where}.{k}", f"`{k}` must be a whole number >= 0"))
    dec = str(merged.get("decimal", "."))
    if dec not in (".", ","):
        problems.append(_p("error", f"{where}.decimal", "`decimal` is '.' or ','"))

    columns: dict[str, ColumnMap] = {}
    cols_spec = spec.get("columns") or {}
    if not isinstance(cols_spec, dict):
        problems.append(_p("error", f"{where}.columns", "`columns` maps CDM column -> source column"))
        cols_spec = {}
    for cdm_col, cspec in cols_spec.items():
        cw = f"{where}.columns.{cdm_col}"
        if cdm_col not in tspec.column_names:
            problems.append(_p("error", cw, f"'{cdm_col}' is not a column of {table}; its columns are: {', '.join(tspec.column_names)}"))
            continue
        cm = _column_map(cdm_col, cspec, cw, merged, named, problems)
        if cm is None:
            continue
        columns[cdm_col] = cm
        _check_column(tspec.column(cdm_col), cm, cw, catalog, problems)

    unpivot = None
    units_by_analyte: dict[str, str] = {}
    if "units_by_analyte" in spec:
        uba = spec["units_by_analyte"] or {}
        if table != "labs" or not isinstance(uba, dict):
            problems.append(_p("error", f"{where}.units_by_analyte", "`units_by_analyte` is for the labs table: {ANALYTE: unit}"))
        else:
            canon = tspec.extra.get("canonical_units", {})
            for a, u in uba.items():
                units_by_analyte[str(a)] = str(u)
                _check_unit(str(u), canon.get(str(a)), f"{where}.units_by_analyte.{a}", problems, analyte=str(a), known=canon)
    if "unpivot" in spec:
        if table != "labs":
            problems.append(_p("error", f"{where}.unpivot", "`unpivot` (one column per analyte) is only for the labs table"))
        elif not isinstance(spec["unpivot"], dict) or not spec["unpivot"]:
            problems.append(_p("error", f"{where}.unpivot", "`unpivot` maps ANALYTE -> source column (or {column:, unit:})"))
        else:
            unpivot = {}
            canon = tspec.extra.get("canonical_units", {})
            for analyte, aspec in spec["unpivot"].items():
                aw = f"{where}.unpivot.{analyte}"
                if isinstance(aspec, dict):
                    bad = set(aspec) - UNPIVOT_KEYS
                    if bad:
                        problems.append(_p("error", aw, f"unknown key(s) {', '.join(sorted(bad))}; allowed: {', '.join(sorted(UNPIVOT_KEYS))}"))
                cm = _column_map("value", aspec, aw, merged, named, problems)
                if cm is None:
                    continue
                if str(analyte) not in canon:
                    problems.append(_p("error", aw, f"'{analyte}' is not an analyte code ({', '.join(canon)})"))
                    continue
                if cm.unit:
                    _check_unit(cm.unit, canon[str(analyte)], aw + ".unit", problems)
                unpivot[str(analyte)] = cm
            for c in ("analyte", "value", "unit"):
                if c in columns:
                    problems.append(_p("error", f"{where}.columns.{c}", f"with `unpivot`, '{c}' comes from the unpivot; do not map it"))
    if table == "labs" and unpivot is None and "value" in columns:
        vcm = columns["value"]
        if "unit" not in columns and not vcm.unit and not units_by_analyte:
            problems.append(
                _p("warning", f"{where}.columns.value", "no unit for lab values (no unit column, `unit` or `units_by_analyte`): they are taken to be in canonical units")
            )
    rows = spec.get("rows")
    if rows is not None:
        if not isinstance(rows, dict) or "column" not in rows or not ({"in", "not_in"} & set(rows)):
            problems.append(_p("error", f"{where}.rows", "`rows` selects rows: {column: NAME, in: [values]} or {column:, not_in: [...]}"))
            rows = None
    # Required CDM columns that nothing fills.
    filled = set(columns) | ({"center_id"} if True else set())
    if unpivot is not None:
        filled |= {"analyte", "value", "unit"}
    if table == "transfusions" and conventions.get("platelet_content_e11") is not None and "units_reported" in columns:
        filled.add("dose_e11")
    if table == "crs_assessments" and conventions.get("crs_scale"):
        filled.add("reported_scale")
    for c in tspec.columns:
        if c.required and c.name not in filled:
            problems.append(_p("error", f"{where}.columns", f"required column '{c.name}' ({c.label}) is not mapped"))
    for key in ("date_format", "timestamp_format"):
        for f in _formats(merged.get(key)) or []:
            why = date_format_problem(f)
            if why:
                problems.append(_p("error", f"{where}.{key}", why))
    return SourceBlock(
        table=table,
        where=where,
        file=file or "",
        fmt=fmt,
        reader_options=reader_options,
        columns=columns,
        unpivot=unpivot,
        rows=rows,
        null_values=[str(x) for x in (merged.get("null_values") or [])],
        date_formats=_formats(merged.get("date_format")),
        timestamp_formats=_formats(merged.get("timestamp_format")),
        units_by_analyte=units_by_analyte,
    )


_SAMPLE_DT = dt.datetime(2019, 11, 23, 17, 45, 30)


def date_format_problem(fmt: str) -> str | None:
    """Why `fmt` cannot read dates (None when it can): it must be a valid strftime format that
    writes and reads back a full date (year, month, day), or `excel_serial`."""
    if fmt == EXCEL_SERIAL:
        return None
    try:
        text = pl.Series([_SAMPLE_DT]).dt.strftime(fmt)
        has_time = bool(re.search(r"%[HIMSTRcrXfp.]", fmt))
        back = text.str.strptime(pl.Datetime("us"), fmt, strict=False) if has_time else text.str.strptime(pl.Date, fmt, strict=False)
    except Exception as exc:  # noqa: BLE001 - polars raises several error types for a bad format
        return f"invalid date format '{fmt}': {str(exc).splitlines()[0]}"
    value = back[0]
    if value is None or (value.date() if isinstance(value, dt.datetime) else value) != _SAMPLE_DT.date():
        return f"date format '{fmt}' does not read a full date (it needs a year, a month and a day)"
    return None


def _check_unit(
    unit: str, target: str | None, where: str, problems: list[dict[str, str]], analyte: str | None = None, known: dict[str, str] | None = None
) -> None:
    try:
        unitreg.lookup(unit)
    except unitreg.UnitError as exc:
        problems.append(_p("error", where, str(exc)))
        return
    if analyte is not None and target is None:
        problems.append(_p("error", where, f"'{analyte}' is not an analyte code ({', '.join(known or {})})"))
        return
    if target is None:
        return
    try:
        unitreg.linear(unit, target)
    except unitreg.UnitError as exc:
        problems.append(_p("error", where, str(exc)))


def _check_column(col: ColumnSpec, cm: ColumnMap, where: str, catalog: Catalog, problems: list[dict[str, str]]) -> None:
    numeric = col.type in ("integer", "decimal")
    if cm.unit:
        if not numeric:
            problems.append(_p("error", where + ".unit", f"'{col.name}' is {col.type}, not a number; a unit makes no sense here"))
        elif col.name == "value" and col.unit is None:
            pass  # labs.value: checked per analyte at apply time (unit of the row's analyte)
        else:
            target = col.unit
            if target is None:
                problems.append(_p("error", where + ".unit", f"'{col.name}' has no unit in the CDM; remove `unit`"))
            else:
                _check_unit(cm.unit, target, where + ".unit", problems)
    if cm.formats and col.type not in ("date", "timestamp"):
        problems.append(_p("error", where + ".format", f"`format` is for date and timestamp columns; '{col.name}' is {col.type}"))
    if cm.formats:
        for f in cm.formats:
            why = date_format_problem(f)
            if why:
                problems.append(_p("error", where + ".format", why))
    if cm.time_column and col.type != "timestamp":
        problems.append(_p("error", where + ".time_column", "`time_column` combines a date and a time into a timestamp column"))
    if cm.below_lod and col.name != "value":
        problems.append(_p("warning", where + ".below_lod", "below-LOD notation is only understood for labs.value"))
    targets = cm.values.targets() if cm.values else []
    if cm.is_constant:
        targets.append(text_of(cm.constant))
    for t in targets:
        if t is None:
            continue
        if col.codes and t not in col.codes:
            problems.append(_p("error", where + ".values", f"'{t}' is not a code of {col.name} ({', '.join(col.codes)})"))
        elif col.type == "boolean" and t not in ("true", "false"):
            problems.append(_p("error", where + ".values", f"'{t}' is not true or false"))
        elif col.type == "integer" and not re.fullmatch(r"-?\d+", t):
            problems.append(_p("error", where + ".values", f"'{t}' is not a whole number"))
        elif col.type == "decimal" and not re.fullmatch(r"-?\d+(\.\d+)?([eE]-?\d+)?", t):
            problems.append(_p("error", where + ".values", f"'{t}' is not a number"))


# ---------------------------------------------------------------------------------------
# Applying
# ---------------------------------------------------------------------------------------


def _to_text(name: str, dtype: pl.DataType) -> pl.Expr:
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


def _clean(e: pl.Expr, null_values: list[str]) -> pl.Expr:
    s = e.str.strip_chars()
    cond = (s == "") | s.is_null()
    if null_values:
        cond = cond | s.str.to_lowercase().is_in([v.strip().lower() for v in null_values])
    return pl.when(cond).then(pl.lit(None, pl.Utf8)).otherwise(s)


def _apply_values(s: pl.Expr, vm: ValueMap) -> tuple[pl.Expr, pl.Expr]:
    """(recoded text, whether the value was recognized by the map)."""
    key = s.str.to_lowercase()
    expr = pl.when(pl.lit(False)).then(pl.lit(None, pl.Utf8))
    hit = pl.lit(False)
    if vm.exact:
        keys = list(vm.exact)
        in_map = key.is_in(keys)
        expr = pl.when(in_map).then(key.replace_strict(keys, [vm.exact[k] for k in keys], default=None, return_dtype=pl.Utf8))
        hit = in_map
    for rx, target in vm.patterns:
        m = s.str.contains("(?i)" + rx)
        if target is not None and "$" in target:
            val = s.str.replace("(?i)" + rx, target)
        else:
            val = pl.lit(target, pl.Utf8)
        expr = expr.when(m).then(val)
        hit = hit | m.fill_null(False)
    if vm.has_default:
        expr = expr.when(s.is_not_null()).then(pl.lit(vm.default, pl.Utf8))
        hit = hit | s.is_not_null()
    return expr.otherwise(s), hit.fill_null(False)


def _number(s: pl.Expr, decimal: str, thousands: str | None) -> pl.Expr:
    t = s
    if thousands:
        t = t.str.replace_all(thousands, "", literal=True)
    t = t.str.replace_all(" ", "", literal=True)
    if decimal == ",":
        t = t.str.replace_all(",", ".", literal=True)
    f = t.cast(pl.Float64, strict=False)
    return pl.when(f.is_finite()).then(f)


def _fmt_float(f: pl.Expr) -> pl.Expr:
    return f.cast(pl.Utf8)


def _parse_date(s: pl.Expr, formats: list[str] | None, timestamp: bool, midnight_dates: bool = False) -> pl.Expr:
    """Parsed Datetime (timestamp) or Date; null where no format fits.

    `midnight_dates`: an ISO date alone in a timestamp column is that day at 00:00. Only for
    Excel sources, where a date-time cell at midnight reads back as a date (Excel stores both
    as one day number); in text files a date alone in a timestamp column stays an error."""
    tries: list[pl.Expr] = []
    declared = formats or []
    iso = ISO_TIMESTAMP_FORMATS + ([] if timestamp else ISO_DATE_FORMATS)
    for f in [*declared, *[x for x in iso if x not in declared]]:
        if f == EXCEL_SERIAL:
            n = s.cast(pl.Float64, strict=False)
            ok = (n >= 1) & (n < 2958466)
            secs = (n * 86400).round(0).cast(pl.Int64, strict=False)
            dtm = pl.when(ok).then(pl.datetime(1899, 12, 30) + pl.duration(seconds=secs))
            tries.append(dtm if timestamp else dtm.dt.date())
            continue
        has_time = bool(re.search(r"%[HIMSTRcrXfp.]", f))
        if has_time:
            dtm = s.str.strptime(pl.Datetime("us"), f, strict=False)
            tries.append(dtm if timestamp else dtm.dt.date())
        elif timestamp:
            continue  # a date alone is not a timestamp
        else:
            tries.append(s.str.strptime(pl.Date, f, strict=False))
    if timestamp and midnight_dates:
        tries.append(s.str.strptime(pl.Date, "%Y-%m-%d", strict=False).cast(pl.Datetime("us")))
    if not tries:
        return pl.lit(None, pl.Datetime("us") if timestamp else pl.Date)
    return pl.coalesce(tries)


@dataclass
class _Ctx:
    schema: dict[str, pl.DataType]
    safe: dict[str, str]  # source column name -> internal name
    block: SourceBlock
    display: str
    excel: bool = False


def _source_text(ctx: _Ctx, name: str) -> pl.Expr:
    internal = ctx.safe[name]
    return _clean(_to_text(internal, ctx.schema[internal]), ctx.block.null_values)


def _raw(ctx: _Ctx, cm: ColumnMap) -> pl.Expr:
    if cm.is_constant:
        return pl.lit(text_of(cm.constant), pl.Utf8)
    raw = _source_text(ctx, cm.column)  # type: ignore[arg-type]
    if cm.time_column:
        t = _source_text(ctx, cm.time_column)
        raw = pl.when(raw.is_not_null() & t.is_not_null()).then(pl.concat_str([raw, pl.lit(" "), t])).otherwise(raw)
    return raw


def _column_expr(ctx: _Ctx, col: ColumnSpec, cm: ColumnMap, target_unit: str | None = None) -> tuple[pl.Expr, pl.Expr | None, pl.Expr | None]:
    """(canonical text, numeric value or None, recognized-by-value-map or None)."""
    raw = _raw(ctx, cm)
    s = raw
    hit = None
    if cm.values is not None:
        s, hit = _apply_values(raw, cm.values)
        if cm.unmapped == "null":
            s = pl.when(hit | raw.is_null()).then(s)
    typ = col.type
    if typ in ("integer", "decimal"):
        n = _number(s, cm.decimal, cm.thousands)
        unit_to = target_unit or col.unit
        if cm.unit and unit_to:
            scale, shift = unitreg.linear(cm.unit, unit_to)
            if scale != 1.0:
                n = n * scale
            if shift != 0.0:
                n = n + shift
        if typ == "integer":
            r = n.round(0)
            ok = (n - r).abs() <= 1e-9 * pl.max_horizontal(pl.lit(1.0), r.abs())
            out = pl.when(n.is_not_null() & ok).then(r.cast(pl.Int64).cast(pl.Utf8)).otherwise(raw)
            return out, pl.when(ok).then(n), hit
        return pl.when(n.is_not_null()).then(_fmt_float(n)).otherwise(raw), n, hit
    if typ in ("date", "timestamp"):
        ts = typ == "timestamp"
        declared = cm.formats or (ctx.block.timestamp_formats if ts else ctx.block.date_formats)
        if not ts and not cm.formats and ctx.block.timestamp_formats:
            declared = [*(declared or []), *ctx.block.timestamp_formats]
        d = _parse_date(s, declared, ts, midnight_dates=ctx.excel)
        return pl.when(d.is_not_null()).then(d.dt.strftime(TIMESTAMP_OUT if ts else DATE_OUT)).otherwise(raw), None, hit
    if typ == "boolean":
        low = s.str.to_lowercase()
        b = low.replace_strict(list(BOOL_WORDS), list(BOOL_WORDS.values()), default=None, return_dtype=pl.Utf8)
        return pl.when(b.is_not_null()).then(b).otherwise(raw if cm.values is None else s), None, hit
    # text and code: the (recoded) text as written
    return s, None, hit


def _read_block(block: SourceBlock, root: Path, files: list[Path]) -> tuple[pl.DataFrame, _Ctx]:
    path = resolve_in(root, block.file)
    df = read_source(path, root, block.fmt, **block.reader_options)
    assert isinstance(df, pl.DataFrame)
    files.append(path)
    source_cols = [c for c in df.columns if c not in (FILE_COL, ROW_COL)]
    safe = {c: f"__s{i}" for i, c in enumerate(source_cols)}
    df = df.rename(safe)  # literal renames: source names never reach an expression as patterns
    display = df.get_column(FILE_COL)[0] if df.height else path.name
    needed = [cm.column for cm in block.columns.values() if cm.column] + [cm.time_column for cm in block.columns.values() if cm.time_column]
    if block.unpivot:
        needed += [cm.column for cm in block.unpivot.values() if cm.column]
    if block.rows:
        needed.append(str(block.rows["column"]))
    missing = [c for c in dict.fromkeys(needed) if c not in safe]
    if missing:
        raise MappingError(
            block.file,
            f"column(s) {', '.join(repr(m) for m in missing)} named in the mapping ({block.where}) are not in the file; "
            f"its columns are: {', '.join(source_cols)}",
        )
    # The readers name a repeated header `x`, `x.1`, ...: a mapping that names `x` could mean either.
    ambiguous = [c for c in dict.fromkeys(needed) if f"{c}.1" in safe]
    if ambiguous:
        raise MappingError(
            block.file,
            f"column(s) {', '.join(repr(a) for a in ambiguous)} named in the mapping ({block.where}) appear more "
            "than once in the file's header; rename the copies so that each column has its own name",
        )
    ctx = _Ctx(schema=dict(df.schema), safe=safe, block=block, display=str(display), excel=format_of(path, block.fmt) == "excel")
    if block.rows:
        s = _source_text(ctx, str(block.rows["column"]))
        if "in" in block.rows:
            df = df.filter(s.is_in([text_of(v) for v in block.rows["in"]]).fill_null(False))
        if "not_in" in block.rows:
            df = df.filter(~s.is_in([text_of(v) for v in block.rows["not_in"]]).fill_null(False))
    return df, ctx


def _map_block(block: SourceBlock, mapping: Mapping, root: Path, catalog: Catalog, files: list[Path]) -> pl.DataFrame:
    tspec = catalog.tables[block.table]
    df, ctx = _read_block(block, root, files)
    if block.unpivot is not None:
        return _map_unpivot(block, mapping, df, ctx, tspec)
    exprs: dict[str, pl.Expr] = {}
    nums: dict[str, pl.Expr] = {}
    drops: list[pl.Expr] = []
    for name, cm in block.columns.items():
        col = tspec.column(name)
        target = None
        if block.table == "labs" and name == "value":
            continue  # handled below, per analyte
        text, num, hit = _column_expr(ctx, col, cm, target)
        exprs[name] = text
        if num is not None:
            nums[name] = num
        if cm.unmapped == "drop" and hit is not None:
            drops.append(hit | _raw(ctx, cm).is_null())
    if "center_id" not in exprs:
        exprs["center_id"] = pl.lit(mapping.center_id, pl.Utf8)
    if block.table == "labs" and "value" in block.columns:
        canon = tspec.extra.get("canonical_units", {})
        df = _lab_columns(df, ctx, block.columns["value"], exprs.get("analyte", pl.lit(None, pl.Utf8)), exprs.get("unit"), block.units_by_analyte, canon)
        flag = exprs.get("below_lod")
        exprs["value"] = pl.col("__value")
        exprs["unit"] = pl.col("__unit")
        exprs["below_lod"] = pl.col("__below") if flag is None else pl.when(flag == "true").then(pl.lit("true")).otherwise(pl.coalesce([pl.col("__below"), flag]))
    if block.table == "transfusions":
        dose = _derived_dose(mapping, exprs, nums, block)
        if dose is not None:
            exprs["dose_e11"] = dose
    if block.table == "crs_assessments" and "reported_scale" not in block.columns and mapping.conventions.get("crs_scale"):
        grade = exprs.get("reported_grade")
        if grade is not None:
            exprs["reported_scale"] = pl.when(grade.is_not_null()).then(pl.lit(str(mapping.conventions["crs_scale"])))
    lf = df.lazy()  # lazy, so polars computes each shared sub-expression once
    if drops:
        lf = lf.filter(pl.all_horizontal(drops))
    out = lf.select([e.alias(n) for n, e in exprs.items()] + [pl.col(FILE_COL), pl.col(ROW_COL).cast(pl.Int64)]).collect()
    return _finish(out, tspec, block)


def _finish(out: pl.DataFrame, tspec: TableSpec, block: SourceBlock) -> pl.DataFrame:
    """CDM column order; unmapped optional columns as empty text; unmapped required ones
    left out so that validation reports the column missing once rather than every cell."""
    cols = []
    for c in tspec.columns:
        if c.name in out.columns:
            cols.append(pl.col(c.name).cast(pl.Utf8))
        elif not c.required:
            cols.append(pl.lit(None, pl.Utf8).alias(c.name))
    return out.select([*cols, pl.col(FILE_COL), pl.col(ROW_COL)])


def _derived_dose(mapping: Mapping, exprs: dict[str, pl.Expr], nums: dict[str, pl.Expr], block: SourceBlock) -> pl.Expr | None:
    content = mapping.conventions.get("platelet_content_e11")
    if content is None or "units_reported" not in nums:
        return None
    units = nums["units_reported"]
    if isinstance(content, dict):
        product = exprs.get("product")
        per_unit: pl.Expr = pl.lit(None, pl.Float64)
        if product is not None:
            chain = None
            for prod, val in content.items():
                if prod == "default":
                    continue
                cond = product == pl.lit(str(prod))
                chain = pl.when(cond).then(pl.lit(float(val))) if chain is None else chain.when(cond).then(pl.lit(float(val)))
            if chain is not None:
                per_unit = chain.otherwise(pl.lit(float(content["default"])) if "default" in content else pl.lit(None, pl.Float64))
        elif "default" in content:
            per_unit = pl.lit(float(content["default"]))
    else:
        per_unit = pl.lit(float(content))
    derived = _fmt_float(units * per_unit)
    given = exprs.get("dose_e11")
    if given is None:
        return derived
    return pl.when(given.is_not_null()).then(given).otherwise(derived)


def _lab_columns(
    df: pl.DataFrame,
    ctx: _Ctx,
    cm: ColumnMap,
    analyte: pl.Expr,
    unit_text: pl.Expr | None,
    static_units: dict[str, str],
    canon: dict[str, str],
) -> pl.DataFrame:
    """Add `__value`, `__unit`, `__below` (canonical text) for lab measurements to `df`.

    The source unit of a row is, in order: the row's unit column, the column's declared
    `unit`, the table's `units_by_analyte`, else the analyte's canonical unit (no conversion).
    A unit the registry does not know, or of the wrong dimension, leaves the value as written
    and the unit as written, so validation reports `labs.unit_canonical` on that row. Unit
    spellings are data: they are looked up in the registry, never evaluated."""
    raw = _raw(ctx, cm)
    s = raw
    if cm.values is not None:
        s, _ = _apply_values(raw, cm.values)
    df = df.with_columns(
        analyte.alias("__a"),
        (unit_text if unit_text is not None else pl.lit(None, pl.Utf8)).alias("__u"),
        raw.alias("__raw"),
        s.alias("__s"),
    )
    sc = pl.col("__s")
    lod = pl.lit(False)
    if cm.below_lod:
        lod = pl.any_horizontal([sc.str.starts_with(p) for p in cm.below_lod]).fill_null(False)
        for p in cm.below_lod:
            sc = pl.when(sc.str.starts_with(p)).then(sc.str.strip_prefix(p).str.strip_chars()).otherwise(sc)
    df = df.with_columns(lod.alias("__lod"), _number(sc, cm.decimal, cm.thousands).alias("__n"))
    rows = []
    for a, u in df.select("__a", "__u").unique().iter_rows():
        target = canon.get(a) if a is not None else None
        src = u if u is not None else (cm.unit or static_units.get(a or "") or target)
        scale = shift = None
        unit_out = u if u is not None else src
        if target is not None and src is not None:
            try:
                scale, shift = unitreg.linear(src, target)
                unit_out = target
            except unitreg.UnitError:
                pass
        rows.append((a, u, scale, shift, unit_out))
    lookup = pl.DataFrame(
        rows,
        schema={"__a": pl.Utf8, "__u": pl.Utf8, "__scale": pl.Float64, "__shift": pl.Float64, "__unit": pl.Utf8},
        orient="row",
    )
    df = df.join(lookup, on=["__a", "__u"], how="left", nulls_equal=True, maintain_order="left")
    n = pl.col("__n")
    conv = n * pl.col("__scale") + pl.col("__shift")
    return df.with_columns(
        pl.when(conv.is_not_null()).then(_fmt_float(conv)).when(n.is_not_null()).then(_fmt_float(n)).otherwise(pl.col("__raw")).alias("__value"),
        pl.when(n.is_not_null()).then(pl.when(pl.col("__lod")).then(pl.lit("true")).otherwise(pl.lit("false"))).alias("__below"),
    )


def _map_unpivot(block: SourceBlock, mapping: Mapping, df: pl.DataFrame, ctx: _Ctx, tspec: TableSpec) -> pl.DataFrame:
    canon = tspec.extra.get("canonical_units", {})
    base: dict[str, pl.Expr] = {}
    for name, cm in block.columns.items():
        text, _, _ = _column_expr(ctx, tspec.column(name), cm)
        base[name] = text
    if "center_id" not in base:
        base["center_id"] = pl.lit(mapping.center_id, pl.Utf8)
    parts = []
    assert block.unpivot is not None
    for order, (analyte, cm) in enumerate(block.unpivot.items()):
        if cm.is_constant:
            continue
        a = pl.lit(analyte, pl.Utf8)
        present = df.filter(_raw(ctx, cm).is_not_null())
        lab = _lab_columns(present, ctx, cm, a, None, {analyte: cm.unit} if cm.unit else block.units_by_analyte, canon)
        lab_lod = pl.col("__below")
        if "below_lod" in base:
            lab_lod = pl.when(base["below_lod"] == "true").then(pl.lit("true")).otherwise(lab_lod)
        part = (
            lab.lazy()
            .select(
                [e.alias(n) for n, e in base.items() if n != "below_lod"]
                + [a.alias("analyte"), pl.col("__value").alias("value"), pl.col("__unit").alias("unit"), lab_lod.alias("below_lod")]
                + [pl.col(FILE_COL), pl.col(ROW_COL).cast(pl.Int64), pl.lit(order, pl.Int32).alias("__order")]
            )
            .collect()
        )
        parts.append(part)
    if not parts:
        return _finish(pl.DataFrame(schema={FILE_COL: pl.Utf8, ROW_COL: pl.Int64}), tspec, block)
    out = pl.concat(parts, how="vertical").sort([ROW_COL, "__order"], maintain_order=True).drop("__order")
    return _finish(out, tspec, block)


def _usable_mapping(mapping_path: Path, root: Path, catalog: Catalog) -> Mapping:
    if not root.is_dir():
        raise ReadError(str(root), message="submission folder not found")
    m = parse_mapping(load_mapping(mapping_path), mapping_path, catalog)
    errors = [p for p in m.problems if p["level"] == "error"]
    if errors:
        lines = "; ".join(f"{p['where']}: {p['message']}" for p in errors[:10])
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise MappingError(mapping_path.name, f"the mapping has {len(errors)} error(s): {lines}{more}", errors)
    return m


def mapped_files(mapping_path: Path, submission_folder: Path, catalog: Catalog | None = None) -> list[Path]:
    """The files a mapped submission consists of, without reading them: what its checksums cover
    (the same list, in the same order, as `apply_mapping(...).files`)."""
    root = Path(submission_folder)
    m = _usable_mapping(Path(mapping_path), root, catalog or load_catalog())
    return list(dict.fromkeys(resolve_in(root, block.file) for block in m.blocks))


def apply_mapping(mapping_path: Path, submission_folder: Path, catalog: Catalog | None = None) -> Submission:
    """Read a center's submission folder through its mapping; return CDM-shaped frames.

    Raises MappingError for an invalid mapping (every structural problem listed) or one that
    does not fit the files (a named source column absent), and ReadError for a file that
    cannot be read. Bad cells never raise: they stay as written for validation to report."""
    catalog = catalog or load_catalog()
    mapping_path = Path(mapping_path)
    root = Path(submission_folder)
    m = _usable_mapping(mapping_path, root, catalog)
    files: list[Path] = []
    frames: dict[str, list[pl.DataFrame]] = {}
    for block in m.blocks:
        frames.setdefault(block.table, []).append(_map_block(block, m, root, catalog, files))
    tables: dict[str, pl.DataFrame | pl.LazyFrame] = {
        t: (fs[0] if len(fs) == 1 else pl.concat(fs, how="vertical")) for t, fs in frames.items()
    }
    return Submission(
        tables=tables,
        source_path=root,
        center_id=m.center_id,
        files=list(dict.fromkeys(files)),
        mapping_file=mapping_path,
    )


# ---------------------------------------------------------------------------------------
# Lint
# ---------------------------------------------------------------------------------------


def lint_mapping(mapping_path: Path, submission_folder: Path | None = None, catalog: Catalog | None = None) -> list[dict[str, str]]:
    """Problems in a mapping file, as dicts {level: error|warning, where, message}.

    Without a folder: unknown tables, columns, keys, units, unit dimensions, value-map targets
    that are not CDM codes, unsafe file paths, unmapped required columns. With the submission
    folder: also files that are missing or unreadable and source columns not in the files."""
    catalog = catalog or load_catalog()
    mapping_path = Path(mapping_path)
    m = parse_mapping(load_mapping(mapping_path), mapping_path, catalog)
    problems = list(m.problems)
    if submission_folder is not None:
        root = Path(submission_folder)
        if not root.is_dir():
            problems.append(_p("error", "--data", f"submission folder '{root}' not found"))
            return problems
        for block in m.blocks:
            if check_relative_path(block.file):
                continue
            try:
                path = resolve_in(root, block.file)
                if not path.exists():
                    problems.append(_p("error", f"{block.where}.file", f"file '{block.file}' is not in the submission folder"))
                    continue
                df = read_source(path, root, block.fmt, **block.reader_options)
            except ReadError as exc:
                problems.append(_p("error", f"{block.where}.file", str(exc)))
                continue
            have = set(df.columns) - {FILE_COL, ROW_COL}
            refs: list[tuple[str, str]] = []
            for name, cm in block.columns.items():
                if cm.column:
                    refs.append((f"{block.where}.columns.{name}", cm.column))
                if cm.time_column:
                    refs.append((f"{block.where}.columns.{name}.time_column", cm.time_column))
            for a, cm in (block.unpivot or {}).items():
                if cm.column:
                    refs.append((f"{block.where}.unpivot.{a}", cm.column))
            if block.rows:
                refs.append((f"{block.where}.rows", str(block.rows["column"])))
            for where, col in refs:
                if col not in have:
                    problems.append(_p("error", where, f"source column '{col}' is not in {block.file} (its columns: {', '.join(sorted(have))})"))
    return problems


def source_columns(mapping_path: Path) -> dict[str, dict[str, str]]:
    """CDM table -> CDM column -> the source column that feeds it (for messages that name the
    center's own column instead of the CDM's)."""
    m = parse_mapping(load_mapping(Path(mapping_path)), Path(mapping_path))
    out: dict[str, dict[str, str]] = {}
    for b in m.blocks:
        cols = out.setdefault(b.table, {})
        for name, cm in b.columns.items():
            if cm.column and name not in cols:
                cols[name] = cm.column
        if b.unpivot:
            cols.setdefault("value", " / ".join(cm.column for cm in b.unpivot.values() if cm.column))
    return out
