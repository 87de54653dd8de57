"""A REDCap export holding several data access groups, validated and stored in one call.

Issue 19: "the readers turn ... the data access group into the center", and the project's rule
"Exit 0 means the store now holds exactly what the submission says" (docs/GUIDE). An export of
several groups is one submission per center: each its own issue list, rule results, thresholds
decision and transaction, stored under its own center id; a record whose group is blank or not
in the mapping's value map is an issue at its row and column, never dropped and never given to a
center; the call exits 0 only when every center's data are stored.

The export is hand-built in the shape docs/redcap.md describes (the record's group on each of its
rows, repeating instruments as rows of their own). Rows of rec.csv (header = row 1):
  2 record 1 seattle   CAR-T with its target
  3 record 2 seattle   chemotherapy
  4 record 2 seattle   a bleeding instance
  5 record 3 portland  CAR-T without a CAR target (error treatments.car_target_required)
  6 record 4 portland  chemotherapy
  7 record 5 (blank)   no group
  8 record 6 boise     a group the value map does not name
  9 record 6 boise     its bleeding instance
The value map also names tacoma (US-TAC), which has no record here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ptrharmonize.mapping import load_mapping, parse_mapping

RECORDS = """\
record_id,redcap_repeat_instrument,redcap_repeat_instance,redcap_data_access_group,sex,dx,weight,baseline_complete,tx_type,car_target,infusion_date,treatment_complete,bleed_date,bleed_grade,bleeding_complete
1,,,seattle,1,1,70,2,1,1,2021-01-10,2,,,
2,,,seattle,2,1,65,2,2,,2021-02-01,2,,,
2,bleeding,1,seattle,,,,,,,,,2021-02-10,2,2
3,,,portland,1,1,80,2,1,,2021-03-01,2,,,
4,,,portland,2,2,55,2,2,,2021-03-05,2,,,
5,,,,1,1,60,2,2,,2021-04-01,2,,,
6,,,boise,2,1,50,2,2,,2021-04-02,2,,,
6,bleeding,1,boise,,,,,,,,,2021-04-10,1,2
"""
DICTIONARY = """\
Variable / Field Name,Form Name,Section Header,Field Type,Field Label,"Choices, Calculations, OR Slider Labels",Field Note,Text Validation Type OR Show Slider Number
record_id,baseline,,text,Record ID,,,
sex,baseline,,radio,Sex,"1, Male | 2, Female | 9, Unknown",,
dx,baseline,,dropdown,Diagnosis,"1, B-ALL | 2, T-ALL | 3, Other",,
weight,baseline,,text,Weight (kg),,,number
tx_type,treatment,,dropdown,Treatment,"1, CAR-T | 2, Chemotherapy",,
car_target,treatment,,dropdown,CAR target,"1, CD19 | 2, CD22",,
infusion_date,treatment,,text,Infusion date,,,date_dmy
bleed_date,bleeding,,text,Date of bleeding,,,date_dmy
bleed_grade,bleeding,,dropdown,WHO grade,"1, 1 | 2, 2 | 3, 3 | 4, 4",,
"""
MAPPING = """\
mapping_version: 1
defaults: {format: redcap, dictionary: dd.csv, date_format: "%Y-%m-%d"}
value_maps:
  dag: {seattle: US-SEA, portland: US-POR, tacoma: US-TAC}
tables:
  patients:
    file: rec.csv
    form: baseline
    columns:
      center_id: {column: redcap_data_access_group, values: dag}
      patient_id: record_id
      sex: {column: sex, values: {"1": M, "2": F, "9": U}}
      diagnosis: {column: dx, values: {"1": B-ALL, "2": T-ALL, "3": other}}
      weight_kg: {column: weight, unit: kg}
  treatments:
    file: rec.csv
    form: treatment
    columns:
      center_id: {column: redcap_data_access_group, values: dag}
      patient_id: record_id
      treatment_type: {column: tx_type, values: {"1": car_t, "2": chemotherapy}}
      car_target: {column: car_target, values: {"1": CD19, "2": CD22}}
      index_date: infusion_date
  bleeding_events:
    file: rec.csv
    form: bleeding
    columns:
      center_id: {column: redcap_data_access_group, values: dag}
      patient_id: record_id
      onset_on: bleed_date
      who_grade: bleed_grade
