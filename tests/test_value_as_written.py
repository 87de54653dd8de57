"""Issue 19: "Every issue names its place as a nurse finds it: file, sheet, spreadsheet row (SPSS:
case number), the center's own column header and the value as written, the patient id" ...
"One shape of issue list for every output (terminal, JSON, CSV, XLSX, HTML, the store)."

A mapped column is recoded, converted or reformatted before it is checked, so the engine's value
of a failing cell is the converted one (1750 for `17,5` m). The issue shows the text of the
center's cell. A small hand-built center in German words, decimal commas, metres, pounds and
DD.MM.YYYY dates; each expected value below is the text written in the files here.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb
import polars as pl
import pytest
from rich.console import Console

from ptrharmonize.cdm import load_catalog
from ptrharmonize.commands.common import load_submission
from ptrharmonize.report.issues import render_terminal, to_json_dict, write_issues
from ptrharmonize.store import create_schema, write_findings
from ptrharmonize.validate import Engine
from ptrharmonize.validate.issue_record import FIELDS

FILES = {
    "patienten.csv": "Patient;Geschlecht;Alter;Größe (m);Gewicht (lb);Diagnose\n"
                     "P1;männlich;34;1,80;154;B-ALL\n"
                     "P2;weiblich;41;17,5;132;B-ALL\n"        # row 3: 17,5 m = 1750 cm (> 230 cm)
                     "P3;divers;38;1,70;900;B-ALL\n",         # row 4: 900 lb = 408 kg (> 300 kg)
    "behandlung.csv": "Patient;Therapie;Ziel;Datum\n"
                      "P1;CAR-T;19;03.02.2020\n"
                      "P2;Chemo;19;05.02.2020\n"              # row 3: a CAR target ('19' = CD19) for chemo
                      "P3;Chemo;;06.02.2020\n",
    "ergebnis.csv": "Patient;Tod\nP1;15.01.2020\n",           # row 2: death before the index date
    "labor.csv": "Patient;Analyt;Wert;Einheit;Zeit\n"
                 "P1;PLT;15 000;10^9/L;04.02.2020 08:00\n"    # row 2: 15 000 x10^9/L (a count per µL)
                 "P2;Hb;4,5;g/dL;06.02.2020 08:00\n",
}
MAPPING = """\
mapping_version: 1
center_id: DE-TST
defaults:
  format: csv
  delimiter: ";"
  decimal: ","
  date_format: "%d.%m.%Y"
  timestamp_format: "%d.%m.%Y %H:%M"
tables:
  patients:
    file: patienten.csv
    columns:
      patient_id: Patient
      sex: {column: Geschlecht, values: {männlich: M, weiblich: F, divers: U}}
      age_years: Alter
      height_cm: {column: Größe (m), unit: m}
      weight_kg: {column: Gewicht (lb), unit: lb}
      diagnosis: Diagnose
  treatments:
    file: behandlung.csv
    columns:
      patient_id: Patient
      treatment_type: {column: Therapie, values: {CAR-T: car_t, Chemo: chemotherapy}}
      car_target: {column: Ziel, values: {"19": CD19, "22": CD22}}
      index_date: Datum
  outcomes:
    file: ergebnis.csv
    columns:
      patient_id: Patient
      death_on: Tod
  labs:
    file: labor.csv
    columns:
      patient_id: Patient
      analyte: {column: Analyt, values: {PLT: PLT, Hb: HGB}}
      value: Wert
      unit: Einheit
      measured_at: Zeit
