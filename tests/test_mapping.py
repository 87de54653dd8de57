"""Mappings: each demo center's own files, read through its mapping, give back the canonical
truth exactly; bad cells stay as written at their source row; unsafe or wrong mappings are
refused with a clear message; the lint finds each class of problem."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from ptrharmonize.cdm import load_catalog
from ptrharmonize.mapping import MappingError, apply_mapping, lint_mapping, source_columns
from ptrharmonize.read import ReadError
from ptrharmonize.read.canonical import read_canonical
from ptrharmonize.read.csv import read_csv
from ptrharmonize.read.excel import read_excel
from ptrharmonize.read.spss import read_spss
from ptrharmonize.synth.centers import demo_mappings, generate_centers

CAT = load_catalog()
# Every mapping shipped in mappings/, found by listing the folder: each is a demo center's shape.
SHIPPED = demo_mappings()
CENTERS = [p.stem for p in SHIPPED]


def typed(df: pl.DataFrame, table: str) -> pl.DataFrame:
    """Canonical text -> CDM types (strict formats; anything else becomes null)."""
    exprs = []
    for c in CAT.tables[table].columns:
        if c.name not in df.columns:
            continue
        e = pl.col(c.name).cast(pl.Utf8)
        if c.type == "decimal":
            e = e.cast(pl.Float64, strict=False)
        elif c.type == "integer":
            e = e.cast(pl.Int64, strict=False)
        elif c.type == "boolean":
            e = e.replace_strict({"true": True, "false": False}, default=None, return_dtype=pl.Boolean)
        elif c.type == "date":
            e = e.str.strptime(pl.Date, "%Y-%m-%d", strict=False)
        elif c.type == "timestamp":
            e = e.str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S", strict=False)
        exprs.append(e.alias(c.name))
    return df.select(exprs)


def assert_same(mapped: pl.DataFrame, truth: pl.DataFrame, table: str) -> None:
    """Same rows (as multisets) and same values; floats to 1e-9 relative."""
    # Every mapped non-empty cell must parse: nothing was left as unparsed text.
    a, b = typed(mapped, table), typed(truth, table)
    for c in a.columns:
        lost = mapped.filter(pl.col(c).is_not_null() & a[c].is_null())
        assert lost.height == 0, f"{table}.{c}: unparsed values {lost[c].head(3).to_list()}"
    cols = b.columns
    assert set(cols) <= set(a.columns), f"{table}: missing {set(cols) - set(a.columns)}"
    a = a.select(cols).sort(cols, nulls_last=True)
    b = b.sort(cols, nulls_last=True)
    assert a.height == b.height, f"{table}: {a.height} rows mapped, {b.height} in the truth"
    for c in cols:
        x, y = a[c], b[c]
        assert (x.is_null() == y.is_null()).all(), f"{table}.{c}: empty cells differ"
        if x.dtype == pl.Float64:
            tol = (y.abs().clip(lower_bound=1.0) * 1e-9).fill_null(0)
            diff = ((x - y).abs() > tol).fill_null(False)
            assert not diff.any(), f"{table}.{c}: {x.filter(diff).head(3).to_list()} vs {y.filter(diff).head(3).to_list()}"
        else:
            assert (x == y).fill_null(True).all(), f"{table}.{c}: values differ"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo")
    return out, generate_centers(out, patients_per_center=12, seed=7, defects=False, centers=len(SHIPPED))


@pytest.fixture(scope="module")
def defective(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("defects")
    return out, generate_centers(out, patients_per_center=12, seed=11, defects=True, centers=len(SHIPPED))


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("center", CENTERS)
def test_center_round_trip(demo: tuple[Path, dict], center: str) -> None:
    out, manifest = demo
    entry = next(c for c in manifest["centers"] if c["key"] == center)
    sub = apply_mapping(out / entry["mapping"], out / entry["folder"])
    truth = read_canonical(out / entry["truth"])
    assert sub.center_id == entry["center_id"]
    assert set(sub.tables) == set(truth.tables)
    for table, frame in truth.tables.items():
        mapped = sub.tables[table]
        assert isinstance(mapped, pl.DataFrame)
        assert mapped.columns[-2:] == ["_file", "_row"] and mapped.schema["_row"] == pl.Int64
        assert_same(mapped, frame, table)
    assert all(p.exists() for p in sub.files)
    assert lint_mapping(out / entry["mapping"], out / entry["folder"]) == []


def test_rows_point_at_the_source_rows(demo: tuple[Path, dict]) -> None:
    out, _ = demo
    # CSV (GBK): the mapped row's _row is the line of that transfusion in the file.
    sub = apply_mapping(out / "mappings/cn_hangzhou.yaml", out / "centers/cn_hangzhou")
    src = read_csv(out / "centers/cn_hangzhou/血小板输注.csv", encoding="gbk")
    j = sub.tables["transfusions"].join(src, on="_row")
    assert j.height == src.height and (j["transfusion_id"] == j["输注编号"]).all()
    assert sub.tables["transfusions"]["_file"][0] == "血小板输注.csv"
    # The wide cytokine file: several lab rows per source row, all pointing at it.
    cyto = sub.tables["labs"].filter(pl.col("_file") == "细胞因子.csv")
    assert cyto["_row"].min() == 2 and cyto.height > cyto["_row"].n_unique()
    # Excel: the sheet's own row numbers (header on row 3, data from row 4).
    sub = apply_mapping(out / "mappings/us_boston.yaml", out / "centers/us_boston")
    sheet = read_excel(out / "centers/us_boston/boston_registry_export.xlsx", sheet="Demographics", header_row=3)
    assert sheet["_row"][0] == 4
    j = sub.tables["patients"].join(sheet, on="_row")
    assert (j["patient_id"] == j["MRN"]).all() and j.height == sheet.height
    # SPSS: case number + 1.
    sub = apply_mapping(out / "mappings/it_milan.yaml", out / "centers/it_milan")
    sav = read_spss(out / "centers/it_milan/pazienti.sav")
    j = sub.tables["patients"].join(sav, on="_row")
    assert (j["patient_id"] == j["codice"]).all()
    # REDCap: the records file's row; a repeating instrument's instance is a row of its own.
    sub = apply_mapping(out / "mappings/us_seattle.yaml", out / "centers/us_seattle")
    rec = read_csv(out / "centers/us_seattle/PTRRegistry_DATA_2026-01-15_0930.csv")
    j = sub.tables["transfusions"].join(rec, on="_row")
    assert j.height == sub.tables["transfusions"].height
    assert (j["transfusion_id"] == j["tx_id"]).all() and (j["redcap_repeat_instrument"] == "platelet_transfusion").all()
    j = sub.tables["patients"].join(rec, on="_row")
    assert (j["patient_id"] == j["record_id"]).all() and j["redcap_repeat_instrument"].is_null().all()


def test_more_centers_reuse_the_shapes(tmp_path: Path) -> None:
    manifest = generate_centers(tmp_path, patients_per_center=3, seed=3, centers=len(SHIPPED) + 1)
    fifth = manifest["centers"][len(SHIPPED)]  # the first shape again
    assert fifth["key"] == "cn_hangzhou_2" and fifth["center_id"] == "CN-HZ2"
    sub = apply_mapping(tmp_path / fifth["mapping"], tmp_path / fifth["folder"])
    truth = read_canonical(tmp_path / fifth["truth"])
    assert sub.center_id == "CN-HZ2"
    for table, frame in truth.tables.items():
        assert_same(sub.tables[table], frame, table)


def test_truth_only_parquet(tmp_path: Path) -> None:
    manifest = generate_centers(tmp_path, patients_per_center=5, seed=5, centers=2, truth_format="parquet", render_files=False)
    assert not (tmp_path / "centers").exists() or not any((tmp_path / "centers").iterdir())
    sub = read_canonical(tmp_path / manifest["centers"][0]["truth"])
    assert sub.tables["patients"].height == 5 and sub.center_id == "CN-HZ"


# --------------------------------------------------------------------------- planted defects


def test_defects_are_listed_and_planted_at_their_rows(defective: tuple[Path, dict]) -> None:
    out, manifest = defective
    listed = json.loads((out / "defects.json").read_text(encoding="utf-8"))
    assert listed == manifest["defects"]
    assert {d["rule_id"] for d in listed} == {
        "transfusions.pre_count_e9l.type",
        "outcomes.death_on.type",
        "labs.plt_wrong_unit",
        "transfusions.post_after_transfusion",
        "treatments.car_target_required",
        "transfusions.patient_id.references",
        "crs_assessments.reported_grade_consistent",
        "transfusions.transfusion_id.unique",
        "patients.sex.required",
    }
    subs = {}
    for d in listed:
        key = d["center"]
        if key not in subs:
            subs[key] = apply_mapping(out / "mappings" / f"{key}.yaml", out / "centers" / key)
        frame = subs[key].tables[d["table"]]
        hit = frame.filter((pl.col("_row") == d["row"]) & (pl.col("_file") == d["file"]))
        assert hit.height >= 1, d
        row = hit.row(0, named=True)
        got = row[d["cdm_column"]]
        if d["rule_id"] == "transfusions.post_after_transfusion":
            assert got < row["transfused_at"], (d, row)
        elif d["value"] is None:
            assert got is None, (d, row)
        else:  # the planted value, read back through the center's codes and units
            try:
                assert float(got) == pytest.approx(float(d["value"])), (d, row)
            except ValueError:
                assert got == d["value"], (d, row)
    dup = next(d for d in listed if d["rule_id"].endswith(".unique"))
    tr = subs[dup["center"]].tables["transfusions"]
    value = tr.filter(pl.col("_row") == dup["row"])["transfusion_id"][0]
    assert tr.filter(pl.col("transfusion_id") == value).height == 2


def test_validation_finds_each_defect_and_nothing_in_clean_data(demo: tuple[Path, dict], defective: tuple[Path, dict]) -> None:
    from ptrharmonize.validate import Engine

    engine = Engine(CAT, column_engine="polars")
    out, manifest = defective
    for key in CENTERS:
        result = engine.validate(apply_mapping(out / "mappings" / f"{key}.yaml", out / "centers" / key))
        try:
            issues = result.issues
            for d in (d for d in manifest["defects"] if d["center"] == key):
                found = issues.filter((pl.col("rule_id") == d["rule_id"]) & (pl.col("row") == d["row"]) & (pl.col("file") == d["file"]))
                assert found.height >= 1, f"{d['rule_id']} not reported at {d['file']} row {d['row']}"
        finally:
            result.cleanup()
    clean_out, _ = demo
    for key in CENTERS:
        result = engine.validate(apply_mapping(clean_out / "mappings" / f"{key}.yaml", clean_out / "centers" / key))
        try:
            errors = result.issues.filter(pl.col("severity") == "error")
            assert errors.height == 0, errors.head(5).to_dicts()
        finally:
            result.cleanup()


# --------------------------------------------------------------------------- mapping language


def _csv(folder: Path, name: str, text: str, encoding: str = "utf-8") -> None:
    (folder / name).write_bytes(text.encode(encoding))


def _mapping(folder: Path, text: str) -> Path:
    p = folder / "m.yaml"
    p.write_text(text, encoding="utf-8")
    return p


PATIENTS_CSV = "id;sex;age;height;weight;allo;blasts\nP1;m;34;1,75;154;Y;12,5\nP2;w;<5;abc;;maybe;\nP3;X;40,0;1,60;120;N;7\n"
PATIENTS_MAP = """
center_id: T-1
defaults: {delimiter: ";", decimal: ","}
value_maps:
  yn: {Y: true, N: false}