"""
# Every row that names no center, as (table, row, value as written, patient): the group
# column's header is the center's own, `redcap_data_access_group`.
NO_CENTER = [("bleeding_events", 9, "boise", "6"), ("patients", 7, None, "5"), ("patients", 8, "boise", "6"),
             ("treatments", 7, None, "5"), ("treatments", 8, "boise", "6")]


@pytest.fixture()
def export(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "rec.csv").write_text(RECORDS, encoding="utf-8")
    (folder / "dd.csv").write_text(DICTIONARY, encoding="utf-8")
    (tmp_path / "m.yaml").write_text(MAPPING, encoding="utf-8")
    return folder, tmp_path / "m.yaml"


def _ptrh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ptrharmonize", *args], capture_output=True, text=True, timeout=300)


def test_validate_gives_each_center_its_own_result_and_reports_rows_of_no_center(export, tmp_path: Path) -> None:
    folder, m = export
    r = _ptrh("validate", str(folder), "--mapping", str(m), "-f", "json", "-o", str(tmp_path / "issues.csv"))
    assert r.returncode == 1, r.stderr  # US-POR has an error and 3 records name no center
    docs = json.loads(r.stdout)
    assert [d["center_id"] for d in docs] == ["US-SEA", "US-POR", None]  # the map's order, then no center
    sea, por, none = docs
    assert sea["summary"]["rows"] == {"patients": 2, "treatments": 2, "bleeding_events": 1}
    assert sea["summary"]["errors"] == 0 and sea["issues"] == []
    assert por["summary"]["rows"] == {"patients": 2, "treatments": 2, "bleeding_events": 0}
    assert [(i["rule_id"], i["row"], i["patient_id"]) for i in por["issues"]] == [("treatments.car_target_required", 5, "3")]
    failed = {x["rule_id"]: x["status"] for x in por["rules"] if x["failed"]}
    assert failed == {"treatments.car_target_required": "failed"}
    # the rows of no center: each at its file, row and the center's column, with the value as written
    assert none["summary"]["rows"] == {"patients": 2, "treatments": 2, "bleeding_events": 1}
    got = [(i["table"], i["row"], i["value"], i["patient_id"]) for i in none["issues"]]
    assert got == NO_CENTER
    assert {(i["file"], i["source_column"], i["column"], i["severity"]) for i in none["issues"]} == {
        ("rec.csv", "redcap_data_access_group", "center_id", "error")}
    assert all("redcap_data_access_group" in i["message"] for i in none["issues"])
    counts = {x["rule_id"]: (x["failed"], x["checked"]) for x in none["rules"]}
    assert counts == {"patients.center_named": (2, 6), "treatments.center_named": (2, 6),
                      "bleeding_events.center_named": (1, 2)}
    # the center named in the map without a record is said, not validated
    assert "US-TAC: no row of this export names it" in r.stderr
    # one issue list per part, beside --output
    assert sorted(p.name for p in tmp_path.glob("issues-*.csv")) == [
        "issues-US-POR.csv", "issues-US-SEA.csv", "issues-_no_center.csv"]


def test_ingest_stores_each_center_on_its_own_and_exits_0_only_when_all_are_stored(export, tmp_path: Path) -> None:
    folder, m = export
    store = tmp_path / "s.duckdb"
    r = _ptrh("ingest", str(folder), "--mapping", str(m), "--store", str(store), "-q")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "stored 5 rows of US-SEA" in r.stdout and "rejected" in r.stdout and "name no center" in r.stdout
    con = duckdb.connect(str(store), read_only=True)
    try:
        # US-SEA alone: US-POR was refused, and no row of no center is anywhere (nor under a guess)
        assert con.execute("SELECT center_id, status FROM submissions").fetchall() == [("US-SEA", "active")]
        for table, n in (("patients", 2), ("treatments", 2), ("bleeding_events", 1)):
            assert con.execute(f"SELECT center_id, count(*) FROM {table} GROUP BY 1").fetchall() == [("US-SEA", n)]
        assert con.execute("SELECT DISTINCT patient_id FROM patients ORDER BY 1").fetchall() == [("1",), ("2",)]
    finally:
        con.close()

    # A tolerance for US-POR alone (thresholds per rule and center) lets its one failure pass:
    # each center's thresholds decision is its own. The rows of no center still block (exit 1).
    th = tmp_path / "th.csv"
    th.write_text("rule_id,center_id,threshold\ntreatments.car_target_required,US-POR,1\n", encoding="utf-8")
    r = _ptrh("ingest", str(folder), "--mapping", str(m), "--store", str(store), "--thresholds", str(th), "-q")
    assert r.returncode == 1 and "stored 4 rows of US-POR" in r.stdout, r.stdout + r.stderr
    assert "unchanged: this submission of US-SEA" in r.stdout

    # The export fixed (the groups of records 5 and 6 set, record 3's target filled): exit 0.
    fixed = (RECORDS.replace("3,,,portland,1,1,80,2,1,,", "3,,,portland,1,1,80,2,1,2,")
             .replace("5,,,,1", "5,,,seattle,1").replace(",boise,", ",portland,"))
    (folder / "rec.csv").write_text(fixed, encoding="utf-8")
    r = _ptrh("ingest", str(folder), "--mapping", str(m), "--store", str(store), "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    con = duckdb.connect(str(store), read_only=True)
    try:
        assert con.execute("SELECT center_id, count(*) FROM patients GROUP BY 1 ORDER BY 1").fetchall() == [
            ("US-POR", 3), ("US-SEA", 3)]
        assert con.execute("SELECT center_id, count(*) FROM bleeding_events GROUP BY 1 ORDER BY 1").fetchall() == [
            ("US-POR", 1), ("US-SEA", 1)]
        assert con.execute("SELECT center_id FROM submissions WHERE status = 'active' ORDER BY 1").fetchall() == [
            ("US-POR",), ("US-SEA",)]
    finally:
        con.close()


@pytest.mark.parametrize("edit,where,words", [
    # a top-level center_id beside a value map naming several centers: which would it be?
    (lambda t: "center_id: US-SEA\n" + t, "center_id", "remove the top-level center_id"),
    # a catch-all would give an unknown group's rows to a guessed center
    (lambda t: t.replace("dag: {seattle: US-SEA, portland: US-POR, tacoma: US-TAC}",
                         "dag: {map: {seattle: US-SEA, portland: US-POR}, default: US-SEA}"),
     "tables.patients.columns.center_id", "never guessed"),
    # `unmapped: drop` would silently lose them
    (lambda t: t.replace("center_id: {column: redcap_data_access_group, values: dag}\n      patient_id: record_id\n"
                         "      onset_on", "center_id: {column: redcap_data_access_group, values: dag, unmapped: drop}\n"
                         "      patient_id: record_id\n      onset_on"),
     "tables.bleeding_events.columns.center_id", "unmapped: drop"),
    # a table whose rows would get no center from their own cell
    (lambda t: t.replace("      center_id: {column: redcap_data_access_group, values: dag}\n      patient_id: record_id\n"
                         "      onset_on", "      patient_id: record_id\n      onset_on"),
     "tables.bleeding_events.columns.center_id", "in every table"),
])
def test_a_mapping_for_several_centers_never_guesses_or_drops_a_center(tmp_path: Path, edit, where, words) -> None:
    text = edit(MAPPING)
    assert text != MAPPING
    (tmp_path / "m.yaml").write_text(text, encoding="utf-8")
    m = parse_mapping(load_mapping(tmp_path / "m.yaml"), tmp_path / "m.yaml")
    errors = [p for p in m.problems if p["level"] == "error"]
    assert any(p["where"] == where and words in p["message"] for p in errors), errors
    ok = parse_mapping(load_mapping_text(tmp_path, MAPPING), tmp_path / "m.yaml")
    assert [p for p in ok.problems if p["level"] == "error"] == []


def load_mapping_text(tmp_path: Path, text: str):
    (tmp_path / "ok.yaml").write_text(text, encoding="utf-8")
    return load_mapping(tmp_path / "ok.yaml")


def test_mapping_check_with_the_data_names_the_groups_of_no_center(export) -> None:
    """Issue 19: "`ptrh mapping check --data` lists ... every source value a value map does not
    cover": for the group column of an export of several centers, 'boise' and the blank group."""
    from ptrharmonize.mapping import lint_mapping

    folder, m = export
    errors = [p for p in lint_mapping(m, folder) if p["level"] == "error"]
    assert len(errors) == 1 and errors[0]["where"] == "tables.patients.columns.center_id", errors
    assert "'boise'" in errors[0]["message"] and "1 row(s) with none" in errors[0]["message"]
    (folder / "rec.csv").write_text(RECORDS.replace("5,,,,1", "5,,,seattle,1").replace(",boise,", ",portland,"),
                                    encoding="utf-8")
    assert [p for p in lint_mapping(m, folder) if p["level"] == "error"] == []


