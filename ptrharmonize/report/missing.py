"""Missing data per center, as data that the QA report and `ptrh validate` render (issue 16).

For each center: which CDM tables and columns it does not collect (the store's `collection`
record, or a submission's own), and, for each derived outcome of `schemas/completeness.yaml`,
how many patients of the outcome's population are not assessable and why (`patient_missing`),
with the rule's threshold and status, so that a center where most patients are not assessable
is flagged instead of silently dropped from the pooled analyses.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import yaml

from .. import db, derive
from ..collection import not_collected_list
from ..paths import schemas_dir
from ..store import _literal


@cache
def _spec(root: str) -> dict[str, Any]:
    return yaml.safe_load((Path(root) / "completeness.yaml").read_text(encoding="utf-8")) or {}


def completeness_spec() -> dict[str, Any]:
    """`schemas/completeness.yaml`: the outcome rules and the structural blanks."""
    return _spec(str(schemas_dir()))


def _has(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the connection has a table or view `name`, from the catalog: selecting from a
    view binds the whole chain of views under it (~0.07 s for patient_summary, paid by every
    submission; a view is bound when it is created, so one that exists is one that bound)."""
    return bool(con.execute(
        "SELECT count(*) FROM (SELECT table_name AS n, database_name AS d FROM duckdb_tables() "
        "UNION ALL SELECT view_name, database_name FROM duckdb_views()) "
        "WHERE n = ? AND d IN (current_database(), 'temp')", [name]).fetchall()[0][0])


def _status(failed: int, checked: int, threshold: float) -> str:
    if checked == 0:
        return "not_applicable"
    return "failed" if failed / checked > threshold else "passed"


def missing_data(con: duckdb.DuckDBPyConnection, centers: list[str]) -> dict[str, Any]:
    """`{by_center: {center: {recorded, not_collected, outcomes: [...]}}, rules: [...]}`."""
    rules = completeness_spec().get("outcomes") or []
    out: dict[str, Any] = {"rules": [{k: r[k] for k in ("id", "variable", "label", "population",
                                                       "threshold", "severity", "source")} for r in rules],
                           "by_center": {}}
    record = (db.frame(con, 'SELECT center_id, "table", "column", collected, how FROM collection')
              if _has(con, "collection") else pl.DataFrame())
    views = _has(con, "patient_summary") and _has(con, "patient_missing")
    if not views:
        out["missing"] = "derived views patient_summary / patient_missing are not available"
    per_rule = _all_outcome_rows(con, rules) if views else {}
    for c in centers:
        rec = record.filter(pl.col("center_id") == c) if record.height else record
        entry: dict[str, Any] = {
            "recorded": bool(rec.height),
            "not_collected": not_collected_list(rec) if rec.height else {"tables": [], "columns": []},
            "outcomes": [],
        }
        if views:
            for r in rules:
                entry["outcomes"].append(_outcome(per_rule[r["id"]].filter(pl.col("center_id") == c), r))
        out["by_center"][c] = entry
    return out


def _all_outcome_rows(con: duckdb.DuckDBPyConnection, rules: list[dict[str, Any]]) -> dict[str, pl.DataFrame]:
    """`_outcome_rows` of every rule, with each derived view computed once.

    Each rule reads patient_summary and patient_missing, which reads patient_summary again: the
    whole chain of derived views, re-derived every time (8-9 times for four rules). And within
    one derivation of patient_summary a view read by several others (transfusion_cci three
    times by patient_ptr, lab_daily by recovery and platelet dose) is expanded and computed
    again at every reference. So every view patient_summary reads is computed once, in the
    order the files install them, into a temporary table of the same name: the unqualified
    names in the next view, in the rules and in patient_missing then read it (DuckDB looks in
    temp before main). The same rows. A table is dropped as soon as every view that reads it
    has its own (a 16x registry's center of 660,000 transfusions held ~190 MB per per-transfusion
    table, three of them, and the daily labs, until the end); what patient_missing reads stays
    until the rules have run. Issue 22, a 4x mapped center (2,500 patients): 2.4 to 1.7 CPU s,
    peak RSS 823 to 481 MB."""
    made: list[str] = []
    try:
        try:
            readers = _readers(con, _MATERIALIZED)
            needed = {"patient_summary"}
            for n in reversed(_MATERIALIZED):  # what patient_summary reads, directly or not
                if readers[n] & needed:
                    needed.add(n)
            order = [n for n in _MATERIALIZED if n in needed]
            for i, name in enumerate(order):
                db.run(con, f"CREATE TEMP TABLE {name} AS SELECT * FROM main.{name}")  # names: derive's own
                made.append(name)
                computed = set(order[:i + 1])
                done = [n for n in made if readers[n] and readers[n] <= computed]
                _drop(con, done)
                made = [n for n in made if n not in done]
        except duckdb.OutOfMemoryException:  # the caller's bound: it decides (for_submission)
            raise
        except duckdb.Error:  # a store without write access to temp, or a name taken: derive per rule
            _drop(con, made)
            made = []
            return {r["id"]: _outcome_rows(con, r) for r in rules}
        return {r["id"]: _outcome_rows(con, r) for r in rules}
    finally:
        _drop(con, made)


def _readers(con: duckdb.DuckDBPyConnection, names: tuple[str, ...]) -> dict[str, set[str]]:
    """For each of `names`, the installed views whose SQL names it (a name in a comment counts
    too: the table is then kept longer, never dropped early). An empty set: read by none (kept:
    the rules or patient_missing may read it)."""
    sql = con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal "
                      "AND database_name IN (current_database(), 'temp')").fetchall()
    return {n: {v for v, text in sql if v != n and re.search(rf"\b{n}\b", text or "")} for n in names}


