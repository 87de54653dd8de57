"""The QA report as a data manager works in it, checked in the real browser (Debian's headless
chromium): filter, sort and search (and the page without JavaScript), printing to A4, the
accessibility checker (axe-core), completeness that knows the data model, rule text beside each
result, and the center's submissions over time (in the page and in `ptrh diff`).

The registry: A01 clean, with one patient who died; B02 with a 200 h storage time (a warning
rule over tolerance), two blast percentages left empty and no infections file (not collected),
then resubmitted with the storage time corrected, one transfusion dropped, one lab added, one
blast percentage filled in and one transfusion without dose or units (a new warning).
"""

from __future__ import annotations

import html as htmllib
import json
import re
import unicodedata
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from extract_factory import clean_rows, write_extract
from ptrharmonize.cli import app
from report_helpers import (
    axe_source,
    chromium,
    data_elements,
    filterable_rows,
    qa_data,
    with_test_scripts,
)

runner = CliRunner()
SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory) -> dict:
    base = tmp_path_factory.mktemp("qa-views")
    store = base / "registry.duckdb"
    rows_a = clean_rows("A01")
    # P006 (chemotherapy) died: a death date, its cause, follow-up ending that day
    rows_a["outcomes"][5].update(death_on="2019-05-01", death_cause="relapse", last_followup_on="2019-05-01")
    a = write_extract(base / "A01", rows_a)
    rows_b = clean_rows("B02")
    rows_b["transfusions"][5]["storage_h"] = "200"  # P003-T2: storage over 7 days (warning)
    rows_b["patients"][0]["bm_blast_pct"] = ""
    rows_b["patients"][3]["bm_blast_pct"] = ""
    b1 = write_extract(base / "B02-1", rows_b)
    (b1 / "infections.csv").unlink()
    for extract in (a, b1):
        res = runner.invoke(app, ["ingest", str(extract), "--store", str(store), "--quiet"])
        assert res.exit_code == 0, res.output
    # the resubmission
    rows_b["transfusions"][5]["storage_h"] = "24"                 # fixed: storage_over_7_days
    rows_b["transfusions"][0].update(dose_e11="", units_reported="")  # new: dose_or_units (changed row)
    del rows_b["transfusions"][11]                               # removed: P006-T2
    rows_b["labs"].append(dict(rows_b["labs"][0], measured_at="2019-03-08T06:00:00", value="19"))  # added
    rows_b["patients"][0]["bm_blast_pct"] = "50"                  # changed: P001
    b2 = write_extract(base / "B02-2", rows_b)
    (b2 / "infections.csv").unlink()
    res = runner.invoke(app, ["ingest", str(b2), "--store", str(store), "--quiet"])
    assert res.exit_code == 0, res.output
    out = base / "qa.html"
    res = runner.invoke(app, ["qa-report", "--store", str(store), "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    html = out.read_text(encoding="utf-8")
    return {"base": base, "store": store, "out": out, "html": html, "data": qa_data(html)}


def dump(reg: dict, url_suffix: str = "", *extra: str, page: Path | None = None, name: str = "p") -> str:
    target = (page or reg["out"]).resolve().as_uri() + url_suffix
    res = chromium([*extra, "--dump-dom", target], reg["base"] / f"profile-{name}")
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


# --------------------------------------------------------------------------- filter, sort, search


def test_filter_to_one_center_shows_only_its_rows(reg: dict) -> None:
    every = filterable_rows(reg["html"])
    for r in every:  # a row of one center, or (errors by rule) of the centers it counts
        r["data-center"] = r.get("data-center") or r["data-centers"]
    assert {r["data-center"] for r in every} == {"A01", "B02"}
    assert not any(r["hidden"] for r in every), "the file itself hides nothing (JavaScript off)"
    dom = dump(reg, "#filter:center=B02", name="f1")
    rows = filterable_rows(dom)
    assert len(rows) == len(every)
    shown = [{**r, "data-center": r.get("data-center") or r["data-centers"]} for r in rows if not r["hidden"]]
    assert shown and {r["data-center"] for r in shown} == {"B02"}
    assert len(shown) == sum(r["data-center"] == "B02" for r in every)
    # whole per-center blocks of A01 are hidden too, and the count says what is shown
    assert re.search(r'<div data-center-block="A01" hidden', dom)
    assert re.search(rf'<output id="filter-count"[^>]*>{len(shown)} of {len(every)} rows shown</output>', dom)


def test_filter_by_severity_status_and_search(reg: dict) -> None:
    dom = dump(reg, "#filter:severity=warning&status=failed&q=storage", name="f2")
    shown = [r for r in filterable_rows(dom) if not r["hidden"]]
    # B02's current submission fixed the storage time: no warning rule over tolerance mentions storage
    assert shown == []
    dom = dump(reg, "#filter:severity=warning&status=failed", name="f3")
    shown = [r for r in filterable_rows(dom) if not r["hidden"]]
    assert {(r.get("data-center") or r["data-centers"], r["data-rule"]) for r in shown} == {
        ("B02", "transfusions.dose_or_units")}
    dom = dump(reg, "#filter:table=transfusions&q=" + "neither%20the%20platelet%20dose", name="f4")
    shown = [r for r in filterable_rows(dom) if not r["hidden"]]
    assert shown and all(r["data-table"] == "transfusions" for r in shown)
    assert {r["data-rule"] for r in shown} == {"transfusions.dose_or_units"}
    # the rule's row in both centers' results, and in the errors-by-rule table (B02 only)
    assert {r.get("data-center") or r["data-centers"] for r in shown} == {"A01", "B02"}
    # the issue row (B02, transfusions.csv row 2) is among them
    assert any(r.get("data-file") == "transfusions.csv" and r.get("data-row") == "2" for r in shown)


def test_sort_by_a_column_header(reg: dict, tmp_path: Path) -> None:
    click = """(function () {
      var t = document.querySelector('div[data-center-block="A01"] details table.filterable');
      var b = t.querySelector('thead th button');
      b.click(); b.click();  /* rule id, descending */
      var n = document.querySelector('div[data-center-block="A01"] details table.filterable thead th');
      document.body.setAttribute('data-test-sort', n.getAttribute('aria-sort'));
    })();"""
    page = tmp_path / "sort.html"
    page.write_text(with_test_scripts(reg["html"], click), encoding="utf-8")
    dom = dump(reg, "", page=page, name="sort")
    assert 'data-test-sort="descending"' in dom
    block = dom[dom.index('<div data-center-block="A01"'):]
    block = block[block.index("<details"):block.index("</details>")]
    ids = [r["data-rule"] for r in filterable_rows(block)]
    assert len(ids) > 100 and ids == sorted(ids, reverse=True)
    original = [r["data-rule"] for r in filterable_rows(reg["html"]) if r.get("data-center") == "A01"]
    assert ids != original[-len(ids):]  # the click changed the order


def test_without_javascript_the_page_is_complete(reg: dict, tmp_path: Path) -> None:
    # Headless chromium's --dump-dom needs JavaScript itself, so the page's script is switched off
    # the way a locked-down browser would: a policy that allows no script at all.
    page = tmp_path / "nojs.html"
    page.write_text(re.sub(r"script-src [^;]+;", "script-src 'none';", reg["html"], count=1), encoding="utf-8")
    dom = dump(reg, "#filter:center=B02", page=page, name="nojs")
    rows = filterable_rows(dom)
    assert len(rows) == len(filterable_rows(reg["html"])) and not any(r["hidden"] for r in rows)
    assert re.search(r'<form[^>]*id="filterbar"[^>]*hidden', dom), "inert controls shown without JavaScript"
    for sid in ("summary", "rules", "completeness", "history", "issues"):
        assert f'id="{sid}"' in dom
    # and with the page's own policy the script does run (the same address filters)
    assert any(r["hidden"] for r in filterable_rows(dump(reg, "#filter:center=B02", name="js")))


# --------------------------------------------------------------------------- print


def _printed(reg: dict):
    """The QA report printed to PDF by headless Chromium (once per module), read by pypdf."""
    from pypdf import PdfReader

    pdf = reg["base"] / "qa.pdf"
    if not pdf.is_file():
        res = chromium(["--no-pdf-header-footer", f"--print-to-pdf={pdf}", reg["out"].resolve().as_uri()],
                       reg["base"] / "profile-pdf")
        assert pdf.is_file(), res.stderr[-2000:]
    return pdf, PdfReader(str(pdf))


def test_print_to_pdf_is_a4_with_every_section_open(reg: dict) -> None:
    pdf, reader = _printed(reg)
    n = len(reader.pages)
    print(f"\nQA report printed: {n} A4 pages, {pdf.stat().st_size:,} bytes: {pdf}")
    assert 3 <= n <= 70  # two centers, 164 rules each, 11 figures, tables at 8 pt: about 52 pages
    for page in reader.pages:
        w, h = float(page.mediabox.width), float(page.mediabox.height)
        assert abs(w - 595.3) < 2 and abs(h - 841.9) < 2, (w, h)  # A4 portrait, in points
    text = "".join(p.extract_text() for p in reader.pages)
    flat = re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))  # NFKC: the PDF's "ﬁ" ligature is "fi"
    for title in ("Summary per center", "Rule results per center", "Completeness", "Over time",
                  "Rows to fix", "Distributions of key values by center"):
        assert re.sub(r"\s+", "", title) in flat, title
    # rules that sit in a collapsed <details> on screen are printed, with their full text and source
    # (the right-most columns of the widest table: a clipped table would lose them)
    a01 = {r["rule_id"]: r for r in reg["data"]["rules"]["A01"]}
    for rid in ("patients.sex.codes", "outcomes.death_after_index", "transfusions.storage_over_7_days"):
        assert re.sub(r"\s+", "", rid) in flat, rid
        assert re.sub(r"\s+", "", a01[rid]["text"])[:60] in flat, rid
    assert re.sub(r"\s+", "", a01["transfusions.storage_over_7_days"]["source"]) in flat
    # the issue list: the message, the last column, in full
    msg = next(r["message"] for r in _issue_rows(reg) if r["data-rule"] == "transfusions.dose_or_units")
    assert re.sub(r"\s+", "", msg) in flat


