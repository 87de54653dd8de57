"""The rule catalog as checked data (issue 24): the catalog language checked before any data is
read, one registry of check types run on both back ends, and a rule that cannot run isolated
and blocking."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest
import yaml
from typer.testing import CliRunner

from extract_factory import clean_rows, write_extract
from ptrharmonize.cli import app
from ptrharmonize.read.canonical import read_canonical
from ptrharmonize.validate import Engine
from ptrharmonize.validate.catalog import checked_catalog
from ptrharmonize.validate.checks import registry

REPO_SCHEMAS = Path(__file__).parent.parent / "schemas"
runner = CliRunner()


def copy_schemas(tmp_path: Path) -> Path:
    dst = tmp_path / "schemas"
    shutil.copytree(REPO_SCHEMAS, dst)
    return dst


def line_of(path: Path, needle: str) -> int:
    """The 1-based line of the file holding `needle` (where the test put the defect)."""
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


# -- one parametrised test: every check type on both back ends ------------------------------

STRUCTURE = {"missing_table", "missing_column", "unknown_column",  # about headers: test_validate
             "center_named"}  # rows of no center in an export of several: test_redcap_centers


def _plant_death(rows):
    # P001 dies on 2019-03-06: its transfusion of 2019-03-07 (data index 1, row 3) is after death,
    # the one of 2019-03-05 (row 2) is not; only P001's 2 transfusions are checked.
    rows["outcomes"][0]["death_on"] = "2019-03-06"


def _plant_order(rows):
    # Post count before the transfusion (row 2), and at the same minute (row 3): a post count
    # must be taken after the start (`strict: true`).
    rows["transfusions"][0]["post_count_at"] = "2019-03-05T09:00:00"
    rows["transfusions"][1]["post_count_at"] = rows["transfusions"][1]["transfused_at"]


def _set(table, idx, col, value):
    def plant(rows):
        rows[table][idx][col] = value
    return plant


# check type -> (planting, rule id, expected (row, column) of the failures, checked)
# The denominators follow from the extract (6 patients, 12 transfusions, 84 labs, 6 treatments).
CASES = {
    "required": (_set("patients", 0, "sex", ""), "patients.sex.required", {(2, "sex")}, 6),
    "type": (_set("patients", 2, "age_years", "<5"), "patients.age_years.type", {(4, "age_years")}, 6),
    "codes": (_set("patients", 1, "sex", "X"), "patients.sex.codes", {(3, "sex")}, 6),
    "range": (_set("patients", 3, "height_cm", "1.75"), "patients.height_cm.range", {(5, "height_cm")}, 6),
    # plausible_max: 168 h is added to storage_h in the test's catalog (7 days: platelet shelf life)
    "plausible_range": (_set("transfusions", 5, "storage_h", "200"), "transfusions.storage_h.plausible_range",
                        {(7, "storage_h")}, 12),
    "unique": (_set("transfusions", 3, "transfusion_id", "P002-T1"), "transfusions.transfusion_id.unique",
               {(5, "transfusion_id")}, 12),
    "references": (_set("transfusions", 4, "patient_id", "P999"), "transfusions.patient_id.references",
                   {(6, "patient_id")}, 12),
    "temporal_order": (_plant_order, "transfusions.post_after_transfusion",
                       {(2, "post_count_at"), (3, "post_count_at")}, 12),
    "during_life": (_plant_death, "transfusions.after_death", {(3, "transfused_at")}, 2),
    "expression": (_set("treatments", 1, "car_target", ""), "treatments.car_target_required",
                   {(3, "car_target")}, 6),
    "query": (_set("labs", 3, "unit", "ng/mL"), "labs.unit_canonical", {(5, "unit")}, 84),
}


def test_every_check_type_has_a_case() -> None:
    """A new check type module fails here until it is added to the parametrised test."""
    assert set(registry()) - STRUCTURE == set(CASES)


@pytest.fixture(scope="module")
def plausible_schemas(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = copy_schemas(tmp_path_factory.mktemp("cat"))
    f = root / "tables" / "transfusions.yaml"
    f.write_text(f.read_text().replace("{name: storage_h, type: decimal, unit: h, min: 0, max: 240,",
                                       "{name: storage_h, type: decimal, unit: h, min: 0, max: 240, plausible_max: 168,"))
    return root


@pytest.mark.parametrize("backend", ["pandera", "polars"])
@pytest.mark.parametrize("check", sorted(CASES))
def test_check_type_on_both_backends(check: str, backend: str, tmp_path: Path, plausible_schemas: Path) -> None:
    plant, rule_id, expected, checked = CASES[check]
    rows = clean_rows()
    plant(rows)
    folder = write_extract(tmp_path / "x", rows)
    engine = Engine(checked_catalog(plausible_schemas), column_engine=backend)
    res = engine.validate(read_canonical(folder))
    try:
        assert set(engine.column_backends.values()) == {backend}
        found = {(r["row"], r["column"]) for r in res.issues.filter(res.issues["rule_id"] == rule_id).iter_rows(named=True)}
        assert found == expected
        rule = res.rules.filter(res.rules["rule_id"] == rule_id).row(0, named=True)
        assert rule["checked"] == checked
        assert rule["failed"] == len(expected)
        assert rule["status"] == "failed"  # threshold 0: any failure (a warning rule does not block)
        # nothing else of the catalog could not run
        assert res.rules.filter(res.rules["status"] == "error").height == 0
    finally:
        res.cleanup()


# -- the catalog language: exit 2 naming file, line and key, before any data is read --------


def _validate(schemas: Path, folder: Path, monkeypatch: pytest.MonkeyPatch, *extra: str):
    monkeypatch.setenv("PTRH_SCHEMAS", str(schemas))
    return runner.invoke(app, ["validate", str(folder), *extra])


def test_unknown_key_is_exit_2_with_file_line_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      clean_extract: Path) -> None:
    root = copy_schemas(tmp_path)
    f = root / "tables" / "transfusions.yaml"
    f.write_text(f.read_text().replace("max: 240,", "max: 240, plausible_mx: 168,"))
    res = _validate(root, clean_extract, monkeypatch)
    assert res.exit_code == 2
    assert f"{f}, line {line_of(f, 'plausible_mx')}, key 'plausible_mx': unknown key" in " ".join(res.output.split())


def test_unknown_definitions_key_is_exit_2_before_validate_reads_data(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_extract: Path) -> None:
    """Issue 24: schemas/definitions.yaml is checked like the other catalogs (a threshold's
    typo silently kept the default)."""
    root = copy_schemas(tmp_path)
    f = root / "definitions.yaml"
    f.write_text(f.read_text().replace("  refractory_below: 5000", "  refractory_belw: 5000", 1))
    res = _validate(root, clean_extract, monkeypatch)
    assert res.exit_code == 2
    assert f"{f}, line {line_of(f, 'refractory_belw')}, key 'refractory_belw': unknown key" in " ".join(res.output.split())


def test_misspelt_severity_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_extract: Path) -> None:
    root = copy_schemas(tmp_path)
    f = root / "rules.yaml"
    text = f.read_text()
    entry = "- id: transfusions.dose_or_units\n  table: transfusions\n  severity: warning"
    assert entry in text
    f.write_text(text.replace(entry, entry.replace("warning", "warnign")))
    res = _validate(root, clean_extract, monkeypatch)
    assert res.exit_code == 2
    out = " ".join(res.output.split())
    assert f"{f}, line {line_of(f, 'severity: warnign')}, key 'severity': 'warnign'" in out


def test_broken_expression_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clean_extract: Path) -> None:
    root = copy_schemas(tmp_path)
    f = root / "rules.yaml"
    text = f.read_text()
    assert 'fails: "dose_e11 IS NULL AND units_reported IS NULL"' in text
    f.write_text(text.replace('fails: "dose_e11 IS NULL', 'fails: "dose_e11x IS NULL'))
    res = _validate(root, clean_extract, monkeypatch, "--format", "json")
    assert res.exit_code == 2
    out = " ".join(res.output.split())
    assert f"{f}, line {line_of(f, 'dose_e11x')}, key 'fails': does not compile" in out
    assert "dose_e11x" in out


@pytest.mark.parametrize(
    ("old", "new", "needle", "key", "says"),
    [
        # an unknown check type
        ("  engine: polars\n  columns: [storage_h]\n", "  check: storage_plausible\n  columns: [storage_h]\n",
         "check: storage_plausible", "check", "unknown check type 'storage_plausible'"),
        # a column that is not in the table
        ("  columns: [storage_h]\n", "  columns: [storage_hours]\n", "storage_hours", "columns",
         "'storage_hours' is not a column of transfusions"),
        # a DuckDB query that does not compile against the typed tables
        ("WHERE o.death_on < t.index_date", "WHERE o.death_on < t.index_day", "t.index_day", "sql",
         "does not compile against the typed tables"),
        # a type's attribute misspelt in rules.yaml
        ("  later: post_count_at\n  strict: true\n", "  later: post_count_at\n  strickt: true\n", "strickt",
         "strickt", "unknown key"),
        # an expression that is not a condition
        ('fails: "storage_h > 168"', 'fails: "storage_h + 168"', "storage_h + 168", "fails", "not true/false"),
    ],
)
def test_schema_check_names_file_line_and_key(tmp_path: Path, old: str, new: str, needle: str, key: str,
                                             says: str) -> None:
    root = copy_schemas(tmp_path)
    f = root / "rules.yaml"
    text = f.read_text()
    assert old in text
    f.write_text(text.replace(old, new, 1))
    res = runner.invoke(app, ["schema", "check", str(root)])
    assert res.exit_code == 2
    out = " ".join(res.output.split())
    assert f"{f}, line {line_of(f, needle)}, key '{key}':" in out
    assert says in out


def test_schema_check_of_the_shipped_catalog_is_clean() -> None:
    res = runner.invoke(app, ["schema", "check", str(REPO_SCHEMAS)])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("ok:")


def test_broken_catalog_stops_before_any_data_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The catalog is checked first: a folder that does not exist is not even looked at."""
    root = copy_schemas(tmp_path)
    f = root / "phi.yaml"
    f.write_text(f.read_text().replace("  labs: [patient_id]", "  labs: [patient_idd]"))
    res = _validate(root, tmp_path / "no-such-folder", monkeypatch)
    assert res.exit_code == 2
    out = " ".join(res.output.split())
    assert f"{f}, line {line_of(f, 'patient_idd')}" in out
    assert "no-such-folder" not in out


