"""The pooled registry: one DuckDB file.

Tables are the CDM tables with their declared types, plus provenance on every row
(`submission_id`, `source_file`, `source_row`) and a `submissions` table. A center's data is
replaced in one transaction, so a reader never sees a mix of two submissions.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from .cdm import Catalog, load_catalog
from .collection import COLLECTION_DDL
from .db import qi

PROVENANCE_COLUMNS = [
    ("submission_id", "VARCHAR"),
    ("source_file", "VARCHAR"),
    ("source_row", "BIGINT"),
]


def literal_path(path: Path | str) -> str:
    """A file path for DuckDB's readers, which expand `*`, `?` and `[...]` as a pattern: each is
    escaped as a one-character class, so a folder `G[1]` never reads the files of `G1`."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in str(path))


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
  message VARCHAR
)
"""

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
# columns (schemas/tables/*.yaml `key`), or the whole row for a table without a key.
SUBMISSION_ROWS_DDL = """
CREATE TABLE IF NOT EXISTS submission_rows (
  submission_id VARCHAR,
  "table" VARCHAR,
  row_key UBIGINT,
  row_digest UBIGINT
)
"""


def row_digest_sql(catalog: Catalog, table: str) -> tuple[str, str]:
    """SQL expressions (row_key, row_digest) over a CDM table's columns: MD5 of the cells' text,
    a null written as NUL so that a blank and an empty text differ."""
    spec = catalog.tables[table]

    def digest(cols: list[str]) -> str:
        parts = ", ".join(f"coalesce(CAST({qi(c)} AS VARCHAR), chr(0))" for c in cols)
        return f"md5_number_lower(concat_ws(chr(31), {parts}))"

    cols = spec.column_names
    key = [c for c in spec.key if c in cols] or cols
    return digest(key), digest(cols)


def create_schema(con: duckdb.DuckDBPyConnection, catalog: Catalog | None = None) -> None:
    """Create every CDM table, `submissions`, `issues`, `rule_results` and `collection` if absent."""
    catalog = catalog or load_catalog()
    for table in catalog.table_names:
        con.execute(table_ddl(catalog, table))
    con.execute(SUBMISSIONS_DDL)
    con.execute(ISSUES_DDL)
    con.execute(RULE_RESULTS_DDL)
    con.execute(COLLECTION_DDL)
    con.execute(SUBMISSION_ROWS_DDL)


def connect(path: Path | str, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(path), read_only=read_only)
