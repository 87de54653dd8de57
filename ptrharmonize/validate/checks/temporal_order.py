"""`check: temporal_order` (rules.yaml): `earlier` must not be after `later` on the same row
(`strict: true`: must be before). Evaluated where both are filled."""

from __future__ import annotations

import polars as pl

from . import Check, Evaluation, Target


def _evaluate(t: Target) -> Evaluation:
    a, b = pl.col(t.spec["earlier"]), pl.col(t.spec["later"])
    rows = a.is_not_null() & b.is_not_null()
    bad = (a >= b) if t.spec.get("strict") else (a > b)
    return Evaluation(rows=rows, fails=rows & bad.fill_null(False))


CHECK = Check(
    name="temporal_order",
    level="rule",
    category="plausibility",
    attributes={"earlier": (str, ...), "later": (str, ...), "strict": (bool, False)},
    column_attributes=("earlier", "later"),
    needs=lambda t: (t.spec["earlier"], t.spec["later"]),
    polars=_evaluate,
)