tables:
  patients:
    file: p.csv
    columns:
      patient_id: id
      sex: {column: sex, values: {m: M, w: F}}
      age_years: age
      height_cm: {column: height, unit: m}
      weight_kg: {column: weight, unit: lb}
      diagnosis: {constant: B-ALL}
      prior_allo_hsct: {column: allo, values: yn}
      bm_blast_pct: blasts
"""


def test_values_that_do_not_parse_stay_as_written(tmp_path: Path) -> None:
    _csv(tmp_path, "p.csv", PATIENTS_CSV)
    sub = apply_mapping(_mapping(tmp_path, PATIENTS_MAP), tmp_path)
    p = sub.tables["patients"]
    assert p["center_id"].to_list() == ["T-1"] * 3
    assert p["sex"].to_list() == ["M", "F", "X"]  # X is no code: validation reports it
    assert p["age_years"].to_list() == ["34", "<5", "40"]  # '<5' kept for the type check
    assert p["height_cm"].to_list() == ["175.0", "abc", "160.0"]
    assert float(p["weight_kg"][0]) == pytest.approx(154 * 0.45359237, rel=1e-12)
    assert p["weight_kg"][1] is None
    assert p["prior_allo_hsct"].to_list() == ["true", "maybe", "false"]
    assert p["bm_blast_pct"].to_list() == ["12.5", None, "7.0"]
    assert p["diagnosis"].to_list() == ["B-ALL"] * 3
    assert p["_row"].to_list() == [2, 3, 4] and p["_file"][0] == "p.csv"
    # Unmapped optional columns are present and empty; the CDM order is kept.
    assert p.columns == [*CAT.tables["patients"].column_names, "_file", "_row"]
    assert p["disease_status"].null_count() == 3


def test_unmapped_required_column_is_left_out(tmp_path: Path) -> None:
    _csv(tmp_path, "p.csv", "id\nP1\n")
    m = _mapping(tmp_path, "center_id: T\ntables:\n  patients:\n    file: p.csv\n    columns: {patient_id: id}\n")
    problems = lint_mapping(m)
    assert any("required column 'sex'" in p["message"] for p in problems)
    with pytest.raises(MappingError, match="required column 'sex'"):
        apply_mapping(m, tmp_path)


def test_dates_times_serials_and_conventions(tmp_path: Path) -> None:
    _csv(
        tmp_path,
        "t.csv",
        "tid,pid,day,time,prod,units,dose,pre,post_at\n"
        "T1,P1,04.03.2019,08:30,A,1,,15000,04.03.2019 09:45\n"
        "T2,P1,31.02.2019,09:00,P,2,,12000,\n"
        "T3,P1,05.03.2019,,W,4,,9000,43529.5\n"
        "T4,P1,06.03.2019,10:15,A,1,2.8,bad,\n",
    )
    m = _mapping(
        tmp_path,
        """