def test_an_unsplit_export_of_several_centers_is_never_validated_as_one(export) -> None:
    """Any other path (qa-report of a folder, a library call) that would check the rows of
    several centers as one submission is refused, naming the way that splits it."""
    from ptrharmonize.commands.common import load_submission
    from ptrharmonize.errors import UserError
    from ptrharmonize.validate import Engine

    folder, m = export
    sub = load_submission(folder, m)
    assert sub.centers == ["US-SEA", "US-POR", "US-TAC"] and sub.center_id is None
    with pytest.raises(UserError, match="several centers"):
        Engine().validate(sub)


def test_the_draft_of_an_export_of_several_groups_leaves_each_groups_center_to_decide(export, tmp_path: Path) -> None:
    """`ptrh mapping draft` on the export (its folder given relative to the working directory):
    no top-level center_id, a value map `dag` with every group of the records file TODO (a
    group's center is never guessed, not even as --center-id), used by every form's center_id.
    Filled in, it is a mapping for several centers."""
    import yaml

    from ptrharmonize.mapping.centers import mapping_centers

    folder, _ = export
    r = subprocess.run([sys.executable, "-m", "ptrharmonize", "mapping", "draft", folder.name, "--center-id", "US-SEA",
                        "-o", "draft.yaml"], capture_output=True, text=True, timeout=300, cwd=folder.parent)
    assert r.returncode == 0, r.stdout + r.stderr
    text = (tmp_path / "draft.yaml").read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    assert "center_id" not in doc
    assert doc["value_maps"]["dag"] == {"boise": "TODO", "portland": "TODO", "seattle": "TODO"}
    assert {t: s["columns"]["center_id"]["values"] for t, s in doc["tables"].items()} == {
        "patients": "dag", "treatments": "dag", "bleeding_events": "dag"}
    filled = text.replace('"boise": "TODO", "portland": "TODO", "seattle": "TODO"',
                          '"boise": US-BOI, "portland": US-POR, "seattle": US-SEA')
    m = parse_mapping(load_mapping_text(tmp_path, filled), tmp_path / "ok.yaml")
    assert [p for p in m.problems if p["level"] == "error" and "center" in p["where"]] == []
    assert mapping_centers(m.blocks) == ["US-BOI", "US-POR", "US-SEA"]


