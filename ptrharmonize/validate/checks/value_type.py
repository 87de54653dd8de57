"""`type`: a cell of a typed column (number, date, boolean, ...) must parse as that type.
Every column whose `type` is not text or code has it; the parser keeps the unparsed text."""

from __future__ import annotations

from . import Check, Evaluation, Target


def _evaluate(t: Target) -> Evaluation:
    return Evaluation(rows=t.col.is_not_null() | t.raw.is_not_null(), fails=t.raw.is_not_null())


CHECK = Check(
    name="type",
    level="column",
    message="{label} must be {type_text}; this value could not be read as one. Correct the value (no text, no '<' or '>' signs, no units in the cell).",
    applies=lambda table, col: col.type not in ("text", "code"),
    polars=_evaluate,
)
