"""The issue record (issue 19): where a nurse finds the cell, the patient code, the center's own
words and language, the coordinator's hint apart, and one shape in every output.

Small hand-built submissions in a Leiden-shaped layout (Latin-1, semicolons, Dutch headers and
codes): the expected texts are written from the mapping below and the catalog's templates, not
read back from a run.
"""

from __future__ import annotations

import csv
import html as htmllib
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
from rich.console import Console

from ptrharmonize.cdm import load_catalog
from ptrharmonize.commands.common import load_submission
from ptrharmonize.mapping import lint_mapping
from ptrharmonize.messages import Speaker, languages, untranslated
from ptrharmonize.paths import builtin_schemas_dir
from ptrharmonize.report.issues import render_terminal, to_json_dict, write_issues
from ptrharmonize.store import create_schema, write_findings
from ptrharmonize.validate import Engine
from ptrharmonize.validate.issue_record import FIELDS, human_format

HEADER = ("Patiëntnummer;Geslacht;Leeftijd;Lengte (m);Gewicht (kg);Diagnose;Ziektestatus;Aantal recidieven;"
          "Eerdere allo-SCT;Extramedullair;Blasten beenmerg (%)")
ROWS = [
    "LEI-001;M;34;1,80;70,5;B-ALL;recidief;1;ja;nee;12",
    "LEI-002;X;41;1,65;60;B-ALL;recidief;1;nee;nee;8",      # row 3: Geslacht X (not M, V, O)
    "LEI-003;V;300;1,70;65;B-ALL;recidief;2;nee;ja;5",      # row 4: Leeftijd 300 (> 120 years)
]
BEHANDELING = "Patiëntnummer;Behandeling;Datum\nLEI-001;CAR-T;03.02.2020\nLEI-002;chemo;31.02.2020\nLEI-003;chemo;05.03.2020\n"

MAPPING = """\
mapping_version: 1
{language}center_id: NL-TST
defaults:
  format: csv
  encoding: latin-1
  delimiter: ";"
  decimal: ","
  date_format: "%d.%m.%Y"
value_maps:
  ja_nee: {{ja: true, nee: false}}
tables:
  patients:
    file: patienten.csv
    columns:
      patient_id: Patiëntnummer
      sex: {{column: Geslacht, values: {{M: M, V: F, O: U}}}}
      age_years: Leeftijd
      height_cm: {{column: Lengte (m), unit: m}}
      weight_kg: {{column: Gewicht (kg), unit: kg}}
      diagnosis: {{column: Diagnose, values: {{B-ALL: B-ALL, T-ALL: T-ALL, anders: other}}}}
      disease_status: {{column: Ziektestatus, values: {{primair refractair: primary_refractory, recidief: relapsed}}}}
      n_relapses: Aantal recidieven
      prior_allo_hsct: {{column: Eerdere allo-SCT, values: ja_nee}}
      extramedullary: {{column: Extramedullair, values: ja_nee}}
      bm_blast_pct: {{column: Blasten beenmerg (%), unit: "%"}}
  treatments:
    file: behandeling.csv
    columns:
      patient_id: Patiëntnummer
      treatment_type: {{column: Behandeling, values: {{CAR-T: car_t, chemo: chemotherapy}}}}
      index_date: Datum
"""


def _center(tmp: Path, rows: list[str] = ROWS, language: str | None = "nl") -> tuple[Path, Path]:
    sub = tmp / "sub"
    sub.mkdir(parents=True)
    (sub / "patienten.csv").write_bytes(("\n".join([HEADER, *rows]) + "\n").encode("latin-1"))
    (sub / "behandeling.csv").write_bytes(BEHANDELING.encode("latin-1"))
    m = tmp / "m.yaml"
    m.write_text(MAPPING.format(language=f"language: {language}\n" if language else ""), encoding="utf-8")
    return sub, m


def _validate(sub: Path, m: Path):
    return Engine(load_catalog()).validate(load_submission(sub, m))


@pytest.fixture(scope="module")
def dutch(tmp_path_factory) -> tuple:
    tmp = tmp_path_factory.mktemp("nl")
    sub, m = _center(tmp)
    result = _validate(sub, m)
    yield result, sub, m, tmp
    result.cleanup()


