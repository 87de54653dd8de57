"""Analyses are found, not listed (issue 18): one module and one SQL file in a folder. A
registry folder's `analyses/` (ptrh.toml `analyses = "analyses"`) or `--analyses DIR` adds its
own analyses beside the study's, on a real store, with no edit anywhere else."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb
import pytest

from ptrharmonize.analysis import ANALYSES, discover
from ptrharmonize.analysis.runner import run_analyses

sys.path.insert(0, str(Path(__file__).parent))

STUDY = ["baseline", "ptr_by_group", "ptr_by_group_stratified", "cart_characteristics",
         "ptr_multivariable", "cytokines_by_crs", "cytokines_by_ptr", "cci_vs_il6",
         "platelet_dose_by_ptr", "bleeding_cuminc"]

MODULE = '''
import polars as pl
from ptrharmonize.analysis import analysis
from ptrharmonize.analysis._common import AnalysisResult


@analysis("ptr_rate_by_center")
def ptr_rate_by_center(ctx):
    df = ctx.population("ptr_rate_by_center")
    return AnalysisResult({"rows": df.to_dicts()}, df)
'''
SQL = """-- PTR rate per center (a registry's own analysis)
SELECT center_id, count(*) AS n, CAST(sum(CAST(ptr AS INT)) AS BIGINT) AS ptr
FROM patient_summary WHERE ptr IS NOT NULL GROUP BY center_id ORDER BY center_id
"""


def test_the_study_analyses_are_discovered_in_order() -> None:
    assert list(ANALYSES)[: len(STUDY)] == STUDY
    found = discover()
    assert all(found[k].population_sql.is_file() for k in STUDY)


def test_a_folder_adds_an_analysis(tmp_path: Path) -> None:
    folder = tmp_path / "analyses"
    (folder / "sql").mkdir(parents=True)
    (folder / "ptr_rate.py").write_text(MODULE)
    (folder / "sql" / "ptr_rate_by_center.sql").write_text(SQL)
    found = discover([folder])
    assert list(found)[-1] == "ptr_rate_by_center"
    assert "ptr_rate_by_center" not in discover()  # only when the folder is asked for

    con = duckdb.connect()
    con.execute("CREATE TABLE patient_summary AS SELECT * FROM (VALUES ('A', 'p1', TRUE), "
                "('A', 'p2', FALSE), ('B', 'p3', TRUE)) t(center_id, patient_id, ptr)")
    res = run_analyses(con, {"analysis": {}}, tmp_path / "out", analyses=["ptr_rate_by_center"],
                       found=found)
    con.close()
    doc = json.loads((tmp_path / "out" / "results.json").read_text())["analyses"]["ptr_rate_by_center"]
    assert doc["status"] == "ok"
    assert doc["rows"] == [{"center_id": "A", "n": 2, "ptr": 1}, {"center_id": "B", "n": 1, "ptr": 1}]
    assert doc["population_sql"] == str((folder / "sql" / "ptr_rate_by_center.sql").resolve())
    assert res["status"] == {"ptr_rate_by_center": "ok"}


def test_a_registry_folder_analyses_run_with_run_analysis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`ptrh run-analysis` inside a registry folder whose ptrh.toml names `analyses`."""
    from typer.testing import CliRunner

    from ptrharmonize.cli import app
    from ptrharmonize.registry import init_registry

    reg = tmp_path / "reg"
    init_registry(reg, "r")  # what `ptrh init` writes
    toml = (reg / "ptrh.toml").read_text()
    assert '# analyses = "analyses"' in toml
    (reg / "ptrh.toml").write_text(toml.replace('# analyses = "analyses"', 'analyses = "analyses"'))
    (reg / "analyses" / "sql").mkdir(parents=True)
    (reg / "analyses" / "ptr_rate.py").write_text(MODULE.replace("ptr_rate_by_center", "reg_ptr_rate"))
    (reg / "analyses" / "sql" / "reg_ptr_rate.sql").write_text(SQL)
    store = _pipeline_store(tmp_path)
    monkeypatch.chdir(reg)
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["run-analysis", "--store", str(store), "--out", str(out), "--quiet"])
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "results.json").read_text())
    assert doc["analyses"]["reg_ptr_rate"]["rows"] == [{"center_id": "T01", "n": 6, "ptr": 0}]
    assert set(STUDY) <= set(doc["analyses"])


def _pipeline_store(root: Path) -> Path:
    from store_helpers import store_submission

    from extract_factory import clean_rows, write_extract
    from ptrharmonize.read.canonical import read_canonical

    return store_submission(read_canonical(write_extract(root / "T01", clean_rows())), root / "registry.duckdb")


FAILING = '''
from ptrharmonize.analysis import analysis
from ptrharmonize.stats._common import NotEstimable


@analysis("always_fails")
def always_fails(ctx):
    raise RuntimeError("a bug nobody foresaw")


@analysis("never_estimable")
def never_estimable(ctx):
    raise NotEstimable("too few events for this one")
'''


