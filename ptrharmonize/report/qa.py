"""The QA report's numbers, section by section, computed from one DuckDB connection
(`qa_source.QASource`: the pooled store or one submission before ingest, in the same shape).

Nothing here formats HTML (see `qa_html.py`). Patient data stay pseudonymous: the report
carries aggregates, the issue list's values are masked when a `phi.` rule flagged the value or
its (file, column) (`mask_phi`), and no identifier column exists in the CDM.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import duckdb
import polars as pl
import yaml

from .. import db
from ..cdm import Catalog, load_catalog
from ..store import qi
from ..validate.issue_record import ISSUE_RECORD
from .missing import missing_data
from .qa_source import (  # noqa: F401 - where commands find them
    ISSUE_COLUMNS,
    QASource,
    _relations,
    open_store_source,
    open_submission_source,
)

REDACTED = "[redacted]"

# Key values whose distributions by center reveal unit or coding differences: one entry each in
# report/distributions.yaml (id, label, unit, the relation it needs, its query, log axis).
DISTRIBUTIONS_FILE = "distributions.yaml"


@lru_cache(maxsize=1)
def distributions() -> tuple[dict[str, Any], ...]:
    text = resources.files(__package__).joinpath(DISTRIBUTIONS_FILE).read_text(encoding="utf-8")
    return tuple(yaml.safe_load(text)["distributions"])


# Reported scales whose grade the toolkit recomputes from the recorded signs.
RECOMPUTED_SCALES = {"lee2014": "lee2014_grade", "astct2019": "astct2019_grade"}


@dataclass
class QAReport:
    data: dict[str, Any]                       # every number of the report (JSON-serialisable)
    issues: dict[str, pl.DataFrame]            # center -> masked issue list (ISSUE_COLUMNS)
    values: dict[str, dict[str, list[float]]]  # distribution id -> center -> values (for figures)
    notes: list[str]


# --------------------------------------------------------------------------- helpers


def _identifier_rules() -> frozenset[str]:
    from ..validate.rules import identifier_rule_ids

    return identifier_rule_ids(load_catalog())


def mask_phi(issues: pl.DataFrame) -> pl.DataFrame:
    """Values a `phi.` rule flagged are never shown: the flagged issues' own values, and every
    value in a (file, column) that a `phi.` rule flagged, become '[redacted]'."""
    if issues.height == 0:
        return issues
    is_phi = pl.col("rule_id").is_in(list(_identifier_rules()))
    flagged = (issues.filter(is_phi & pl.col("column").is_not_null())
               .select("file", "column").unique().with_columns(pl.lit(True).alias("_phi_col")))
    out = issues.with_row_index("_i").join(flagged, on=["file", "column"], how="left").sort("_i")
    return out.with_columns(
        pl.when(is_phi | pl.col("_phi_col").fill_null(False)).then(
            pl.when(pl.col("value").is_null()).then(None).otherwise(pl.lit(REDACTED)))
        .otherwise(pl.col("value")).alias("value")
    ).drop("_i", "_phi_col")


def reapply_thresholds(rules: pl.DataFrame,
                       thresholds: dict[tuple[str, str | None], float] | None) -> pl.DataFrame:
    """Status of each rule under other tolerances, from the stored counts (no check re-run).

    Adds `stored_threshold`, `stored_status`; `threshold`/`status` are the re-applied ones.
    Rules that were not applicable or could not run keep their status; `phi.` rules keep a
    threshold of 0, as in the engine."""
    from ..validate.result import lookup_threshold, rule_status

    out = []
    for r in rules.iter_rows(named=True):
        r = dict(r)
        r["stored_threshold"], r["stored_status"] = r["threshold"], r["status"]
        th = r["threshold"]
        if r["rule_id"] not in _identifier_rules():
            th = lookup_threshold(thresholds, r["rule_id"], r["center_id"], th)
        r["threshold"] = th
        if r["status"] in ("passed", "failed"):
            r["status"] = rule_status(int(r["checked"] or 0), int(r["failed"] or 0), float(th or 0.0))
        checked = int(r["checked"] or 0)
        r["fraction_failed"] = (int(r["failed"] or 0) / checked) if checked else 0.0
        out.append(r)
    return pl.DataFrame(out, infer_schema_length=None) if out else rules


def _count_by_center(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, int]:
    return {c: int(n) for c, n in db.rows(con, f"SELECT center_id, count(*) FROM {qi(table)} GROUP BY 1")
            if c is not None}


def _safe_name(center: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", center).strip("._") or "center"


def issues_file_stem(center: str) -> str:
    return f"issues_{_safe_name(center)}"


def _num(x: Any) -> Any:
    if isinstance(x, float) and x != x:  # NaN
        return None
    return x


# --------------------------------------------------------------------------- sections


def collect(src: QASource, thresholds: dict[tuple[str, str | None], float] | None = None,
            catalog: Catalog | None = None, definitions: dict[str, Any] | None = None) -> QAReport:
    catalog = catalog or load_catalog()
    con = src.con
    notes = list(src.notes)
    subs = db.frame(con, "SELECT submission_id, center_id, submitted_at, status, n_errors, n_warnings "
                         "FROM submissions ORDER BY center_id, submitted_at")
    active_ids = [r["submission_id"] for r in subs.iter_rows(named=True)
                  if r["status"] not in ("superseded", "rejected")]
    counts = {t: _count_by_center(con, t) for t in catalog.table_names}
    issues_all = db.frame(con, "SELECT * FROM issues")
    # A store written before a field of the issue record existed has it empty.
    issues_all = issues_all.with_columns([pl.lit(None, dtype=t).alias(c) for c, t in ISSUE_RECORD.items()
                                          if c not in issues_all.columns]).select("center_id", *ISSUE_COLUMNS)
    rules = db.frame(con, "SELECT * FROM rule_results")
    rules = rules.filter(pl.col("submission_id").is_in(active_ids)) if rules.height else rules
    centers = sorted(
        {c for per in counts.values() for c in per}
        | {c for c in subs.filter(pl.col("submission_id").is_in(active_ids))["center_id"].to_list() if c}
        | {c for c in issues_all["center_id"].to_list() if c}
    )
    rules = reapply_thresholds(rules, thresholds)

    data: dict[str, Any] = {
        "mode": src.mode,
        "source": src.label,
        "generated_at": dt.datetime.now().replace(microsecond=0).isoformat(),
        "centers": centers,
        "views": sorted(src.views),
    }
    data["summary"] = _summary(centers, counts, subs, issues_all)
    info = rule_info(catalog)
    data["rule_info"] = info
    data["rules"] = _rules_section(centers, rules, info)
    collected = _collected_tables(subs, active_ids)
    data["completeness"] = _completeness(con, catalog, centers, counts, collected,
                                         _missing_columns(issues_all), _not_collected(con))
    dist, values = _distributions(con, centers, src.views, notes)
    data["distributions"] = dist
    data["evaluability"] = _evaluability(con, centers, src.views, notes)
    data["crs"] = _crs_agreement(con, centers, src.views, notes)
    data["bleeding"] = _bleeding(con, centers, data["rules"])
    # not collected tables/columns and not-assessable outcomes per center (issue 16)
    data["missing_data"] = missing_data(con, centers)
    issues = _issue_lists(centers, issues_all)
    from .history import history

    data["history"] = history(con, centers)
    data["issues"] = {c: {"total": df.height,
                          "errors": int((df["severity"] == "error").sum()),
                          "warnings": int((df["severity"] == "warning").sum())} for c, df in issues.items()}
    data["thresholds_reapplied"] = bool(thresholds)
    data["definitions"] = _definitions_used(con, src.views)
    data["notes"] = notes
    return QAReport(data=data, issues=issues, values=values, notes=notes)


def _summary(centers: list[str], counts: dict[str, dict[str, int]], subs: pl.DataFrame,
             issues: pl.DataFrame) -> dict[str, Any]:
    by_rule = (issues.group_by("center_id", "rule_id", "severity").agg(pl.len().alias("n"))
               .sort(["center_id", "severity", "n", "rule_id"], descending=[False, False, True, False]))
    out: dict[str, Any] = {}
    for c in centers:
        iss = issues.filter(pl.col("center_id") == c)
        out[c] = {
            "patients": counts.get("patients", {}).get(c, 0),
            "transfusions": counts.get("transfusions", {}).get(c, 0),
            "rows": {t: per.get(c, 0) for t, per in counts.items()},
            "submissions": [
                {"submission_id": r["submission_id"], "submitted_at": str(r["submitted_at"])[:19],
                 "status": r["status"], "n_errors": r["n_errors"], "n_warnings": r["n_warnings"]}
                for r in subs.filter(pl.col("center_id") == c).iter_rows(named=True)
            ],
            "errors": int((iss["severity"] == "error").sum()),
            "warnings": int((iss["severity"] == "warning").sum()),
            "by_rule": [
                {"rule_id": r["rule_id"], "severity": r["severity"], "n": int(r["n"])}
                for r in by_rule.filter(pl.col("center_id") == c).iter_rows(named=True)
            ],
        }
    return out


def rule_info(catalog: Catalog) -> dict[str, dict[str, Any]]:
    """Every catalog rule's text (what it checks, as the message a center reads), category,
    severity, default threshold and source, by rule id: what the report shows beside a result."""
    from ..validate.rules import all_rules

    out = {}
    for r in all_rules(catalog):
        table = catalog.tables.get(r.table)
        label = table.column(r.column).label if table is not None and r.column in table.column_names else r.column
        fill = {"table": r.table, "column": r.column or "<column>", "label": label or "<column>"}
        try:
            text = r.message.format_map(_Keep(fill))
        except (ValueError, IndexError):
            text = r.message
        out[r.id] = {"text": text, "category": r.category, "severity": r.severity, "table": r.table,
                     "threshold": r.threshold, "source": r.source or "", "check": r.check}
    return out


class _Keep(dict):
    """format_map that leaves an unknown {placeholder} as it is."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _rules_section(centers: list[str], rules: pl.DataFrame,
                   info: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    keep = ["rule_id", "table", "category", "severity", "checked", "failed", "fraction_failed",
            "threshold", "status", "stored_threshold", "stored_status", "reason"]
    for c in centers:
        sub = rules.filter(pl.col("center_id") == c) if rules.height else rules
        out[c] = []
        for r in sub.sort("rule_id").iter_rows(named=True):
            row = {k: _num(r.get(k)) for k in keep}
            meta = info.get(r["rule_id"], {})
            row["text"] = meta.get("text", "")
            row["source"] = meta.get("source", "")
            out[c].append(row)
    return out


