"""Ingest through each center's mapping reproduces the canonical truth in the store exactly."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from ptrharmonize.cdm import load_catalog
from ptrharmonize.cli import app
from ptrharmonize.synth.centers import generate_centers

runner = CliRunner()


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    out = tmp_path_factory.mktemp("centers")
    manifest = generate_centers(out, patients_per_center=10, seed=3)  # one center per shipped mapping
    mapped, truth = out / "mapped.duckdb", out / "truth.duckdb"
    for c in manifest["centers"]:
        res = runner.invoke(app, ["ingest", str(out / c["folder"]), "--mapping", str(out / c["mapping"]),
                                  "--store", str(mapped), "--quiet"])
        assert res.exit_code == 0, res.output
        res = runner.invoke(app, ["ingest", str(out / c["truth"]), "--store", str(truth), "--quiet"])
        assert res.exit_code == 0, res.output
    return mapped, truth, [c["center_id"] for c in manifest["centers"]]


def _table(store: Path, table: str, cols: list[str]) -> pl.DataFrame:
    con = duckdb.connect(str(store), read_only=True)
    try:
        q = f'SELECT {", ".join(chr(34) + c + chr(34) for c in cols)} FROM "{table}"'
        return pl.from_arrow(con.sql(q).to_arrow_table()).sort(cols, nulls_last=True)
    finally:
        con.close()


@pytest.mark.parametrize("table", load_catalog().table_names)
def test_store_equals_truth(stores: tuple[Path, Path, list[str]], table: str) -> None:
    mapped, truth, _ = stores
    cols = load_catalog().tables[table].column_names
    a, b = _table(mapped, table, cols), _table(truth, table, cols)
    assert a.height == b.height
    for c in cols:
        x, y = a[c], b[c]
        assert (x.is_null() == y.is_null()).all(), f"{table}.{c}: empty cells differ"
        if x.dtype == pl.Float64:
            tol = (y.abs().clip(lower_bound=1.0) * 1e-9).fill_null(0)
            assert not ((x - y).abs() > tol).fill_null(False).any(), f"{table}.{c}"
        else:
            assert (x == y).fill_null(True).all(), f"{table}.{c}"


def test_provenance_points_at_the_centers_own_files(stores: tuple[Path, Path, list[str]]) -> None:
    mapped, _, centers = stores
    con = duckdb.connect(str(mapped), read_only=True)
    files = dict(con.execute("SELECT center_id, list(DISTINCT source_file) FROM transfusions GROUP BY 1").fetchall())
    active = con.execute("SELECT count(*) FROM submissions WHERE status = 'active'").fetchall()[0][0]
    con.close()
    assert set(files) == set(centers)
    assert all(not f.endswith("transfusions.csv") for fs in files.values() for f in fs)
    assert active == len(centers)