center_id: T
conventions:
  platelet_content_e11: {apheresis: 3.0, pooled: 3.5, default: 0.5}
tables:
  transfusions:
    file: t.csv
    columns:
      transfusion_id: tid
      patient_id: pid
      transfused_at: {column: day, time_column: time, format: "%d.%m.%Y %H:%M"}
      product: {column: prod, values: {A: apheresis, P: pooled, W: whole_blood_derived}}
      units_reported: units
      dose_e11: dose
      pre_count_e9l: {column: pre, unit: /uL}
      post_count_at: {column: post_at, format: ["%d.%m.%Y %H:%M", excel_serial]}
""",
    )
    t = apply_mapping(m, tmp_path).tables["transfusions"]
    assert t["transfused_at"].to_list() == ["2019-03-04T08:30:00", "31.02.2019 09:00", "05.03.2019", "2019-03-06T10:15:00"]
    assert t["post_count_at"].to_list() == ["2019-03-04T09:45:00", None, "2019-03-05T12:00:00", None]
    # dose = units x content of the product; a dose written by the center wins.
    assert [float(x) for x in t["dose_e11"]] == [3.0, 7.0, 2.0, 2.8]
    assert t["pre_count_e9l"].to_list() == ["15.0", "12.0", "9.0", "bad"]


def test_crs_scale_and_grade_patterns(tmp_path: Path) -> None:
    _csv(tmp_path, "c.csv", "pid,grade,dev\nP1,G3,NC\nP1,,none\nP1,G7,??\n")
    m = _mapping(
        tmp_path,
        """
