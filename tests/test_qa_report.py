"""`ptrh qa-report`: the HTML opened in a real headless browser, its numbers against the store,
and the per-submission mode listing every planted defect.

Browser check: Debian's chromium (`/usr/bin/chromium`, installed by `.ci/run`) is run twice on the
file. (a) `--screenshot` with `--enable-logging=stderr --v=0`: chromium writes every console
message of the page (errors, uncaught exceptions, Content-Security-Policy violations, which the
report's CSP raises for any attempt to load something) as a line containing `:CONSOLE`; the page
has one small script that logs nothing, so any such line is a failure. (b) `--dump-dom`: the DOM after parsing must hold
every section, the figures and the data block. Both are plain command-line runs of the browser,
with no driver or extra package, which is the most reliable way available here.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from extract_factory import clean_rows, dirty_rows, expected_defects, write_extract
from ptrharmonize.cli import app
from ptrharmonize.report.qa import REDACTED, mask_phi
from report_helpers import assert_self_contained, chromium, data_elements, qa_data

runner = CliRunner()
SECTIONS = ("summary", "rules", "completeness", "distributions", "evaluability", "crs", "bleeding", "history",
            "issues")
# Columns whose completeness the data model qualifies (schemas/tables/*.yaml): counted only where
# they apply, or not at all where a blank is an answer. Checked in test_qa_report_model.py.
MODEL_COLUMNS = {("treatments", "car_target"), ("outcomes", "death_on"), ("outcomes", "death_cause")}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two centers: A01 clean; B02 with a storage time of 200 h (a warning, transfusions row 7),
    two blast percentages left empty and no infections file (not collected)."""
    base = tmp_path_factory.mktemp("qa")
    a = write_extract(base / "A01", clean_rows("A01"))
    rows_b = clean_rows("B02")
    rows_b["transfusions"][5]["storage_h"] = "200"
    rows_b["patients"][0]["bm_blast_pct"] = ""
    rows_b["patients"][3]["bm_blast_pct"] = ""
    b = write_extract(base / "B02", rows_b)
    (b / "infections.csv").unlink()
    store = base / "registry.duckdb"
    for extract in (a, b):
        res = runner.invoke(app, ["ingest", str(extract), "--store", str(store), "--quiet"])
        assert res.exit_code == 0, res.output
    out = base / "report" / "qa.html"
    res = runner.invoke(app, ["qa-report", "--store", str(store), "--out", str(out),
                              "--issues-dir", str(base / "report" / "issues")])
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    return {"base": base, "store": store, "out": out, "A01": a, "B02": b}


# --------------------------------------------------------------------------- (1) browser


