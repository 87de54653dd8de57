"""`unique_within_center: true`: a value appears once per center (an identifier)."""

from __future__ import annotations

import polars as pl

from . import Check, Evaluation, Target


def _evaluate(t: Target) -> Evaluation:
    # Every occurrence after the first of a (center, value) pair; a hash pass, ~5x faster than
    # numbering rows within a window over the same pair (same rows flagged).
    name = t.column.name
    return Evaluation(rows=t.col.is_not_null(),
                      fails=t.col.is_not_null() & ~pl.struct("center_id", name).is_first_distinct())


CHECK = Check(
    name="unique",
    level="column",
    message="{label} must be unique within the center, but this value appears more than once. Give each row its own identifier or remove the duplicate.",
    attributes={"unique_within_center": (bool, False)},
    applies=lambda table, col: bool(col.attrs.get("unique_within_center")),
    polars=_evaluate,
)
