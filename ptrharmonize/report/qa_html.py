"""Render a `QAReport` as one self-contained HTML page (see `html.py` for what that means).

Every key number is also in the page as data: `data-center` / `data-metric` attributes on the
summary cells and a JSON block `<script type="application/json" id="qa-data">` holding
`QAReport.data`, so a test (or another tool) can read the report without scraping text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import polars as pl

from .. import __version__
from .html import Raw, attrs, esc, fmt_int, fmt_num, fmt_pct, json_block, page, share_colour, table
from .qa import QAReport

SECTIONS = (
    ("summary", "Summary"),
    ("rules", "Rule results"),
    ("completeness", "Completeness"),
    ("distributions", "Distributions"),
    ("evaluability", "PTR evaluability"),
    ("crs", "CRS grades"),
    ("bleeding", "Bleeding grades"),
    ("issues", "Rows to fix"),
)


def _human(code: Any) -> str:
    return str(code).replace("_", " ") if code is not None else "–"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _rule(rule_id: Any) -> Raw:
    """A rule id that may break after its dots, never inside a word."""
    return Raw(esc(rule_id).replace(".", ".<wbr>"), class_="code rule")


def _status(status: str | None) -> str:
    s = status or "–"
    return f'<span class="st-{esc(s)}">{esc(_human(s))}</span>'


def _sev(sev: str | None) -> str:
    return f'<span class="sev-{esc(sev)}">{esc(sev)}</span>'


def _threshold(th: Any) -> str:
    if th is None:
        return "–"
    th = float(th)
    if th == 0:
        return "0"
    return fmt_pct(th, 2) if th < 1 else f"{int(th):,} rows" if th == int(th) else f"{th:g} rows"


def _missing(what: str) -> str:
    return f'<div class="warn-box">Not available: {esc(what)}.</div>'


# --------------------------------------------------------------------------- sections


def _summary(d: dict[str, Any]) -> str:
    centers = d["centers"]
    rows, rattrs = [], []
    for c in centers:
        s = d["summary"][c]
        subs = "<br>".join(
            f'<span class="code">{esc(x["submission_id"])}</span> {esc(x["submitted_at"])} '
            f"({esc(_human(x['status']))})" for x in s["submissions"]) or "–"

        def num(metric: str, value: int, c: str = c) -> Raw:
            return Raw(esc(fmt_int(value)), class_="num", data_center=c, data_metric=metric,
                       data_value=value)

        rows.append([Raw(esc(c), data_center=c), num("patients", s["patients"]),
                     num("transfusions", s["transfusions"]), Raw(subs),
                     num("errors", s["errors"]), num("warnings", s["warnings"])])
        rattrs.append(attrs(data_center=c))
    out = [table(["center", ("patients", "num"), ("transfusions", "num"), "submissions (date, status)",
                  ("errors", "num"), ("warnings", "num")], rows, row_attrs=rattrs)]
    out.append('<p class="note">Errors and warnings are the open findings of each center\'s current '
               "submission; a center's earlier submissions are listed with their status.</p>")
    # rows per table
    tables = list(next(iter(d["summary"].values()))["rows"]) if centers else []
    out.append("<h3>Rows by table</h3>")
    out.append(table(["table", *[(c, "num") for c in centers]],
                     [[t, *[Raw(esc(fmt_int(d["summary"][c]["rows"][t])), class_="num", data_center=c,
                                data_metric=f"rows.{t}") for c in centers]] for t in tables]))
    # errors and warnings by rule
    by_rule: dict[tuple[str, str], dict[str, int]] = {}
    for c in centers:
        for r in d["summary"][c]["by_rule"]:
            by_rule.setdefault((r["severity"], r["rule_id"]), {})[c] = r["n"]
    out.append("<h3>Errors and warnings by rule</h3>")
    if by_rule:
        keys = sorted(by_rule, key=lambda k: (k[0] != "error", k[1]))
        out.append(table(
            ["rule", "severity", *[(c, "num") for c in centers]],
            [[_rule(rule), Raw(_sev(sev)),
              *[Raw(esc(fmt_int(by_rule[(sev, rule)].get(c, 0))), class_="num", data_center=c,
                    data_rule=rule, data_severity=sev, data_metric="issues",
                    data_value=by_rule[(sev, rule)].get(c, 0)) for c in centers]]
             for sev, rule in keys]))
    else:
        out.append('<p class="note">No open errors or warnings.</p>')
    return "".join(out)


def _rule_row(r: dict[str, Any], c: str) -> tuple[list[Any], str]:
    changed = ""
    if r["stored_status"] != r["status"] or r["stored_threshold"] != r["threshold"]:
        changed = (f' <span class="changed">(stored: {esc(_human(r["stored_status"]))} at '
                   f"{esc(_threshold(r['stored_threshold']))})</span>")
    row = [_rule(r["rule_id"]), r["table"], r["category"], Raw(_sev(r["severity"])),
           Raw(f"{fmt_int(r['failed'])} / {fmt_int(r['checked'])}", class_="num"),
           Raw(esc(fmt_pct(r["fraction_failed"], 2)) if r["checked"] else "–", class_="num"),
           Raw(esc(_threshold(r["threshold"])), class_="num"),
           Raw(_status(r["status"]) + changed + (f'<br><span class="note">{esc(r["reason"])}</span>'
                                                 if r.get("reason") else ""))]
    return row, attrs(data_center=c, data_rule=r["rule_id"], data_status=r["status"],
                      data_failed=r["failed"], data_checked=r["checked"])


RULE_HEADERS = ["rule", "table", "category", "severity", ("failed / checked", "num"), ("fraction", "num"),
                ("threshold", "num"), "status"]


def _rules(d: dict[str, Any]) -> str:
    out = ['<p class="note">Every rule of the catalog, with its denominator: the rows it was evaluated '
           "on (checked) and the rows that failed. A rule fails when its failures exceed its threshold "
           "(a fraction of the checked rows, or a count of rows).",
           " Thresholds were re-applied from the stored counts (no check re-run); a status that "
           "changed shows the stored one." if d.get("thresholds_reapplied") else "", "</p>"]
    for c in d["centers"]:
        rules = d["rules"].get(c, [])
        order = {"failed": 0, "error": 1, "passed": 2, "not_applicable": 3}
        hot = [r for r in rules if r["status"] in ("failed", "error") or (r["failed"] or 0) > 0]
        hot.sort(key=lambda r: (order.get(r["status"], 9), r["severity"] != "error",
                                -(r["fraction_failed"] or 0), r["rule_id"]))
        counts = {s: sum(1 for r in rules if r["status"] == s) for s in order}
        out.append(f"<h3>{esc(c)}</h3>")
        out.append(f'<p class="note">{len(rules)} rules: {counts["passed"]} passed, {counts["failed"]} failed, '
                   f'{counts["not_applicable"]} not applicable, {counts["error"]} could not run.</p>')
        if not rules:
            out.append('<p class="note">No stored rule results for this center.</p>')
            continue
        if hot:
            built = [_rule_row(r, c) for r in hot]
            out.append(table(RULE_HEADERS, [b[0] for b in built], row_attrs=[b[1] for b in built]))
        else:
            out.append('<p class="note">No rule has failures.</p>')
        rest = [r for r in rules if r not in hot]
        built = [_rule_row(r, c) for r in rest]
        out.append(f"<details><summary>The other {len(rest)} rules (no failures)</summary>"
                   + table(RULE_HEADERS, [b[0] for b in built], row_attrs=[b[1] for b in built])
                   + "</details>")
    return "".join(out)


def _completeness(d: dict[str, Any]) -> str:
    centers = d["centers"]
    legend = "".join(f'<span style="background:{share_colour(f)}">{lab}</span>'
                     for f, lab in ((0.0, "0%"), (0.5, "50%"), (0.9, "90%"), (1.0, "100%"), (None, "not collected")))
    out = ['<p class="note">Share of non-empty cells per table, column and center (empty text counts as '
           f'empty). A table a center did not submit is "not collected".</p><p class="legend">{legend}</p>',
           '<div class="grids">']
    for t, info in d["completeness"].items():
        head = [(t, "label"), *[(c, "num") for c in centers]]
        rows: list[list[Any]] = [[Raw("rows", class_="label"),
                                  *[Raw(esc(fmt_int(info["rows"][c])), class_="num") for c in centers]]]
        for col, per in info["columns"].items():
            cells: list[Any] = [Raw(esc(col), class_="label code")]
            for c in centers:
                f = per.get(c)
                text = "n/c" if f is None else fmt_pct(f, 0) if f in (0, 1) else fmt_pct(f, 1)
                cells.append(Raw(esc(text), style=f"background:{share_colour(f)}", data_center=c,
                                 data_table=t, data_column=col, data_value="" if f is None else f"{f:.6f}",
                                 title=f"{t}.{col}, {c}: " + ("not collected" if f is None else fmt_pct(f, 2))))
            rows.append(cells)
        out.append(table(head, rows, cls="grid"))
    out.append("</div>")
    return "".join(out)


def _distributions(d: dict[str, Any], figures: Mapping[str, str]) -> str:
    out = ['<p class="note">Values as stored (canonical units), one box per center: the box spans the '
           "quartiles, the thick line is the median, whiskers reach 1.5 times the interquartile range; "
           "dots are the values (at most 200 per center drawn). A center whose values sit apart from the "
           "others usually reports another unit or coding.</p>", '<div class="figs">']
    for entry in d["distributions"]:
        title = f"{entry['label']} ({entry['unit']})"
        if entry.get("missing"):
            out.append(f"<figure><figcaption><strong>{esc(title)}</strong></figcaption>"
                       f"{_missing(entry['missing'])}</figure>")
            continue
        stats = entry["by_center"]
        if not any(s.get("n") for s in stats.values()):
            out.append(f"<figure><figcaption><strong>{esc(title)}</strong>: no values recorded in any "
                       "center.</figcaption></figure>")
            continue
        svg = figures.get(entry["id"])
        body = svg if svg else _missing("the figure could not be drawn")
        rows = [[c, s.get("n", 0), s.get("median"),
                 f"{fmt_num(s.get('q1'))} – {fmt_num(s.get('q3'))}" if s.get("n") else "–",
                 f"{fmt_num(s.get('min'))} – {fmt_num(s.get('max'))}" if s.get("n") else "–"]
                for c, s in stats.items()]
        out.append(f'<figure{attrs(data_distribution=entry["id"])}>{body}<figcaption>'
                   f"<details><summary>{esc(title)}: numbers</summary>"
                   + table(["center", ("n", "num"), ("median", "num"), ("quartiles", "num"), ("range", "num")], rows)
                   + "</details></figcaption></figure>")
    out.append("</div>")
    return "".join(out)


def _evaluability(d: dict[str, Any]) -> str:
    ev = d["evaluability"]
    if ev.get("missing"):
        return _missing(ev["missing"] + "; PTR evaluability cannot be shown")
    centers = d["centers"]
    reasons = sorted({r for c in centers for r in ev["by_center"][c]["reasons"]})
    head = ["center", ("transfusions", "num"), ("evaluable", "num"), ("share", "num"),
            *[(_human(r), "num") for r in reasons]]
    rows = []
    for c in centers:
        e = ev["by_center"][c]
        rows.append([c, Raw(esc(fmt_int(e["transfusions"])), class_="num", data_center=c, data_metric="transfusions"),
                     Raw(esc(fmt_int(e["evaluable"])), class_="num", data_center=c, data_metric="evaluable"),
                     Raw(esc(fmt_pct(e["fraction"])), class_="num"),
                     *[Raw(esc(fmt_int(e["reasons"].get(r, 0))), class_="num", data_center=c,
                           data_reason=r) for r in reasons]])
    defs = d.get("definitions") or {}
    used = ", ".join(f"{k} = {v}" for k, v in defs.items() if k.startswith("cci."))
    note = ('<p class="note">A transfusion is evaluable for PTR when its CCI can be computed from counts '
            "in the configured windows with a fresh, ABO-compatible unit; otherwise the first reason that "
            "applies is counted (columns).")
    if used:
        note += f" Definitions used: {esc(used)}."
    return note + "</p>" + table(head, rows)


def _crosstab(rows: list[list[Any]]) -> str:
    rep = sorted({r[0] for r in rows}, key=lambda x: (x is None, x))
    rec = sorted({r[1] for r in rows}, key=lambda x: (x is None, x))
    cell = {(a, b): n for a, b, n in rows}

    def lab(g: Any) -> str:
        return "no grade" if g is None else str(g)

    head = ["reported \\ recomputed", *[(lab(g) if g is not None else "no signs", "num") for g in rec]]
    body = [[lab(a), *[Raw(esc(fmt_int(cell.get((a, b), 0))) if cell.get((a, b)) else "·", class_="num",
                           style="background:#e3f1e6" if a == b and a is not None else None)
                       for b in rec]] for a in rep]
    return table(head, body)


def _crs(d: dict[str, Any]) -> str:
    crs = d["crs"]
    if crs.get("missing"):
        return _missing(crs["missing"] + "; CRS grade agreement cannot be shown")
    out = ['<p class="note">The grade each center reported, against the grade the toolkit recomputes from '
           "the recorded signs on the same scale (Lee 2014 or ASTCT 2019). Grades reported on other "
           "scales are not recomputed and only counted.</p>"]
    rows, details = [], []
    for c in d["centers"]:
        per = crs["by_center"][c]
        for scale, s in per["scales"].items():
            if not s["assessments"]:
                continue
            rows.append([c, scale, s["assessments"], s["compared"],
                         Raw(esc(fmt_int(s["agree"])), class_="num", data_center=c, data_scale=scale,
                             data_metric="agree"),
                         Raw(esc(fmt_pct(s["fraction"])), class_="num"), s["higher_reported"],
                         s["lower_reported"], s["no_signs"]])
            details.append(f"<details><summary>{esc(c)}, {esc(scale)}: reported vs recomputed</summary>"
                           f"{_crosstab(s['crosstab'])}</details>")
        other = ", ".join(f"{k}: {v}" for k, v in per["other_scales"].items())
        if other or per["no_reported_grade"]:
            details.append(f'<p class="note">{esc(c)}: not recomputed: {esc(other or "none")}; '
                           f"assessments without a reported grade: {per['no_reported_grade']}.</p>")
    if rows:
        out.append(table(["center", "scale", ("assessments", "num"), ("compared", "num"), ("agree", "num"),
                          ("agreement", "num"), ("reported higher", "num"), ("reported lower", "num"),
                          ("no signs recorded", "num")], rows))
    else:
        out.append('<p class="note">No CRS grade reported on Lee 2014 or ASTCT 2019.</p>')
    out.extend(details)
    return "".join(out)


def _bleeding(d: dict[str, Any]) -> str:
    b = d["bleeding"]
    centers = d["centers"]
    out = ['<p class="note">WHO bleeding grades: grade 3 needs a red-cell transfusion within 24 h; grade 4 '
           "is fatal, in the CNS, retinal with visual impairment, or with hemodynamic instability. The "
           "rules below check each reported grade against the recorded facts.</p>"]
    rule_ids = sorted({r["rule_id"] for c in centers for r in b["by_center"][c]["rules"]})
    if rule_ids:
        rows = []
        for rid in rule_ids:
            cells: list[Any] = [_rule(rid)]
            for c in centers:
                r = next((x for x in b["by_center"][c]["rules"] if x["rule_id"] == rid), None)
                if r is None:
                    cells.append("–")
                    continue
                cells.append(Raw(f"{fmt_int(r['failed'])} / {fmt_int(r['checked'])} {_status(r['status'])}",
                                 class_="num", data_center=c, data_rule=rid))
            rows.append(cells)
        out.append(table(["rule", *[(f"{c}: failed / checked", "num") for c in centers]], rows))
    grades = sorted({g["who_grade"] for c in centers for g in b["by_center"][c]["grades"]},
                    key=lambda x: (x is None, x))
    if grades:
        head = ["center", *[(f"grade {g}" if g is not None else "grade missing", "num") for g in grades]]
        rows = []
        for c in centers:
            per = {g["who_grade"]: g for g in b["by_center"][c]["grades"]}
            cells: list[Any] = [c]
            for g in grades:
                x = per.get(g)
                cells.append(0 if x is None else Raw(
                    f"{fmt_int(x['n'])}<br><span class='note'>RBC 24 h {x['rbc_24h']}, unstable "
                    f"{x['hemodynamic_instability']}, fatal {x['fatal']}</span>", class_="num"))
            rows.append(cells)
        out.append("<h3>Bleeding events by WHO grade</h3>" + table(head, rows))
    else:
        out.append('<p class="note">No bleeding events recorded.</p>')
    return "".join(out)


ISSUE_HEADERS = ["rule", "severity", "file", ("row", "num"), "column", "value", "message"]


def _issue_rows(df: pl.DataFrame) -> tuple[list[list[Any]], list[str]]:
    rows, rattrs = [], []
    for r in df.iter_rows(named=True):
        rows.append([_rule(r["rule_id"]), Raw(esc(r["severity"]), class_="sev"),
                     r["file"], Raw(esc("" if r["row"] is None else r["row"]), class_="num"),
                     Raw(esc(r["column"]), class_="code"), Raw(esc(r["value"]), class_="value code"),
                     Raw(esc(r["message"]), class_="msg")])
        rattrs.append(attrs(class_=f"sev-{r['severity']}", data_rule=r["rule_id"], data_file=r["file"],
                            data_row=r["row"], data_column=r["column"]))
    return rows, rattrs


def _issues(report: QAReport, links: Mapping[str, Mapping[str, str]] | None, max_rows: int,
            page_rows: int) -> str:
    out = ['<p class="note">Every open finding, errors first, with the center\'s own file, spreadsheet row '
           "(header = 1) and column. Values that a privacy rule (<span class=\"code\">phi.</span>) flagged "
           "are shown as [redacted].</p>"]
    for c in report.data["centers"]:
        df = report.issues.get(c)
        n = 0 if df is None else df.height
        link = (links or {}).get(c)
        export = ""
        if link:
            export = (f' Export: <a href="{esc(link["csv"])}">{esc(link["csv_name"])}</a>, '
                      f'<a href="{esc(link["xlsx"])}">{esc(link["xlsx_name"])}</a>.')
        if n == 0:
            out.append(f"<h3>{esc(c)}</h3><p class=\"note\">Nothing to fix.{export}</p>")
            continue
        errors = int((df["severity"] == "error").sum())
        out.append(f"<h3>{esc(c)}</h3><p class=\"note\">{_plural(n, 'row')} to fix ({_plural(errors, 'error')}, "
                   f"{_plural(n - errors, 'warning')}).{export}</p>")
        shown = df.head(max_rows)
        pages = max(1, math.ceil(shown.height / page_rows))
        for p in range(pages):
            chunk = shown.slice(p * page_rows, page_rows)
            rows, rattrs = _issue_rows(chunk)
            lo, hi = p * page_rows + 1, p * page_rows + chunk.height
            out.append(f'<details{" open" if p == 0 else ""}{attrs(data_center=c)}>'
                       f"<summary>{esc(c)}: rows {lo:,}–{hi:,} of {n:,}</summary>"
                       + table(ISSUE_HEADERS, rows, row_attrs=rattrs) + "</details>")
        if n > shown.height:
            where = (f"the full list is in {esc(link['csv_name'])}" if link
                     else "write the full list with <span class=\"code\">--issues-dir</span>")
            out.append(f'<div class="warn-box">{n - shown.height:,} more rows are not shown here; {where}.</div>')
    return "".join(out)


# --------------------------------------------------------------------------- page


def render(report: QAReport, figures: Mapping[str, str],
           links: Mapping[str, Mapping[str, str]] | None = None,
           max_rows: int = 1000, page_rows: int = 200) -> str:
    d = report.data
    what = ("the pooled registry" if d["mode"] == "store" else "one submission before ingest")
    subtitle = (f"{esc(what)}: <span class=\"code\">{esc(d['source'])}</span> · "
                f"{len(d['centers'])} center(s) · generated {esc(d['generated_at'])}")
    body = []
    if report.notes:
        body.append('<div class="warn-box"><strong>Notes</strong><ul>'
                    + "".join(f"<li>{esc(n)}</li>" for n in report.notes) + "</ul></div>")
    if not d["centers"]:
        body.append('<div class="warn-box">No data: the source holds no center.</div>')
    parts = {
        "summary": _summary(d),
        "rules": _rules(d),
        "completeness": _completeness(d),
        "distributions": _distributions(d, figures),
        "evaluability": _evaluability(d),
        "crs": _crs(d),
        "bleeding": _bleeding(d),
        "issues": _issues(report, links, max_rows, page_rows),
    }
    titles = {
        "summary": "Summary per center",
        "rules": "Rule results per center",
        "completeness": "Completeness: table × column × center",
        "distributions": "Distributions of key values by center",
        "evaluability": "PTR evaluability of transfusions",
        "crs": "CRS: reported vs recomputed grade",
        "bleeding": "Bleeding grade consistency",
        "issues": "Rows to fix",
    }
    for sid, _ in SECTIONS:
        body.append(f'<section id="{sid}"><h2>{esc(titles[sid])}</h2>{parts[sid]}</section>')
    footer = (f"ptrharmonize {esc(__version__)} · QA report · pseudonymous: no names or birth dates; "
              "values flagged by privacy rules are redacted · self-contained, loads nothing from the network")
    return page("Registry data-quality report", subtitle, SECTIONS, "".join(body), footer,
                json_block("qa-data", d))