# The print stylesheet's page: A4 (210 x 297 mm) less the @page margins (10 mm each side,
# 12 mm top, 14 mm bottom): 190 x 271 mm of printable area.
PRINT_W_MM, PRINT_H_MM, MARGIN_X_PT = 190.0, 271.0, 10 / 25.4 * 72
MEASURE_PRINT_LAYOUT = """(function () {
  /* the print rules applied to the screen, on a page as wide as A4's printable width */
  Array.prototype.forEach.call(document.styleSheets, function (s) {
    Array.prototype.forEach.call(s.cssRules, function (r) {
      if (r.media && /print/.test(r.media.mediaText)) { r.media.appendMedium('screen'); }
    });
  });
  document.documentElement.style.width = '190mm';
  var mm = 96 / 25.4, out = [];
  Array.prototype.forEach.call(document.querySelectorAll('figure'), function (f) {
    var r = f.getBoundingClientRect(), svg = f.querySelector('svg');
    var g = svg ? svg.getBoundingClientRect() : r;
    out.push({caption: (f.querySelector('figcaption') || f).textContent.trim().slice(0, 60),
              left: r.left / mm, right: r.right / mm, height: r.height / mm,
              svg_left: g.left / mm, svg_right: g.right / mm, svg_height: g.height / mm,
              break_inside: getComputedStyle(f).breakInside});
  });
  var h2 = document.querySelector('main h2');
  var pre = document.createElement('pre'); pre.id = 'print-layout';
  pre.textContent = JSON.stringify({page: document.body.scrollWidth / mm, figures: out, h2: h2.textContent.trim(),
                                    h2_pt: parseFloat(getComputedStyle(h2).fontSize) * 0.75});
  document.body.appendChild(pre);
})();"""


