"""Whether a catalog expression runs: a condition, a polars rule evaluation or a DuckDB rule
query is compiled against empty tables of the typed columns, before any data is read. Each
returns None when it runs, else why not (the engine's own message)."""

from __future__ import annotations

import re
from typing import Any

import duckdb
import polars as pl

from ..cdm import DUCKDB_TYPES, FILE_COL, ROW_COL
from ..db import qi
from .checks import RAW_PREFIX


def _compile_condition(columns: list[Any], condition: str) -> str | None:
    """None when `condition` is a SQL boolean over these columns (DuckDB, as the QA report runs it)."""
    from ..cdm import DUCKDB_TYPES

    con = duckdb.connect()
    try:
        cols = ", ".join(f"{qi(c.name)} {DUCKDB_TYPES[c.type]}" for c in columns)
        con.execute(f"CREATE TABLE t ({cols})")
        con.execute(f"SELECT count(*) FILTER (WHERE {condition}) FROM t").fetchall()
    except duckdb.Error as exc:
        return str(exc).splitlines()[0]
    finally:
        con.close()
    return None


def _typed_frame(spec: Any) -> pl.LazyFrame:
    schema: dict[str, pl.DataType] = {FILE_COL: pl.Utf8(), ROW_COL: pl.Int64()}
    for c in spec.columns:
        schema[c.name] = c.polars_type
        schema[RAW_PREFIX + c.name] = pl.Utf8()
    return pl.DataFrame(schema=schema).lazy()


def _compile_polars(frame: pl.LazyFrame, rule: Any) -> str | None:
    """None when the rule's evaluation runs on the table's typed (empty) columns, else why not."""
    try:
        if "fails" in rule.spec:  # a custom condition: it must be one before it is combined
            dtype = frame.select(pl.sql_expr(rule.spec["fails"]).alias("c")).collect().schema["c"]
            if dtype not in (pl.Boolean, pl.Null):
                return f"the expression gives {dtype}, not true/false"
        ev = rule.evaluation()
        out = frame.select(ev.rows.alias("rows"), ev.fails.alias("fails")).collect()
    except Exception as exc:  # noqa: BLE001 - polars' own message is the explanation
        text = " ".join(str(exc).split("\n\nResolved plan")[0].split())
        return re.sub(r"; valid columns: \[[^\]]*\]", "", text)
    for name in ("rows", "fails"):
        if out.schema[name] != pl.Boolean:
            return f"the expression gives {out.schema[name]}, not true/false"
    return None


def _duckdb_catalog(specs: dict[str, Any], definitions: dict[str, Any]) -> duckdb.DuckDBPyConnection:
    """The relations a rule query sees, typed and empty: the tables, canonical_lab_units,
    submission_center and crs_graded."""
    from ..definition_sql import install_crs_graded

    con = duckdb.connect()
    for name, spec in specs.items():
        cols = [f"{qi(c.name)} {DUCKDB_TYPES[c.type]}" for c in spec.columns]
        con.execute(f"CREATE TABLE {qi(name)} ({', '.join(cols)}, _file VARCHAR, _row BIGINT)")
    con.execute("CREATE TABLE canonical_lab_units (analyte VARCHAR, unit VARCHAR)")
    con.execute("CREATE TABLE submission_center (center_id VARCHAR)")
    install_crs_graded(con, definitions)
    return con


def _compile_duckdb(con: duckdb.DuckDBPyConnection, rule: Any) -> tuple[str, str] | None:
    """None when the rule's queries compile and return what the engine reads, else (key, why)."""
    q = rule.query()
    try:
        cols = [d[0] for d in con.execute(f"SELECT * FROM ({q.failing}) LIMIT 0").description]
    except duckdb.Error as exc:
        return "sql", " ".join(str(exc).split())
    if [c.lower() for c in cols] != ["_file", "_row", "value"]:
        return "sql", f"the query must return the columns _file, _row, value (it returns {', '.join(cols)})"
    try:
        desc = con.execute(f"SELECT * FROM ({q.denominator}) LIMIT 0").description
    except duckdb.Error as exc:
        return "denominator", " ".join(str(exc).split())
    if len(desc) != 1:
        return "denominator", "the query must return one number (a count of rows)"
    return None