def _collected_tables(subs: pl.DataFrame, active_ids: list[str]) -> dict[str, set[str] | None]:
    """Per center, the tables its current submission contained (even with no rows), from the
    submission's row counts; None when the counts are not known (then rows decide)."""
    out: dict[str, set[str] | None] = {}
    for r in subs.filter(pl.col("submission_id").is_in(active_ids)).iter_rows(named=True):
        try:
            counts = json.loads(r["row_counts"]) if r.get("row_counts") else None
        except (TypeError, ValueError):
            counts = None
        out[r["center_id"]] = set(counts) if isinstance(counts, dict) else None
    return out


def _missing_columns(issues: pl.DataFrame) -> set[tuple[str, str, str]]:
    """(center, table, column) a center's files did not have (the structure check's findings)."""
    if issues.height == 0:
        return set()
    miss = issues.filter(pl.col("rule_id").str.ends_with(".missing_column") & pl.col("column").is_not_null())
    return {(c, t, col) for c, t, col in miss.select("center_id", "table", "column").iter_rows()}


def _not_collected(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str, str | None], str]:
    """(center, table, column or None for the table) -> how it is known not collected (`absent`
    from the files, `declared` in the mapping), from the `collection` record of each center's
    current submission (collection.py); empty for a store written before that record existed."""
    try:
        rows = db.rows(con, 'SELECT center_id, "table", "column", how FROM collection WHERE NOT collected')
    except duckdb.Error:
        return {}
    return {(c, t, col): how for c, t, col, how in rows}


