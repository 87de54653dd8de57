"""The cross-table rules of a validation: DuckDB over the staged Parquet files.

A rule of engine `duckdb` compares tables (references, dates of one table against another, the
CRS grade of `crs_graded`), so it runs after every table is staged, in one in-memory DuckDB
where each CDM table is a view over its staged file (an empty typed view when the table was not
submitted). Each rule's denominator and failing rows come from the catalog's SQL (rules.yaml);
a rule that cannot run gets status `error` and the others still run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from .. import db
from ..cdm import FILE_COL, ROW_COL, Catalog
from ..db import literal_path, qi
from ..definition_sql import install_crs_graded
from .issue_rows import _issue_frame, _reason
from .result import _Outcome
from .rules import Rule


def _sql_str(path: Path | str) -> str:
    """A file path as a SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def cross_table_rules(catalog: Catalog, rules: list[Rule], definitions: dict[str, Any] | None,
                      staged: dict[str, Path], outcomes: dict[str, _Outcome],
                      issues: list[pl.DataFrame], center: str | None = None) -> None:
    """Run every DuckDB rule still undecided in `outcomes`, counting into it and appending its
    issue rows to `issues`. `center`: the center the submission is sent for, if it names one."""
    sql_rules = [r for r in rules if r.engine == "duckdb" and outcomes[r.id].status is None]
    if not sql_rules:
        return
    con = duckdb.connect()
    try:
        db.run(con, "SET preserve_insertion_order = false")
        for table in catalog.table_names:
            if table in staged:
                db.run(con, f"CREATE VIEW {qi(table)} AS SELECT * FROM read_parquet({_sql_str(literal_path(staged[table]))})")
            else:
                db.run(con, _empty_view_sql(catalog, table))
        units = catalog.tables["labs"].extra.get("canonical_units", {})
        db.run(con, "CREATE TABLE canonical_lab_units (analyte VARCHAR, unit VARCHAR)")
        if units:
            con.executemany("INSERT INTO canonical_lab_units VALUES (?, ?)", list(units.items()))
        # The center the submission is sent for (a mapping's center_id; none for an extract
        # whose rows name it): rows naming another center are refused by a rule.
        db.run(con, "CREATE TABLE submission_center (center_id VARCHAR)")
        if center is not None:
            con.execute("INSERT INTO submission_center VALUES (?)", [center])
        crs_error = _install_crs_graded(con, definitions)
        for r in sql_rules:
            o = outcomes[r.id]
            if r.check == "references" and "patients" not in staged:
                o.status, o.reason = "not_applicable", "patients table not submitted"
                continue
            try:
                q = r.query()
            except Exception as exc:  # noqa: BLE001
                o.status, o.reason = "error", f"rule query: {_reason(exc)}"
                continue
            sql, den = q.failing, q.denominator
            if "crs_graded" in sql and crs_error:
                o.status, o.reason = "error", crs_error
                continue
            try:
                o.checked = int(db.scalar(con, den) or 0)
                fail = db.frame(con, sql)
            except duckdb.Error as exc:
                o.status, o.reason = "error", f"check could not run: {_reason(exc)}"
                continue
            fail = fail.select(
                pl.col("_file").cast(pl.Utf8).alias(FILE_COL),
                pl.col("_row").cast(pl.Int64).alias(ROW_COL),
                pl.col("value").cast(pl.Utf8),
            )
            o.failed = fail.height
            if fail.height:
                issues.append(_issue_frame(r, fail))
    finally:
        con.close()


def _install_crs_graded(con: duckdb.DuckDBPyConnection, definitions: dict[str, Any] | None) -> str | None:
    """The `crs_graded` view the CRS rules read; the reason it could not be made, else None."""
    try:
        install_crs_graded(con, definitions)
    except Exception as exc:  # noqa: BLE001
        return f"CRS grading could not run: {exc}"
    return None


def _empty_view_sql(catalog: Catalog, table: str) -> str:
    """A table not submitted: an empty view of its typed columns, so every rule's SQL binds."""
    spec = catalog.tables[table]
    cols = [f"CAST(NULL AS {c.duckdb_type}) AS {qi(c.name)}" for c in spec.columns]
    cols += ["CAST(NULL AS VARCHAR) AS _file", "CAST(NULL AS BIGINT) AS _row"]
    return f"CREATE VIEW {qi(table)} AS SELECT {', '.join(cols)} WHERE false"
