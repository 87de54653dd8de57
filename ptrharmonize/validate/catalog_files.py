"""The catalog's other files, each checked for what its reader needs: the onboarding lexicon,
check-type overrides, identifier scans (phi.yaml), definitions, units and limits."""

from __future__ import annotations

import re
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .catalog_doc import Problem, _Doc, _pydantic_problems
from .checks import registry

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
    from ..definition_sql import DefinitionError, definition_macros, unknown_keys

    out = [doc.problem(loc, f"unknown key {'.'.join(loc)} (a typo? no derivation or analysis reads it)",
                       at_key=True) for loc in unknown_keys(doc.data)]
    try:
        definition_macros(doc.data)
    except DefinitionError as exc:
        # "definitions: a.b.c must be ..." -> the line of a.b.c
        m = re.match(r"definitions: (?:key )?([A-Za-z0-9_.]+)", str(exc))
        loc = tuple(m.group(1).split(".")) if m else ()
        out.append(doc.problem(loc, str(exc).removeprefix("definitions: ")))
    return out


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


class _Outcome(BaseModel):
    """One outcome of completeness.yaml (report/missing.py reads exactly these keys)."""

    model_config = ConfigDict(extra="forbid")
    id: str
    variable: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")  # a patient_summary column
    label: str
    population: str
    threshold: float = Field(ge=0)
    severity: Literal["error", "warning"]
    message: str
    source: str


class _Completeness(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcomes: list[_Outcome] = []


def _check_completeness(doc: _Doc) -> list[Problem]:
    """completeness.yaml: known keys, a severity, a tolerance >= 0, a column name as variable
    (a typo such as `treshold` was ignored, and the outcome then had no tolerance)."""
    try:
        _Completeness.model_validate(doc.data or {})
    except ValidationError as exc:
        return _pydantic_problems(doc, exc)
    return []
