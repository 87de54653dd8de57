"""`references: patients` on a table: its patient_id must exist in that table, same center."""

from __future__ import annotations

from ...db import qi
from . import Check, Query, Target


def _evaluate(t: Target) -> Query:
    return Query(
        failing=(f"SELECT x._file, x._row, x.patient_id AS value FROM {qi(t.table.name)} x "
                 f"ANTI JOIN {qi(t.table.references or 'patients')} p "
                 "ON x.center_id = p.center_id AND x.patient_id = p.patient_id "
                 "WHERE x.patient_id IS NOT NULL AND x.center_id IS NOT NULL"),
        denominator=f"SELECT count(*) FROM {qi(t.table.name)} WHERE patient_id IS NOT NULL AND center_id IS NOT NULL",
    )


CHECK = Check(
    name="references",
    level="column",
    message="This patient_id does not exist in the patients file of the same center. Add the patient or correct the code.",
    table_attributes={"references": (str | None, None)},
    applies=lambda table, col: col.name == "patient_id" and bool(table.references),
    duckdb=_evaluate,
)
