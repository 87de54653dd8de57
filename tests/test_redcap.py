"""REDCap project exports, hand-built in tests/cases/redcap/ (not made by the generator).

Each case cites the documented export behaviour it tests (the sources are listed in
docs/redcap.md):
[RITS]  REDCapRITS README: a repeating instrument's instances are rows of their own, named in
        `redcap_repeat_instrument` with their `redcap_repeat_instance`; non-repeating forms
        share the record's row, where `redcap_repeat_instrument` is blank.
[ZERO]  redcapAPI, isZeroCodedCheckField: "A zero-coded check field is a field of the REDCap type
        checkbox that has a coding definition of 0, [label]. When exported, the field names for
        these fields is [field_name]___0 ... raw data output returns binary values where 0
        represent an unchecked box and 1 represents a checked box."
[EXPN]  redcapAPI, exportFieldNames: a checkbox's export field name is the field name appended
        with ___[choice_value].
[GRAY]  REDCapR, redcap_read_eav_oneshot `blank_for_gray_form_status`, and the form status values
        0 Incomplete / 1 Unverified / 2 Complete: a form never entered exports status 0 and 0 in
        its checkboxes, which are not answers.
[DATE]  REDCapDM rd_dates: date fields are exported as YYYY-MM-DD whatever their date_dmy /
        date_mdy display validation.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from ptrharmonize.mapping import apply_mapping, load_mapping, parse_mapping
from ptrharmonize.read import ReadError
from ptrharmonize.read.redcap import checkbox_column, parse_choices, read_dictionary, read_redcap

CASES = Path(__file__).parent / "cases" / "redcap"
RECORDS = "PTRRegistry_DATA_2026-12-01_1200.csv"
DICT = "PTRRegistry_DataDictionary_2026-12-01.csv"


def _read(form: str, records: str = RECORDS, events: str | None = None):
    return read_redcap(CASES / records, CASES, form=form, dictionary=CASES / DICT,
                       events=CASES / events if events else None)


def test_dictionary_reads_the_18_column_download():
    dd = read_dictionary(CASES / DICT, CASES)
    assert dd.record_id == "record_id"  # the first field is the record id
    assert dd.forms() == ["baseline", "bleeding"]
    diag = next(f for f in dd.fields if f.name == "diagnosis")
    # A label may contain a comma: only the first comma separates code and label.
    assert diag.choices[2] == ("3", "Other, specify in notes")
    weight = next(f for f in dd.fields if f.name == "weight")
    assert (weight.validation, weight.minimum, weight.maximum) == ("number_1dp", "2", "300")


def test_checkbox_export_names_follow_the_choice_codes():
    # [EXPN] field name + ___ + choice value; [ZERO] a code 0 gives x___0.
    assert [checkbox_column("prior_tx", c) for c, _ in parse_choices("0, HSCT | 1, Blina")] == ["prior_tx___0", "prior_tx___1"]


def test_non_repeating_form_is_one_row_per_filled_record():
    df = _read("baseline")
    # [RITS] baseline rows are those with a blank redcap_repeat_instrument.
    # [GRAY] record 103 never had its baseline entered (status 0, every checkbox 0): no row.
    assert df.get_column("record_id").to_list() == ["101", "102", "104"]
    assert df.get_column("_row").to_list() == [2, 5, 8]  # rows of the records file (header = 1)
    assert "info" not in df.columns  # a descriptive field has no column


def test_zero_coded_checkbox_is_a_choice_not_unchecked():
    df = _read("baseline").sort("record_id")
    # [ZERO] prior_tx___0 = 1 means choice 0 (Allogeneic HSCT) was checked for record 101.
    assert df.get_column("prior_tx___0").to_list() == ["1", "0", None]
    assert df.get_column("prior_tx").to_list() == ["0", None, "1"]  # the checked codes


def test_repeating_instrument_rows_with_instances():
    df = _read("bleeding")
    # [RITS] two instances of record 101; [GRAY] record 102's instance has no value and status 0.
    assert df.get_column("record_id").to_list() == ["101", "101"]
    assert df.get_column("redcap_repeat_instance").to_list() == ["1", "2"]
    assert df.get_column("bleed_site").to_list() == ["1", "2|3"]  # two boxes checked in instance 2
    assert df.get_column("redcap_data_access_group").to_list() == ["leiden", "leiden"]


def test_events_mapping_selects_the_designated_events():
    df = _read("bleeding", "PTRRegistry_DATA_longitudinal.csv", "instrument_designation.csv")
    assert df.get_column("redcap_event_name").to_list() == ["month_1_arm_1"]
    base = _read("baseline", "PTRRegistry_DATA_longitudinal.csv", "instrument_designation.csv")
    assert base.get_column("redcap_event_name").to_list() == ["enrolment_arm_1"]


def test_api_metadata_header_is_accepted(tmp_path):
    (tmp_path / "meta.csv").write_text(
        "field_name,form_name,section_header,field_type,field_label,select_choices_or_calculations\n"
        "record_id,baseline,,text,ID,\nsex,baseline,,radio,Sex,\"1, M | 2, F\"\n", encoding="utf-8")
    dd = read_dictionary(tmp_path / "meta.csv", tmp_path)
    assert dd.fields[1].choices == [("1", "M"), ("2", "F")]


def test_not_a_dictionary_and_unknown_form_are_read_errors(tmp_path):
    (tmp_path / "d.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ReadError, match="not a REDCap data dictionary"):
        read_dictionary(tmp_path / "d.csv", tmp_path)
    with pytest.raises(ReadError, match="no form 'labs'"):
        _read("labs")


MAPPING = textwrap.dedent(f"""\
    mapping_version: 1
    center_id: NL-LEI
    defaults:
      format: redcap
      dictionary: {DICT}
      date_format: "%Y-%m-%d"
    value_maps:
      checked: {{"1": true, "0": false}}
      yesno: {{"1": true, "0": false}}
    tables:
      patients:
        file: {RECORDS}
        form: baseline
        columns:
          center_id: {{column: redcap_data_access_group, values: {{leiden: NL-LEI}}}}
          patient_id: record_id
          sex: {{column: sex, values: {{"1": M, "2": F, "9": U}}}}
          diagnosis: {{column: diagnosis, values: {{"1": B-ALL, "2": T-ALL, "3": other}}}}
          weight_kg: {{column: weight, unit: kg}}
          prior_allo_hsct: {{column: prior_tx___0, values: checked}}
      bleeding_events:
        file: {RECORDS}
        form: bleeding
        columns:
          patient_id: record_id
          onset_on: bleed_date
          site: {{column: bleed_site, values: {{"1": skin, "2": mucosal, "3": gi}}}}
          who_grade: bleed_grade
          fatal: {{column: bleed_fatal, values: yesno}}
    """)


@pytest.fixture()
def submission(tmp_path):
    folder = tmp_path / "sub"
    shutil.copytree(CASES, folder)
    (tmp_path / "m.yaml").write_text(MAPPING, encoding="utf-8")
    return tmp_path / "m.yaml", folder


def test_mapping_reads_forms_into_cdm_tables(submission):
    m, folder = submission
    sub = apply_mapping(m, folder)
    p = sub.tables["patients"].sort("patient_id")
    assert p.get_column("patient_id").to_list() == ["101", "102", "104"]
    assert p.get_column("center_id").to_list() == ["NL-LEI"] * 3  # the data access group
    assert p.get_column("sex").to_list() == ["F", "M", "U"]
    # Three states: checked -> true; unchecked in a filled form -> false; blank -> unknown.
    assert p.get_column("prior_allo_hsct").to_list() == ["true", "false", None]
    b = sub.tables["bleeding_events"]
    assert b.get_column("site").to_list() == ["skin", "2|3"]  # two sites: left as written, for validation
    assert b.get_column("onset_on").to_list() == ["2021-03-10", "2021-03-15"]  # [DATE] ISO whatever date_dmy says
    assert b.get_column("fatal").to_list() == ["false", None]  # a blank yes/no is unknown, not "no"
    assert b.get_column("_row").to_list() == [3, 4]
    assert folder / DICT in [Path(f) for f in sub.files]  # the dictionary is part of the submission


def test_mapping_without_form_or_dictionary_is_an_error(tmp_path):
    doc = load_mapping_text(tmp_path, MAPPING.replace("  dictionary: " + DICT + "\n", "").replace("    form: baseline\n", ""))
    m = parse_mapping(doc, tmp_path / "m.yaml")
    wheres = {p["where"] for p in m.problems if p["level"] == "error"}
    assert {"tables.patients.form", "tables.patients.dictionary"} <= wheres


def load_mapping_text(tmp_path: Path, text: str):
    (tmp_path / "m.yaml").write_text(text, encoding="utf-8")
    return load_mapping(tmp_path / "m.yaml")


# --------------------------------------------------------------------------- the drafter


@pytest.fixture()
def export_folder(tmp_path):
    folder = tmp_path / "export"
    folder.mkdir()
    for name in (RECORDS, DICT):
        shutil.copy(CASES / name, folder / name)
    return folder


def test_draft_from_the_dictionary(export_folder):
    """The draft reads field types, choices and validation from the dictionary: a radio's codes
    mapped through its labels (Male/Female/Unknown), a checkbox choice coded 0 as its own
    column [ZERO][EXPN], a yes/no field as 1/0, dates in REDCap's YYYY-MM-DD [DATE], the unit
    from the label, the data access group as the center."""
    from ptrharmonize.cdm import load_catalog
    from ptrharmonize.mapping.draft_redcap import draft_redcap, find_export
    from ptrharmonize.scan.match import load_lexicon

    export = find_export(export_folder)
    assert export is not None and export.records.name == RECORDS and export.dictionary.name == DICT
    text = draft_redcap("NL-LEI", export_folder, export, load_catalog(), load_lexicon(), min_count=1)
    doc = load_mapping_text(export_folder.parent, text)
    assert doc["defaults"]["format"] == "redcap" and doc["defaults"]["date_format"] == "%Y-%m-%d"
    p = doc["tables"]["patients"]
    assert p["form"] == "baseline"
    cols = p["columns"]
    assert cols["sex"] == {"column": "sex", "values": {"1": "M", "2": "F", "9": "U"}}
    assert cols["diagnosis"]["values"] == {"1": "B-ALL", "2": "T-ALL", "3": "other"}
    assert cols["prior_allo_hsct"] == {"column": "prior_tx___0", "values": {"1": True, "0": False}}
    assert cols["weight_kg"] == {"column": "weight", "unit": "kg"}
    assert cols["center_id"] == {"column": "redcap_data_access_group", "values": {"leiden": "NL-LEI"}}
    b = doc["tables"]["bleeding_events"]["columns"]
    assert b["site"] == {"column": "bleed_site", "values": {"1": "skin", "2": "mucosal", "3": "gi"}}
    assert b["fatal"] == {"column": "bleed_fatal", "values": {"1": True, "0": False}}
    assert b["onset_on"] == {"column": "bleed_date"}
    # The draft is a mapping that reads the export.
    m = parse_mapping(doc, export_folder.parent / "m.yaml")
    assert [x for x in m.problems if x["level"] == "error"] == []
    sub = apply_mapping(export_folder.parent / "m.yaml", export_folder)
    assert sub.tables["patients"].sort("patient_id").get_column("prior_allo_hsct").to_list() == ["true", "false", None]


def test_cli_drafts_a_redcap_folder(export_folder, tmp_path):
    import subprocess
    import sys

    out = tmp_path / "draft.yaml"
    r = subprocess.run([sys.executable, "-m", "ptrharmonize", "mapping", "draft", str(export_folder), "--center-id", "NL-LEI",
                        "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "REDCap export" in r.stdout and "form: \"bleeding\"" in out.read_text(encoding="utf-8")


def test_two_boxes_checked_for_one_code_column_is_an_issue_at_its_row(submission):
    """Two sites checked in one bleeding instance ("2|3") cannot be one CDM code: validation
    reports it at the records file's row 4 (the instance's own row [RITS]), as written."""
    import polars as pl

    from ptrharmonize.cdm import load_catalog
    from ptrharmonize.validate import Engine

    m, folder = submission
    result = Engine(load_catalog(), column_engine="polars").validate(apply_mapping(m, folder))
    try:
        hit = result.issues.filter((pl.col("row") == 4) & (pl.col("file") == RECORDS) & pl.col("rule_id").str.contains("site"))
        assert hit.height == 1 and "2|3" in str(hit.to_dicts()[0]), result.issues.to_dicts()
    finally:
        result.cleanup()


# --------------------------------------------------------------------------- property


def _export_strategy():
    from hypothesis import strategies as st

    box = st.sampled_from(["0", "1"])
    base = st.one_of(st.none(), st.tuples(st.sampled_from(["", "v"]), st.tuples(box, box, box), st.sampled_from(["0", "1", "2"])))
    inst = st.tuples(st.sampled_from(["", "w"]), st.tuples(box, box), st.sampled_from(["0", "1", "2"]))
    return st.lists(st.tuples(base, st.lists(inst, max_size=3)), min_size=1, max_size=4)


BASE_CODES, REP_CODES = ["0", "1", "2"], ["0", "5"]


def _write_export(folder: Path, records) -> None:
    """A classic project as REDCap exports it [RITS][EXPN][GRAY]: a base row per record (a base
    form never entered: blank fields, every box 0, status 0), a row per repeating instance."""
    import csv

    dd = [["Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
           "Choices, Calculations, OR Slider Labels"],
          ["record_id", "base", "", "text", "ID", ""], ["a", "base", "", "text", "A", ""],
          ["c", "base", "", "checkbox", "C", " | ".join(f"{c}, L{c}" for c in BASE_CODES)],
          ["x", "rep", "", "text", "X", ""], ["k", "rep", "", "checkbox", "K", " | ".join(f"{c}, M{c}" for c in REP_CODES)]]
    header = ["record_id", "redcap_repeat_instrument", "redcap_repeat_instance", "a", *[f"c___{c}" for c in BASE_CODES],
              "base_complete", "x", *[f"k___{c}" for c in REP_CODES], "rep_complete"]
    rows = []
    for i, (base, insts) in enumerate(records, start=1):
        a, boxes, status = base if base is not None else ("", ("0", "0", "0"), "0")
        rows.append([str(i), "", "", a, *boxes, status, "", "", "", ""])
        for j, (x, kb, st) in enumerate(insts, start=1):
            rows.append([str(i), "rep", str(j), "", "", "", "", "", x, *kb, st])
    with (folder / "dd.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(dd)
    with (folder / "rec.csv").open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([header, *rows])


def _expected(records):
    """The oracle, from the documented behaviour alone: an instance is a row when it holds a
    value, a checked box or a status of 1/2; its boxes are then known 1/0."""
    base, rep = [], []
    row = 1
    for i, (b, insts) in enumerate(records, start=1):
        row += 1
        a, boxes, status = b if b is not None else ("", ("0", "0", "0"), "0")
        if a or "1" in boxes or status in ("1", "2"):
            checked = [c for c, v in zip(BASE_CODES, boxes, strict=True) if v == "1"]
            base.append((str(i), row, a or None, list(boxes), "|".join(checked) or None))
        for j, (x, kb, st) in enumerate(insts, start=1):
            row += 1
            if x or "1" in kb or st in ("1", "2"):
                checked = [c for c, v in zip(REP_CODES, kb, strict=True) if v == "1"]
                rep.append((str(i), str(j), row, x or None, list(kb), "|".join(checked) or None))
    return base, rep


def test_reader_property_forms_instances_and_checkboxes(tmp_path_factory):
    """Random small classic projects: the reader gives exactly the oracle's rows, rows of the
    file, checkbox states (a code-0 choice included [ZERO]) and checked codes."""
    from hypothesis import HealthCheck, given, settings

    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(records=_export_strategy())
    def check(records):
        folder = tmp_path_factory.mktemp("prop")
        _write_export(folder, records)
        base, rep = _expected(records)
        got = read_redcap(folder / "rec.csv", folder, form="base", dictionary=folder / "dd.csv")
        assert [(r["record_id"], r["_row"], r["a"], [r[f"c___{c}"] for c in BASE_CODES], r["c"])
                for r in got.iter_rows(named=True)] == base
        got = read_redcap(folder / "rec.csv", folder, form="rep", dictionary=folder / "dd.csv")
        assert [(r["record_id"], r["redcap_repeat_instance"], r["_row"], r["x"], [r[f"k___{c}"] for c in REP_CODES], r["k"])
                for r in got.iter_rows(named=True)] == rep

    check()


def test_a_data_access_group_not_mapped_to_the_center_is_refused(submission):
    """A row whose center comes from a data access group the mapping does not map to its
    center_id is an error at that row (the group written as sent), not a row stored under
    another center's code."""
    import polars as pl

    from ptrharmonize.cdm import load_catalog
    from ptrharmonize.validate import Engine

    m, folder = submission
    m.write_text(m.read_text(encoding="utf-8").replace("values: {leiden: NL-LEI}", "values: {other: NL-LEI}"), encoding="utf-8")
    result = Engine(load_catalog(), column_engine="polars").validate(apply_mapping(m, folder))
    try:
        hit = result.issues.filter(pl.col("rule_id") == "patients.center_is_the_submissions")
        assert hit.get_column("row").to_list() == [2, 5, 8] and set(hit.get_column("value").to_list()) == {"leiden"}
        assert result.blocking
    finally:
        result.cleanup()
    m.write_text(MAPPING, encoding="utf-8")  # mapped to the center: no such issue
    result = Engine(load_catalog(), column_engine="polars").validate(apply_mapping(m, folder))
    try:
        assert result.issues.filter(pl.col("rule_id") == "patients.center_is_the_submissions").height == 0
    finally:
        result.cleanup()