# The derived views installed before patient_summary, and patient_summary itself: those it reads
# (`_readers`) are computed, in this order.
_MATERIALIZED: tuple[str, ...] = derive.VIEW_NAMES[:derive.VIEW_NAMES.index("patient_summary") + 1]


def _drop(con: duckdb.DuckDBPyConnection, names: list[str]) -> None:
    for name in reversed(names):
        db.run(con, f"DROP TABLE IF EXISTS temp.{name}")


def _outcome_rows(con: duckdb.DuckDBPyConnection, rule: dict[str, Any]) -> pl.DataFrame:
    """center_id, unknown, state, reason for every patient of the rule's population."""
    var = rule["variable"]
    if not str(var).isidentifier():
        raise ValueError(f"schemas/completeness.yaml: {rule['id']}: variable must be a column name")
    # population and variable come from schemas/completeness.yaml (the registry's own files)
    pop = f"SELECT center_id, patient_id, {var} AS v FROM patient_summary WHERE ({rule['population']})"
    return db.frame(con, f"SELECT p.center_id, p.v IS NULL AS unknown, m.state, m.reason FROM ({pop}) p "
                         "LEFT JOIN patient_missing m ON m.center_id = p.center_id AND m.patient_id = p.patient_id "
                         f"AND m.variable = '{var}'")


def _outcome(rows: pl.DataFrame, rule: dict[str, Any]) -> dict[str, Any]:
    var = rule["variable"]
    unknown = rows.filter(pl.col("unknown"))
    reasons = {str(k or "unknown"): int(n) for k, n in
               unknown.group_by("reason").len().sort(["len", "reason"], descending=[True, False]).iter_rows()}
    states = {str(k or "unknown"): int(n) for k, n in unknown.group_by("state").len().sort("state").iter_rows()}
    checked, failed = rows.height, unknown.height
    threshold = float(rule["threshold"])
    return {
        "id": rule["id"], "variable": var, "label": rule["label"], "population": checked,
        "not_assessable": failed, "fraction": (failed / checked) if checked else None,
        "threshold": threshold, "severity": rule["severity"],
        "status": _status(failed, checked, threshold),
        "states": states, "reasons": reasons,
        "message": rule["message"] if _status(failed, checked, threshold) == "failed" else None,
    }


def flagged(data: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(center, outcome) of every failed completeness rule."""
    return [(c, o) for c, e in (data.get("by_center") or {}).items() for o in e["outcomes"]
            if o["status"] == "failed"]


def submission_memory() -> str:
    """DuckDB's memory for the block of one submission (schemas/limits.yaml
    `missing_block_memory_mb`), spilling to a temporary folder beyond it. The engine keeps
    ~0.55-0.65 GB of a large center resident; unbounded, the block took a center of 4.55 M lab
    rows to 1.43 GB, bounded to 977 MB (issue 22). Where an operator cannot spill and the bound is
    too tight, the block is derived again without it: slower, never a different answer."""
    from ..limits import limit

    return f"{float(limit('missing_block_memory_mb')):g}MB"


def for_submission(result: Any) -> dict[str, Any]:
    """`missing_data` of one validated submission (before ingest), for `ptrh validate`. Never
    raises: a submission the views cannot read says so under `missing`."""
    import shutil
    import tempfile

    center = getattr(result, "center_id", None)
    try:
        from .qa import open_submission_source

        src = open_submission_source(result, "(submission)")
    except Exception as exc:  # noqa: BLE001 - validation must report, not fail, here
        return {"missing": f"could not derive the outcomes: {type(exc).__name__}: {exc}", "by_center": {}}
    spill = tempfile.mkdtemp(prefix="ptrh-missing-")
    try:
        centers = [center] if center else []
        try:
            db.run(src.con, f"SET temp_directory = {_literal(spill)}")
            db.run(src.con, f"SET memory_limit = {_literal(submission_memory())}")
            return missing_data(src.con, centers)
        except duckdb.OutOfMemoryException:
            db.run(src.con, "RESET memory_limit")
            return missing_data(src.con, centers)
    except Exception as exc:  # noqa: BLE001
        return {"missing": f"could not derive the outcomes: {type(exc).__name__}: {exc}", "by_center": {}}
    finally:
        src.close()
        shutil.rmtree(spill, ignore_errors=True)


def render_terminal(data: dict[str, Any], console: Any) -> None:
    """The missing-data block of `ptrh validate`: not collected, and the outcomes not assessable."""
    from rich.markup import escape

    for center, e in (data.get("by_center") or {}).items():
        nc = e["not_collected"]
        if nc["tables"] or nc["columns"]:
            console.print(f"[bold]Not collected[/bold] ({escape(center)}): "
                          + escape(", ".join(nc["tables"] + nc["columns"])))
        for o in e["outcomes"]:
            if not o["not_assessable"]:
                continue
            color = "yellow" if o["status"] == "failed" else "dim"
            why = ", ".join(f"{r} {n}" for r, n in o["reasons"].items())
            console.print(f"[{color}]{o['label']}: {o['not_assessable']} of {o['population']} not assessable"
                          f" ({escape(why)})" + (" -- above the tolerated "
                                                  f"{o['threshold']:.0%}: {escape(o['message'])}" if o["status"] == "failed" else "")
                          + f"[/{color}]")
    if data.get("missing"):
        console.print(f"[dim]missing data: {escape(str(data['missing']))}[/dim]")