center_id: T
conventions: {crs_scale: astct2019}
tables:
  crs_assessments:
    file: c.csv
    columns:
      patient_id: pid
      reported_grade: {column: grade, values: {patterns: [{match: '^G([0-5])$', code: "$1"}]}}
      o2_device: {column: dev, values: {map: {NC: low_flow}, default: none}}
""",
    )
    c = apply_mapping(m, tmp_path).tables["crs_assessments"]
    assert c["reported_grade"].to_list() == ["3", None, "G7"]
    assert c["reported_scale"].to_list() == ["astct2019", None, "astct2019"]
    assert c["o2_device"].to_list() == ["low_flow", "none", "none"]


def test_long_labs_units_per_row_and_below_lod(tmp_path: Path) -> None:
    _csv(
        tmp_path,
        "l.csv",
        "pid;at;test;result;unit;flag\n"
        "P1;2019-03-04 06:00;Thrombo;15000;/µL;\n"
        "P1;2019-03-04 06:00;IL6;<1,5;ng/l;\n"
        "P1;2019-03-04 06:00;IL6;2,5;ng/mL;\n"
        "P1;2019-03-04 06:00;CRP;3;furlongs;\n"
        "P1;2019-03-04 06:00;CRP;1,2;mg/dl;Y\n"
        "P1;2019-03-04 06:00;Sodium;140;mmol/L;\n",
    )
    m = _mapping(
        tmp_path,
        """