def test_an_issue_names_its_place_patient_and_the_centers_words(dutch) -> None:
    """Row 3 of patienten.csv (header = row 1) holds Geslacht 'X'; the mapping's value map
    {M: M, V: F, O: U} spells the CDM codes M, F, U as M, V, O, so the nurse reads the
    center's codes, in Dutch (language: nl), and the coordinator's advice is the hint."""
    result = dutch[0]
    sex = result.issues.filter(pl.col("rule_id") == "patients.sex.codes").to_dicts()
    assert len(sex) == 1
    i = sex[0]
    assert (i["file"], i["row"], i["place"], i["sheet"]) == ("patienten.csv", 3, "rij 3", None)
    assert (i["patient_id"], i["source_column"], i["value"]) == ("LEI-002", "Geslacht", "X")
    assert i["message"] == "Geslacht moet een van M, V, O zijn. Vervang deze waarde door een daarvan."
    assert "patients.sex" in i["hint"] and "M, F, U" in i["hint"] and "values:" in i["hint"]
    age = result.issues.filter(pl.col("rule_id") == "patients.age_years.range").to_dicts()[0]
    assert (age["row"], age["patient_id"], age["source_column"], age["value"]) == (4, "LEI-003", "Leeftijd", "300")
    assert age["message"] == "Leeftijd moet tussen 0 en 120 jaar liggen. Controleer de waarde en de eenheid."
    # A date the center wrote in its own format is explained in that format (%d.%m.%Y).
    date = result.issues.filter(pl.col("rule_id") == "treatments.index_date.type").to_dicts()[0]
    assert (date["file"], date["row"], date["patient_id"], date["value"]) == ("behandeling.csv", 3, "LEI-002",
                                                                            "31.02.2020")
    assert date["message"].startswith("Datum moet een datum in de vorm DD.MM.YYYY zijn;")


def test_messages_speak_to_the_nurse_and_hints_to_the_coordinator(dutch) -> None:
    """No CDM name and no mapping advice inside a message; every issue of a rule the catalog
    knows has its hint in the separate field."""
    issues = dutch[0].issues
    assert issues.height >= 4
    for i in issues.to_dicts():
        assert i["hint"], i["rule_id"]
        assert "mapping" not in i["message"] and "CDM" not in i["message"], i
        assert not re.search(r"\b(patients|treatments)\.\w+", i["message"]), i


def test_without_language_the_messages_are_english_with_the_same_codes(tmp_path: Path) -> None:
    sub, m = _center(tmp_path, language=None)
    result = _validate(sub, m)
    try:
        i = result.issues.filter(pl.col("rule_id") == "patients.sex.codes").to_dicts()[0]
        assert i["message"] == "Geslacht must be one of M, V, O. Replace this value by one of them."
        assert i["place"] == "row 3"
    finally:
        result.cleanup()


def test_patient_code_that_is_an_identity_number_is_redacted(tmp_path: Path) -> None:
    """111222333 passes the Dutch BSN eleven-test (9*1+8*1+7*1+6*2+5*2+4*2+3*3+2*3-1*3 = 66,
    a multiple of 11): used as a patient code, it is never repeated in the issue list."""
    rows = [ROWS[0], ROWS[1].replace("LEI-002", "111222333"), ROWS[2]]
    sub, m = _center(tmp_path, rows)
    (sub / "behandeling.csv").write_bytes(BEHANDELING.replace("LEI-002", "111222333").encode("latin-1"))
    result = _validate(sub, m)
    try:
        sex = result.issues.filter(pl.col("rule_id") == "patients.sex.codes").to_dicts()[0]
        assert sex["patient_id"] == "[redacted]" and sex["row"] == 3
        assert "111222333" not in json.dumps(to_json_dict(result), default=str)
        out = tmp_path / "issues.csv"
        write_issues(result.issues, out)
        assert "111222333" not in out.read_text(encoding="utf-8-sig")
        # the other patients keep their codes
        assert result.issues.filter(pl.col("rule_id") == "patients.age_years.range")["patient_id"].to_list() == ["LEI-003"]
    finally:
        result.cleanup()


