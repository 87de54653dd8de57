"""The derived views live in the store (issue 18): after `ptrh ingest`, and after `ptrh views`,
`SELECT * FROM patient_summary` works on the DuckDB file from a process that has never imported
ptrharmonize (the duckdb Python API here; the DuckDB CLI and R's duckdb package read the same
file, see docs/analyses.md "Reading the store without ptrh")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ptrharmonize.cli import app

sys.path.insert(0, str(Path(__file__).parent))

# A plain Python with duckdb only: fails if ptrharmonize got imported on the way.
READER = r"""
import json, sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
out = {
    "ptr": con.execute("SELECT treatment_type, count(*), sum(CAST(ptr AS INT)) FROM patient_summary "
                       "GROUP BY 1 ORDER BY 1").fetchall(),
    "min_failed": con.execute("SELECT value FROM derivation_definitions "
                              "WHERE key = 'ptr.min_failed'").fetchone()[0],
    "macro": con.execute("SELECT def_ptr_min_failed()").fetchone()[0],
    "views": sorted(r[0] for r in con.execute(
        "SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()),
}
assert "ptrharmonize" not in sys.modules
print(json.dumps(out))
"""


def _read(store: Path) -> dict:
    r = subprocess.run([sys.executable, "-c", READER, str(store)], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One center ingested by the real pipeline; its first two CAR-T patients get no increment
    from either transfusion (CCI 0: two failed transfusions, PTR by the default rule)."""
    from store_helpers import store_submission

    from extract_factory import clean_rows, write_extract
    from ptrharmonize.read.canonical import read_canonical

    root = tmp_path_factory.mktemp("views")
    path = root / "registry.duckdb"
    rows = clean_rows()
    for t in rows["transfusions"]:
        if t["patient_id"] in ("P001", "P002"):
            t["post_count_e9l"] = t["pre_count_e9l"]
    return store_submission(read_canonical(write_extract(root / "T01", rows)), path)


def test_ingest_installs_the_views_readable_without_ptrh(store: Path) -> None:
    got = _read(store)
    assert {"patient_summary", "patient_ptr", "transfusion_cci", "crs_graded", "patient_crs",
            "derivation_definitions"} <= set(got["views"])
    # the extract: 4 CAR-T (2 with two CCI-0 transfusions) and 2 chemotherapy patients
    assert got["ptr"] == [["car_t", 4, 2], ["chemotherapy", 2, 0]]
    assert got["min_failed"] == "2" and got["macro"] == 2  # definitions.yaml ptr.min_failed


def test_views_command_reinstalls_with_a_config(store: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "defs.yaml"
    cfg.write_text("ptr:\n  min_failed: 3\n")
    r = CliRunner().invoke(app, ["views", "--store", str(store), "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    assert "patient_summary" in r.output
    got = _read(store)
    assert got["min_failed"] == "3" and got["ptr"] == [["car_t", 4, 0], ["chemotherapy", 2, 0]]
    # and back to the registry's definitions
    r = CliRunner().invoke(app, ["views", "--store", str(store)])
    assert r.exit_code == 0, r.output
    assert _read(store)["ptr"] == [["car_t", 4, 2], ["chemotherapy", 2, 0]]


def test_views_command_without_a_store_exits_2(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["views", "--store", str(tmp_path / "none.duckdb")])
    assert r.exit_code == 2 and "no store at" in r.output and "Traceback" not in r.output


def test_run_analysis_config_keeps_its_views_temporary(store: Path, tmp_path: Path) -> None:
    from ptrharmonize.analysis.runner import run_analysis

    cfg = tmp_path / "defs.yaml"
    cfg.write_text("ptr:\n  min_failed: 3\n")
    res = run_analysis(store, tmp_path / "out", config=cfg, progress=False)
    assert res["analyses"]["ptr_by_group"]["groups"]["car_t"]["ptr"] == 0
    assert _read(store)["ptr"] == [["car_t", 4, 2], ["chemotherapy", 2, 0]]  # store unchanged


def _duckdb_cli() -> str:
    """The DuckDB CLI installed by the test extra (`duckdb-cli` on PyPI) beside this Python, or on
    PATH. Missing is a failure, not a skip: the test extra installs it."""
    import shutil

    found = shutil.which("duckdb", path=str(Path(sys.executable).parent)) or shutil.which("duckdb")
    if found is None:
        pytest.fail("no DuckDB CLI: `pip install -e '.[test]'` installs duckdb-cli")
    return found


def _docs_sql() -> str:
    """The SQL block of docs/analyses.md "Reading the store without ptrh", as a user copies it."""
    text = (Path(__file__).parents[1] / "docs" / "analyses.md").read_text(encoding="utf-8")
    section = text.split("## Reading the store without ptrh", 1)[1]
    return section.split("```sql\n", 1)[1].split("```", 1)[0]


def test_duckdb_cli_reads_patient_summary_with_the_docs_sql(store: Path) -> None:
    """The DuckDB CLI (1.5.x from PyPI: an older DuckDB than the duckdb 2.0 Python package that
    wrote the store) opens the store read-only and runs the documented SQL: the store is written
    in storage version v1.4.0 (store.STORE_STORAGE_VERSION), which every DuckDB from 1.4 reads."""
    cli = _duckdb_cli()
    version = subprocess.run([cli, "--version"], capture_output=True, text=True, check=True).stdout
    r = subprocess.run([cli, "-readonly", "-json", str(store), "-c",
                        "SELECT treatment_type, count(*) AS n, sum(CAST(ptr AS INT)) AS ptr "
                        "FROM patient_summary GROUP BY ALL ORDER BY 1"],
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0, (version, r.stderr)
    got = [(row["treatment_type"], row["n"], int(row["ptr"])) for row in json.loads(r.stdout)]
    assert got == [("car_t", 4, 2), ("chemotherapy", 2, 0)]  # sum() is a HUGEINT: JSON text
    r = subprocess.run([cli, "-readonly", "-csv", str(store)], input=_docs_sql(),
                       capture_output=True, text=True, check=False)
    assert r.returncode == 0 and "Error" not in r.stderr, r.stderr
    assert "car_t,4,2" in r.stdout and "ptr.min_failed" in r.stdout, r.stdout