center_id: T
defaults: {delimiter: ";", decimal: ",", below_lod: ["<"]}
tables:
  labs:
    file: l.csv
    columns:
      patient_id: pid
      measured_at: at
      analyte: {column: test, values: {Thrombo: PLT, IL6: IL6, CRP: CRP}}
      value: result
      unit: unit
      below_lod: {column: flag, values: {Y: true}}
""",
    )
    lab = apply_mapping(m, tmp_path).tables["labs"]
    assert lab["analyte"].to_list() == ["PLT", "IL6", "IL6", "CRP", "CRP", "Sodium"]
    assert lab["value"].to_list() == ["15.0", "1.5", "2500.0", "3.0", "12.0", "140.0"]
    # An unknown unit leaves value and unit as written, for labs.unit_canonical to report.
    assert lab["unit"].to_list() == ["10^9/L", "pg/mL", "pg/mL", "furlongs", "mg/L", "mmol/L"]
    assert lab["below_lod"].to_list() == ["false", "true", "false", "false", "true", "false"]
    assert lab["measured_at"][0] == "2019-03-04T06:00:00"


def test_rows_filter_unmapped_drop_and_literal_column_names(tmp_path: Path) -> None:
    # Column names that look like regular expressions or wildcards are plain names.
    _csv(tmp_path, "m.csv", "^id$,*,kind\nP1,Tocilizumab (Actemra),med\nP1,Paracetamol,med\nP1,IVIG,other\n,dexamethasone,med\n")
    m = _mapping(
        tmp_path,
        """
center_id: T
tables:
  medications:
    file: m.csv
    rows: {column: kind, in: [med]}
    columns:
      patient_id: "^id$"
      drug:
        column: "*"
        unmapped: drop
        values: {patterns: [{match: "tocili|actemra", code: tocilizumab}, {match: "dexa", code: corticosteroid}, {match: "ivig", code: ivig}]}
""",
    )
    med = apply_mapping(m, tmp_path).tables["medications"]
    assert med["drug"].to_list() == ["tocilizumab", "corticosteroid"]
    assert med["patient_id"].to_list() == ["P1", None]
    assert med["_row"].to_list() == [2, 5]
    assert source_columns(m)["medications"] == {"patient_id": "^id$", "drug": "*"}


def test_yaml_yes_no_stay_text(tmp_path: Path) -> None:
    _csv(tmp_path, "p.csv", "id,sex,allo,emd\nP1,M,Yes,on\nP2,F,No,off\n")
    m = _mapping(
        tmp_path,
        """
center_id: T
tables:
  patients:
    file: p.csv
    columns:
      patient_id: id
      sex: sex
      diagnosis: {constant: B-ALL}
      prior_allo_hsct: {column: allo, values: {Yes: true, No: false}}
      extramedullary: {column: emd, values: {on: true, off: false}}