def test_store_report_renders_in_headless_chromium(registry: dict[str, Path]) -> None:
    out = registry["out"]
    html = out.read_text(encoding="utf-8")
    assert_self_contained(html)
    assert html.count("<svg") >= 8  # the distributions are real figures
    for sid in SECTIONS:
        assert f'<section id="{sid}" aria-labelledby="h-{sid}">' in html

    png = registry["base"] / "qa-report-screenshot.png"
    shot = chromium(["--enable-logging=stderr", "--v=0", f"--screenshot={png}", "--window-size=1280,4000",
                     out.resolve().as_uri()], registry["base"] / "profile-shot")
    print(f"\nQA report screenshot: {png}")
    assert png.is_file(), f"no screenshot; chromium said: {shot.stderr[-2000:]}"
    from PIL import Image

    with Image.open(png) as im:
        assert im.size == (1280, 4000)
        colours = im.convert("RGB").resize((320, 1000)).getcolors(maxcolors=1 << 16)
    assert png.stat().st_size > 30_000
    assert colours is None or len(colours) > 50, "the screenshot is (nearly) blank"
    console = [ln for ln in shot.stderr.splitlines() if ":CONSOLE" in ln or "Uncaught" in ln]
    assert not console, "browser console messages:\n" + "\n".join(console)

    dom = chromium(["--dump-dom", out.resolve().as_uri()], registry["base"] / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    for sid in SECTIONS:
        assert f'id="{sid}"' in dom.stdout, f"section {sid} not in the rendered DOM"
    assert dom.stdout.count("<svg") >= 8
    assert 'id="qa-data"' in dom.stdout
    assert "transfusions.storage_over_7_days" in dom.stdout
    # the script ran (under the CSP) and switched the filter bar on; in the file itself it is hidden
    bar = re.search(r"<form[^>]*\bid=\"filterbar\"[^>]*>", dom.stdout)
    assert bar and "hidden" not in bar.group(0), "the filter script did not run"
    assert re.search(r"<form[^>]*\bid=\"filterbar\"[^>]*\bhidden", html), "without JavaScript the bar must stay hidden"


# --------------------------------------------------------------------------- (2) numbers


def _csv_shares(folder: Path) -> dict[tuple[str, str], float]:
    out = {}
    for f in folder.glob("*.csv"):
        with f.open(encoding="utf-8") as fh:
            recs = list(csv.DictReader(fh))
        for col in recs[0]:
            out[(f.stem, col)] = sum(1 for r in recs if r[col].strip()) / len(recs)
    return out


def test_report_numbers_match_the_store(registry: dict[str, Path], tmp_path: Path) -> None:
    html = registry["out"].read_text(encoding="utf-8")
    data = qa_data(html)
    cells = data_elements(html)
    con = duckdb.connect(str(registry["store"]), read_only=True)
    try:
        patients = dict(con.execute("SELECT center_id, count(*) FROM patients GROUP BY 1").fetchall())
        transfusions = dict(con.execute("SELECT center_id, count(*) FROM transfusions GROUP BY 1").fetchall())
        issues = {(c, r, s): n for c, r, s, n in con.execute(
            "SELECT center_id, rule_id, severity, count(*) FROM issues GROUP BY ALL").fetchall()}
        severities = {(c, s): n for c, s, n in con.execute(
            "SELECT center_id, severity, count(*) FROM issues GROUP BY ALL").fetchall()}
        rules = {(c, r): (ch, f, st) for c, r, ch, f, st in con.execute(
            "SELECT center_id, rule_id, checked, failed, status FROM rule_results").fetchall()}
    finally:
        con.close()
    assert data["centers"] == ["A01", "B02"]

    def cell_value(center: str, metric: str, **more: str) -> int:
        hits = [c for c in cells if c.get("data-center") == center and c.get("data-metric") == metric
                and all(c.get(f"data-{k}") == v for k, v in more.items())]
        assert hits, (center, metric, more)
        return int(hits[0]["data-value"])

    for c in ("A01", "B02"):
        s = data["summary"][c]
        assert s["patients"] == patients[c] == cell_value(c, "patients") == 6
        assert s["transfusions"] == transfusions[c] == cell_value(c, "transfusions") == 12
        assert s["errors"] == severities.get((c, "error"), 0) == cell_value(c, "errors")
        assert s["warnings"] == severities.get((c, "warning"), 0) == cell_value(c, "warnings")
    # errors and warnings per rule: every count in the page equals the store's, and none is missing
    shown = {(c["data-center"], c["data-rule"], c["data-severity"]): int(c["data-value"])
             for c in cells if c.get("data-metric") == "issues" and int(c["data-value"])}
    assert shown == issues
    assert issues == {("B02", "transfusions.storage_over_7_days", "warning"): 1}
    # rule results with their denominators
    page_rules = {(c["data-center"], c["data-rule"]): (int(c["data-checked"]), int(c["data-failed"]), c["data-status"])
                  for c in cells if c["tag"] == "tr" and "data-checked" in c}
    assert page_rules == rules
    assert page_rules[("B02", "transfusions.storage_over_7_days")] == (12, 1, "failed")
    # completeness: the page's share of non-empty cells equals the share in the files sent
    grid = {(c["data-center"], c["data-table"], c["data-column"]): c["data-value"]
            for c in cells if c["tag"] == "td" and "data-column" in c and "data-table" in c}
    for center in ("A01", "B02"):
        shares = _csv_shares(registry[center])
        for (table, col), share in shares.items():
            if (table, col) in MODEL_COLUMNS:
                continue
            assert float(grid[(center, table, col)]) == pytest.approx(share, abs=1e-6), (center, table, col)
            assert data["completeness"][table]["columns"][col][center] == pytest.approx(share)
    assert float(grid[("B02", "patients", "bm_blast_pct")]) == pytest.approx(4 / 6, abs=1e-6)
    assert grid[("B02", "infections", "kind")] == ""  # not collected
    assert data["completeness"]["infections"]["columns"]["kind"]["B02"] is None
    # PTR evaluability: the 200 h unit is not evaluable
    ev = data["evaluability"]["by_center"]
    assert (ev["A01"]["evaluable"], ev["B02"]["evaluable"]) == (12, 11)
    assert ev["B02"]["reasons"] == {"storage_72h_or_more": 1}
    # CRS: the generated centers report Lee grade 1 with fever only: full agreement
    for c in ("A01", "B02"):
        lee = data["crs"]["by_center"][c]["scales"]["lee2014"]
        assert (lee["compared"], lee["agree"]) == (4, 4)
    # issue exports per center, formula-safe, with the planted warning
    exported = pl.read_csv(registry["base"] / "report" / "issues" / "issues_B02.csv")
    assert exported.select("rule_id", "file", "row", "column").row(0) == (
        "transfusions.storage_over_7_days", "transfusions.csv", 7, "storage_h")
    assert (registry["base"] / "report" / "issues" / "issues_A01.xlsx").is_file()

    # a thresholds file re-applied to the stored counts: 1 of 12 is within 10%
    th = tmp_path / "th.csv"
    th.write_text("rule_id,center_id,threshold\ntransfusions.storage_over_7_days,B02,10%\n", encoding="utf-8")
    out2 = tmp_path / "qa2.html"
    res = runner.invoke(app, ["qa-report", "--store", str(registry["store"]), "--out", str(out2),
                              "--thresholds", str(th)])
    assert res.exit_code == 0, res.output
    rows2 = [c for c in data_elements(out2.read_text(encoding="utf-8"))
             if c["tag"] == "tr" and c.get("data-rule") == "transfusions.storage_over_7_days" and "data-status" in c]
    assert {(c["data-center"], c["data-status"]) for c in rows2} == {("A01", "passed"), ("B02", "passed")}
    d2 = qa_data(out2.read_text(encoding="utf-8"))
    b = next(r for r in d2["rules"]["B02"] if r["rule_id"] == "transfusions.storage_over_7_days")
    assert (b["threshold"], b["status"], b["stored_status"]) == (0.1, "passed", "failed")


# --------------------------------------------------------------------------- (3) one submission


def test_submission_report_lists_planted_defects(tmp_path: Path) -> None:
    rows = dirty_rows()
    rows["treatments"][2]["regimen"] = "FLAG, call 555-123-4567"  # a phone number: phi.value_phone
    rows["infections"][1]["kind"] = "<img src=x onerror=alert(1)>"  # markup: shown as text only
    rows["infections"][2]["kind"] = "=1+2"  # a formula: neutralised in the exports
    folder = write_extract(tmp_path / "dirty", rows)
    # a column that holds names: phi.identifier_column; its values never reach the report
    with (folder / "patients.csv").open(encoding="utf-8") as fh:
        recs = list(csv.DictReader(fh))
    with (folder / "patients.csv").open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=[*recs[0], "patient_name"])
        w.writeheader()
        for r in recs:
            # (not the example name in the phi rule's own message, which the report shows as the rule's text)
            w.writerow({**r, "patient_name": "Maria Keller"})
    out = tmp_path / "qa-dirty.html"
    issues_dir = tmp_path / "issues"
    res = runner.invoke(app, ["qa-report", str(folder), "--out", str(out), "--issues-dir", str(issues_dir), "-q"])
    assert res.exit_code == 0, res.output
    html = out.read_text(encoding="utf-8")
    assert_self_contained(html)
    listed = {(c["data-rule"], c["data-file"], int(c["data-row"]) if c.get("data-row") else None, c.get("data-column"))
              for c in data_elements(html) if c["tag"] == "tr" and "data-file" in c}
    missing = [d for d in expected_defects() if d not in listed]
    assert not missing, f"planted defects not listed: {missing}"
    # pseudonymous: flagged values are masked, identifiers never appear
    assert "555-123-4567" not in html and "Maria Keller" not in html
    phone = [c for c in data_elements(html) if "data-file" in c and c.get("data-rule") == "phi.value_phone"]
    assert phone and phone[0]["data-file"] == "treatments.csv" and phone[0]["data-column"] == "regimen"
    assert REDACTED in html
    export = pl.read_csv(issues_dir / "issues_T01.csv", infer_schema_length=0)
    assert "555-123-4567" not in export.write_csv()
    got = {(r["rule_id"], r["file"], int(r["row"]) if r["row"] else None, r["column"]) for r in export.iter_rows(named=True)}
    assert not [d for d in expected_defects() if d not in got]
    assert (issues_dir / "issues_T01.xlsx").is_file()
    kinds = export.filter(pl.col("rule_id") == "infections.kind.codes")["value"].to_list()
    assert "'=1+2" in kinds and "=1+2" not in kinds
    # escaped: the markup is text in the page, never an element, even in a real browser
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    dom = chromium(["--enable-logging=stderr", "--v=0", "--dump-dom", out.resolve().as_uri()], tmp_path / "profile")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<img" not in dom.stdout and 'id="issues"' in dom.stdout
    assert not [ln for ln in dom.stderr.splitlines() if ":CONSOLE" in ln]
    data = qa_data(html)
    assert data["mode"] == "submission" and data["centers"] == ["T01"]
    assert data["issues"]["T01"]["errors"] > 0


