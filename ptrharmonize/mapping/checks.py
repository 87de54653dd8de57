"""Checks a mapping passes before any data is read: units, value-map targets, formats,
conventions. Each appends findings ({level, where, message}) to a list; none raises."""

from __future__ import annotations

import re
from typing import Any

from .. import units as unitreg
from ..cdm import Catalog, ColumnSpec
from .dates import date_format_problem
from .language import problem as _p
from .language import text_of
from .model import BELOW_LOD, ColumnMap, Roles

Problems = list[dict[str, str]]


def check_unit(unit: str, target: str | None, where: str, problems: Problems) -> None:
    """The unit is known to the registry and converts to `target` (when there is one)."""
    try:
        unitreg.lookup(unit)
    except unitreg.UnitError as exc:
        problems.append(_p("error", where, str(exc)))
        return
    if target is None:
        return
    try:
        unitreg.linear(unit, target)
    except unitreg.UnitError as exc:
        problems.append(_p("error", where, str(exc)))


def check_analyte_unit(unit: str, analyte: str, canonical: dict[str, str], where: str, problems: Problems) -> None:
    target = canonical.get(analyte)
    if target is None:
        try:
            unitreg.lookup(unit)
        except unitreg.UnitError as exc:
            problems.append(_p("error", where, str(exc)))
            return
        problems.append(_p("error", where, f"'{analyte}' is not an analyte code ({', '.join(canonical)})"))
        return
    check_unit(unit, target, where, problems)


def _check_unit_of(col: ColumnSpec, cm: ColumnMap, where: str, problems: Problems, per_row_unit: bool) -> None:
    if col.type not in ("integer", "decimal"):
        problems.append(_p("error", where + ".unit", f"'{col.name}' is {col.type}, not a number; a unit makes no sense here"))
    elif per_row_unit:
        pass  # a measurement's value: checked per analyte when applied (the unit of the row's analyte)
    elif col.unit is None:
        problems.append(_p("error", where + ".unit", f"'{col.name}' has no unit in the CDM; remove `unit`"))
    else:
        check_unit(cm.unit or "", col.unit, where + ".unit", problems)


def _target_problem(col: ColumnSpec, t: str) -> str | None:
    if col.codes and t not in col.codes:
        return f"'{t}' is not a code of {col.name} ({', '.join(col.codes)})"
    if col.type == "boolean" and t not in ("true", "false"):
        return f"'{t}' is not true or false"
    if col.type == "integer" and not re.fullmatch(r"-?\d+", t):
        return f"'{t}' is not a whole number"
    if col.type == "decimal" and not re.fullmatch(r"-?\d+(\.\d+)?([eE]-?\d+)?", t):
        return f"'{t}' is not a number"
    return None


def check_column(col: ColumnSpec, cm: ColumnMap, where: str, problems: Problems, measured_value: bool) -> None:
    """A column's declaration fits its CDM column: unit, formats, time column, value targets."""
    if cm.unit:
        _check_unit_of(col, cm, where, problems, measured_value and col.unit is None)
    if cm.formats and col.type not in ("date", "timestamp"):
        problems.append(_p("error", where + ".format", f"`format` is for date and timestamp columns; '{col.name}' is {col.type}"))
    for f in cm.formats or []:
        why = date_format_problem(f)
        if why:
            problems.append(_p("error", where + ".format", why))
    if cm.time_column and col.type != "timestamp":
        problems.append(_p("error", where + ".time_column", "`time_column` combines a date and a time into a timestamp column"))
    if cm.below_lod and not measured_value:
        problems.append(_p("warning", where + ".below_lod", "below-LOD notation is only understood for measured values"))
    targets = cm.values.targets() if cm.values else []
    if cm.is_constant:
        targets.append(text_of(cm.constant))
    for t in targets:
        why = _target_problem(col, t) if t is not None else None
        if why:
            problems.append(_p("error", where + ".values", why))


def _check_content(conv: str, content: Any, by: str, codes: tuple[str, ...], problems: Problems) -> None:
    items = content.items() if isinstance(content, dict) else [("(all)", content)]
    for key, val in items:
        if key not in (*codes, "(all)", "default"):
            problems.append(_p("error", f"conventions.{conv}.{key}", f"'{key}' is not a {by} code ({', '.join(codes)}, or default)"))
        if isinstance(val, bool) or not isinstance(val, int | float) or val <= 0:
            problems.append(_p("error", f"conventions.{conv}.{key}", "the value for one unit must be a positive number"))


def check_conventions(conv: dict[str, Any], catalog: Catalog, roles: Roles, problems: Problems) -> None:
    """Known conventions only, each with a value its CDM declaration accepts."""
    known = {*roles.conventions, BELOW_LOD}
    for k in set(conv) - known:
        problems.append(_p("warning", f"conventions.{k}", f"unknown convention '{k}' is ignored; known: {', '.join(sorted(known))}"))
    for name, decl in roles.conventions.items():
        value = conv.get(name)
        if value is None:
            continue
        tspec = catalog.tables[decl.table]
        if decl.multiply is not None:
            codes = (tspec.column(decl.by).codes or ()) if decl.by else ()
            _check_content(name, value, decl.by or decl.fills, tuple(codes), problems)
            continue
        codes = tspec.column(decl.fills).codes or ()
        if codes and text_of(value) not in codes:
            problems.append(_p("error", f"conventions.{name}", f"'{value}' is not a {decl.fills} code ({', '.join(codes)})"))
