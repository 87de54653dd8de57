"""`check: during_life` (rules.yaml): a dated row of a patient must not fall after the date of
death in outcomes (`grace_days` later tolerated: a death recorded by date, an event by time)."""

from __future__ import annotations

from ...db import qi
from . import Check, Query, Target


def _evaluate(t: Target) -> Query:
    table, col = qi(t.table.name), qi(t.spec["column"])
    grace = int(t.spec.get("grace_days") or 0)
    late = f"CAST(x.{col} AS DATE) > o.death_on" + (f" + INTERVAL {grace} DAY" if grace else "")
    return Query(
        failing=(f"SELECT x._file, x._row, CAST(x.{col} AS VARCHAR) AS value FROM {table} x "
                 f"JOIN outcomes o USING (center_id, patient_id) WHERE o.death_on IS NOT NULL AND {late}"),
        denominator=(f"SELECT count(*) FROM {table} x JOIN outcomes o USING (center_id, patient_id) "
                     "WHERE o.death_on IS NOT NULL"),
    )


CHECK = Check(
    name="during_life",
    level="rule",
    category="plausibility",
    attributes={"column": (str, ...), "grace_days": (int, 0)},
    column_attributes=("column",),
    needs=lambda t: (t.spec["column"],),
    duckdb=_evaluate,
)
