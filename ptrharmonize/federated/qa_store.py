"""The federated QA result as a store the QA report reads (`ptrh qa-report --store`).

The nodes release their active submissions (dates, status, issue and row counts) and rule
results (`node.qa`); this writes them into a DuckDB file with the store's schema and no patient
row, so the registry's rule tables (per center and per rule) and what each center does not
collect (its `collection` record, issue 16) render exactly as for a pooled store. Sections built from the rows themselves (completeness by column, distributions,
evaluability) stay empty: those rows never left the centers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from ..store import create_schema

SUBMISSION_COLUMNS = ("submission_id", "center_id", "submitted_at", "status", "n_errors",
                      "n_warnings", "row_counts")
RULE_COLUMNS = ("submission_id", "center_id", "rule_id", "table", "category", "severity",
                "checked", "failed", "threshold", "status", "reason")


def write_qa_store(results: dict[str, Any], path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in (path, Path(str(path) + ".wal")):
        old.unlink(missing_ok=True)
    qa = results["qa"]
    con = duckdb.connect(str(path))
    try:
        create_schema(con)
        for s in qa.get("submissions", []):
            con.execute(
                "INSERT INTO submissions (submission_id, center_id, submitted_at, status, "
                "n_errors, n_warnings, row_counts, source_path) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [s["submission_id"], s["center_id"], s["submitted_at"], s["status"],
                 s["n_errors"], s["n_warnings"], s["row_counts"] if isinstance(s["row_counts"], str)
                 else json.dumps(s["row_counts"]), "federated: kept at the center"])
        cols = ", ".join(f'"{c}"' for c in RULE_COLUMNS)
        for r in qa.get("rule_results", []):
            con.execute(f"INSERT INTO rule_results ({cols}) VALUES "
                        f"({', '.join('?' for _ in RULE_COLUMNS)})", [r[c] for c in RULE_COLUMNS])
        for k in qa.get("collection", []):
            con.execute('INSERT INTO collection (submission_id, center_id, "table", "column", '
                        "collected, how) VALUES (?, ?, ?, ?, ?, ?)",
                        [k["submission_id"], k["center_id"], k["table"], k["column"],
                         k["collected"], k["how"]])
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return path