def _completeness(con: duckdb.DuckDBPyConnection, catalog: Catalog, centers: list[str],
                  counts: dict[str, dict[str, int]], collected: dict[str, set[str] | None],
                  missing_columns: set[tuple[str, str, str]],
                  not_collected: dict[tuple[str, str, str | None], str]) -> dict[str, Any]:
    """Share of non-empty cells per table x column x center, among the rows where the column
    applies (`applies_when` in schemas/tables), with a state per cell:

    - `not_collected`: the center does not collect the table or the column (its `collection`
      record: absent from the files or declared in the mapping; else the table missing from the
      submission's row counts, or the structure check's missing column) (share None);
    - `structural`: a blank is an answer (`blank_means`, e.g. no death date = alive): only the
      filled cells are counted (share None);
    - `not_applicable`: no row where the column applies (share None);
    - `complete` (100%), `partial`, `empty` (0%) otherwise.
    """
    out: dict[str, Any] = {}
    for table, spec in catalog.tables.items():
        parts = []
        model_of = {col.name: {k: col.attrs[k] for k in ("applies_when", "applies_label", "blank_means")
                               if col.attrs.get(k)} for col in spec.columns}
        for i, col in enumerate(spec.columns):
            expr = qi(col.name)
            if col.duckdb_type == "VARCHAR":
                expr = f"NULLIF(trim({expr}), '')"
            when = model_of[col.name].get("applies_when")
            cond = f" FILTER (WHERE {when})" if when else ""
            parts.append(f"count({expr}){cond} AS c{i}, count(*){cond} AS n{i}")
        rows = {r[0]: r[1:] for r in db.rows(
            con, f"SELECT center_id, count(*), {', '.join(parts)} FROM {qi(table)} GROUP BY 1")}
        cols: dict[str, dict[str, float | None]] = {}
        state: dict[str, dict[str, str]] = {}
        filled: dict[str, dict[str, int]] = {}
        applicable: dict[str, dict[str, int]] = {}
        model = {k: v for k, v in model_of.items() if v}
        how: dict[str, dict[str, str]] = {}
        for i, col in enumerate(spec.columns):
            cols[col.name], state[col.name], filled[col.name], applicable[col.name] = {}, {}, {}, {}
            how[col.name] = {}
            for c in centers:
                r = rows.get(c)
                total = r[0] if r else 0
                n_filled, n_applies = (r[1 + 2 * i], r[2 + 2 * i]) if r else (0, 0)
                filled[col.name][c], applicable[col.name][c] = int(n_filled), int(n_applies)
                sent = collected.get(c)
                table_sent = (table in sent) if sent is not None else total > 0
                share: float | None = None
                off = not_collected.get((c, table, None)) or not_collected.get((c, table, col.name))
                if off or not table_sent or (c, table, col.name) in missing_columns:
                    st = "not_collected"
                    how[col.name][c] = off or "absent"
                elif not total:
                    st = "no_rows"
                elif model_of[col.name].get("blank_means"):
                    st = "structural"
                elif not n_applies:
                    st = "not_applicable"
                else:
                    share = n_filled / n_applies
                    st = "complete" if n_filled == n_applies else "empty" if not n_filled else "partial"
                cols[col.name][c] = share
                state[col.name][c] = st
        out[table] = {"rows": {c: counts[table].get(c, 0) for c in centers}, "columns": cols, "state": state,
                      "filled": filled, "applicable": applicable, "model": model, "not_collected_how": how}
    return out