def test_mask_phi_masks_the_flagged_file_column() -> None:
    df = pl.DataFrame({
        "rule_id": ["phi.value_phone", "treatments.regimen.other", "patients.sex.codes"],
        "severity": ["error", "warning", "error"],
        "table": ["treatments", "treatments", "patients"],
        "file": ["treatments.csv", "treatments.csv", "patients.csv"],
        "row": [4, 9, 2],
        "column": ["regimen", "regimen", "sex"],
        "value": ["[redacted]", "call 555-123-4567", "X"],
        "message": ["m", "m", "m"],
    })
    assert mask_phi(df)["value"].to_list() == [REDACTED, REDACTED, "X"]


def test_unusable_inputs_exit_2_without_traceback(tmp_path: Path) -> None:
    for args in (["--store", str(tmp_path / "missing.duckdb")], [str(tmp_path / "no-such-folder")], []):
        res = runner.invoke(app, ["qa-report", *args, "--out", str(tmp_path / "x.html")])
        assert res.exit_code == 2, (args, res.output)
        assert "Traceback" not in res.output and "error:" in res.output
    assert not (tmp_path / "x.html").exists()


def test_a_missing_view_degrades_to_a_note(registry: dict[str, Path], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from ptrharmonize import derive

    monkeypatch.setattr(derive, "VIEW_FILES", tuple(f for f in derive.VIEW_FILES if f != "crs_graded.sql"))
    out = tmp_path / "qa.html"
    res = runner.invoke(app, ["qa-report", "--store", str(registry["store"]), "--out", str(out)])
    assert res.exit_code == 0, res.output
    html = out.read_text(encoding="utf-8")
    data = qa_data(html)
    assert data["crs"] == {"missing": "view crs_graded is not available"}
    assert "Not available: view crs_graded is not available" in html
    assert any("crs.sql" in n for n in data["notes"])
    assert data["evaluability"]["by_center"]["B02"]["evaluable"] == 11  # the other views still work