def test_one_failing_analysis_does_not_take_the_others_down(tmp_path: Path) -> None:
    """Issue 18: an analysis that raises ends as `error` with its message, one whose data
    cannot support it as `not_estimable` with the reason; every other analysis still runs and
    writes its outputs; the CLI exits 1 because one ended in error (0 without it)."""
    from typer.testing import CliRunner

    from ptrharmonize.cli import app

    store = _pipeline_store(tmp_path)
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "failing.py").write_text(FAILING)
    (folder / "always_fails.sql").write_text("SELECT 1\n")
    (folder / "never_estimable.sql").write_text("SELECT 1\n")
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["run-analysis", "--store", str(store), "--out", str(out),
                                 "--analyses", str(folder), "--quiet"])
    assert r.exit_code == 1, r.output
    assert "always_fails: error: RuntimeError: a bug nobody foresaw" in " ".join(r.output.split())
    assert "Traceback" not in r.output
    doc = json.loads((out / "results.json").read_text())
    assert doc["status"]["always_fails"] == "error"
    assert doc["analyses"]["always_fails"]["error"] == "RuntimeError: a bug nobody foresaw"
    assert doc["status"]["never_estimable"] == "not_estimable"
    assert doc["analyses"]["never_estimable"]["reason"] == "too few events for this one"
    assert set(STUDY) <= set(doc["status"])
    assert all(doc["status"][k] in ("ok", "not_estimable") for k in STUDY)
    assert (out / "tables" / "bleeding_cuminc.csv").is_file()
    # the same run without the failing one exits 0
    (folder / "failing.py").write_text(FAILING.split('@analysis("always_fails")')[0]
                                       + '@analysis("never_estimable")'
                                       + FAILING.split('@analysis("never_estimable")')[1])
    out2 = tmp_path / "out2"
    r = CliRunner().invoke(app, ["run-analysis", "--store", str(store), "--out", str(out2),
                                 "--analyses", str(folder), "--quiet"])
    assert r.exit_code == 0, r.output


PLUGIN_RUN = r"""
import json, sys
import duckdb
from ptrharmonize.analysis import discover
from ptrharmonize.analysis.runner import run_analyses

found = discover()
a = found["plugin_ptr_rate"]
con = duckdb.connect()
con.execute("CREATE TABLE patient_summary AS SELECT * FROM (VALUES ('A', 'p1', TRUE), "
            "('A', 'p2', FALSE), ('B', 'p3', TRUE)) t(center_id, patient_id, ptr)")
res = run_analyses(con, {"analysis": {}}, sys.argv[1], analyses=["plugin_ptr_rate"], found=found)
print(json.dumps({"ids": list(found), "source": a.source, "sql": str(a.population_sql),
                  "status": res["status"]}))
"""


def _plugin_distribution(root: Path) -> Path:
    """A tiny installed distribution, as pip leaves one in site-packages: the package
    `ptrh_plugin_demo` (module + sql/<id>.sql) and its `.dist-info` with METADATA and an
    entry_points.txt in the group `ptrharmonize.analyses`."""
    site = root / "site"
    pkg = site / "ptrh_plugin_demo"
    (pkg / "sql").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "rates.py").write_text(MODULE.replace('@analysis("ptr_rate_by_center")',
                                                 '@analysis("plugin_ptr_rate", order=2000)')
                                  .replace('"ptr_rate_by_center"', '"plugin_ptr_rate"'))
    (pkg / "sql" / "plugin_ptr_rate.sql").write_text(SQL)
    info = site / "ptrh_plugin_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ptrh-plugin-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ptrharmonize.analyses]\nrates = ptrh_plugin_demo.rates\n")
    return site


def test_an_installed_distribution_adds_an_analysis_by_entry_point(tmp_path: Path) -> None:
    """Issue 18: an installed package adds an analysis through the `ptrharmonize.analyses`
    entry-point group, with no edit in ptrharmonize. A real distribution (dist-info with
    entry_points.txt) on the path of a fresh Python: importlib.metadata finds it, nothing mocked.
    Without the distribution on the path the analysis is not there."""
    import os
    import subprocess

    site = _plugin_distribution(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-c", PLUGIN_RUN, str(tmp_path / "out")], capture_output=True,
                       text=True, env=env, check=False)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["ids"][: len(STUDY)] == STUDY and got["ids"][-1] == "plugin_ptr_rate"  # order 2000: last
    assert got["source"] == "ptrh_plugin_demo.rates"
    assert got["sql"] == str(site / "ptrh_plugin_demo" / "sql" / "plugin_ptr_rate.sql")
    assert got["status"] == {"plugin_ptr_rate": "ok"}
    doc = json.loads((tmp_path / "out" / "results.json").read_text())["analyses"]["plugin_ptr_rate"]
    assert doc["rows"] == [{"center_id": "A", "n": 2, "ptr": 1}, {"center_id": "B", "n": 1, "ptr": 1}]
    # the control: the same Python without the distribution does not find it
    r = subprocess.run([sys.executable, "-c", "from ptrharmonize.analysis import discover; "
                        "print('plugin_ptr_rate' in discover())"], capture_output=True, text=True, check=False)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr
