"""`engine: duckdb` with `sql:` and `denominator:` (rules.yaml): a custom query over the
submission's tables (views of the staged files, plus `canonical_lab_units`, `submission_center` and `crs_graded`)
returning the failing rows as `_file, _row, value`, and a query counting the rows checked."""

from __future__ import annotations

from . import Check, Query, Target


def _evaluate(t: Target) -> Query:
    return Query(failing=t.spec["sql"], denominator=t.spec["denominator"])


CHECK = Check(
    name="query",
    level="rule",
    attributes={"sql": (str, ...), "denominator": (str, ...)},
    duckdb=_evaluate,
)