def _distributions(con: duckdb.DuckDBPyConnection, centers: list[str], views: set[str],
                   notes: list[str]) -> tuple[list[dict[str, Any]], dict[str, dict[str, list[float]]]]:
    available = _relations(con)
    out, values = [], {}
    for d in distributions():
        vid, needs, sql = d["id"], d["needs"], d["sql"]
        entry: dict[str, Any] = {"id": vid, "label": d["label"], "unit": d["unit"], "log": bool(d["log"]),
                                 "source": needs, "by_center": {}}
        if needs not in available:
            entry["missing"] = f"view {needs} is not available"
            out.append(entry)
            continue
        try:
            df = db.frame(con, f"SELECT center_id, CAST(value AS DOUBLE) AS value FROM ({sql}) "
                               "WHERE value IS NOT NULL AND isfinite(CAST(value AS DOUBLE))")
        except duckdb.Error as exc:
            entry["missing"] = f"could not be read: {exc}"
            out.append(entry)
            continue
        vals: dict[str, list[float]] = {}
        for c in centers:
            v = df.filter(pl.col("center_id") == c)["value"]
            vals[c] = v.to_list()
            if v.len():
                q = [v.quantile(p, "linear") for p in (0.25, 0.5, 0.75)]
                entry["by_center"][c] = {"n": v.len(), "min": v.min(), "q1": q[0], "median": q[1],
                                         "q3": q[2], "max": v.max()}
            else:
                entry["by_center"][c] = {"n": 0}
        values[vid] = vals
        out.append(entry)
    return out, values


def _evaluability(con: duckdb.DuckDBPyConnection, centers: list[str], views: set[str],
                  notes: list[str]) -> dict[str, Any]:
    if "transfusion_cci" not in _relations(con):
        return {"missing": "view transfusion_cci is not available"}
    rows = db.rows(con, "SELECT center_id, coalesce(not_evaluable_reason, "
                        "CASE WHEN evaluable THEN NULL ELSE 'no_cci' END) AS reason, count(*) "
                        "FROM transfusion_cci GROUP BY ALL")
    out: dict[str, Any] = {"by_center": {}}
    for c in centers:
        per = {r: int(n) for cc, r, n in rows if cc == c}
        total = sum(per.values())
        evaluable = per.pop(None, 0)
        out["by_center"][c] = {"transfusions": total, "evaluable": evaluable,
                               "fraction": (evaluable / total) if total else None,
                               "reasons": dict(sorted(per.items(), key=lambda kv: (-kv[1], kv[0])))}
    return out


