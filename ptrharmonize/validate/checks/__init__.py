"""The registry of check types: one small module each, found by listing this package.

A module defines `CHECK = Check(...)`: the check type's name, the YAML attributes it reads (and
so what the catalog language accepts: `validate/catalog.py` builds its schema from them), its
default severity, category and message, and ONE evaluation with its denominator, either a
polars expression (`polars`) or a DuckDB query template (`duckdb`). Everything else follows
from that one definition: the rules generated from `schemas/tables/*.yaml` and `rules.yaml`,
the pandera back end and the polars back end of the engine (both run the same expressions),
the cross-table pass, and the catalog check.

Adding a column-level check type is one module here plus its attribute in a table's YAML; no
list to edit. Three levels:

- `column`: asked for by an attribute of a column in `schemas/tables/<table>.yaml`
  (`required: true`, `codes: [...]`, `plausible_max: 168`, ...); rule id `<table>.<column>.<check>`.
- `rule`: an entry of `schemas/rules.yaml` with `check: <name>` and the attributes it declares;
  the entry gives the id, severity, message and source.
- `structure`: about files and headers (a missing table or column); evaluated by the engine
  from the header, so no row evaluation.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import polars as pl

from ...cdm import ColumnSpec, TableSpec

# The column every staged table carries with the text of a cell that did not parse (parse.py).
RAW_PREFIX = "__raw__"


@dataclass(frozen=True)
class Target:
    """What one rule checks: its table, its column (column-level checks) and its attributes
    (the column's YAML attributes, or the rules.yaml entry)."""

    table: TableSpec
    column: ColumnSpec | None
    spec: Mapping[str, Any]

    @property
    def col(self) -> pl.Expr:
        assert self.column is not None
        return pl.col(self.column.name)

    @property
    def raw(self) -> pl.Expr:
        assert self.column is not None
        return pl.col(RAW_PREFIX + self.column.name)


@dataclass(frozen=True)
class Evaluation:
    """A polars evaluation: `rows` is True on the rows the rule is evaluated on (its
    denominator), `fails` on the rows where it fails (a subset of `rows`)."""

    rows: pl.Expr
    fails: pl.Expr


@dataclass(frozen=True)
class Query:
    """A DuckDB evaluation over the submission's tables (views of the staged files): `failing`
    returns the failing rows as `_file, _row, value`; `denominator` counts the rows checked."""

    failing: str
    denominator: str


@dataclass(frozen=True)
class Check:
    name: str
    level: str  # column | rule | structure
    severity: str = "error"
    category: str = "conformance"
    message: str = ""  # column and structure checks; a rules.yaml entry has its own
    # YAML attributes this check reads -> (type, default) as pydantic field definitions
    # (default `...`: required). Column level: keys of a column; rule level: keys of the entry.
    attributes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    # Attributes of the table (not of a column) that this check reads (references).
    table_attributes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    # Attributes whose value names a column of the rule's table (checked at load).
    column_attributes: tuple[str, ...] = ()
    # Column level: does this column (or its table) ask for the check.
    applies: Callable[[TableSpec, ColumnSpec], bool] | None = None
    # Columns a rule of this type needs (not submitted -> not_applicable); default: its column,
    # or the entry's `columns`.
    needs: Callable[[Target], tuple[str, ...]] | None = None
    # The one evaluation: exactly one of these two.
    polars: Callable[[Target], Evaluation] | None = None
    duckdb: Callable[[Target], Query] | None = None
    # Extra fields for the message template (beyond the column's label, unit, ...).
    message_fields: Callable[[Target], dict[str, str]] | None = None

    @property
    def engine(self) -> str:
        """The back end that evaluates it: polars (one pass over a table) or duckdb (SQL over
        every table); structure checks are the engine's own."""
        if self.polars is not None:
            return "polars"
        if self.duckdb is not None:
            return "duckdb"
        return "structure"


@lru_cache(maxsize=1)
def registry() -> dict[str, Check]:
    """Every check type, by name: the modules of this package, each with a `CHECK`."""
    out: dict[str, Check] = {}
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        check = getattr(importlib.import_module(f"{__name__}.{mod.name}"), "CHECK", None)
        if not isinstance(check, Check):
            continue
        if check.name in out:
            raise RuntimeError(f"check type {check.name!r} is defined twice (validate/checks/{mod.name}.py)")
        if check.level != "structure" and (check.polars is None) == (check.duckdb is None):
            raise RuntimeError(f"check type {check.name!r} needs exactly one evaluation (polars or duckdb)")
        out[check.name] = check
    return out


def fmt_num(x: Any) -> str:
    return "" if x is None else f"{float(x):g}"


def sql_str(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"

