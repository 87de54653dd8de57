"""Render a `QAReport` as one self-contained HTML page through `templates/qa_report.html.j2`.

This module only arranges the report's data for the template (order, grouping, paging); every
piece of markup is in the templates, and Jinja2 escapes every text. Every key number is also in
the page as data: `data-*` attributes on the cells and rows, and a JSON block
`<script type="application/json" id="qa-data">` holding `QAReport.data`, so a test (or another
tool) can read the report without scraping text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from markupsafe import Markup

from .history import trend, trend_scales
from .qa import QAReport
from .templating import human
from .templating import render as render_template

SECTIONS = (
    ("summary", "Summary"),
    ("rules", "Rule results"),
    ("completeness", "Completeness"),
    ("distributions", "Distributions"),
    ("evaluability", "PTR evaluability"),
    ("missing", "Missing data"),
    ("crs", "CRS grades"),
    ("bleeding", "Bleeding grades"),
    ("history", "Over time"),
    ("issues", "Rows to fix"),
)

# Issue-list columns beyond the fixed ones (rule, severity, file, row, column, value, message):
# (key in the issue frame, header). A column added to the issue table is shown by adding it here.
EXTRA_ISSUE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("table", "table"), ("sheet", "sheet"), ("place", "place"), ("patient_id", "patient"),
    ("source_column", "center's column"),
    ("hint", "hint (coordinator)"))

STATUS_ORDER = {"failed": 0, "error": 1, "passed": 2, "not_applicable": 3}


def _by_rule(d: dict[str, Any]) -> list[dict[str, Any]]:
    info = d.get("rule_info", {})
    keys: dict[tuple[str, str], dict[str, int]] = {}
    for c in d["centers"]:
        for r in d["summary"][c]["by_rule"]:
            keys.setdefault((r["severity"], r["rule_id"]), {})[c] = r["n"]
    out = []
    for sev, rid in sorted(keys, key=lambda k: (k[0] != "error", k[1])):
        meta = info.get(rid, {})
        out.append({"rule_id": rid, "severity": sev, "counts": keys[(sev, rid)], "text": meta.get("text", ""),
                    "table": meta.get("table", ""), "category": meta.get("category", "")})
    return out


def _rule_blocks(d: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = []
    for c in d["centers"]:
        rules = d["rules"].get(c, [])
        hot = [r for r in rules if r["status"] in ("failed", "error") or (r["failed"] or 0) > 0]
        hot.sort(key=lambda r: (STATUS_ORDER.get(r["status"], 9), r["severity"] != "error",
                                -(r["fraction_failed"] or 0), r["rule_id"]))
        blocks.append({"center": c, "hot": hot, "rest": [r for r in rules if r not in hot]})
    return blocks


def _issue_blocks(report: QAReport, links: Mapping[str, Mapping[str, str]] | None, max_rows: int,
                  page_rows: int) -> list[dict[str, Any]]:
    d = report.data
    info = d.get("rule_info", {})
    blocks = []
    for c in d["centers"]:
        df = report.issues.get(c)
        n = 0 if df is None else df.height
        status = {r["rule_id"]: r["status"] for r in d["rules"].get(c, [])}
        block: dict[str, Any] = {"center": c, "n": n, "link": (links or {}).get(c), "pages": [], "more": 0,
                                 "errors": 0, "warnings": 0}
        if n:
            block["errors"] = int((df["severity"] == "error").sum())
            block["warnings"] = n - block["errors"]
            shown = df.head(max_rows)
            for p in range(max(1, math.ceil(shown.height / page_rows))):
                chunk = shown.slice(p * page_rows, page_rows)
                rows = []
                for r in chunk.iter_rows(named=True):
                    meta = info.get(r["rule_id"], {})
                    rows.append({**r, "category": meta.get("category"), "text": meta.get("text"),
                                 "status": status.get(r["rule_id"])})
                block["pages"].append({"lo": p * page_rows + 1, "hi": p * page_rows + chunk.height, "rows": rows})
            block["more"] = n - shown.height
        blocks.append(block)
    return blocks


def _filters(d: dict[str, Any]) -> list[tuple[str, str, list[tuple[str, str]]]]:
    rules = [r for c in d["centers"] for r in d["rules"].get(c, [])]
    tables = sorted({r["table"] for r in rules if r.get("table")})
    cats = sorted({r["category"] for r in rules if r.get("category")})
    sevs = sorted({r["severity"] for r in rules if r.get("severity")})
    stats = sorted({r["status"] for r in rules if r.get("status")}, key=lambda s: STATUS_ORDER.get(s, 9))
    return [("center", "center", [(c, c) for c in d["centers"]]),
            ("table", "table", [(t, t) for t in tables]),
            ("category", "category", [(x, x) for x in cats]),
            ("severity", "severity", [(x, x) for x in sevs]),
            ("status", "rule status", [(x, human(x)) for x in stats])]


def _crs_rows(d: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    crs = d["crs"]
    if crs.get("missing"):
        return []
    out = []
    for c in d["centers"]:
        for scale, s in crs["by_center"][c]["scales"].items():
            if not s["assessments"]:
                continue
            cross = s["crosstab"]

            def order(vals: set[Any]) -> list[Any]:
                return sorted(vals, key=lambda x: (x is None, x))

            out.append((c, scale, {**s, "reported_grades": order({r[0] for r in cross}),
                                   "recomputed_grades": order({r[1] for r in cross}),
                                   "cells": {(a, b): n for a, b, n in cross}}))
    return out


def _distribution_entries(d: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for e in d["distributions"]:
        stats = e.get("by_center", {})
        parts = [f"{c}: median {s['median']:.3g} (n={s['n']})" for c, s in stats.items() if s.get("n")]
        out.append({**e, "has_values": any(s.get("n") for s in stats.values()),
                    "alt": "Box plot by center; " + "; ".join(parts) + "." if parts else ""})
    return out


def _bleeding(d: dict[str, Any]) -> tuple[list[Any], list[Any], dict[str, dict[Any, Any]]]:
    b = d["bleeding"]
    centers = d["centers"]
    info = d.get("rule_info", {})
    rule_ids = sorted({r["rule_id"] for c in centers for r in b["by_center"][c]["rules"]})
    rules = [(rid, info.get(rid, {}).get("text", ""),
              {c: next((x for x in b["by_center"][c]["rules"] if x["rule_id"] == rid), None) for c in centers})
             for rid in rule_ids]
    grades = sorted({g["who_grade"] for c in centers for g in b["by_center"][c]["grades"]},
                    key=lambda x: (x is None, x))
    by_grade = {c: {g["who_grade"]: g for g in b["by_center"][c]["grades"]} for c in centers}
    return rules, grades, by_grade


def _history(d: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    histories = d.get("history") or {}
    scales = trend_scales(histories)  # one axis per count for every center: heights compare across centers
    for i, (c, subs) in enumerate(histories.items()):
        out[c] = {"submissions": subs, "trend": trend(c, subs, i, scales)}
    return out


def render(report: QAReport, figures: Mapping[str, str],
           links: Mapping[str, Mapping[str, str]] | None = None,
           max_rows: int = 1000, page_rows: int = 200) -> str:
    d = report.data
    rules, grades, by_grade = _bleeding(d)
    defs = d.get("definitions") or {}
    ev = d["evaluability"]
    first = next(iter(d["summary"].values()), None)
    extra = [{"key": k, "label": label} for k, label in EXTRA_ISSUE_COLUMNS
             if any(k in df.columns for df in report.issues.values())]
    return render_template(
        "qa_report.html.j2",
        title="Registry data-quality report",
        what="the pooled registry" if d["mode"] == "store" else "one submission before ingest",
        nav=SECTIONS,
        d=d,
        notes=report.notes,
        filters=_filters(d),
        row_tables=list(first["rows"]) if first else [],
        by_rule=_by_rule(d),
        rule_blocks=_rule_blocks(d),
        legend=((0.0, "0%"), (0.5, "50%"), (0.9, "90%"), (1.0, "100%")),
        distributions=_distribution_entries(d),
        figures={k: Markup(v) for k, v in figures.items()},  # SVG drawn by plots.py from numbers only
        ev_reasons=[] if ev.get("missing") else sorted({r for c in d["centers"] for r in ev["by_center"][c]["reasons"]}),
        definitions_used=", ".join(f"{k} = {v}" for k, v in defs.items() if k.startswith("cci.")),
        crs_rows=_crs_rows(d),
        bleeding_rules=rules,
        bleeding_grades=grades,
        bleeding_by_grade=by_grade,
        history=_history(d),
        issue_blocks=_issue_blocks(report, links, max_rows, page_rows),
        extra_issue_columns=extra,
    )