def test_a_canonical_submission_has_the_same_record_with_an_empty_place_only_where_unknown(tmp_path: Path) -> None:
    """Without a mapping: no sheet, no center header; the patient code still comes from the row."""
    sub = tmp_path / "canon"
    sub.mkdir()
    (sub / "patients.csv").write_text("center_id,patient_id,sex,age_years\nNL-X,P1,M,30\nNL-X,P2,Q,40\n",
                                      encoding="utf-8")
    result = Engine(load_catalog()).validate(load_submission(sub, None))
    try:
        assert list(result.issues.columns) == FIELDS
        q = result.issues.filter(pl.col("rule_id") == "patients.sex.codes").to_dicts()[0]
        assert (q["row"], q["place"], q["patient_id"], q["source_column"], q["value"]) == (3, "row 3", "P2", None, "Q")
        assert q["message"] == "sex must be one of M, F, U. Replace this value by one of them."
        missing = result.issues.filter(pl.col("rule_id") == "treatments.missing_table").to_dicts()[0]
        assert missing["row"] is None and missing["patient_id"] is None and missing["place"] is None
    finally:
        result.cleanup()


def _xlsx_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    from openpyxl import load_workbook

    ws = load_workbook(path, read_only=True)["issues"]
    rows = [["" if v is None else str(v) for v in r] for r in ws.iter_rows(values_only=True)]
    return rows[0], rows[1:]


def _text(v: object) -> str:
    return "" if v is None else str(v)