""",
    )
    p = apply_mapping(m, tmp_path).tables["patients"]
    assert p["prior_allo_hsct"].to_list() == ["true", "false"]
    assert p["extramedullary"].to_list() == ["true", "false"]


# --------------------------------------------------------------------------- safety and lint


@pytest.mark.parametrize("bad", ["../secret.csv", "/etc/passwd", "sub/../../x.csv", "C:\\data\\x.csv", "..\\x.csv", "~/x.csv"])
def test_paths_outside_the_submission_are_refused(tmp_path: Path, bad: str) -> None:
    m = _mapping(tmp_path, f"center_id: T\ntables:\n  patients:\n    file: '{bad}'\n    columns: {{patient_id: id, sex: s, diagnosis: d}}\n")
    problems = lint_mapping(m, tmp_path)
    assert any(p["where"] == "tables.patients.file" and p["level"] == "error" for p in problems), problems
    with pytest.raises(MappingError):
        apply_mapping(m, tmp_path)


def test_symlink_out_of_the_submission_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    _csv(outside, "p.csv", "id,s,d\nP1,M,B-ALL\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    try:
        os.symlink(outside / "p.csv", sub / "p.csv")
    except OSError:
        pytest.skip("no symlinks here")
    m = _mapping(tmp_path, "center_id: T\ntables:\n  patients:\n    file: p.csv\n    columns: {patient_id: id, sex: s, diagnosis: d}\n")
    with pytest.raises(MappingError, match="outside"):
        apply_mapping(m, sub)


BAD_MAPPING = """
center_id: T
colour: blue
conventions: {crs_scale: lee2020, platelet_content_e11: {apheresis: -1, platelets: 2}}
value_maps:
  sexes: {m: M, f: female}
tables:
  patient:
    file: p.csv
  patients:
    file: p.csv
    columns:
      patient_id: id
      sex: {column: sex, values: sexes}
      diagnosis: {column: dx, values: undefined_map}
      shoe_size: shoes
      height_cm: {column: h, unit: furlong}
      weight_kg: {column: w, unit: cm}
      age_years: {column: age, colour: red}
      prior_allo_hsct: {column: allo, values: {Y: yes}}
  treatments:
    file: t.csv
    columns:
      patient_id: id
      treatment_type: {column: tt, values: {patterns: [{match: "(unclosed", code: car_t}]}}
      index_date: {column: d, format: "%Q-%m"}
  labs:
    file: l.csv
    columns: {patient_id: id, measured_at: at}
    unpivot:
      PLT: {column: plt, unit: g/L}
      SODIUM: {column: na}