def test_print_figures_fit_the_a4_width_and_are_never_cut(reg: dict) -> None:
    """Issue 21: every figure fits A4's printable width and is not cut across pages. The layout
    is measured in Chromium with the print rules applied on a page as wide as A4's printable
    area; the PDF Chromium prints is then read for where each trend figure's texts landed."""
    page = reg["base"] / "print-layout.html"
    page.write_text(with_test_scripts(reg["html"], MEASURE_PRINT_LAYOUT), encoding="utf-8")
    dom = dump(reg, "", page=page, name="print-layout")
    m = re.search(r'<pre id="print-layout">(.*?)</pre>', dom, re.S)
    assert m, "the layout was not measured"
    layout = json.loads(htmllib.unescape(m.group(1)))
    figures = layout["figures"]
    n_trend = reg["html"].count('<figure class="trend">')
    assert len(figures) == reg["html"].count("<figure") and n_trend >= 1
    # nothing is wider than the printable width: Chromium would shrink the whole document to fit
    # (the rule table once did: 5 pt text)
    assert layout["page"] <= PRINT_W_MM + 0.5, "something is wider than the printable width"
    for f in figures:
        assert -0.5 <= f["left"] and f["right"] <= PRINT_W_MM + 0.5, f
        assert f["svg_left"] >= f["left"] - 0.5 and f["svg_right"] <= f["right"] + 0.5, f  # the drawing stays in its frame
        # shorter than a page and never broken inside: printed whole on one page
        assert f["height"] <= PRINT_H_MM and f["break_inside"] == "avoid", f
    # In the PDF: no text starts outside the printable width (a clipped figure or table would
    # put some past the right margin), and each trend figure's three panel titles and three
    # x-axis labels are on one page, the titles above the labels.
    _, reader = _printed(reg)
    placed = []
    for i, p in enumerate(reader.pages):
        items: list[tuple[float, float, str, float]] = []

        def visit(text, cm, tm, _font, size, items=items):
            if text.strip():
                items.append((tm[4] * cm[0] + tm[5] * cm[2] + cm[4], tm[4] * cm[1] + tm[5] * cm[3] + cm[5],
                              text.strip(), size * tm[0] * cm[0]))
        p.extract_text(visitor_text=visit)
        if i == 0:  # printed at the size the print stylesheet gives (not shrunk to fit)
            sizes = [pt for _, _, t, pt in items if t == layout["h2"]]
            assert sizes and abs(sizes[0] - layout["h2_pt"]) < 0.3, (sizes, layout["h2_pt"])
        width = float(p.mediabox.width)
        assert all(MARGIN_X_PT - 2 <= x <= width - MARGIN_X_PT for x, _, _, _ in items), i
        axis = {}
        for x, y, t, _ in items:
            if t == "submission":
                axis.setdefault(round(y, 1), []).append(x)
        titles = {round(y, 1) for _, y, t, _ in items if t.endswith(" warnings") and len(t) <= 12}
        for y, xs in axis.items():
            if len(xs) == 3:  # one trend figure's three panels
                placed.append((i, y, [t for t in titles if t > y]))
    assert len(placed) == n_trend, placed
    assert all(above for _, _, above in placed), placed


