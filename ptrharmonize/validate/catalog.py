"""The catalog language: every file under `schemas/` checked before any data is read.

A typo in the catalog must not change what is checked without a word (`plausible_mx` silently
ignored, `severity: warnign`, a rule expression naming `transfused_atx`). So every file is read
with its YAML node marks and validated against pydantic models with `extra='forbid'`, built
from the check types of `validate/checks/` (a column or a rule accepts exactly the attributes
its check types declare); then what a schema cannot say is checked against the tables: every
column a rule, key or identifier scan names exists, every polars expression compiles against
the table's typed columns and yields a boolean, every DuckDB query compiles against the typed
tables and returns `_file, _row, value`, every regular expression compiles.

Each problem names the file, the line and the key. `checked_catalog()` raises `CatalogError`
(exit 2) on any; `ptrh schema check [DIR]` lists them all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import duckdb
import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ..cdm import (
    DUCKDB_TYPES,
    FILE_COL,
    POLARS_TYPES,
    ROW_COL,
    Catalog,
    _table_from_yaml,
    load_catalog,
)
from ..db import qi
from ..errors import UserError
from ..paths import schemas_dir
from .checks import RAW_PREFIX, Check, registry
from .rules import catalog_rules, column_rules, rule_check_name

SEVERITIES = ("error", "warning")
CATEGORIES = ("conformance", "completeness", "plausibility")
Severity = Literal["error", "warning"]
Category = Literal["conformance", "completeness", "plausibility"]
CdmType = Literal[tuple(POLARS_TYPES)]  # type: ignore[valid-type]
MAX_SHOWN = 8  # problems named in the one-line message of CatalogError


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = self.file + (f", line {self.line}" if self.line else "")
        return f"{where}, key '{self.key}': {self.message}" if self.key else f"{where}: {self.message}"


class CatalogError(UserError):
    """The catalog under schemas/ does not follow the catalog language (exit 2)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        shown = "; ".join(str(p) for p in problems[:MAX_SHOWN])
        more = f" (and {len(problems) - MAX_SHOWN} more: ptrh schema check lists them)" if len(problems) > MAX_SHOWN else ""
        super().__init__(f"the rule catalog cannot be used: {shown}{more}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


# -- YAML with node marks --------------------------------------------------------------------


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster, same marks


class _Doc:
    """A YAML file's data and node tree, to give a line for a path of keys and indices."""

    def __init__(self, path: Path, label: str) -> None:
        self.path, self.label = path, label
        text = path.read_text(encoding="utf-8")
        loader = _LOADER(text)
        try:
            self.node = loader.get_single_node()
            self.data = loader.construct_document(self.node) if self.node is not None else None
        finally:
            loader.dispose()

    def line(self, loc: tuple[Any, ...], at_key: bool = False) -> int | None:
        node, found = self.node, None
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                hit = next(((k, v) for k, v in node.value if k.value == part), None)
                if hit is None:
                    break
                found, node = hit[0], hit[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = found = node.value[part]
            else:
                break
        target = found if at_key and found is not None else (node if node is not None else found)
        return target.start_mark.line + 1 if target is not None else None

    def problem(self, loc: tuple[Any, ...], message: str, key: str | None = None, at_key: bool = False) -> Problem:
        name = key if key is not None else next((str(p) for p in reversed(loc) if isinstance(p, str)), "")
        return Problem(self.label, self.line(loc, at_key), name, message)


def _pydantic_problems(doc: _Doc, exc: ValidationError, prefix: tuple[Any, ...] = ()) -> list[Problem]:
    out = []
    for e in exc.errors():
        loc = prefix + tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal["))))
        if e["type"] == "extra_forbidden":
            msg = "unknown key (a typo? the catalog language has no such attribute here)"
            out.append(doc.problem(loc, msg, at_key=True))
        elif e["type"] == "missing":
            out.append(doc.problem(loc[:-1], f"required key is missing: {loc[-1]}", key=str(loc[-1])))
        else:
            value = e.get("input")
            shown = f"{value!r}: " if isinstance(value, str | int | float | bool) else ""
            out.append(doc.problem(loc, shown + e["msg"]))
    return out


# -- the language: models built from the check types ---------------------------------------


def _fields(checks: list[Check], attr: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in checks:
        for name, (typ, default) in getattr(c, attr).items():
            out[name] = (typ, default if default is not ... else None)
    return out


@lru_cache(maxsize=1)
def _models() -> dict[str, Any]:
    reg = list(registry().values())
    column = create_model(
        "Column", __base__=_Strict,
        name=(str, ...), type=(CdmType, ...), label=(str | None, None), unit=(str | None, None),
        # Where the column applies and what a blank means: read by the QA report's completeness
        # (docs/qa-report.md), not by any check.
        applies_when=(str | None, None), applies_label=(str | None, None), blank_means=(str | None, None),
        **_fields([c for c in reg if c.level == "column"], "attributes"),
    )
    table = create_model(
        "Table", __base__=_Strict,
        table=(str, ...), description=(str, ""), key=(list[str], []), columns=(list[column], ...),
        canonical_units=(dict[str, str] | None, None),
        # How a center mapping fills the table: the mapping package's own language (mapping/);
        # here only the columns it names are checked (_mapping_columns).
        mapping=(dict[str, Any] | None, None),
        **_fields(reg, "table_attributes"),
    )
    base = {"id": (str, Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")), "table": (str, ...),
            "severity": (Severity, ...), "category": (Category | None, None), "check": (str | None, None),
            "engine": (Literal["polars", "duckdb"] | None, None), "columns": (list[str], []),
            "report_column": (str | None, None), "threshold": (float | None, None),
            "message": (str, ...), "source": (str | None, None)}
    rules = {c.name: create_model(f"Rule_{c.name}", __base__=_Strict, **base, **c.attributes)
             for c in reg if c.level == "rule"}
    override = create_model("CheckType", __base__=_Strict, severity=(Severity | None, None),
                            category=(Category | None, None), message=(str | None, None))
    phi_col = create_model("PhiColumns", __base__=_Strict, id=(str, ...), severity=(Severity, ...),
                           category=(Category, ...), message=(str, ...), name_pattern=(str, ...))
    phi_val = create_model("PhiValue", __base__=_Strict, id=(str, ...), severity=(Severity, ...),
                           category=(Category, ...), message=(str, ...), pattern=(str | None, None),
                           only_columns=(list[str] | None, None),
                           # issue 23: a detector of ptrharmonize/identifiers.py on the values that
                           # `candidates` lets through; every text column when all_text_columns.
                           candidates=(str | None, None), validator=(str | None, None),
                           all_text_columns=(bool, False))
    phi = create_model("Phi", __base__=_Strict, source=(str | None, None), columns=(phi_col | None, None),
                       values=(list[phi_val], []), scan_columns=(dict[str, list[str]], {}))
    return {"column": column, "table": table, "rules": rules, "override": override, "phi": phi}


# -- the check ------------------------------------------------------------------------------


def check_catalog(root: Path | None = None) -> list[Problem]:
    """Every problem of the catalog under `root` (default: the schemas folder in use)."""
    base = Path(root or schemas_dir())
    problems: list[Problem] = []
    docs: dict[str, _Doc] = {}
    for path in sorted(base.rglob("*.yaml")):
        label = str(path)
        try:
            docs[path.relative_to(base).as_posix()] = _Doc(path, label)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problems.append(Problem(label, mark.line + 1 if mark else None, "", f"not valid YAML: {getattr(exc, 'problem', exc)}"))
        except (OSError, UnicodeError) as exc:
            problems.append(Problem(label, None, "", f"cannot be read: {exc}"))
    if problems:
        return problems
    for required in ("rules.yaml", "definitions.yaml", "tables/patients.yaml"):
        if required not in docs:
            problems.append(Problem(str(base / required), None, "", "file is missing"))
    if problems:
        return problems
    m = _models()
    tables: dict[str, Any] = {}
    for rel, doc in docs.items():
        if rel.startswith("tables/"):
            problems += _check_table(doc, rel, m, tables)
        elif rel not in ("rules.yaml", "definitions.yaml", "units.yaml", "phi.yaml", "check_types.yaml",
                         "limits.yaml", LEXICON,  # limits.yaml: ptrharmonize/limits.py (issue 23)
                         "completeness.yaml"):  # completeness.yaml: report/missing.py (issue 16)
            problems.append(doc.problem((), "not a file of the catalog language (tables/<table>.yaml, rules.yaml, "
                                            "definitions.yaml, units.yaml, phi.yaml, check_types.yaml, "
                                            f"limits.yaml, {LEXICON}, completeness.yaml)", key=""))
    if "check_types.yaml" in docs:
        problems += _check_overrides(docs["check_types.yaml"], m)
    if "phi.yaml" in docs:
        problems += _check_phi(docs["phi.yaml"], m, tables)
    if LEXICON in docs:
        problems += _check_lexicon(docs[LEXICON], tables)
    problems += _check_definitions(docs["definitions.yaml"])
    if "units.yaml" in docs:
        problems += _check_units(docs["units.yaml"])
    if "limits.yaml" in docs:
        problems += _check_limits(docs["limits.yaml"])
    # The rules are compiled against well-formed tables and definitions only.
    problems += _check_rules(docs["rules.yaml"], m, tables, docs["definitions.yaml"].data, compile=not problems)
    return problems


LEXICON = "onboarding/lexicon.yaml"  # ptrh scan / mapping draft (ptrharmonize/scan/match.py)
_LEXICON_KEYS = {"tables", "columns", "codes", "booleans", "date_formats", "timestamp_formats"}


def _check_lexicon(doc: _Doc, tables: dict[str, Any]) -> list[Problem]:
    """The onboarding lexicon names CDM tables, columns and codes that exist, with word lists."""
    data = doc.data
    if not isinstance(data, dict):
        return [doc.problem((), "must be a mapping (tables, columns, codes, booleans, date formats)", key="")]
    out = [doc.problem((k,), f"unknown key {k!r} (known: {', '.join(sorted(_LEXICON_KEYS))})", at_key=True)
           for k in data if k not in _LEXICON_KEYS]
    cols = {c["name"]: c for _, t in tables.values() for c in t.get("columns", []) if isinstance(c, dict)}

    def words(loc: tuple[Any, ...], v: Any) -> None:
        if not isinstance(v, list) or not all(isinstance(w, str | int | float) for w in v):
            out.append(doc.problem(loc, "must be a list of words"))

    for name, v in (data.get("tables") or {}).items():
        if name not in tables:
            out.append(doc.problem(("tables", name), f"{name!r} is not a CDM table", at_key=True))
        words(("tables", name), v)
    for name, v in (data.get("columns") or {}).items():
        if name not in cols:
            out.append(doc.problem(("columns", name), f"{name!r} is not a column of any CDM table", at_key=True))
        words(("columns", name), v)
    for name, codes in (data.get("codes") or {}).items():
        known = set(cols.get(name, {}).get("codes") or [])
        if not known:
            out.append(doc.problem(("codes", name), f"{name!r} is not a code column of the CDM", at_key=True))
            continue
        for code, v in (codes or {}).items():
            if str(code) not in known:
                out.append(doc.problem(("codes", name, code), f"{code!r} is not a code of {name}", at_key=True))
            words(("codes", name, code), v)
    for key in ("date_formats", "timestamp_formats"):
        if key in data:
            words((key,), data[key])
    return out


def _check_table(doc: _Doc, rel: str, m: dict[str, Any], tables: dict[str, Any]) -> list[Problem]:
    if not isinstance(doc.data, dict):
        return [doc.problem((), "must be a mapping with table, description and columns", key="")]
    try:
        model = m["table"].model_validate(doc.data)
    except ValidationError as exc:
        # Known to the other files' checks by name and columns, so one typo is one problem.
        cols = doc.data.get("columns")
        if isinstance(doc.data.get("table"), str) and isinstance(cols, list) and all(
                isinstance(c, dict) and isinstance(c.get("name"), str) for c in cols):
            tables[doc.data["table"]] = (doc, doc.data)
        return _pydantic_problems(doc, exc)
    out = []
    stem = Path(rel).stem
    if model.table != stem:
        out.append(doc.problem(("table",), f"the table is named {model.table!r} but its file is {stem}.yaml"))
    names = [c.name for c in model.columns]
    for i, c in enumerate(model.columns):
        loc = ("columns", i)
        if names.count(c.name) > 1:
            out.append(doc.problem((*loc, "name"), f"column {c.name!r} is declared twice"))
        numeric = c.type in ("integer", "decimal")
        for attr in ("min", "max", "plausible_min", "plausible_max"):
            if getattr(c, attr, None) is not None and not numeric:
                out.append(doc.problem((*loc, attr), f"a bound on a {c.type} column (only integer and decimal columns have ranges)"))
        if getattr(c, "codes", None) and c.type not in ("code", "text"):
            out.append(doc.problem((*loc, "codes"), f"codes on a {c.type} column (only code columns have codes)"))
        if c.applies_when:
            why = _compile_condition(model.columns, c.applies_when)
            if why:
                out.append(doc.problem((*loc, "applies_when"), f"does not compile against the columns of {model.table}: {why}"))
    for loc, name in _mapping_columns(doc.data.get("mapping") or {}, ("mapping",)):
        if name not in names:
            out.append(doc.problem(loc, f"{name!r} is not a column of {model.table}"))
    for i, k in enumerate(model.key):
        if k not in names:
            out.append(doc.problem(("key", i), f"key column {k!r} is not a column of {model.table}"))
    tables[model.table] = (doc, doc.data)
    return out


def _compile_condition(columns: list[Any], condition: str) -> str | None:
    """None when `condition` is a SQL boolean over these columns (DuckDB, as the QA report runs it)."""
    from ..cdm import DUCKDB_TYPES

    con = duckdb.connect()
    try:
        cols = ", ".join(f"{qi(c.name)} {DUCKDB_TYPES[c.type]}" for c in columns)
        con.execute(f"CREATE TABLE t ({cols})")
        con.execute(f"SELECT count(*) FILTER (WHERE {condition}) FROM t").fetchall()
    except duckdb.Error as exc:
        return str(exc).splitlines()[0]
    finally:
        con.close()
    return None


_MAPPING_COLUMN_KEYS = {"fills", "when", "multiply", "by"}


def _mapping_columns(node: Any, loc: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], str]]:
    """(location, column) of every value under `mapping:` that names a column of the table."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, str) and (k in _MAPPING_COLUMN_KEYS or str(k).endswith("_column")):
                out.append(((*loc, k), v))
            else:
                out += _mapping_columns(v, (*loc, k))
    return out


def _check_overrides(doc: _Doc, m: dict[str, Any]) -> list[Problem]:
    if doc.data is None:
        return []
    if not isinstance(doc.data, dict):
        return [doc.problem((), "must map check types to their severity, category or message", key="")]
    out = []
    for name, value in doc.data.items():
        if name not in registry():
            out.append(doc.problem((name,), f"unknown check type (known: {', '.join(sorted(registry()))})", at_key=True))
            continue
        try:
            m["override"].model_validate(value or {})
        except ValidationError as exc:
            out += _pydantic_problems(doc, exc, (name,))
    return out


def _check_phi(doc: _Doc, m: dict[str, Any], tables: dict[str, Any]) -> list[Problem]:
    try:
        model = m["phi"].model_validate(doc.data or {})
    except ValidationError as exc:
        return _pydantic_problems(doc, exc)
    out = []
    patterns = [(("columns", "name_pattern"), model.columns.name_pattern)] if model.columns else []
    patterns += [(("values", i, "pattern"), v.pattern) for i, v in enumerate(model.values) if v.pattern]
    patterns += [(("values", i, "candidates"), v.candidates) for i, v in enumerate(model.values) if v.candidates]
    from ..identifiers import VALIDATORS

    for i, v in enumerate(model.values):
        if v.validator is not None and v.validator not in VALIDATORS:
            out.append(doc.problem(("values", i, "validator"), f"{v.validator!r} is not a detector of "
                                   f"ptrharmonize/identifiers.py ({', '.join(sorted(VALIDATORS))})"))
        if not v.pattern and not v.validator:
            out.append(doc.problem(("values", i), "a value rule needs a pattern or a validator"))
    for loc, pattern in patterns:
        try:
            pl.Series([""]).str.contains(pattern)
        except Exception as exc:  # noqa: BLE001 - polars' regex error, as text
            out.append(doc.problem(loc, f"not a valid regular expression: {str(exc).splitlines()[0]}"))
    all_cols = {c["name"] for _, data in tables.values() for c in data["columns"]}
    for i, v in enumerate(model.values):
        for j, c in enumerate(v.only_columns or []):
            if c not in all_cols:
                out.append(doc.problem(("values", i, "only_columns", j), f"{c!r} is not a column of any table"))
    for table, cols in model.scan_columns.items():
        if table not in tables:
            out.append(doc.problem(("scan_columns", table), f"{table!r} is not a table", at_key=True))
            continue
        names = {c["name"] for c in tables[table][1]["columns"]}
        for j, c in enumerate(cols):
            if c not in names:
                out.append(doc.problem(("scan_columns", table, j), f"{c!r} is not a column of {table}"))
    return out


def _check_definitions(doc: _Doc) -> list[Problem]:
    if not isinstance(doc.data, dict):
        return [doc.problem((), "must be a mapping of definition sections", key="")]
    from ..derive import DefinitionError, definition_macros

    try:
        definition_macros(doc.data)
    except DefinitionError as exc:
        # "definitions: a.b.c must be ..." -> the line of a.b.c
        m = re.match(r"definitions: (?:key )?([A-Za-z0-9_.]+)", str(exc))
        loc = tuple(m.group(1).split(".")) if m else ()
        return [doc.problem(loc, str(exc).removeprefix("definitions: "))]
    return []


def _check_units(doc: _Doc) -> list[Problem]:
    from ..units import UnitError, _load

    try:
        _load(doc.path)
    except (UnitError, KeyError, TypeError, ValueError) as exc:
        return [doc.problem((), f"the unit registry cannot be loaded: {exc}", key="")]
    return []


def _check_limits(doc: _Doc) -> list[Problem]:
    """limits.yaml (read by ptrharmonize/limits.py): known names, values of the default's kind."""
    from ..limits import DEFAULTS

    if doc.data is None:
        return []
    if not isinstance(doc.data, dict):
        return [doc.problem((), "must map limit names to values", key="")]
    out = []
    for name, value in doc.data.items():
        if name == "source":
            continue
        if name not in DEFAULTS:
            out.append(doc.problem((name,), f"unknown limit (known: {', '.join(DEFAULTS)})", at_key=True))
            continue
        kind = type(DEFAULTS[name])
        ok = isinstance(value, str) if kind is str else (
            isinstance(value, int | float) and not isinstance(value, bool) and value >= 0)
        if not ok:
            out.append(doc.problem((name,), f"{value!r}: must be {'text' if kind is str else 'a number >= 0'}"))
        elif name.endswith("_pattern"):
            try:
                re.compile(value)
            except re.error as exc:
                out.append(doc.problem((name,), f"not a valid regular expression: {exc}"))
    return out


def _typed_frame(spec: Any) -> pl.LazyFrame:
    schema: dict[str, pl.DataType] = {FILE_COL: pl.Utf8(), ROW_COL: pl.Int64()}
    for c in spec.columns:
        schema[c.name] = c.polars_type
        schema[RAW_PREFIX + c.name] = pl.Utf8()
    return pl.DataFrame(schema=schema).lazy()


def _compile_polars(frame: pl.LazyFrame, rule: Any) -> str | None:
    """None when the rule's evaluation runs on the table's typed (empty) columns, else why not."""
    try:
        if "fails" in rule.spec:  # a custom condition: it must be one before it is combined
            dtype = frame.select(pl.sql_expr(rule.spec["fails"]).alias("c")).collect().schema["c"]
            if dtype not in (pl.Boolean, pl.Null):
                return f"the expression gives {dtype}, not true/false"
        ev = rule.evaluation()
        out = frame.select(ev.rows.alias("rows"), ev.fails.alias("fails")).collect()
    except Exception as exc:  # noqa: BLE001 - polars' own message is the explanation
        text = " ".join(str(exc).split("\n\nResolved plan")[0].split())
        return re.sub(r"; valid columns: \[[^\]]*\]", "", text)
    for name in ("rows", "fails"):
        if out.schema[name] != pl.Boolean:
            return f"the expression gives {out.schema[name]}, not true/false"
    return None


def _duckdb_catalog(specs: dict[str, Any], definitions: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    """The relations a rule query sees, typed and empty: the tables, canonical_lab_units,
    submission_center and crs_graded."""
    from ..derive import install_crs_graded

    con = duckdb.connect()
    for name, spec in specs.items():
        cols = [f"{qi(c.name)} {DUCKDB_TYPES[c.type]}" for c in spec.columns]
        con.execute(f"CREATE TABLE {qi(name)} ({', '.join(cols)}, _file VARCHAR, _row BIGINT)")
    con.execute("CREATE TABLE canonical_lab_units (analyte VARCHAR, unit VARCHAR)")
    con.execute("CREATE TABLE submission_center (center_id VARCHAR)")
    install_crs_graded(con, definitions)
    return con


def _compile_duckdb(con: duckdb.DuckDBPyConnection, rule: Any) -> tuple[str, str] | None:
    """None when the rule's queries compile and return what the engine reads, else (key, why)."""
    q = rule.query()
    try:
        cols = [d[0] for d in con.execute(f"SELECT * FROM ({q.failing}) LIMIT 0").description]
    except duckdb.Error as exc:
        return "sql", " ".join(str(exc).split())
    if [c.lower() for c in cols] != ["_file", "_row", "value"]:
        return "sql", f"the query must return the columns _file, _row, value (it returns {', '.join(cols)})"
    try:
        desc = con.execute(f"SELECT * FROM ({q.denominator}) LIMIT 0").description
    except duckdb.Error as exc:
        return "denominator", " ".join(str(exc).split())
    if len(desc) != 1:
        return "denominator", "the query must return one number (a count of rows)"
    return None


def _check_rules(doc: _Doc, m: dict[str, Any], tables: dict[str, Any], definitions: dict[str, Any],
                 compile: bool = True) -> list[Problem]:
    if not isinstance(doc.data, list):
        return [doc.problem((), "must be a list of rules", key="")]
    specs = {}
    for name, (_, data) in tables.items():
        try:
            specs[name] = _table_from_yaml(data)
        except (KeyError, TypeError, ValueError):  # its own problems are reported with its file
            compile = False
            specs[name] = None
    reg = registry()
    out: list[Problem] = []
    good: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(doc.data):
        if not isinstance(entry, dict):
            out.append(doc.problem((i,), "a rule must be a mapping", key=""))
            continue
        name = rule_check_name(entry)
        check = reg.get(name)
        if check is None or check.level != "rule":
            known = ", ".join(sorted(c.name for c in reg.values() if c.level == "rule"))
            out.append(doc.problem((i, "check"), f"unknown check type {name!r} (rule check types: {known})"))
            continue
        try:
            m["rules"][name].model_validate(entry)
        except ValidationError as exc:
            out += _pydantic_problems(doc, exc, (i,))
            continue
        if entry.get("engine") and entry["engine"] != check.engine:
            out.append(doc.problem((i, "engine"), f"check {name} is evaluated by {check.engine}, not {entry['engine']}"))
            continue
        if entry["id"] in seen:
            out.append(doc.problem((i, "id"), f"rule id {entry['id']!r} is used twice (also rule {seen[entry['id']] + 1})"))
        seen[entry["id"]] = i
        if entry["table"] not in specs:
            out.append(doc.problem((i, "table"), f"{entry['table']!r} is not a table ({', '.join(specs)})"))
            continue
        bad = False
        names = {c["name"] for c in tables[entry["table"]][1]["columns"]}
        for j, c in enumerate(entry.get("columns") or []):
            if c not in names:
                out.append(doc.problem((i, "columns", j), f"{c!r} is not a column of {entry['table']}", key="columns"))
                bad = True
        for attr in ("report_column", *check.column_attributes):
            if entry.get(attr) is not None and entry[attr] not in names:
                out.append(doc.problem((i, attr), f"{entry[attr]!r} is not a column of {entry['table']}"))
                bad = True
        if not bad:
            good.append((i, entry))
    if not compile:
        return out
    # Compile every evaluation against the typed tables: the rules of rules.yaml, and the column
    # rules generated from the tables (a check type's expression over a column's type).
    cat = Catalog(tables=specs, check_types={}, rules=tuple(e for _, e in good), definitions=definitions)
    frames = {name: _typed_frame(spec) for name, spec in specs.items()}
    con = _duckdb_catalog(specs, definitions)
    try:
        for (i, entry), rule in zip(good, catalog_rules(cat), strict=True):
            if rule.engine == "polars":
                why = _compile_polars(frames[rule.table], rule)
                if why:
                    out.append(doc.problem((i, "fails" if "fails" in entry else rule.check),
                                           f"does not compile against the typed columns of {rule.table}: {why}"))
            else:
                bad = _compile_duckdb(con, rule)
                if bad:
                    key = bad[0] if bad[0] in entry else rule.check
                    p = doc.problem((i, key), f"does not compile against the typed tables: {bad[1]}", key=bad[0])
                    out.append(_sql_line(doc, (i, key), p, bad[1]))
        for rule in column_rules(cat):
            why = _compile_polars(frames[rule.table], rule) if rule.engine == "polars" else None
            if rule.engine == "duckdb":
                bad = _compile_duckdb(con, rule)
                why = bad[1] if bad else None
            if why:
                tdoc = tables[rule.table][0]
                idx = table_column_index(tables[rule.table][1], rule.column)
                out.append(tdoc.problem(("columns", idx), f"check {rule.check} cannot run on this column: {why}",
                                        key=rule.check))
    finally:
        con.close()
    return out


def _sql_line(doc: _Doc, loc: tuple[Any, ...], p: Problem, why: str) -> Problem:
    """DuckDB names the line of the query (`LINE 3:`): in a block scalar (`sql: |`), that is the
    third line after the key."""
    m = re.search(r"LINE (\d+):", why)
    node = doc.node
    for part in loc:
        node = (next((v for k, v in node.value if k.value == part), None) if isinstance(node, yaml.MappingNode)
                else node.value[part] if isinstance(node, yaml.SequenceNode) else None)
        if node is None:
            return p
    if m and isinstance(node, yaml.ScalarNode) and node.style in ("|", ">") and p.line:
        return Problem(p.file, p.line + int(m.group(1)), p.key, p.message)
    return p


def table_column_index(data: dict[str, Any], column: str | None) -> int:
    return next((i for i, c in enumerate(data["columns"]) if c.get("name") == column), 0)


@lru_cache(maxsize=8)
def _checked(root: str) -> None:
    problems = check_catalog(Path(root))
    if problems:
        raise CatalogError(problems)


def ensure_checked(catalog: Catalog) -> None:
    """Raise CatalogError when the files the catalog was loaded from break the language."""
    if catalog.root is not None:
        _checked(catalog.root)


def checked_catalog(root: Path | None = None) -> Catalog:
    """The catalog, after its files passed the check (CatalogError, exit 2, otherwise)."""
    base = str(Path(root or schemas_dir()))
    _checked(base)
    return load_catalog(Path(base))
