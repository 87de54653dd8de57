"""`min`, `max` (and `min_exclusive`): the value must lie in the range the CDM allows."""

from __future__ import annotations

import polars as pl

from . import Check, Evaluation, Target, fmt_num


def bounds_fail(c: pl.Expr, lo: float | None, hi: float | None, lo_exclusive: bool = False) -> pl.Expr:
    bad = pl.lit(False)
    if lo is not None:
        bad = bad | ((c <= lo) if lo_exclusive else (c < lo))
    if hi is not None:
        bad = bad | (c > hi)
    return c.is_not_null() & bad


def _evaluate(t: Target) -> Evaluation:
    s = t.spec
    return Evaluation(rows=t.col.is_not_null(),
                      fails=bounds_fail(t.col, s.get("min"), s.get("max"), bool(s.get("min_exclusive"))))


CHECK = Check(
    name="range",
    level="column",
    category="plausibility",
    message="{label} must be between {min} and {max} {unit}. Check the value and its unit.",
    attributes={"min": (float | None, None), "max": (float | None, None), "min_exclusive": (bool, False)},
    applies=lambda table, col: col.attrs.get("min") is not None or col.attrs.get("max") is not None,
    polars=_evaluate,
    message_fields=lambda t: {"min": fmt_num(t.spec.get("min")) if t.spec.get("min") is not None else "-inf",
                              "max": fmt_num(t.spec.get("max")) if t.spec.get("max") is not None else "+inf"},
)
