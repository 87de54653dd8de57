"""`codes: [...]`: the value must be one of the listed codes."""

from __future__ import annotations

from . import Check, Evaluation, Target


def _evaluate(t: Target) -> Evaluation:
    codes = list(t.spec["codes"])
    return Evaluation(rows=t.col.is_not_null(), fails=t.col.is_not_null() & ~t.col.is_in(codes))


CHECK = Check(
    name="codes",
    level="column",
    message="{label} must be one of: {codes}. Replace this value by one of the allowed codes.",
    attributes={"codes": (list[str] | None, None)},
    applies=lambda table, col: bool(col.attrs.get("codes")),
    polars=_evaluate,
    message_fields=lambda t: {"codes": ", ".join(t.spec["codes"])},
)
