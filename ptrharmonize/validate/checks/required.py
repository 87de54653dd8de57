"""`required: true`: the cell must not be empty (a cell that did not parse is a `type` issue)."""

from __future__ import annotations

import polars as pl

from ...cdm import ROW_COL
from . import Check, Evaluation, Target


def _evaluate(t: Target) -> Evaluation:
    return Evaluation(rows=pl.col(ROW_COL).is_not_null() | pl.col(ROW_COL).is_null(),
                      fails=t.col.is_null() & t.raw.is_null())


CHECK = Check(
    name="required",
    level="column",
    category="completeness",
    message="{label} is required but this cell is empty. Fill it in from the patient record.",
    attributes={"required": (bool, False)},
    applies=lambda table, col: bool(col.attrs.get("required")),
    polars=_evaluate,
)
