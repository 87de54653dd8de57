"""The federated QA result as a store the QA report reads (`ptrh qa-report --store`).

The nodes release their active submissions (dates, status, issue and row counts) and rule
results (`node.qa`); this writes them into a DuckDB file with the store's schema and no patient
row, so the registry's rule tables (per center and per rule) and what each center does not
collect (its `collection` record, issue 16) render exactly as for a pooled store. Sections built from the rows themselves (completeness by column, distributions,
evaluability) stay empty: those rows never left the centers.
"""

from __future__ import annotations

import json
from itertools import groupby
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl

from .. import collection as collection_record
from ..store import connect, create_schema, write_rule_results, write_submission

RULE_COLUMNS = ("rule_id", "table", "category", "severity", "checked", "failed", "threshold",
                "status", "reason")
COLLECTION_COLUMNS = ("table", "column", "collected", "how")


def _by(rows: list[dict[str, Any]], *keys: str) -> list[tuple[tuple[Any, ...], list[dict[str, Any]]]]:
    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(r[k] for k in keys)
    return [(k, list(g)) for k, g in groupby(sorted(rows, key=key), key=key)]


def write_qa_store(results: dict[str, Any], path: Path | str) -> Path:
    """Write the released QA counts with the store's own writers (`store.write_submission`,
    `store.write_rule_results`, `collection.write`), as an ingest would, minus the rows."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in (path, Path(str(path) + ".wal")):
        old.unlink(missing_ok=True)
    qa = results["qa"]
    con = connect(path)
    try:
        create_schema(con)
        for s in qa.get("submissions", []):
            counts = s["row_counts"]
            released = SimpleNamespace(rows=json.loads(counts) if isinstance(counts, str) else counts,
                                       n_errors=s["n_errors"], n_warnings=s["n_warnings"])
            write_submission(con, s["submission_id"], s["center_id"], "federated: kept at the center",
                             s["status"], released, submitted_at=s["submitted_at"])
        for (sid, center), rows in _by(qa.get("rule_results", []), "submission_id", "center_id"):
            write_rule_results(con, pl.DataFrame([{c: r[c] for c in RULE_COLUMNS} for r in rows],
                                                 infer_schema_length=None), center, sid)
        for (center,), rows in _by(qa.get("collection", []), "center_id"):
            sids = {r["submission_id"] for r in rows}
            if len(sids) != 1:  # collection.write keeps one record per center: never merge two
                raise ValueError(f"center {center}: collection records of {len(sids)} submissions released")
            frame = pl.DataFrame([{c: r[c] for c in COLLECTION_COLUMNS} for r in rows],
                                 schema=collection_record.COLLECTION_SCHEMA)
            collection_record.write(con, frame, center, sids.pop())
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return path
