"""`engine: polars` with `fails:` (rules.yaml): a custom SQL boolean expression over the table's
own columns, evaluated by polars on the rows where every column of `columns` is filled; the row
fails where it is true (a null result passes)."""

from __future__ import annotations

import polars as pl

from ...cdm import ROW_COL
from . import Check, Evaluation, Target


def _evaluate(t: Target) -> Evaluation:
    cols = t.spec.get("columns") or []
    rows = pl.all_horizontal([pl.col(c).is_not_null() for c in cols]) if cols else pl.col(ROW_COL).is_not_null()
    return Evaluation(rows=rows, fails=rows & pl.sql_expr(t.spec["fails"]).fill_null(False))


CHECK = Check(
    name="expression",
    level="rule",
    attributes={"fails": (str, ...)},
    polars=_evaluate,
)