def _issue_rows(reg: dict) -> list[dict]:
    rows = [r for r in filterable_rows(reg["html"]) if "data-file" in r]
    m = re.findall(r'<tr class="sev-\w+"[^>]*data-rule="([^"]+)"[^>]*>.*?<td class="msg">(.*?)</td>', reg["html"], re.S)
    msgs = {rid: htmllib.unescape(msg) for rid, msg in m}
    return [{**r, "message": msgs[r["data-rule"]]} for r in rows]


# --------------------------------------------------------------------------- accessibility


AXE_RUN = """(function () {
  Array.prototype.forEach.call(document.querySelectorAll('details'), function (d) { d.open = true; });
  axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']},
                     resultTypes: ['violations']}).then(function (r) {
    var pre = document.createElement('pre'); pre.id = 'axe-result';
    pre.textContent = JSON.stringify(r.violations.map(function (v) {
      return {id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.slice(0, 3).map(function (n) { return n.html.slice(0, 160) + ' | ' + n.failureSummary; })};
    }));
    document.body.appendChild(pre);
  }, function (e) { var pre = document.createElement('pre'); pre.id = 'axe-result'; pre.textContent = 'ERROR ' + e; document.body.appendChild(pre); });
})();"""


def run_axe(reg: dict, html: str, name: str) -> list[dict]:
    page = reg["base"] / f"axe-{name}.html"
    page.write_text(with_test_scripts(html, axe_source(), AXE_RUN), encoding="utf-8")
    dom = dump(reg, "", "--virtual-time-budget=30000", page=page, name=f"axe-{name}")
    m = re.search(r'<pre id="axe-result">(.*?)</pre>', dom, re.S)
    assert m, "axe-core did not report"
    text = htmllib.unescape(m.group(1))
    assert not text.startswith("ERROR"), text
    return json.loads(text)