# -- a rule that cannot run is isolated, and an error rule that cannot run blocks -------------


def _broken_sibling(tmp_path: Path) -> Path:
    """A catalog with one more transfusions rule that compiles against the typed columns but cannot
    run on real data (a strict cast of a product name to a number)."""
    root = copy_schemas(tmp_path)
    rules = yaml.safe_load((root / "rules.yaml").read_text())
    rules.append({"id": "transfusions.product_numeric", "table": "transfusions", "severity": "error",
                  "category": "conformance", "engine": "polars", "columns": ["product"],
                  "fails": "CAST(product AS INTEGER) > 0", "message": "x", "source": "test"})
    (root / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    return root


def _blocking_defect(tmp_path: Path) -> Path:
    rows = clean_rows()
    # A post-transfusion count taken before the transfusion: an error rule of the same table.
    rows["transfusions"][0]["post_count_at"] = "2019-03-05T09:00:00"
    return write_extract(tmp_path / "bad", rows)


@pytest.mark.parametrize("backend", ["pandera", "polars"])
def test_broken_rule_is_isolated_and_its_siblings_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        backend: str) -> None:
    root = _broken_sibling(tmp_path)
    folder = _blocking_defect(tmp_path)
    res = _validate(root, folder, monkeypatch, "--format", "json", "--engine", backend)
    assert res.exit_code == 2
    doc = json.loads(res.stdout)
    rules = {r["rule_id"]: r for r in doc["rules"]}
    assert rules["transfusions.product_numeric"]["status"] == "error"
    # every other polars rule of transfusions still ran and counted
    assert (rules["transfusions.post_after_transfusion"]["failed"],
            rules["transfusions.post_after_transfusion"]["checked"]) == (1, 12)
    assert rules["transfusions.post_after_transfusion"]["status"] == "failed"
    assert rules["transfusions.storage_h.range"]["checked"] == 12
    assert rules["transfusions.transfusion_id.unique"]["status"] == "passed"
    assert [r for r, v in rules.items() if v["status"] == "error"] == ["transfusions.product_numeric"]
    assert doc["summary"]["errors"] >= 1
    assert "rule transfusions.product_numeric could not run: rule expression:" in " ".join(res.output.split())


