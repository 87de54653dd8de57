"""The structural rules of a validation: a table or column missing, a column the CDM does not
know, a column whose name looks like an identifier, and the rules left without the columns
they need.

They read only a table's column names (and the first file's name, to point at its header), so
they run before any value is checked; a rule that needs a column the file lacks is marked
`not_applicable` here and never evaluated.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from ..cdm import FILE_COL, ROW_COL, Catalog
from .issue_rows import _issue_frame
from .result import _Outcome
from .rules import Rule, structural_message

_ONE_CELL = {FILE_COL: pl.Utf8, ROW_COL: pl.Int64, "value": pl.Utf8}


def table_absent(catalog: Catalog, table: str, table_rules: list[Rule], outcomes: dict[str, _Outcome],
                 issues: list[pl.DataFrame]) -> None:
    """A table not submitted: its `missing_table` rule fails once, every other rule of the table
    is not applicable."""
    for r in table_rules:
        if r.check == "missing_table":
            outcomes[r.id].checked, outcomes[r.id].failed = 1, 1
            fail = pl.DataFrame({FILE_COL: [f"{table}.csv"], ROW_COL: [None], "value": [None]}, schema=_ONE_CELL)
            issues.append(_issue_frame(r, fail, column=None, message=structural_message(r, catalog, "")))
        else:
            outcomes[r.id].status = "not_applicable"
            outcomes[r.id].reason = "table not submitted"


def structure_checks(catalog: Catalog, rules: list[Rule], table: str, cols: set[str], table_rules: list[Rule],
                     outcomes: dict[str, _Outcome], issues: list[pl.DataFrame],
                     frame: pl.LazyFrame | pl.DataFrame, declared: Any = None,
                     unread: list[tuple[str, str]] | None = None) -> None:
    """The structural rules of a submitted table over its column names `cols`. `declared`: what
    the mapping declares not collected (`collection.declared_in_mapping`), never "missing".
    `unread`: (file, header) of a mapped file's columns the mapping does not read; the identifier
    name check covers them too (a surname column left unmapped is still sent by the center)."""
    spec = catalog.tables[table]
    header = {FILE_COL: [first_file(frame, table)], ROW_COL: [1]}
    for r in table_rules:
        o = outcomes[r.id]
        if r.check == "missing_table":
            o.checked = 1
        elif r.check == "missing_column":
            missing = [c for c in spec.column_names if c not in cols
                       and not (declared and (table, c) in declared.columns)]
            o.checked, o.failed = len(spec.column_names), len(missing)
            for c in missing:
                fail = pl.DataFrame({**header, "value": [None]}, schema=_ONE_CELL)
                issues.append(_issue_frame(r, fail, column=c, message=structural_message(r, catalog, c)))
        elif r.check == "unknown_column":
            unknown = sorted(c for c in cols if c not in spec.column_names)
            o.checked, o.failed = len(cols), len(unknown)
            for c in unknown:
                fail = pl.DataFrame({**header, "value": [c]}, schema=_ONE_CELL)
                issues.append(_issue_frame(r, fail, column=c, message=structural_message(r, catalog, c)))
    phi_col = next((r for r in rules if r.check == "phi_column"), None)
    if phi_col is not None:
        pattern = re.compile(phi_col.spec["name_pattern"])
        hits = sorted(c for c in cols if pattern.match(c))
        outcomes[phi_col.id].checked += len(cols)
        outcomes[phi_col.id].failed += len(hits)
        for c in hits:
            fail = pl.DataFrame({**header, "value": [c]}, schema=_ONE_CELL)
            issues.append(_issue_frame(phi_col, fail, column=c, table=table))
        # A column the mapping leaves unread never reaches the store (the rule's own hint: "or
        # left unmapped"), so it does not block; but the center sent it, and the list tells the
        # center to stop: a warning on the file's header (no row), not counted as a failure.
        for f, c in ((f, c) for f, c in (unread or []) if pattern.match(c)):
            fail = pl.DataFrame({FILE_COL: [f], ROW_COL: [None], "value": [c]}, schema=_ONE_CELL)
            issues.append(_issue_frame(phi_col, fail, column=c, table=table)
                          .with_columns(pl.lit("warning").alias("severity")))
    # Rules needing a column the file lacks cannot be evaluated.
    for r in table_rules:
        if r.engine in ("polars", "duckdb"):
            lacking = [c for c in r.columns if c not in cols]
            if lacking:
                outcomes[r.id].status = "not_applicable"
                outcomes[r.id].reason = "column not submitted: " + ", ".join(lacking)


def first_file(frame: pl.LazyFrame | pl.DataFrame, table: str) -> str:
    """The file a table's first row came from (its header is where a column is missing)."""
    try:
        v = frame.lazy().select(pl.col(FILE_COL).first()).collect().item()
    except Exception:  # noqa: BLE001 - an empty or odd frame still gets a file name
        v = None
    return v or f"{table}.csv"