def test_every_output_carries_the_same_record(dutch, tmp_path: Path) -> None:
    """One submission's issues rendered to the terminal, JSON, CSV, XLSX, the QA report's HTML
    and the store: the same fields (FIELDS) and the same rows, value for value."""
    result, sub, m, _ = dutch
    expected = [[_text(r[f]) for f in FIELDS] for r in result.issues.iter_rows(named=True)]
    assert len(expected) >= 4

    # JSON
    doc = json.loads(json.dumps(to_json_dict(result), default=str))
    assert [list(i) for i in doc["issues"]] == [FIELDS] * len(expected)
    assert [[_text(i[f]) for f in FIELDS] for i in doc["issues"]] == expected
    # CSV
    out_csv = tmp_path / "i.csv"
    write_issues(result.issues, out_csv)
    recs = list(csv.reader(io.StringIO(out_csv.read_text(encoding="utf-8-sig"))))
    assert recs[0] == FIELDS and recs[1:] == expected
    # XLSX
    out_xlsx = tmp_path / "i.xlsx"
    write_issues(result.issues, out_xlsx)
    head, rows = _xlsx_rows(out_xlsx)
    assert head == FIELDS and rows == expected
    # the store (what ingest writes)
    con = duckdb.connect()
    create_schema(con)
    write_findings(con, result.issues, result.rules, "NL-TST", "s1")
    cols = ", ".join(f'"{f}"' for f in FIELDS)
    stored = [[_text(v) for v in r] for r in con.execute(f"SELECT {cols} FROM issues").fetchall()]
    assert stored == expected
    # terminal: every row's place, patient, header, value, message and hint
    console = Console(record=True, width=400)
    render_terminal(result, console, str(sub), max_issues=len(expected))
    text = console.export_text()
    for r in result.issues.iter_rows(named=True):
        for f in ("file", "place", "source_column", "patient_id", "message", "hint", "rule_id"):
            if r[f]:
                assert r[f] in text, (f, r[f])
        if r["value"]:
            assert repr(r["value"]) in text
    # HTML (QA report of the submission): a column per field, the same cells
    from ptrharmonize.report.qa import open_submission_source
    from ptrharmonize.report.qa_build import build_report

    out_html = tmp_path / "qa.html"
    build_report(open_submission_source(result, str(sub), mapping=m), out_html)
    page = out_html.read_text(encoding="utf-8")
    table = page[page.index('id="issues"'):] if 'id="issues"' in page else page
    cells = re.findall(r'<tr class="sev-\w+"[^>]*data-file[^>]*>(.*?)</tr>', table, re.S)
    html_rows = [[htmllib.unescape(re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
                 for row in cells]
    assert len(html_rows) == len(expected)
    assert all(len(got) == len(FIELDS) for got in html_rows)  # one cell per field
    for got in html_rows:
        # every field of one record in its own cell (the severity cell adds a symbol)
        if not any(all(any(v == c or v in c.split() for c in got) or v in got for v in want if v) for want in expected):
            raise AssertionError(f"HTML row with no matching record: {got}")


def test_each_shipped_language_translates_every_key() -> None:
    """The untranslated keys of every shipped language (none may be listed)."""
    root = builtin_schemas_dir()
    shipped = [lang for lang in languages(root) if lang != "en"]
    assert {"nl", "zh"} <= set(shipped)
    for lang in shipped:
        assert untranslated(root, lang) == [], lang


def test_a_missing_translation_is_listed_and_shown_in_english(tmp_path: Path) -> None:
    root = tmp_path / "schemas"
    (root / "messages").mkdir(parents=True)
    shutil.copy(builtin_schemas_dir() / "messages" / "en.yaml", root / "messages" / "en.yaml")
    nl = (builtin_schemas_dir() / "messages" / "nl.yaml").read_text(encoding="utf-8")
    cut = re.sub(r"\n  codes:\n    message: [^\n]*", "", nl)
    assert cut != nl
    (root / "messages" / "nl.yaml").write_text(cut, encoding="utf-8")
    assert untranslated(root, "nl") == ["messages.codes"]
    speaker = Speaker(root, "nl")
    assert speaker.template(["patients.sex.codes", "codes"], "message").startswith("{column} must be one of")
    assert speaker.template(["required"], "message").startswith("{column} is leeg")


def test_a_mapping_language_without_catalog_is_a_warning(tmp_path: Path) -> None:
    sub, m = _center(tmp_path, language="xx")
    problems = lint_mapping(m)
    assert any(p["where"] == "language" and p["level"] == "warning" and "'xx'" in p["message"] for p in problems)
    # and the shipped Leiden demo mapping asks for Dutch without a warning
    leiden = builtin_schemas_dir().parent / "mappings" / "eu_leiden.yaml"
    if not leiden.exists():
        from ptrharmonize.paths import builtin_mappings_dir
        leiden = builtin_mappings_dir() / "eu_leiden.yaml"
    assert not [p for p in lint_mapping(leiden) if p["where"] == "language"]
    assert "language: nl" in leiden.read_text(encoding="utf-8")


def test_a_broken_catalog_is_reported_with_its_key(tmp_path: Path) -> None:
    """`ptrh schema check` names the file and key of a message for a rule that does not exist."""
    copy = tmp_path / "schemas"
    shutil.copytree(builtin_schemas_dir(), copy, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    nl = copy / "messages" / "nl.yaml"
    nl.write_text(nl.read_text(encoding="utf-8") + "  patients.no_such_rule:\n    message: \"x\"\n",
                  encoding="utf-8")
    r = subprocess.run([sys.executable, "-m", "ptrharmonize", "schema", "check", str(copy)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "nl.yaml" in r.stdout + r.stderr and "no_such_rule" in r.stdout + r.stderr


def test_human_date_formats() -> None:
    assert human_format("%d.%m.%Y %H:%M") == "DD.MM.YYYY hh:mm"
    assert human_format("%Y/%m/%d") == "YYYY/MM/DD"


def _ptrh(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("PTRH_REGISTRY", "PTRH_SCHEMAS", "PTRH_MAPPINGS")}
    return subprocess.run([sys.executable, "-m", "ptrharmonize", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=300)


def test_a_registry_adds_a_unit_spelling_and_a_code_synonym_in_its_own_folder(tmp_path: Path) -> None:
    """A center writes its height unit 'mtr' and its sex codes 'mnl'/'vrl', which the package
    does not know. The registry adds them to its own folder (`ptrh init`): schemas/units.yaml
    (an alias of m) and schemas/onboarding/lexicon.yaml (synonyms of M and F). Inside the
    registry the draft maps the codes, the mapping checks and the heights convert (1,80 mtr =
    180 cm, inside 40-230 cm); outside, with the package's model, they do not."""
    reg = tmp_path / "reg"
    assert _ptrh("init", str(reg), cwd=tmp_path).returncode == 0
    units = reg / "schemas" / "units.yaml"
    text = units.read_text(encoding="utf-8")
    assert 'aliases: ["meters", "metres"]' in text
    units.write_text(text.replace('aliases: ["meters", "metres"]', 'aliases: ["meters", "metres", "mtr"]', 1),
                     encoding="utf-8")
    lex = reg / "schemas" / "onboarding" / "lexicon.yaml"
    text = lex.read_text(encoding="utf-8")
    assert "    M: [m, male," in text and "    F: [f, female," in text
    lex.write_text(text.replace("    M: [m, male,", "    M: [mnl, m, male,", 1)
                   .replace("    F: [f, female,", "    F: [vrl, f, female,", 1), encoding="utf-8")

    data = tmp_path / "c"
    data.mkdir()
    (data / "patienten.csv").write_text(
        "Patientnummer,Geslacht,Lengte\n" + "".join(f"P{i},{s},1.{h}\n" for i, (s, h) in
                                                    enumerate([("mnl", 80), ("vrl", 70), ("mnl", 75), ("vrl", 65),
                                                               ("mnl", 90), ("vrl", 55)])), encoding="utf-8")
    inside = _ptrh("--registry", str(reg), "mapping", "draft", str(data), "--center-id", "NL-X",
                   "-o", str(tmp_path / "in.yaml"), cwd=tmp_path)
    outside = _ptrh("mapping", "draft", str(data), "--center-id", "NL-X", "-o", str(tmp_path / "out.yaml"),
                    cwd=tmp_path)
    assert inside.returncode == 0 and outside.returncode == 0, inside.stderr + outside.stderr
    sex_in = next(line for line in (tmp_path / "in.yaml").read_text(encoding="utf-8").splitlines() if "sex:" in line)
    sex_out = next(line for line in (tmp_path / "out.yaml").read_text(encoding="utf-8").splitlines() if "sex:" in line)
    assert '"mnl": "M"' in sex_in and '"vrl": "F"' in sex_in, sex_in
    assert '"mnl": "TODO"' in sex_out, sex_out

    m = tmp_path / "m.yaml"
    m.write_text("mapping_version: 1\ncenter_id: NL-X\ntables:\n  patients:\n    file: patienten.csv\n"
                 "    columns:\n      patient_id: Patientnummer\n"
                 "      sex: {column: Geslacht, values: {mnl: M, vrl: F}}\n"
                 "      height_cm: {column: Lengte, unit: mtr}\n      diagnosis: {constant: B-ALL}\n",
                 encoding="utf-8")
    assert _ptrh("--registry", str(reg), "mapping", "check", str(m), cwd=tmp_path).returncode == 0
    out = _ptrh("mapping", "check", str(m), cwd=tmp_path)
    assert out.returncode == 1 and "mtr" in out.stdout + out.stderr
    res = _ptrh("--registry", str(reg), "validate", str(data), "--mapping", str(m), "--format", "json", cwd=tmp_path)
    assert res.returncode in (0, 1), res.stderr
    issues = json.loads(res.stdout)["issues"]
    assert not [i for i in issues if i["column"] in ("height_cm", "sex")], issues


def test_a_store_of_before_the_record_gets_its_fields(dutch) -> None:
    """A store whose `issues` table has the ten columns of before: opening it for ingest
    (create_schema) adds the record's other fields, and the findings are written by name."""
    result = dutch[0]
    con = duckdb.connect()
    con.execute('CREATE TABLE issues (submission_id VARCHAR, center_id VARCHAR, rule_id VARCHAR, severity VARCHAR, '
                '"table" VARCHAR, file VARCHAR, "row" BIGINT, "column" VARCHAR, value VARCHAR, message VARCHAR)')
    con.execute("INSERT INTO issues VALUES ('old', 'NL-TST', 'r', 'error', 'patients', 'f.csv', 2, 'sex', 'X', 'm')")
    create_schema(con)
    write_findings(con, result.issues, result.rules, "NL-TST", "new")
    cols = [r[0] for r in con.execute("DESCRIBE issues").fetchall()]
    assert set(FIELDS) <= set(cols)
    got = con.execute("SELECT patient_id, place, source_column FROM issues WHERE submission_id = 'new' "
                      "AND rule_id = 'patients.sex.codes'").fetchall()
    assert got == [("LEI-002", "rij 3", "Geslacht")]
    assert con.execute("SELECT patient_id FROM issues WHERE submission_id = 'old'").fetchall() == [(None,)]
