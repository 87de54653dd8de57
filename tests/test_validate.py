"""The validation engine and `ptrh validate`, on generated extracts that cover every rule."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from extract_factory import (
    CONSEQUENCES,
    DEFECTS,
    MULTI_DEFECTS,
    clean_rows,
    expected_defects,
    write_extract,
)
from ptrharmonize.cdm import load_catalog
from ptrharmonize.cli import app
from ptrharmonize.read.canonical import read_canonical
from ptrharmonize.validate import Engine
from ptrharmonize.validate.issue_record import FIELDS
from ptrharmonize.validate.result import rule_status
from ptrharmonize.validate.rules import all_rules

runner = CliRunner()


def run_json(*args: str) -> tuple[int, dict]:
    res = runner.invoke(app, ["validate", *args, "--format", "json"])
    return res.exit_code, json.loads(res.stdout)


@pytest.mark.parametrize("engine", ["pandera", "polars"])
def test_clean_extract_has_no_issues(clean_extract: Path, engine: str) -> None:
    code, out = run_json(str(clean_extract), "--engine", engine)
    assert code == 0
    assert out["summary"]["errors"] == 0
    assert out["summary"]["warnings"] == 0
    assert out["issues"] == []
    assert out["summary"]["rows"]["patients"] == 6
    assert out["summary"]["rows"]["labs"] == 84


@pytest.mark.parametrize("engine", ["pandera", "polars"])
def test_every_planted_defect_is_located(dirty_extract: Path, engine: str) -> None:
    code, out = run_json(str(dirty_extract), "--engine", engine)
    assert code == 1
    found = {(i["rule_id"], i["file"], i["row"], i["column"]) for i in out["issues"]}
    missing = [e for e in expected_defects() if e not in found]
    assert missing == []
    planted = {e[0] for e in expected_defects()}
    unexpected = {i["rule_id"] for i in out["issues"]} - planted - CONSEQUENCES
    assert unexpected == set()


def test_both_backends_give_identical_issue_tables(dirty_extract: Path) -> None:
    tables = []
    for engine in ("pandera", "polars"):
        res = Engine(column_engine=engine).validate(read_canonical(dirty_extract))
        tables.append(res.issues.sort(["rule_id", "file", "row", "column"]))
        res.cleanup()
    assert tables[0].equals(tables[1])


def test_catalog_rules_all_covered_by_a_planted_defect() -> None:
    """Every cross-field rule in rules.yaml has a defect in the dirty extract."""
    catalog_ids = {r["id"] for r in load_catalog().rules}
    planted = {d[4] for d in DEFECTS} | {d[3] for d in MULTI_DEFECTS}
    # A canonical extract's center is the one its patients name, so a row naming another center
    # needs a mapped submission: tested in tests/test_redcap.py (a data access group not mapped).
    mapped_only = {"patients.center_is_the_submissions"}
    assert catalog_ids - planted == mapped_only


def test_json_shape_is_exact(dirty_extract: Path) -> None:
    _, out = run_json(str(dirty_extract))
    assert set(out) == {"summary", "issues", "rules", "missing_data"}  # missing_data: issue 16
    assert set(out["summary"]) == {"errors", "warnings", "rows"}
    for i in out["issues"]:
        assert list(i) == FIELDS  # the issue record (validate/issue_record.py)
        assert i["severity"] in ("error", "warning")
        assert i["message"]
    for r in out["rules"]:
        assert {"rule_id", "table", "category", "severity", "checked", "failed", "fraction_failed",
                "threshold", "status"} <= set(r)
        assert r["status"] in ("passed", "failed", "not_applicable", "error")
        assert r["category"] in ("conformance", "completeness", "plausibility")
    n_catalog = len(all_rules(load_catalog()))
    assert len(out["rules"]) == n_catalog
    assert out["summary"]["errors"] == sum(i["severity"] == "error" for i in out["issues"])


def test_unparseable_cells_are_one_issue_each_and_other_rows_still_checked(tmp_path: Path) -> None:
    rows = clean_rows()
    rows["patients"][0]["age_years"] = "<5"
    rows["patients"][1]["age_years"] = "200"
    rows["treatments"][2]["index_date"] = "31/02/2019"
    d = write_extract(tmp_path / "x", rows)
    _, out = run_json(str(d))
    on_age = [i for i in out["issues"] if i["column"] == "age_years"]
    assert [(i["rule_id"], i["row"], i["value"]) for i in on_age] == [
        ("patients.age_years.type", 2, "<5"),
        ("patients.age_years.range", 3, "200"),
    ]
    on_date = [i for i in out["issues"] if i["column"] == "index_date"]
    assert [(i["rule_id"], i["row"], i["value"]) for i in on_date] == [("treatments.index_date.type", 4, "31/02/2019")]


def test_issues_csv_for_the_center(dirty_extract: Path, tmp_path: Path) -> None:
    out = tmp_path / "issues.csv"
    res = runner.invoke(app, ["validate", str(dirty_extract), "--output", str(out)])
    assert res.exit_code == 1
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")  # a BOM, so Excel reads it as UTF-8
    with out.open(encoding="utf-8-sig") as fh:
        recs = list(csv.DictReader(fh))
    assert list(recs[0]) == FIELDS
    assert any(r["rule_id"] == "patients.age_years.type" and r["row"] == "4" and r["value"] == "<5" for r in recs)


def test_parquet_rows_are_record_number_plus_one(tmp_path: Path) -> None:
    rows = clean_rows()
    rows["patients"][3]["sex"] = "X"
    d = write_extract(tmp_path / "pq", rows)
    df = pl.read_csv(d / "patients.csv", infer_schema=False)
    df.write_parquet(d / "patients.parquet")
    (d / "patients.csv").unlink()
    _, out = run_json(str(d))
    hit = [i for i in out["issues"] if i["rule_id"] == "patients.sex.codes"]
    assert [(i["file"], i["row"]) for i in hit] == [("patients.parquet", 5)]


def test_missing_required_table_and_column(tmp_path: Path) -> None:
    d = write_extract(tmp_path / "m", clean_rows())
    (d / "treatments.csv").unlink()
    df = pl.read_csv(d / "patients.csv", infer_schema=False).drop("diagnosis").with_columns(extra=pl.lit("x"))
    df.write_csv(d / "patients.csv")
    code, out = run_json(str(d))
    assert code == 1
    ids = {(i["rule_id"], i["column"]) for i in out["issues"]}
    assert ("treatments.missing_table", None) in ids
    assert ("patients.missing_column", "diagnosis") in ids
    assert ("patients.unknown_column", "extra") in ids
    status = {r["rule_id"]: r for r in out["rules"]}
    assert status["treatments.treatment_type.codes"]["status"] == "not_applicable"
    assert status["patients.diagnosis.codes"]["status"] == "not_applicable"
    assert "diagnosis" in status["patients.diagnosis.codes"]["reason"]


def test_could_not_run_exit_2(tmp_path: Path) -> None:
    res = runner.invoke(app, ["validate", str(tmp_path / "nope")])
    assert res.exit_code == 2
    assert "not found" in res.output
    d = write_extract(tmp_path / "bin", clean_rows())
    (d / "labs.csv").write_bytes(b"\x00\xff\xfe garbage \x00\x01" * 100)
    res = runner.invoke(app, ["validate", str(d)])
    assert res.exit_code == 2
    assert "labs.csv" in res.output
    assert "Traceback" not in res.output


def test_ptrh_console_script_runs(clean_extract: Path) -> None:
    exe = shutil.which("ptrh") or str(Path(sys.executable).parent / "ptrh")
    proc = subprocess.run([exe, "validate", str(clean_extract)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "no blocking errors" in proc.stdout


# -- rule results, statuses and thresholds (issue 11) ---------------------------------------

@pytest.mark.parametrize(
    ("checked", "failed", "threshold", "status"),
    [
        (100, 0, 0, "passed"),
        (100, 1, 0, "failed"),
        (100, 5, 0.05, "passed"),   # exactly at a fractional threshold: within
        (100, 6, 0.05, "failed"),
        (100, 3, 3, "passed"),      # exactly at a count threshold: within
        (100, 4, 3, "failed"),
        (0, 0, 0.1, "passed"),
    ],
)
def test_rule_status_boundaries(checked: int, failed: int, threshold: float, status: str) -> None:
    assert rule_status(checked, failed, threshold) == status


def test_statuses_passed_failed_not_applicable_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    schemas = tmp_path / "schemas"
    shutil.copytree(Path(__file__).parent.parent / "schemas", schemas)
    rules = yaml.safe_load((schemas / "rules.yaml").read_text())
    # Compiles against the typed (empty) tables, so the catalog is accepted; cannot run on the data.
    rules.append({"id": "labs.broken_rule", "table": "labs", "severity": "error", "category": "plausibility",
                  "engine": "duckdb", "columns": ["value"],
                  "sql": "SELECT _file, _row, unit AS value FROM labs WHERE CAST(unit AS INTEGER) > 0",
                  "denominator": "SELECT count(*) FROM labs", "message": "x"})
    (schemas / "rules.yaml").write_text(yaml.safe_dump(rules))
    monkeypatch.setenv("PTRH_SCHEMAS", str(schemas))
    rows = clean_rows()
    rows["patients"][0]["sex"] = "X"
    d = write_extract(tmp_path / "s", rows)
    (d / "infections.csv").unlink()
    code, out = run_json(str(d))
    status = {r["rule_id"]: r for r in out["rules"]}
    assert status["patients.age_years.range"]["status"] == "passed"
    assert status["patients.age_years.range"]["checked"] == 6
    assert status["patients.sex.codes"]["status"] == "failed"
    assert (status["patients.sex.codes"]["failed"], status["patients.sex.codes"]["checked"]) == (1, 6)
    assert status["patients.sex.codes"]["fraction_failed"] == pytest.approx(1 / 6)
    assert status["infections.kind.codes"]["status"] == "not_applicable"
    assert status["infections.kind.codes"]["reason"] == "table not submitted"
    assert status["labs.broken_rule"]["status"] == "error"
    assert "Conversion Error" in status["labs.broken_rule"]["reason"]
    assert code == 2  # an error rule that could not run blocks: an unchecked table is not a clean one


def _write_thresholds(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["rule_id", "center_id", "threshold"])
        w.writerows(rows)
    return path


@pytest.mark.parametrize(
    ("threshold", "exit_code", "status"),
    [("0.1", 0, "passed"), ("0.09", 1, "failed"), ("1", 0, "passed"), ("0", 1, "failed"), ("10%", 0, "passed")],
)
def test_thresholds_file_at_the_boundary(tmp_path: Path, threshold: str, exit_code: int, status: str) -> None:
    rows = clean_rows()
    for p in rows["patients"]:
        p["n_relapses"] = "1"
    # 1 of 10 transfusions... build exactly one failing row of 12 -> use a fraction of 1/10 on 10 rows
    rows["transfusions"] = rows["transfusions"][:10]
    rows["transfusions"][0]["storage_h"] = "-1"
    d = write_extract(tmp_path / "t", rows)
    th = _write_thresholds(tmp_path / "th.csv", [("transfusions.storage_h.range", "T01", threshold)])
    code, out = run_json(str(d), "--thresholds", str(th))
    r = next(x for x in out["rules"] if x["rule_id"] == "transfusions.storage_h.range")
    assert (r["failed"], r["checked"]) == (1, 10)
    assert r["status"] == status
    assert code == exit_code
    # the issue is reported whether or not it blocks
    assert any(i["rule_id"] == "transfusions.storage_h.range" for i in out["issues"])


def test_threshold_for_another_center_does_not_apply(tmp_path: Path) -> None:
    rows = clean_rows()
    rows["transfusions"][0]["storage_h"] = "-1"
    d = write_extract(tmp_path / "t", rows)
    th = _write_thresholds(tmp_path / "th.csv", [("transfusions.storage_h.range", "OTHER", "5")])
    code, _ = run_json(str(d), "--thresholds", str(th))
    assert code == 1


def test_thresholds_file_with_unknown_rule_is_refused(tmp_path: Path, clean_extract: Path) -> None:
    th = _write_thresholds(tmp_path / "th.csv", [("no.such.rule", "", "1")])
    res = runner.invoke(app, ["validate", str(clean_extract), "--thresholds", str(th)])
    assert res.exit_code == 2
    assert "no.such.rule" in res.output


def test_schema_command_lists_rules_and_exports_markdown(tmp_path: Path) -> None:
    res = runner.invoke(app, ["schema"])
    assert res.exit_code == 0
    assert "transfusions.post_after_transfusion" in res.output
    md = tmp_path / "catalog.md"
    res = runner.invoke(app, ["schema", "--markdown", str(md)])
    assert res.exit_code == 0
    text = md.read_text()
    for r in all_rules(load_catalog()):
        assert f"`{r.id}`" in text