def test_axe_core_finds_no_violation(reg: dict) -> None:
    from ptrharmonize.reproduce.compare import compare_results, to_html

    violations = run_axe(reg, reg["html"], "qa")
    assert violations == [], json.dumps(violations, indent=1)[:4000]
    repro = to_html(compare_results({"analyses": {}}), "header")
    violations = run_axe(reg, repro, "repro")
    assert violations == [], json.dumps(violations, indent=1)[:4000]
    # the checker does find a planted violation (low contrast, a table cell without header), so
    # the empty list above means something
    planted = reg["html"].replace('<main id="main">', '<main id="main"><p style="color:#c8c8c8">faint</p>', 1)
    assert "color-contrast" in {v["id"] for v in run_axe(reg, planted, "planted")}


def test_headings_header_cells_and_figures(reg: dict) -> None:
    html = reg["html"]
    levels = [int(h) for h in re.findall(r"<h([1-6])\b", html)]
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False)), "a heading level is skipped"
    ths = re.findall(r"<th\b[^>]*>", html)
    assert ths and all(re.search(r'\bscope="(col|row)"', t) for t in ths)
    # every figure has a text alternative: the distribution plots through role=img + aria-label,
    # the trend figures through their <title>
    for fig in re.findall(r"<figure\b.*?</figure>", html, re.S):
        if "<svg" not in fig:
            continue
        assert re.search(r'role="img" aria-label="[^"]{20,}"', fig) or re.search(
            r'<svg[^>]*role="img"[^>]*aria-labelledby="([^"]+)".*<title id="\1">[^<]{20,}</title>', fig, re.S), fig[:300]


# --------------------------------------------------------------------------- what the page says


def test_completeness_knows_the_model(reg: dict) -> None:
    tables = {p.stem: yaml.safe_load(p.read_text()) for p in (SCHEMAS / "tables").glob("*.yaml")}
    cols = {(t, c["name"]): c for t, doc in tables.items() for c in doc["columns"]}
    # declared in the schemas, not in code (CDM v1: car_target "required when car_t, empty otherwise")
    assert cols[("treatments", "car_target")]["applies_when"] == "treatment_type = 'car_t'"
    assert "blank_means" in cols[("outcomes", "death_on")]
    comp = reg["data"]["completeness"]
    cells = {(c["data-center"], c["data-table"], c["data-column"]): c for c in data_elements(reg["html"])
             if c["tag"] == "td" and "data-column" in c}
    for center in ("A01", "B02"):
        # 4 CAR-T patients with a target, 2 chemotherapy patients without one: complete, not 67%
        assert comp["treatments"]["columns"]["car_target"][center] == 1.0
        assert comp["treatments"]["applicable"]["car_target"][center] == 4
        assert cells[(center, "treatments", "car_target")]["data-state"] == "complete"
        # no death date is an answer (alive), never a gap
        assert comp["outcomes"]["state"]["death_on"][center] == "structural"
        assert comp["outcomes"]["columns"]["death_on"][center] is None
    assert comp["outcomes"]["filled"]["death_on"] == {"A01": 1, "B02": 0}
    assert (comp["outcomes"]["columns"]["death_cause"]["A01"], comp["outcomes"]["state"]["death_cause"]["B02"]) == (
        1.0, "not_applicable")
    # not collected: grey and labelled, never a percentage
    nc = cells[("B02", "infections", "kind")]
    assert nc["data-state"] == "not_collected" and nc["class"] == "nc" and nc["data-value"] == ""
    assert re.search(r'<td class="nc" data-center="B02" data-table="infections" data-column="kind"[^>]*>not collected</td>',
                     reg["html"])
    # a real gap stays a gap: B02's blast percentage, 5 of 6 filled in the current submission
    assert comp["patients"]["columns"]["bm_blast_pct"]["B02"] == pytest.approx(5 / 6)
    assert comp["patients"]["state"]["bm_blast_pct"]["B02"] == "partial"


