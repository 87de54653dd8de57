"""`check: during_life` (rules.yaml): a dated row of a patient must not fall after the date of
death in outcomes (`grace_days` later tolerated: a death recorded by date, an event by time)."""

from __future__ import annotations

from ...db import qi
from . import Check, Query, Target


def _evaluate(t: Target) -> Query:
    grace = f" + INTERVAL {int(t.spec.get('grace_days') or 0)} DAY" if t.spec.get("grace_days") else ""
    return Query(
        failing=(f"SELECT x._file, x._row, CAST(x.{qi(t.spec['column'])} AS VARCHAR) AS value "
                 f"FROM {qi(t.table.name)} x JOIN outcomes o USING (center_id, patient_id) "
                 f"WHERE o.death_on IS NOT NULL AND CAST(x.{qi(t.spec['column'])} AS DATE) > o.death_on{grace}"),
        denominator=(f"SELECT count(*) FROM {qi(t.table.name)} x JOIN outcomes o USING (center_id, patient_id) "
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