"""
# (rule, file, row) -> the cell as written in FILES (the engine checked the converted value).
EXPECTED = {
    ("patients.height_cm.range", "patienten.csv", 3): "17,5",
    ("patients.weight_kg.range", "patienten.csv", 4): "900",
    ("treatments.car_target_only_for_cart", "behandlung.csv", 3): "19",
    ("outcomes.death_after_index", "ergebnis.csv", 2): "15.01.2020",
    ("labs.plt_wrong_unit", "labor.csv", 2): "15 000",
}


@pytest.fixture(scope="module")
def german(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("written")
    sub = tmp / "sub"
    sub.mkdir()
    for name, text in FILES.items():
        (sub / name).write_text(text, encoding="utf-8")
    (tmp / "m.yaml").write_text(MAPPING, encoding="utf-8")
    result = Engine(load_catalog()).validate(load_submission(sub, tmp / "m.yaml"))
    yield result, sub, tmp / "m.yaml"
    result.cleanup()


def test_converted_recoded_and_reformatted_cells_are_shown_as_written(german) -> None:
    issues = german[0].issues
    got = {(r["rule_id"], r["file"], r["row"]): r["value"] for r in issues.iter_rows(named=True)
           if (r["rule_id"], r["file"], r["row"]) in EXPECTED}
    assert got == EXPECTED
    # the rest of the record is unchanged: the center's header, the patient, the place
    h = issues.filter(pl.col("rule_id") == "patients.height_cm.range").to_dicts()[0]
    assert (h["source_column"], h["patient_id"], h["place"]) == ("Größe (m)", "P2", "row 3")


def test_every_output_shows_the_value_as_written(german, tmp_path: Path) -> None:
    """Terminal, JSON, CSV, XLSX, the store and the QA report's HTML carry the written text."""
    result, sub, m = german
    want = set(EXPECTED.values())

    doc = json.loads(json.dumps(to_json_dict(result), default=str))
    assert want <= {i["value"] for i in doc["issues"]}
    out_csv = tmp_path / "i.csv"
    write_issues(result.issues, out_csv)
    rows = list(csv.DictReader(io.StringIO(out_csv.read_text(encoding="utf-8-sig"))))
    assert want <= {r["value"] for r in rows}
    out_xlsx = tmp_path / "i.xlsx"
    write_issues(result.issues, out_xlsx)
    from openpyxl import load_workbook

    ws = load_workbook(out_xlsx, read_only=True)["issues"]
    table = [list(r) for r in ws.iter_rows(values_only=True)]
    at = table[0].index("value")
    assert want <= {str(r[at]) for r in table[1:]}
    con = duckdb.connect()
    create_schema(con)
    write_findings(con, result.issues, result.rules, "DE-TST", "s1")
    assert want <= {v for (v,) in con.execute("SELECT value FROM issues").fetchall()}
    console = Console(record=True, width=400)
    render_terminal(result, console, str(sub), max_issues=100)
    text = console.export_text()
    for v in want:
        assert repr(v) in text, v
    assert "'1750'" not in text and "'2020-01-15'" not in text  # the converted values are not shown

    from ptrharmonize.report.qa import open_submission_source
    from ptrharmonize.report.qa_build import build_report

    out_html = tmp_path / "qa.html"
    build_report(open_submission_source(result, str(sub), mapping=m), out_html)
    page = out_html.read_text(encoding="utf-8")
    for v in want:
        assert f">{v}<" in page, v
    assert list(result.issues.columns) == FIELDS


def test_a_value_composed_by_a_rule_is_left_as_the_rule_wrote_it(tmp_path: Path) -> None:
    """Only a value that is the cell's own (the staged cell shown as the engine shows values) is
    replaced; a value a rule composes from several cells is not the text of one cell."""
    from ptrharmonize.validate.written import as_written

    staged = tmp_path / "patients.parquet"
    pl.DataFrame({"_file": ["p.csv", "p.csv"], "_row": [2, 3], "height_cm": [1750.0, 180.0],
                  "__raw__height_cm": [None, None]}).write_parquet(staged)
    written = {"patients": [pl.LazyFrame({"_file": ["p.csv", "p.csv"], "_row": [2, 3],
                                          "height_cm": ["17,5", "1,80"]})]}
    issues = pl.DataFrame({"rule_id": ["r1", "r2", "r3"], "severity": ["error"] * 3, "table": ["patients"] * 3,
                           "file": ["p.csv"] * 3, "row": [2, 3, 2], "column": ["height_cm"] * 3,
                           "value": ["1750", "180 cm, 70 kg", None], "message": ["m"] * 3})
    out = as_written(issues, {"patients": staged}, written, load_catalog())
    assert out.get_column("value").to_list() == ["17,5", "180 cm, 70 kg", None]
    assert out.columns == issues.columns
    # a submission in the CDM's own columns has nothing to look up
    assert as_written(issues, {"patients": staged}, {}, load_catalog()).equals(issues)
