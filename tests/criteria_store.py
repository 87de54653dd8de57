"""Hand-built criteria cases (tests/cases/*.csv) through the real store: the rows are written as
a canonical extract, stored by `ptrh ingest`, and read back through the derived views.

The expected values in the case files were written from the criteria's texts (each row cites
the sentence it tests), before the views were run on them.
"""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path
from typing import Any

import duckdb
from typer.testing import CliRunner

from extract_factory import HEADERS, write_extract
from ptrharmonize import derive
from ptrharmonize.cli import app

CASES = Path(__file__).resolve().parent / "cases"
CENTER = "K17"
INDEX = dt.date(2021, 3, 1)


def read_cases(name: str) -> list[dict[str, str]]:
    with (CASES / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def on_day(n: int | str, time: str | None = None) -> str:
    d = INDEX + dt.timedelta(days=int(n))
    return d.isoformat() if time is None else f"{d.isoformat()}T{time}"


def patient_rows(pid: str, *, treatment: str = "car_t", height: str = "180", weight: str = "80") -> dict[str, dict[str, str]]:
    return {
        "patients": dict(center_id=CENTER, patient_id=pid, sex="F", age_years="40", height_cm=height,
                         weight_kg=weight, diagnosis="B-ALL", disease_status="relapsed", n_relapses="1",
                         prior_allo_hsct="false", extramedullary="false", bm_blast_pct="30"),
        "treatments": dict(center_id=CENTER, patient_id=pid, treatment_type=treatment,
                           regimen="CD19 CAR-T" if treatment == "car_t" else "FLAG",
                           car_target="CD19" if treatment == "car_t" else "", index_date=INDEX.isoformat()),
    }


def ingest_rows(tmp_path: Path, rows: dict[str, list[dict[str, str]]],
                definitions: dict[str, Any] | None = None) -> duckdb.DuckDBPyConnection:
    """Write `rows` as a canonical extract, `ptrh ingest` it, and return a read-only connection
    to the store with the views installed (session-local) under `definitions`."""
    # only the CDM columns of each table, a column a case leaves out empty
    folder = write_extract(tmp_path / "extract", {
        table: [{k: r.get(k, "") for k in HEADERS[table]} for r in recs] for table, recs in rows.items()})
    store = tmp_path / "registry.duckdb"
    res = CliRunner().invoke(app, ["ingest", str(folder), "--store", str(store), "--quiet"])
    assert res.exit_code == 0, res.output
    con = duckdb.connect(str(store), read_only=True)
    derive.install_views(con, definitions, temporary=True)
    return con


def query(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[dict[str, Any]]:
    rel = con.execute(sql, params or [])
    cols = [d[0] for d in rel.description]
    return [dict(zip(cols, r, strict=True)) for r in rel.fetchall()]


def opt_int(v: str) -> int | None:
    return None if v == "" else int(v)