def test_a_center_that_cannot_be_stored_does_not_hold_back_the_others(export, tmp_path: Path) -> None:
    """US-SEA is stored from another mapping file (m_old.yaml); the export ingested with m.yaml:
    US-SEA is refused with its reason (exit 2, --confirm-center would allow it), US-POR is still
    stored in its own transaction."""
    folder, m = export
    old = tmp_path / "m_old.yaml"
    old.write_text(MAPPING, encoding="utf-8")
    clean = RECORDS.replace("5,,,,1", "5,,,seattle,1").replace(",boise,", ",seattle,")
    (folder / "rec.csv").write_text(clean, encoding="utf-8")  # record 3 still lacks its CAR target
    store = tmp_path / "s.duckdb"
    r = _ptrh("ingest", str(folder), "--mapping", str(old), "--store", str(store), "-q")
    assert r.returncode == 1 and "stored" in r.stdout and "rejected" in r.stdout, r.stdout + r.stderr
    (folder / "rec.csv").write_text(clean.replace("3,,,portland,1,1,80,2,1,,", "3,,,portland,1,1,80,2,1,2,"),
                                    encoding="utf-8")
    r = _ptrh("ingest", str(folder), "--mapping", str(m), "--store", str(store), "-q")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "US-SEA is stored from another mapping file" in r.stderr and "stored 4 rows of US-POR" in r.stdout
    con = duckdb.connect(str(store), read_only=True)
    try:
        assert con.execute("SELECT center_id, mapping_file FROM submissions WHERE status = 'active' ORDER BY 1").fetchall() == [
            ("US-POR", str(m.resolve())), ("US-SEA", str(old.resolve()))]
    finally:
        con.close()
