"""The pooled registry: one DuckDB file.

Tables are the CDM tables with their declared types, plus provenance on every row
(`submission_id`, `source_file`, `source_row`) and a `submissions` table. A center's data is
replaced in one transaction, so a reader never sees a mix of two submissions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from . import db
from .cdm import Catalog, load_catalog
from .collection import COLLECTION_DDL
from .db import literal_path, qi  # noqa: F401 - literal_path: its old home, still imported from here
from .errors import UserError

PROVENANCE_COLUMNS = [
    ("submission_id", "VARCHAR"),
    ("source_file", "VARCHAR"),
    ("source_row", "BIGINT"),
]


def table_ddl(catalog: Catalog, table: str) -> str:
    spec = catalog.tables[table]
    cols = [f"{qi(c.name)} {c.duckdb_type}" for c in spec.columns]
    cols += [f"{qi(n)} {t}" for n, t in PROVENANCE_COLUMNS]
    return f"CREATE TABLE IF NOT EXISTS {qi(table)} (\n  " + ",\n  ".join(cols) + "\n)"


SUBMISSIONS_DDL = """
CREATE TABLE IF NOT EXISTS submissions (
  submission_id VARCHAR PRIMARY KEY,
  center_id VARCHAR,
  submitted_at TIMESTAMP,
  source_path VARCHAR,
  content_checksum VARCHAR,
  file_checksums JSON,
  mapping_file VARCHAR,
  mapping_checksum VARCHAR,
  row_counts JSON,
  status VARCHAR,          -- active | superseded | rejected
  n_errors BIGINT,
  n_warnings BIGINT
)
"""

ISSUES_DDL = """
CREATE TABLE IF NOT EXISTS issues (
  submission_id VARCHAR,
  center_id VARCHAR,
  rule_id VARCHAR,
  severity VARCHAR,
  "table" VARCHAR,
  file VARCHAR,
  "row" BIGINT,
  "column" VARCHAR,
  value VARCHAR,
  message VARCHAR,
  sheet VARCHAR,
  place VARCHAR,
  patient_id VARCHAR,
  source_column VARCHAR,
  hint VARCHAR
)
"""
# The issue record's fields (validate/issue_record.py) added after the first ten columns: added to
# a store of before them, and written by name, so the store holds the record every output shows.
ISSUE_EXTRA_COLUMNS = ("sheet", "place", "patient_id", "source_column", "hint")

RULE_RESULTS_DDL = """
CREATE TABLE IF NOT EXISTS rule_results (
  submission_id VARCHAR,
  center_id VARCHAR,
  rule_id VARCHAR,
  "table" VARCHAR,
  category VARCHAR,
  severity VARCHAR,
  checked BIGINT,
  failed BIGINT,
  threshold DOUBLE,
  status VARCHAR,
  reason VARCHAR
)
"""


# One row per stored data row of every submission, kept after the submission is superseded, so
# that the QA report and `ptrh diff` can say which rows a new submission added, removed or
# changed. Only digests: no value of the data is kept here. `row_key` digests the table's key
# columns (schemas/tables/*.yaml `key`), or the whole row for a table without a key; `method`
# names the digest function (DuckDB's `hash`, whose values may differ between DuckDB versions:
# rows are compared only between submissions digested the same way).
SUBMISSION_ROWS_DDL = """
CREATE TABLE IF NOT EXISTS submission_rows (
  submission_id VARCHAR,
  "table" VARCHAR,
  row_key UBIGINT,
  row_digest UBIGINT,
  method VARCHAR
)
"""


def row_digest_sql(catalog: Catalog, table: str) -> tuple[str, str, str]:
    """SQL expressions (row_key, row_digest, method) over a CDM table's typed columns.

    DuckDB's `hash` of the typed values (a null hashes unlike any value, and position counts):
    about 25 times cheaper than an MD5 of the cells' text, which cost as much CPU as storing the
    rows (measured on 641,390 lab rows: 0.03 against 0.66 CPU seconds; the insert 0.38)."""
    spec = catalog.tables[table]
    cols = spec.column_names
    key = [c for c in spec.key if c in cols] or cols
    return (f"hash({', '.join(qi(c) for c in key)})", f"hash({', '.join(qi(c) for c in cols)})",
            "'duckdb-hash-' || version()")


def create_schema(con: duckdb.DuckDBPyConnection, catalog: Catalog | None = None) -> None:
    """Create every CDM table, `submissions`, `issues`, `rule_results` and `collection` if absent."""
    catalog = catalog or load_catalog()
    for table in catalog.table_names:
        con.execute(table_ddl(catalog, table))
    con.execute(SUBMISSIONS_DDL)
    con.execute(ISSUES_DDL)
    for c in ISSUE_EXTRA_COLUMNS:
        con.execute(f"ALTER TABLE issues ADD COLUMN IF NOT EXISTS {qi(c)} VARCHAR")
    con.execute(RULE_RESULTS_DDL)
    con.execute(COLLECTION_DDL)
    con.execute(SUBMISSION_ROWS_DDL)
    con.execute("ALTER TABLE submission_rows ADD COLUMN IF NOT EXISTS method VARCHAR")  # stores of before `method`


# The on-disk format a new store is written in. DuckDB writes the newest format of the library
# that creates the file (duckdb 2.0: storage version 69), which every older reader refuses
# ("can only read versions between 64 and 68"): the DuckDB CLI on PyPI (1.5.x) and R's duckdb
# package (CRAN 1.x) could not open a store. v1.4.0 is DuckDB's long-term-support release, so
# every DuckDB from 1.4 on (CLI, R, Python, DBeaver's JDBC) reads the store. The file remembers
# its format: later writes by a newer duckdb keep it. A store created before this setting keeps
# the format it was created in (see docs/analyses.md "Reading the store without ptrh").
STORE_STORAGE_VERSION = "v1.4.0"


def connect(path: Path | str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (or create) the store. A new file is written in `STORE_STORAGE_VERSION`'s format."""
    if read_only:
        return duckdb.connect(str(path), read_only=True)
    return duckdb.connect(str(path), config={"storage_compatibility_version": STORE_STORAGE_VERSION})