"""


def test_lint_finds_each_problem_class(tmp_path: Path) -> None:
    _csv(tmp_path, "p.csv", "id,sex,dx,h,w,age,allo\nP1,m,B-ALL,1,2,3,Y\n")
    problems = lint_mapping(_mapping(tmp_path, BAD_MAPPING), tmp_path)
    by_where = {(p["where"], p["level"]): p["message"] for p in problems}

    def has(where: str, text: str, level: str = "error") -> None:
        msg = by_where.get((where, level))
        assert msg is not None and text in msg, f"{where}: {msg!r} (all: {sorted(by_where)})"

    has("colour", "unknown top-level key", "warning")
    has("conventions.crs_scale", "not a reported_scale code")
    has("conventions.platelet_content_e11.apheresis", "positive number")
    has("conventions.platelet_content_e11.platelets", "not a product code")
    has("tables.patient", "not a CDM table")
    has("tables.patients.columns.shoe_size", "not a column of patients")
    has("tables.patients.columns.sex.values", "'female' is not a code of sex")
    has("tables.patients.columns.diagnosis.values", "not defined")
    has("tables.patients.columns.height_cm.unit", "unknown unit 'furlong'")
    has("tables.patients.columns.weight_kg.unit", "different things")
    has("tables.patients.columns.age_years", "unknown key")
    has("tables.patients.columns.prior_allo_hsct.values", "not true or false")
    has("tables.treatments.columns.treatment_type.values.patterns[0]", "invalid regular expression")
    has("tables.treatments.columns.index_date.format", "invalid date format")
    has("tables.labs.unpivot.PLT.unit", "different things")
    has("tables.labs.unpivot.SODIUM", "not an analyte code")
    has("tables.treatments.file", "not in the submission folder")
    has("tables.labs.file", "not in the submission folder")
    # Source columns the file does not have (the folder is given).
    _csv(tmp_path, "p.csv", "id,sex\nP1,m\n")
    problems = lint_mapping(_mapping(tmp_path, BAD_MAPPING), tmp_path)
    assert any(p["where"] == "tables.patients.columns.diagnosis" and "source column 'dx'" in p["message"] for p in problems)


def test_apply_refuses_invalid_mapping_and_reports_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(MappingError) as err:
        apply_mapping(_mapping(tmp_path, BAD_MAPPING), tmp_path)
    assert "error(s)" in str(err.value) and err.value.problems
    m = _mapping(tmp_path, "center_id: T\ntables:\n  patients:\n    file: p.csv\n    columns: {patient_id: id, sex: s, diagnosis: d}\n")
    with pytest.raises(ReadError, match="file not found"):
        apply_mapping(m, tmp_path)
    _csv(tmp_path, "p.csv", "id,s\nP1,M\n")
    with pytest.raises(MappingError, match="'d'"):
        apply_mapping(m, tmp_path)
    (tmp_path / "bad.yaml").write_text("tables: [unclosed", encoding="utf-8")
    with pytest.raises(MappingError, match="not valid YAML"):
        apply_mapping(tmp_path / "bad.yaml", tmp_path)


def test_every_shipped_mapping_is_found_and_clean() -> None:
    assert len(SHIPPED) >= 4 and {"cn_hangzhou", "eu_leiden", "us_boston", "it_milan"} <= set(CENTERS)
    for path in SHIPPED:
        assert lint_mapping(path) == [], path.name


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_each_mapping_alone_round_trips(tmp_path: Path, path: Path) -> None:
    """A center generated from this one mapping file (its shape is the mapping, inverted) reads
    back through it as its canonical truth, and the generated mapping and files lint clean."""
    manifest = generate_centers(tmp_path, patients_per_center=6, seed=13, centers=2, mappings=[path])
    for entry in manifest["centers"]:
        assert lint_mapping(tmp_path / entry["mapping"], tmp_path / entry["folder"]) == []
        sub = apply_mapping(tmp_path / entry["mapping"], tmp_path / entry["folder"])
        truth = read_canonical(tmp_path / entry["truth"])
        assert set(sub.tables) == set(truth.tables)
        for table, frame in truth.tables.items():
            assert_same(sub.tables[table], frame, table)


# --------------------------------------------------------------------------- CLI


def test_cli_mapping_check_and_synth(tmp_path: Path, demo: tuple[Path, dict]) -> None:
    from ptrharmonize.cli import app

    out, _ = demo
    runner = CliRunner()
    ok = runner.invoke(app, ["mapping", "check", str(out / "mappings/eu_leiden.yaml"), "--data", str(out / "centers/eu_leiden")])
    assert ok.exit_code == 0, ok.output
    _csv(tmp_path, "p.csv", "id\nP1\n")
    bad = runner.invoke(app, ["mapping", "check", str(_mapping(tmp_path, BAD_MAPPING)), "--format", "json"])
    assert bad.exit_code == 1
    assert json.loads(bad.output)["errors"] > 5
    missing = runner.invoke(app, ["mapping", "check", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "Traceback" not in missing.output
    gen = runner.invoke(app, ["synth", "centers", "--out", str(tmp_path / "s"), "--patients-per-center", "3", "--centers", "3", "--defects"])
    assert gen.exit_code == 0, gen.output
    assert json.loads((tmp_path / "s/defects.json").read_text(encoding="utf-8"))
    assert (tmp_path / "s/centers/it_milan/pazienti.sav").exists()


# --------------------------------------------------------------------------- streaming (issue 22)


def test_lazy_plan_streams_and_equals_the_eager_read(demo: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    """`apply_mapping(lazy=True)` (what validate and ingest use) gives LazyFrames that run on
    polars' streaming engine and hold the same rows, _file and _row as the eager read; SPSS is
    read in chunks of cases (here 5) whose rows keep the file's case numbers."""
    from ptrharmonize.mapping import readers

    monkeypatch.setattr(readers, "SPSS_CHUNK", 5)
    out, manifest = demo
    for entry in manifest["centers"]:
        eager = apply_mapping(out / entry["mapping"], out / entry["folder"])
        lazy = apply_mapping(out / entry["mapping"], out / entry["folder"], lazy=True)
        assert set(lazy.tables) == set(eager.tables) and lazy.files == eager.files
        for table, frame in lazy.tables.items():
            assert isinstance(frame, pl.LazyFrame)
            streamed = frame.collect(engine="streaming")
            expected = eager.tables[table]
            assert streamed.columns == expected.columns
            key = ["_file", "_row", *[c for c in expected.columns if c not in ("_file", "_row")]]
            assert streamed.sort(key, nulls_last=True).equals(expected.sort(key, nulls_last=True)), (entry["key"], table)