def test_warnings_and_errors_told_apart_by_word_and_colour(reg: dict) -> None:
    html = reg["html"]
    row = re.search(r'<tr class="sev-warning" data-center="B02" data-rule="transfusions.dose_or_units".*?</tr>', html, re.S)
    assert row and 'data-status="failed"' in row.group(0)
    assert "over tolerance (warning)" in row.group(0) and "failed (error)" not in row.group(0)
    assert '<span class="sev sev-warning"><span aria-hidden="true">▲</span> warning</span>' in row.group(0)
    css = html[html.index("<style>"):html.index("</style>")]
    err = re.search(r"\.st-failed \{[^}]*\}", css).group(0)
    warn = re.search(r"\.st-warned \{[^}]*\}", css).group(0)
    assert "var(--err)" in err and "var(--err)" not in warn and "var(--warn)" in warn


def test_each_rule_result_carries_text_category_threshold_source(reg: dict) -> None:
    catalog = {r["id"]: r for r in yaml.safe_load((SCHEMAS / "rules.yaml").read_text())}
    for rules in reg["data"]["rules"].values():
        assert len(rules) > 100
        for r in rules:
            assert r["text"] and "{" not in r["text"], r["rule_id"]
            assert r["category"] in ("conformance", "completeness", "plausibility"), r
            assert r["threshold"] is not None
            if r["rule_id"] in catalog:
                src = catalog[r["rule_id"]]
                assert (r["source"], r["category"], r["text"]) == (src["source"], src["category"], src["message"])
    rid = "transfusions.storage_over_7_days"
    row = re.search(rf'<tr class="sev-warning" data-center="A01" data-rule="{rid}".*?</tr>', reg["html"], re.S).group(0)
    assert htmllib.escape(catalog[rid]["message"], quote=True) in row or catalog[rid]["message"] in htmllib.unescape(row)
    assert "Source: " + catalog[rid]["source"] in htmllib.unescape(row)
    assert '<td>plausibility</td>' in row or f'<td>{catalog[rid]["category"]}</td>' in row


# --------------------------------------------------------------------------- over time


