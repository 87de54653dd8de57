"""`ptrh ingest` and `ptrh status` against a real DuckDB store."""

from __future__ import annotations

from pathlib import Path

import duckdb
from store_snapshot import snapshot
from typer.testing import CliRunner

from extract_factory import clean_rows, write_extract
from ptrharmonize.cdm import load_catalog
from ptrharmonize.cli import app
from ptrharmonize.lock import StoreLock

runner = CliRunner()


def ingest(path: Path, store: Path, *extra: str) -> int:
    res = runner.invoke(app, ["ingest", str(path), "--store", str(store), "--quiet", *extra])
    assert "Traceback" not in res.output
    return res.exit_code


def test_ingest_stores_rows_with_provenance(clean_extract: Path, tmp_path: Path) -> None:
    store = tmp_path / "reg.duckdb"
    assert ingest(clean_extract, store) == 0
    con = duckdb.connect(str(store), read_only=True)
    n = con.execute("SELECT count(*) FROM labs").fetchall()[0][0]
    assert n == 84
    prov = con.execute("SELECT DISTINCT submission_id, source_file FROM transfusions").fetchall()
    assert len(prov) == 1 and prov[0][1] == "transfusions.csv"
    rows = con.execute("SELECT transfusion_id, source_row FROM transfusions ORDER BY source_row").fetchall()
    assert rows[0] == ("P001-T1", 2)
    sub = con.execute("SELECT center_id, status, n_errors, file_checksums FROM submissions").fetchall()
    assert sub[0][:3] == ("T01", "active", 0)
    assert "patients.csv" in sub[0][3]
    # typed values as the CDM declares them
    t = con.execute("SELECT typeof(transfused_at), typeof(dose_e11), typeof(abo_compatible) FROM transfusions LIMIT 1").fetchall()
    assert t[0] == ("TIMESTAMP", "DOUBLE", "BOOLEAN")
    rr = con.execute("SELECT count(*), count(DISTINCT rule_id) FROM rule_results").fetchall()[0]
    con.close()
    assert rr[0] == rr[1] > 100


def test_reingest_same_submission_changes_nothing(clean_extract: Path, tmp_path: Path) -> None:
    store = tmp_path / "reg.duckdb"
    assert ingest(clean_extract, store) == 0
    before = snapshot(store)
    assert ingest(clean_extract, store) == 0
    assert snapshot(store) == before


def test_new_submission_replaces_the_center_entirely(tmp_path: Path) -> None:
    store = tmp_path / "reg.duckdb"
    rows = clean_rows()
    assert ingest(write_extract(tmp_path / "a", rows), store) == 0
    rows2 = clean_rows()
    rows2["labs"] = rows2["labs"][:10]
    rows2["transfusions"] = rows2["transfusions"][:3]
    # Losing 74 of 84 lab rows is refused unless asked for (issue 23; tests/test_hostile.py).
    assert ingest(write_extract(tmp_path / "b", rows2), store, "--allow-shrink") == 0
    con = duckdb.connect(str(store), read_only=True)
    assert con.execute("SELECT count(*) FROM labs").fetchall()[0][0] == 10
    assert con.execute("SELECT count(*) FROM transfusions").fetchall()[0][0] == 3
    assert con.execute("SELECT count(DISTINCT submission_id) FROM labs").fetchall()[0][0] == 1
    st = con.execute("SELECT status FROM submissions ORDER BY submitted_at").fetchall()
    con.close()
    assert [s[0] for s in st] == ["superseded", "active"]


def test_other_centers_are_untouched(tmp_path: Path) -> None:
    store = tmp_path / "reg.duckdb"
    a = clean_rows()
    b = clean_rows("T02")
    assert ingest(write_extract(tmp_path / "a", a), store) == 0
    assert ingest(write_extract(tmp_path / "b", b), store) == 0
    a["labs"] = a["labs"][:5]
    assert ingest(write_extract(tmp_path / "a2", a), store, "--allow-shrink") == 0
    con = duckdb.connect(str(store), read_only=True)
    got = dict(con.execute("SELECT center_id, count(*) FROM labs GROUP BY 1").fetchall())
    con.close()
    assert got == {"T01": 5, "T02": 84}


def test_rejected_submission_leaves_store_exactly_as_it_was(clean_extract: Path, dirty_extract: Path,
                                                             tmp_path: Path) -> None:
    store = tmp_path / "reg.duckdb"
    assert ingest(clean_extract, store) == 0
    before = snapshot(store)
    res = runner.invoke(app, ["ingest", str(dirty_extract), "--store", str(store), "--quiet"])
    assert res.exit_code == 1
    assert "was not changed" in res.output
    assert snapshot(store) == before


def test_second_writer_is_refused_with_a_clear_message(clean_extract: Path, tmp_path: Path) -> None:
    store = tmp_path / "reg.duckdb"
    with StoreLock(store):
        res = runner.invoke(app, ["ingest", str(clean_extract), "--store", str(store), "--quiet"])
    assert res.exit_code == 2
    assert "another ptrh process" in res.output
    assert not store.exists() or snapshot(store).get("submissions", []) == []


def test_status_shows_centers_counts_and_warnings(tmp_path: Path) -> None:
    store = tmp_path / "reg.duckdb"
    rows = clean_rows()
    rows["transfusions"][0]["storage_h"] = "200"  # a warning, not blocking
    assert ingest(write_extract(tmp_path / "w", rows), store) == 0
    res = runner.invoke(app, ["status", "--store", str(store)], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "T01" in res.output
    assert "transfusions.storage_over_7_days" in res.output
    assert "84" in res.output


def test_status_says_not_collected_not_zero(tmp_path: Path) -> None:
    """Three states (CDM v1: "an absent table means 'not collected'"): a center that sends no
    bleeding file has no bleeding rows because it does not collect them, which `ptrh status`
    must not show as 0 rows; the JSON's row counts are objects, not JSON text inside JSON."""
    import json

    store = tmp_path / "reg.duckdb"
    sub = write_extract(tmp_path / "w", clean_rows())
    (sub / "bleeding_events.csv").unlink()
    assert ingest(sub, store) == 0
    res = runner.invoke(app, ["status", "--store", str(store)], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    line = next(x for x in res.output.splitlines() if x.strip().startswith("bleeding_events"))
    assert "not collected" in line
    line = next(x for x in res.output.splitlines() if x.strip().startswith("transfusions"))
    assert "not collected" not in line
    res = runner.invoke(app, ["status", "--store", str(store), "--format", "json"])
    doc = json.loads(res.output)
    assert doc["not_collected"] == {"T01": ["bleeding_events"]}
    assert isinstance(doc["submissions"][0]["row_counts"], dict)
    assert "bleeding_events" not in doc["submissions"][0]["row_counts"] or \
        doc["submissions"][0]["row_counts"]["bleeding_events"] == 0


def test_status_without_store_exits_2(tmp_path: Path) -> None:
    res = runner.invoke(app, ["status", "--store", str(tmp_path / "none.duckdb")])
    assert res.exit_code == 2
    assert "not found" in res.output


def test_store_tables_match_the_catalog(clean_extract: Path, tmp_path: Path) -> None:
    store = tmp_path / "reg.duckdb"
    assert ingest(clean_extract, store) == 0
    con = duckdb.connect(str(store), read_only=True)
    for name, spec in load_catalog().tables.items():
        cols = [r[0] for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
            [name]).fetchall()]
        assert cols == [*spec.column_names, "submission_id", "source_file", "source_row"]
    con.close()