def _crs_agreement(con: duckdb.DuckDBPyConnection, centers: list[str], views: set[str],
                   notes: list[str]) -> dict[str, Any]:
    if "crs_graded" not in _relations(con):
        return {"missing": "view crs_graded is not available"}
    df = db.frame(con, "SELECT center_id, reported_scale, CAST(reported_grade AS BIGINT) AS reported_grade, "
                       "lee2014_grade, astct2019_grade FROM crs_graded")
    out: dict[str, Any] = {"by_center": {}}
    for c in centers:
        sub = df.filter(pl.col("center_id") == c)
        per: dict[str, Any] = {"assessments": sub.height, "scales": {}}
        for scale, recomputed in RECOMPUTED_SCALES.items():
            s = sub.filter(pl.col("reported_scale") == scale)
            both = s.filter(pl.col("reported_grade").is_not_null() & pl.col(recomputed).is_not_null())
            agree = int((both["reported_grade"] == both[recomputed]).sum())
            cross = (s.group_by("reported_grade", recomputed).agg(pl.len().alias("n"))
                     .sort(["reported_grade", recomputed], nulls_last=True))
            per["scales"][scale] = {
                "assessments": s.height,
                "compared": both.height,
                "agree": agree,
                "higher_reported": int((both["reported_grade"] > both[recomputed]).sum()),
                "lower_reported": int((both["reported_grade"] < both[recomputed]).sum()),
                "no_signs": int(s[recomputed].is_null().sum()),
                "fraction": (agree / both.height) if both.height else None,
                "crosstab": [[r["reported_grade"], r[recomputed], int(r["n"])] for r in cross.iter_rows(named=True)],
            }
        other = sub.filter(~pl.col("reported_scale").is_in(list(RECOMPUTED_SCALES)) & pl.col("reported_scale").is_not_null())
        per["other_scales"] = {k: int(v) for k, v in other.group_by("reported_scale").agg(pl.len())
                               .sort("reported_scale").iter_rows()}
        per["no_reported_grade"] = int(sub["reported_grade"].is_null().sum())
        out["by_center"][c] = per
    return out


def _bleeding(con: duckdb.DuckDBPyConnection, centers: list[str],
              rules: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    grades = db.rows(con, "SELECT center_id, who_grade, count(*), count(*) FILTER (WHERE rbc_transfusion_24h), "
                          "count(*) FILTER (WHERE hemodynamic_instability), count(*) FILTER (WHERE fatal) "
                          "FROM bleeding_events GROUP BY ALL ORDER BY 1, 2 NULLS LAST")
    out: dict[str, Any] = {"by_center": {}}
    for c in centers:
        out["by_center"][c] = {
            # the grade's plausibility: range, and the WHO defining facts of grades 3-4
            "rules": [r for r in rules.get(c, []) if r["table"] == "bleeding_events"
                      and r["category"] == "plausibility"],
            "grades": [{"who_grade": g, "n": int(n), "rbc_24h": int(rbc), "hemodynamic_instability": int(hi),
                        "fatal": int(f)} for cc, g, n, rbc, hi, f in grades if cc == c],
        }
    return out


def _issue_lists(centers: list[str], issues: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """Per center, its open findings (ISSUE_COLUMNS), errors first, flagged values masked."""
    out = {}
    for c in centers:
        sub = issues.filter(pl.col("center_id") == c).select(ISSUE_COLUMNS)
        sub = mask_phi(sub).sort(
            [pl.col("severity") != "error", "table", "file", "row", "rule_id"], nulls_last=False)
        out[c] = sub
    return out


def _definitions_used(con: duckdb.DuckDBPyConnection, views: set[str]) -> dict[str, str]:
    if "derivation_definitions" not in _relations(con):
        return {}
    keep = ("cci.", "ptr.", "bsa.formula", "crs.lee2014.fever_min_c", "crs.astct2019.fever_min_c")
    return {k: v for k, v in db.rows(con, "SELECT key, value FROM derivation_definitions ORDER BY key")
            if k.startswith(keep)}
