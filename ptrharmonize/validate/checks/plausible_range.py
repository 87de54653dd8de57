"""`plausible_min`, `plausible_max`: a value the CDM allows but that is rarely true (a warning):
outside it, the value or its unit is probably wrong."""

from __future__ import annotations

from . import Check, Evaluation, Target, fmt_num
from .range import bounds_fail


def _evaluate(t: Target) -> Evaluation:
    s = t.spec
    return Evaluation(rows=t.col.is_not_null(),
                      fails=bounds_fail(t.col, s.get("plausible_min"), s.get("plausible_max")))


CHECK = Check(
    name="plausible_range",
    level="column",
    severity="warning",
    category="plausibility",
    message="{label} is usually between {plausible_min} and {plausible_max} {unit}; this value is outside. Check the value and its unit.",
    attributes={"plausible_min": (float | None, None), "plausible_max": (float | None, None)},
    applies=lambda table, col: col.attrs.get("plausible_min") is not None or col.attrs.get("plausible_max") is not None,
    polars=_evaluate,
    message_fields=lambda t: {
        "plausible_min": fmt_num(t.spec.get("plausible_min")) if t.spec.get("plausible_min") is not None else "-inf",
        "plausible_max": fmt_num(t.spec.get("plausible_max")) if t.spec.get("plausible_max") is not None else "+inf"},
)