def test_blocking_defect_with_broken_sibling_is_refused_by_ingest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _broken_sibling(tmp_path)
    folder = _blocking_defect(tmp_path)
    store = tmp_path / "registry.duckdb"
    monkeypatch.setenv("PTRH_SCHEMAS", str(root))
    res = runner.invoke(app, ["ingest", str(folder), "--store", str(store), "--quiet"])
    assert res.exit_code == 2
    out = " ".join(res.output.split())
    assert "rule transfusions.product_numeric could not run" in out
    assert "rejected" in out
    if store.exists():
        con = duckdb.connect(str(store), read_only=True)
        try:
            assert con.execute("SELECT count(*) FROM transfusions").fetchone()[0] == 0
        finally:
            con.close()


def test_reason_with_brackets_is_printed_as_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Text mode once crashed on a reason that rich read as markup (`[/...]`)."""
    root = copy_schemas(tmp_path)
    rules = yaml.safe_load((root / "rules.yaml").read_text())
    # compiles (an empty table), fails on the data; its message quotes the failing list [...]
    rules.append({"id": "labs.unit_numeric", "table": "labs", "severity": "warning", "category": "conformance",
                  "engine": "duckdb", "columns": ["unit"],
                  "sql": "SELECT _file, _row, unit AS value FROM labs WHERE CAST(unit AS INTEGER) > 0",
                  "denominator": "SELECT count(*) FROM labs", "message": "x", "source": "test"})
    (root / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    rows = clean_rows()
    rows["labs"][0]["unit"] = "[/bold]"
    folder = write_extract(tmp_path / "s", rows)
    res = _validate(root, folder, monkeypatch)
    out = " ".join(res.output.split())
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert "rule labs.unit_numeric could not run: check could not run:" in out
    # a warning rule that cannot run is reported, and does not block
    assert res.exit_code == 1 or res.exit_code == 0
    assert re.search(r"\d+ could not run", out)


@pytest.mark.parametrize(
    ("file", "old", "new", "needle", "key"),
    [
        # a misspelt limit was ignored silently (limits.py keeps only the names it knows)
        ("limits.yaml", "max_sheet_rows: 1048576", "max_sheet_row: 1048576", "max_sheet_row:", "max_sheet_row"),
        # a column named by a table's mapping section
        ("tables/crs_assessments.yaml", "fills: reported_scale", "fills: reported_scal", "reported_scal,", "fills"),
        # an identifier scan of a column that does not exist
        ("phi.yaml", "  labs: [patient_id]", "  labs: [patient_idd]", "patient_idd", "labs"),
        # a misspelt threshold in definitions.yaml left the default in force without a word
        ("definitions.yaml", "  refractory_below: 5000", "  refractory_belw: 5000", "refractory_belw:",
         "refractory_belw"),
        # an extra key in a section a derivation reads, and one in the analyses' section
        ("definitions.yaml", "  max_pct: 100 ", "  max_pct: 100\n    min_pct: 21 ", "min_pct:", "min_pct"),
        ("definitions.yaml", "  horizon_days: 30 ", "  horizon_day: 30 ", "horizon_day:", "horizon_day"),
        # a misspelt key of completeness.yaml (the outcome then had no tolerance), and a severity
        ("completeness.yaml", "    threshold: 0.5", "    treshold: 0.5", "treshold:", "treshold"),
        ("completeness.yaml", "    severity: warning", "    severity: warnign", "warnign", "severity"),
    ],
)
def test_other_catalog_files_are_checked(tmp_path: Path, file: str, old: str, new: str, needle: str, key: str) -> None:
    root = copy_schemas(tmp_path)
    f = root / file
    text = f.read_text()
    assert old in text
    f.write_text(text.replace(old, new, 1))
    res = runner.invoke(app, ["schema", "check", str(root)])
    assert res.exit_code == 2
    assert f"{f}, line {line_of(f, needle)}, key '{key}':" in " ".join(res.output.split())


def test_pandera_back_end_never_passes_a_check_it_could_not_run(tmp_path: Path) -> None:
    """pandera reports a check that raised as one failure case without a row; that must be an
    error of the rule (isolated by the engine), not a pass."""
    import polars as pl

    from ptrharmonize.cdm import load_catalog
    from ptrharmonize.validate.checks import Target
    from ptrharmonize.validate.columns import pandera_failures
    from ptrharmonize.validate.rules import Rule

    spec = {"fails": "CAST(product AS INTEGER) > 0", "columns": ["product"]}
    table = load_catalog(REPO_SCHEMAS).tables["transfusions"]
    rule = Rule(id="transfusions.product_numeric", table="transfusions", check="expression", severity="error",
                category="conformance", message="x", engine="polars", column="product", columns=("product",),
                spec=spec, level="column", target=Target(table, None, spec))
    path = tmp_path / "t.parquet"
    pl.DataFrame({"_file": ["t.csv"], "_row": [2], "product": ["apheresis"], "__raw__product": [None]},
                 schema={"_file": pl.Utf8, "_row": pl.Int64, "product": pl.Utf8, "__raw__product": pl.Utf8}
                 ).write_parquet(path)
    with pytest.raises(RuntimeError, match="transfusions.product_numeric could not run"):
        pandera_failures(str(path), [rule])


# -- completeness.yaml's queries, compiled before data is read (issue 24) ---------------------


@pytest.mark.parametrize(
    ("old", "new", "needle", "key", "says"),
    [
        # a typo in an outcome's population ("SQL ... that do not compile ... exit 2 naming the
        # file, line and key, before any data is read"): it failed only inside the missing-data
        # block, after the data had been read
        ("population: \"treatment_type = 'car_t'\"", "population: \"treatment_typ = 'car_t'\"", "treatment_typ =",
         "population", "does not compile"),
        # a variable that is not a column of patient_summary
        ("variable: crs_grade", "variable: crs_grad", "variable: crs_grad", "variable", "'crs_grad' is not a column"),
    ],
)
def test_completeness_queries_are_compiled_at_load(tmp_path: Path, old: str, new: str, needle: str, key: str,
                                                   says: str, monkeypatch: pytest.MonkeyPatch) -> None:
    root = copy_schemas(tmp_path)
    f = root / "completeness.yaml"
    text = f.read_text()
    assert old in text
    f.write_text(text.replace(old, new, 1))
    where = f"{f}, line {line_of(f, needle)}, key '{key}':"
    res = runner.invoke(app, ["schema", "check", str(root)])
    assert res.exit_code == 2, res.output
    out = " ".join(res.output.split())
    assert where in out and says in out
    # validate, with this catalog in use, stops before reading the submission: the folder given
    # does not even exist, and the message is about the catalog, not the folder
    monkeypatch.setenv("PTRH_SCHEMAS", str(root))
    res = runner.invoke(app, ["validate", str(tmp_path / "no-such-submission")])
    assert res.exit_code == 2
    out = " ".join(res.output.split())
    assert "the rule catalog cannot be used" in out and where in out
    assert "no-such-submission" not in out
    # and so does the QA report (its completeness section runs the same queries)
    res = runner.invoke(app, ["qa-report", "--store", str(tmp_path / "none.duckdb"), "--out", str(tmp_path / "qa.html")])
    assert res.exit_code == 2
    assert "the rule catalog cannot be used" in " ".join(res.output.split())
    assert not (tmp_path / "qa.html").exists()
