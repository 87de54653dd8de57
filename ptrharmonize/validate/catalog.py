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

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ..cdm import (
    POLARS_TYPES,
    Catalog,
    _table_from_yaml,
    load_catalog,
)
from ..paths import schemas_dir
from .catalog_compile import (
    _compile_condition,
    _compile_duckdb,
    _compile_polars,
    _duckdb_catalog,
    _typed_frame,
)
from .catalog_doc import CatalogError, Problem, _Doc, _pydantic_problems, _sql_line
from .catalog_files import (
    LEXICON,
    _check_completeness,
    _check_definitions,
    _check_lexicon,
    _check_limits,
    _check_overrides,
    _check_phi,
    _check_units,
)
from .checks import Check, registry
from .rules import catalog_rules, column_rules, rule_check_name

SEVERITIES = ("error", "warning")
CATEGORIES = ("conformance", "completeness", "plausibility")
Severity = Literal["error", "warning"]
Category = Literal["conformance", "completeness", "plausibility"]
CdmType = Literal[tuple(POLARS_TYPES)]  # type: ignore[valid-type]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


# -- YAML with node marks --------------------------------------------------------------------


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
        elif rel.startswith("messages/"):  # the issue list's message catalog (ptrharmonize/messages.py)
            continue
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
    problems += _check_messages(docs)
    if "completeness.yaml" in docs:
        problems += _check_completeness(docs["completeness.yaml"])
    problems += _check_definitions(docs["definitions.yaml"])
    if "units.yaml" in docs:
        problems += _check_units(docs["units.yaml"])
    if "limits.yaml" in docs:
        problems += _check_limits(docs["limits.yaml"])
    # The rules are compiled against well-formed tables and definitions only.
    problems += _check_rules(docs["rules.yaml"], m, tables, docs["definitions.yaml"].data, compile=not problems)
    return problems


def _check_messages(docs: dict[str, _Doc]) -> list[Problem]:
    """Each message catalog names check types and rules that exist, with text templates."""
    from ..messages import shape_problems

    known = set(registry())
    for name in ("rules.yaml", "phi.yaml"):
        d = docs.get(name)
        data = d.data if d is not None else None
        entries = (data.get("rules") if name == "rules.yaml" else [data.get("columns"), *(data.get("values") or [])]) \
            if isinstance(data, dict) else data if isinstance(data, list) else []
        known |= {str(e["id"]) for e in entries or [] if isinstance(e, dict) and "id" in e}
    from ..messages import label_keys

    tables = {str(d.data["table"]): [str(c["name"]) for c in d.data.get("columns") or [] if isinstance(c, dict) and "name" in c]
              for rel, d in docs.items() if rel.startswith("tables/") and isinstance(d.data, dict) and "table" in d.data}
    columns = label_keys(tables)
    out = []
    for rel, doc in docs.items():
        if rel.startswith("messages/"):
            out += [doc.problem(loc, msg, at_key=True) for loc, msg in shape_problems(doc.data, known, columns)]
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