def test_history_in_the_page(reg: dict) -> None:
    hist = reg["data"]["history"]
    assert [len(hist["A01"]), len(hist["B02"])] == [1, 2]
    first, second = hist["B02"]
    assert [first["status"], second["status"]] == ["superseded", "active"]
    # patients 6, treatments 6, transfusions 12, labs 84, crs 4, bleeding 6, medications 4, outcomes 6
    # (no infections); then one transfusion fewer and one lab more
    assert (first["rows"], second["rows"]) == (128, 128)
    assert first["warnings"] == 1 and second["warnings"] == 1
    assert [(r["rule_id"], r["fraction"]) for r in first["failing"]] == [("transfusions.storage_over_7_days", 1 / 12)]
    assert [(r["rule_id"], r["fraction"]) for r in second["failing"]] == [("transfusions.dose_or_units", 1 / 11)]
    ch = second["changes"]
    assert ch["rows_known"] is True
    assert (ch["rows_added"], ch["rows_removed"], ch["rows_changed"]) == (1, 1, 3)
    assert ch["by_table"]["transfusions"] == {"added": 0, "removed": 1, "changed": 2}
    assert ch["by_table"]["labs"] == {"added": 1, "removed": 0, "changed": 0}
    assert ch["by_table"]["patients"] == {"added": 0, "removed": 0, "changed": 1}
    assert [r["rule_id"] for r in ch["newly_failing"]] == ["transfusions.dose_or_units"]
    assert [r["rule_id"] for r in ch["fixed"]] == ["transfusions.storage_over_7_days"]
    html = reg["html"]
    assert re.search(r'<td data-added="1" data-removed="1" data-changed="3">', html)
    assert 'data-newly-failing="transfusions.dose_or_units"' in html
    assert 'data-fixed="transfusions.storage_over_7_days"' in html
    trend = re.search(r'<figure class="trend">.*?</figure>', html, re.S).group(0)
    assert trend.count("<polyline") == 3 and "<title" in trend and "Trend over 2 submissions of B02" in trend


def test_ptrh_diff_prints_the_same(reg: dict) -> None:
    res = runner.invoke(app, ["diff", "--store", str(reg["store"]), "--center", "B02"], terminal_width=160)
    assert res.exit_code == 0, res.output
    out = res.output
    assert "+1 -1 ~3" in out
    assert "transfusions +0 / -1 / ~2" in out and "labs +1 / -0 / ~0" in out and "patients +0 / -0 / ~1" in out
    assert "rules newly failing: transfusions.dose_or_units" in out
    assert "rules fixed: transfusions.storage_over_7_days" in out
    assert "transfusions.storage_over_7_days: 1 / 12 (8.33%), over tolerance" in out
    assert "transfusions.dose_or_units: 1 / 11 (9.09%), over tolerance" in out
    for s in reg["data"]["history"]["B02"]:
        assert s["submission_id"] in out
    bad = runner.invoke(app, ["diff", "--store", str(reg["store"]), "--center", "Z99"])
    assert bad.exit_code == 2 and "A01, B02" in bad.output and "Traceback" not in bad.output
    bad = runner.invoke(app, ["diff", "--store", str(reg["base"] / "none.duckdb"), "--center", "A01"])
    assert bad.exit_code == 2 and "not found" in bad.output


