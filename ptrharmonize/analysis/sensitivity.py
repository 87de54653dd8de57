"""`run-analysis --missing worst-case|best-case`: how much could the unknowns move Tables 2 and 3?

The main analyses are complete-case: a patient whose PTR status or characteristic is unknown
(or not collected) leaves that analysis or that row, and says so (population.py). The
sensitivity analysis recomputes Table 2 (`ptr_by_group`) and Table 3 (`cart_characteristics`)
with every such unknown yes/no value counted as an event (`worst-case`: PTR yes, CRS >= 3 yes,
infection yes, ...) or as a non-event (`best-case`), the classic bounds for binary outcomes
with missing data. Design criteria are not imputed (Table 3 stays the CAR-T patients with
cytokine data), nor is anything continuous (peak temperature keeps its complete cases).

The imputation is done on the run's in-memory copy of `patient_summary` and undone afterwards;
the store is never touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from ..db import run, scalar
from ._common import Context

MODES = {"worst-case": True, "best-case": False}
ANALYSES = ("ptr_by_group", "cart_characteristics")
# yes/no columns of patient_summary that Tables 2 and 3 count
BINARY = (
    "ptr", "cr", "tocilizumab", "corticosteroid", "infection", "neutrophil_improvement_30d",
    "neutrophil_recovery_90d", "platelet_improvement_30d", "platelet_recovery_90d",
    "crs_grade_3plus", "bleeding_grade_3plus_30d",
)


def check_mode(mode: str | None) -> str | None:
    if mode is None or mode in MODES:
        return mode
    from ..errors import UserError

    raise UserError(f"--missing must be one of {', '.join(MODES)}, not {mode!r}")


def run_sensitivity(con: duckdb.DuckDBPyConnection, ctx: Context, mode: str, out: Path,
                    analyses: dict[str, Any], write_outputs: Any, run_one: Any) -> dict[str, Any]:
    """Tables 2 and 3 again with the unknowns imputed; their tables as `<id>_<mode>.csv|md`."""
    value = "TRUE" if MODES[mode] else "FALSE"
    imputed = {c: int(scalar(con, f"SELECT count(*) FROM temp.patient_summary WHERE {c} IS NULL"))
               for c in BINARY}
    run(con, "CREATE TEMP TABLE _summary_complete_case AS SELECT * FROM temp.patient_summary")
    try:
        sets = ", ".join(f"{c} = coalesce({c}, {value})" for c in BINARY)
        run(con, f"UPDATE temp.patient_summary SET {sets}")
        results: dict[str, Any] = {}
        files: dict[str, list[str]] = {}
        for aid in ANALYSES:
            res = run_one(analyses[aid], ctx)
            res.caption = (f"Sensitivity ({mode}): unknown yes/no values counted as "
                           f"{'events (yes)' if MODES[mode] else 'non-events (no)'}")
            res.figure = None
            results[aid] = res.data
            files[aid] = [str(p.relative_to(out)) for p in write_outputs(res, out, f"{aid}_{mode}")]
    finally:
        run(con, "DROP TABLE temp.patient_summary")
        run(con, "ALTER TABLE _summary_complete_case RENAME TO patient_summary")
    return {
        "missing": mode,
        "rule": ("every unknown or not-collected yes/no value of Tables 2 and 3 counted as "
                 + ("an event (yes)" if MODES[mode] else "a non-event (no)")),
        "imputed": {c: n for c, n in imputed.items() if n},
        "analyses": results,
        "files": files,
    }