def _cannot_open(store: Path, exc: duckdb.Error) -> UserError:
    return UserError(f"{store}: cannot open the store read-only ({str(exc).splitlines()[0]}); "
                     "is it a ptrh store, and is an ingest still writing it?")


def open_read_only(store: Path | str) -> duckdb.DuckDBPyConnection:
    """The store itself, read-only, for a command that only reads it (`status`, `diff`); exit 2
    with the reason when it cannot be opened. Every reader of the store opens it here or through
    `attach_read_only`."""
    store = Path(store)
    try:
        return connect(store, read_only=True)
    except duckdb.Error as exc:
        raise _cannot_open(store, exc) from None


def attach_read_only(con: duckdb.DuckDBPyConnection, store: Path | str, alias: str) -> set[str]:
    """ATTACH the store READ_ONLY as `alias` in a private connection (an analysis or a report
    never writes it, and may run while another process reads it); the names of its tables."""
    store = Path(store)
    try:
        db.run(con, f"ATTACH {_literal(str(store))} AS {qi(alias)} (READ_ONLY)")
    except duckdb.Error as exc:
        raise _cannot_open(store, exc) from None
    return {r[0] for r in db.rows(con, "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [alias])}


def write_submission(con: duckdb.DuckDBPyConnection, sid: str, center: str, source: str, status: str,
                     result: Any, *, submitted_at: Any = None, content_checksum: str | None = None,
                     file_checksums: Any = None, mapping_file: str | None = None,
                     mapping_checksum: str | None = None) -> None:
    """One row of `submissions` for a validation `result` (its row counts, errors and warnings):
    the ingest and the QA report of a submission before ingest record it the same way."""
    import json
    from datetime import datetime

    db.run(con, "INSERT INTO submissions (submission_id, center_id, submitted_at, source_path, content_checksum, "
                "file_checksums, mapping_file, mapping_checksum, row_counts, status, n_errors, n_warnings) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
           [sid, center, submitted_at or datetime.now(), source, content_checksum,
            json.dumps(file_checksums) if file_checksums is not None else None, mapping_file, mapping_checksum,
            json.dumps(result.rows), status, result.n_errors, result.n_warnings])


def write_findings(con: duckdb.DuckDBPyConnection, issues: Any, rules: Any, center: str, sid: str) -> None:
    """Append a validation's issue table and rule results (polars frames of the engine's
    ISSUE_SCHEMA and RULE_RESULT_SCHEMA) to `issues` and `rule_results` under one submission:
    the store's ingest and the QA report of a submission write them the same way."""
    write_issues(con, issues, center, sid)
    write_rule_results(con, rules, center, sid)


def write_issues(con: duckdb.DuckDBPyConnection, issues: Any, center: str, sid: str) -> None:
    """Append a validation's issue table (a polars frame of the engine's ISSUE_SCHEMA)."""
    con.register("_new_issues", issues.to_arrow())
    try:
        cols = ["rule_id", "severity", "table", "file", "row", "column", "value", "message",
                *(c for c in ISSUE_EXTRA_COLUMNS if c in issues.columns)]
        names = ", ".join(qi(c) for c in cols)
        db.run(con, f"INSERT INTO issues (submission_id, center_id, {names}) SELECT ?, ?, {names} FROM _new_issues",
               [sid, center])
    finally:
        con.unregister("_new_issues")


def write_rule_results(con: duckdb.DuckDBPyConnection, rules: Any, center: str, sid: str) -> None:
    """Append rule results (a polars frame with rule_id, table, category, severity, checked,
    failed, threshold, status, reason): an ingest's, or a federated node's released counts."""
    con.register("_new_rules", rules.to_arrow())
    try:
        db.run(con, "INSERT INTO rule_results SELECT ?, ?, rule_id, \"table\", category, severity, checked, failed, "
               "threshold, status, reason FROM _new_rules", [sid, center])
    finally:
        con.unregister("_new_rules")


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