def test_not_collected_absent_and_declared(reg: dict, tmp_path: Path) -> None:
    import shutil

    import duckdb

    # What a mapping with `not_collected: [medications]` records for A01 (collection.py)
    store = tmp_path / "declared.duckdb"
    shutil.copy(reg["store"], store)
    con = duckdb.connect(str(store))
    con.execute("""UPDATE collection SET collected = false, how = 'declared'
                   WHERE center_id = 'A01' AND "table" = 'medications'""").fetchall()
    con.close()
    out = tmp_path / "qa.html"
    res = runner.invoke(app, ["qa-report", "--store", str(store), "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    html = out.read_text(encoding="utf-8")
    comp = qa_data(html)["completeness"]
    assert comp["medications"]["state"]["drug"] == {"A01": "not_collected", "B02": "complete"}
    assert comp["medications"]["not_collected_how"]["drug"] == {"A01": "declared"}
    assert comp["infections"]["not_collected_how"]["kind"] == {"B02": "absent"}
    cell = re.search(r'<td class="nc" data-center="A01" data-table="medications" data-column="drug"[^>]*>(.*?)</td>', html)
    assert cell and "not collected" in cell.group(1) and "declared" in cell.group(1)
    assert 'title="medications.drug, A01: not collected (declared in the mapping)"' in html


def test_a_column_missing_from_the_files_is_not_collected_in_the_submission_report(tmp_path: Path) -> None:
    import csv

    folder = write_extract(tmp_path / "nc", clean_rows("N01"))
    f = folder / "transfusions.csv"
    with f.open(encoding="utf-8") as fh:
        recs = list(csv.DictReader(fh))
    with f.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=[c for c in recs[0] if c != "storage_h"], extrasaction="ignore")
        w.writeheader()
        w.writerows(recs)
    out = tmp_path / "qa.html"
    res = runner.invoke(app, ["qa-report", str(folder), "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    comp = qa_data(out.read_text(encoding="utf-8"))["completeness"]
    assert comp["transfusions"]["state"]["storage_h"] == {"N01": "not_collected"}
    assert comp["transfusions"]["columns"]["storage_h"] == {"N01": None}  # never a red 0%
    assert comp["transfusions"]["state"]["dose_e11"] == {"N01": "complete"}


def test_the_catalog_checks_applies_when(tmp_path: Path) -> None:
    import shutil

    from ptrharmonize.validate.catalog import check_catalog

    root = tmp_path / "schemas"
    shutil.copytree(SCHEMAS, root)
    p = root / "tables" / "treatments.yaml"
    p.write_text(p.read_text().replace("applies_when: \"treatment_type = 'car_t'\"",
                                       "applies_when: \"treatment_kind = 'car_t'\""))
    problems = [str(x) for x in check_catalog(root)]
    assert any("applies_when" in x and "treatments.yaml" in x for x in problems), problems
    assert check_catalog(SCHEMAS) == []


def test_history_without_comparable_row_digests(reg: dict, tmp_path: Path) -> None:
    """Submissions stored before the store kept row digests, or digested by another DuckDB
    version, are compared by their row counts only, and the report and `ptrh diff` say so."""
    import shutil

    import duckdb

    first = reg["data"]["history"]["B02"][0]["submission_id"]

    def history_of(store: Path) -> tuple[dict, str]:
        out = tmp_path / f"{store.stem}.html"
        res = runner.invoke(app, ["qa-report", "--store", str(store), "--out", str(out), "-q"])
        assert res.exit_code == 0, res.output
        diff = runner.invoke(app, ["diff", "--store", str(store), "--center", "B02"], terminal_width=160)
        assert diff.exit_code == 0, diff.output
        return qa_data(out.read_text(encoding="utf-8"))["history"]["B02"][1]["changes"], diff.output

    for name, sql, why in (
            ("nodigests", "DELETE FROM submission_rows WHERE submission_id = ?", "stored before the store kept row digests"),
            ("otherduckdb", "UPDATE submission_rows SET method = 'duckdb-hash-v0.9' WHERE submission_id = ?",
             "digested differently")):
        store = tmp_path / f"{name}.duckdb"
        shutil.copy(reg["store"], store)
        con = duckdb.connect(str(store))
        con.execute(sql, [first]).fetchall()
        con.close()
        ch, out = history_of(store)
        assert ch["rows_known"] is False and ch["rows_net"] == 0 and why in ch["rows_note"]
        assert [r["rule_id"] for r in ch["fixed"]] == ["transfusions.storage_over_7_days"]  # from rule_results
        assert "net +0 *" in out and why in re.sub(r"\s+", " ", out)


def test_a_store_from_before_the_digest_method_takes_new_submissions(reg: dict, tmp_path: Path) -> None:
    import shutil

    import duckdb

    store = tmp_path / "old.duckdb"
    shutil.copy(reg["store"], store)
    con = duckdb.connect(str(store))
    con.execute("ALTER TABLE submission_rows DROP COLUMN method").fetchall()
    con.close()
    # the first version of the table, without `method`: still read
    diff = runner.invoke(app, ["diff", "--store", str(store), "--center", "B02"])
    assert diff.exit_code == 0 and "+1 -1 ~3" in diff.output, diff.output
    # a new submission adds the column and digests its rows; the older rows are not compared with them
    res = runner.invoke(app, ["ingest", str(reg["base"] / "B02-1"), "--store", str(store), "--quiet"])
    assert res.exit_code == 0, res.output
    diff = runner.invoke(app, ["diff", "--store", str(store), "--center", "B02"])
    assert diff.exit_code == 0, diff.output
    assert "net +0 *" in diff.output and "digested differently" in re.sub(r"\s+", " ", diff.output)
