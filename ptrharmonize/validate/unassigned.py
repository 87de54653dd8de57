"""The rows of an export for several centers that name no center (issue 19), as a validation
result of their own: one issue per row (rule `<table>.center_named`) at its file, row, the
center's header of the center column (`redcap_data_access_group`) and the value as written,
with the patient code; rule results that count them. It stores nothing and always blocks:
the call that split the export exits 1 (`mapping/centers.py` says why such rows are neither
dropped nor given to a center).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl

from ..cdm import FILE_COL, ROW_COL, Catalog
from ..submission import Submission
from .checks import registry
from .issue_rows import ISSUE_SCHEMA, MAX_VALUE_CHARS, RULE_RESULT_SCHEMA, _issue_frame
from .result import ValidationResult
from .rules import Rule

CENTER = "center_id"
CHECK = "center_named"


def _rule(table: str, catalog: Catalog) -> Rule:
    check = registry()[CHECK]
    own = (catalog.check_types or {}).get(CHECK) or {}
    spec = catalog.tables[table]
    label = spec.column(CENTER).label if CENTER in spec.column_names else CENTER
    message = str(own.get("message", check.message)).format(label=label, table=table, column=CENTER)
    return Rule(id=f"{table}.{CHECK}", table=table, check=CHECK, severity=own.get("severity", check.severity),
                category=own.get("category", check.category), message=message, engine="structure",
                column=CENTER, columns=(CENTER,), source="CDM v1: a submission holds one center's data",
                level="structure")


def unassigned_result(sub: Submission, rows: dict[str, pl.DataFrame], totals: dict[str, int],
                      catalog: Catalog) -> ValidationResult:
    """`rows`: table -> (_file, _row, center_id, [patient_id]) of the rows of no center;
    `totals`: table -> rows of the export (the rule's denominator)."""
    from ..phi_scan import redact_issue_values, scan_table
    from .issue_record import center_terms, complete
    from .written import as_written

    work = Path(tempfile.mkdtemp(prefix="ptrh-unassigned-"))
    rules = {t: _rule(t, catalog) for t in rows}
    staged: dict[str, Path] = {}
    parts = []
    phi_rules = _phi_rules(catalog)
    flagged: set[str] = set()
    try:
        for table, df in rows.items():
            path = work / f"{table}.parquet"
            df.with_columns(pl.col(CENTER).cast(pl.Utf8)).write_parquet(path)
            staged[table] = path
            parts.append(_issue_frame(rules[table], df.select(FILE_COL, ROW_COL, pl.col(CENTER).alias("value"))))
            # A patient code that is an identity number is never shown (as in every validation).
            scan_table(catalog, phi_rules, table, path, lambda *a: None, lambda *a: None, flagged)
        issues = pl.concat(parts) if parts else pl.DataFrame(schema=ISSUE_SCHEMA)
        issues = issues.sort(["table", "file", "row"])
        issues = as_written(issues, staged, sub.written, catalog)
        issues = complete(issues, {r.id: r for r in rules.values()}, staged, catalog, sub.mapping_file,
                          center_terms(sub.mapping_file, catalog))
        issues = redact_issue_values(issues, flagged, phi_rules, MAX_VALUE_CHARS)
    except BaseException:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
        raise
    results = pl.DataFrame([
        {"rule_id": r.id, "table": t, "category": r.category, "severity": r.severity, "checked": totals.get(t, 0),
         "failed": rows[t].height, "fraction_failed": rows[t].height / totals[t] if totals.get(t) else 0.0,
         "threshold": 0.0, "status": "failed", "reason": None}
        for t, r in rules.items()], schema=RULE_RESULT_SCHEMA)
    # `rows`: the rows of no center by table (what the summary's "rows read" counts here)
    return ValidationResult(issues=issues, rules=results, rows={t: df.height for t, df in rows.items()}, staged={},
                            center_id=None, workdir=work)


def _phi_rules(catalog: Catalog) -> list[Rule]:
    from .rules import phi_rules

    return [r for r in phi_rules(catalog) if r.check == "phi_value"]
