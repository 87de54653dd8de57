"""Where the QA report's numbers come from: one DuckDB connection of the same shape for either
source, so every section is computed by the same code (report/qa.py).

- the pooled store (`open_store_source`): attached read-only into a private in-memory
  connection; the CDM tables, `submissions`, `issues` and `rule_results` become views of it;
- one submission before ingest (`open_submission_source`): the validation engine's staged,
  typed Parquet files become the CDM tables, and its findings are recorded the way the ingest
  records them (`store.write_submission`, `store.write_findings`, `collection.write`).

The derived views (`derive.install_views`) are installed on top; when a view file is missing
or fails, the sections that need it say so instead of failing the whole report.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from .. import collection, db, derive
from ..cdm import Catalog, load_catalog
from ..collection import COLLECTION_DDL
from ..errors import UserError
from ..store import (
    ISSUES_DDL,
    RULE_RESULTS_DDL,
    SUBMISSION_ROWS_DDL,
    SUBMISSIONS_DDL,
    attach_read_only,
    literal_path,
    qi,
    table_ddl,
    write_findings,
    write_submission,
)
from ..validate.issue_record import FIELDS

ISSUE_COLUMNS = FIELDS  # the issue record (validate/issue_record.py), as every output carries it
STORE_ALIAS = "qa_store"
NO_CENTER = "(no single center)"


@dataclass
class QASource:
    con: duckdb.DuckDBPyConnection
    mode: str                     # store | submission
    label: str                    # the store file or the submission folder
    notes: list[str] = field(default_factory=list)
    views: set[str] = field(default_factory=set)

    def close(self) -> None:
        self.con.close()


def _literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def _relations(con: duckdb.DuckDBPyConnection, database: str | None = None) -> set[str]:
    sql = ("SELECT table_name FROM duckdb_tables() {w} UNION ALL "
           "SELECT view_name FROM duckdb_views() {w}")
    if database is None:
        where = "WHERE NOT internal AND database_name NOT IN ('system', 'temp') AND database_name <> ?"
        return {r[0] for r in db.rows(con, sql.format(w=where), [STORE_ALIAS, STORE_ALIAS])}
    return {r[0] for r in db.rows(con, sql.format(w="WHERE database_name = ?"), [database, database])}


def open_store_source(store: Path, definitions: dict[str, Any] | None = None,
                      catalog: Catalog | None = None) -> QASource:
    """The pooled store, read-only, in a private in-memory connection, views installed."""
    catalog = catalog or load_catalog()
    store = Path(store)
    if not store.is_file():
        raise UserError(f"{store}: store not found (create it with `ptrh ingest EXTRACT --store {store}`)")
    con = duckdb.connect()
    try:
        attach_read_only(con, store, STORE_ALIAS)
        present = _relations(con, STORE_ALIAS)
        if "submissions" not in present or "patients" not in present:
            raise UserError(f"{store}: not a ptrh registry store (no submissions or patients table); "
                            "create it with `ptrh ingest`")
        for table in catalog.table_names:
            if table in present:
                db.run(con, f"CREATE VIEW {qi(table)} AS SELECT * FROM {STORE_ALIAS}.{qi(table)}")
            else:
                db.run(con, table_ddl(catalog, table))
        for name, ddl in (("submissions", SUBMISSIONS_DDL), ("issues", ISSUES_DDL),
                          ("rule_results", RULE_RESULTS_DDL), ("submission_rows", SUBMISSION_ROWS_DDL),
                          ("collection", COLLECTION_DDL)):
            if name in present:
                db.run(con, f"CREATE VIEW {qi(name)} AS SELECT * FROM {STORE_ALIAS}.{qi(name)}")
            else:
                db.run(con, ddl)
        src = QASource(con, "store", str(store))
        src.views = install_views_safely(con, definitions, src.notes)
        return src
    except BaseException:
        con.close()
        raise


def open_submission_source(result: Any, label: str, definitions: dict[str, Any] | None = None,
                           catalog: Catalog | None = None, mapping: Path | None = None) -> QASource:
    """One validated submission (a `ValidationResult`) as the same tables as the store."""
    catalog = catalog or load_catalog()
    con = duckdb.connect()
    try:
        for table in catalog.table_names:
            path = result.staged.get(table)
            if path is None:
                db.run(con, table_ddl(catalog, table))
                continue
            cols = ", ".join(qi(c.name) for c in catalog.tables[table].columns)
            db.run(con, f"CREATE VIEW {qi(table)} AS SELECT {cols}, CAST(NULL AS VARCHAR) AS submission_id, "
                        f"_file AS source_file, _row AS source_row FROM read_parquet({_literal(literal_path(path))})")
        for ddl in (SUBMISSIONS_DDL, ISSUES_DDL, RULE_RESULTS_DDL, COLLECTION_DDL):
            db.run(con, ddl)
        center = result.center_id or NO_CENTER
        sid = "(this submission, not ingested)"
        if getattr(result, "collection", None) is not None:
            collection.write(con, result.collection, center, sid)
        write_submission(con, sid, center, label, "checked, not stored", result,
                         submitted_at=dt.datetime.now().replace(microsecond=0),
                         mapping_file=str(mapping) if mapping else None)
        write_findings(con, result.issues.select(ISSUE_COLUMNS), result.rules, center, sid)
        src = QASource(con, "submission", label)
        if result.center_id is None:
            src.notes.append("The submission does not come from exactly one center (check center_id in "
                             f"patients); its issues are listed under '{NO_CENTER}'.")
        src.views = install_views_safely(con, definitions, src.notes)
        return src
    except BaseException:
        con.close()
        raise


def install_views_safely(con: duckdb.DuckDBPyConnection, definitions: dict[str, Any] | None,
                         notes: list[str]) -> set[str]:
    """Install the derived views; when that fails, install the view files one by one so the
    sections whose views work still appear. Returns the names of the views available."""
    before = _relations(con)
    try:
        derive.install_views(con, definitions)
    except Exception as exc:  # noqa: BLE001 - degrade to the views that do work
        notes.append(f"Not every derived view could be installed ({type(exc).__name__}: {exc}); "
                     "sections that need a missing view say so.")
        try:
            derive.create_macros(con, derive.definition_macros(definitions), temporary=False)
        except Exception as exc2:  # noqa: BLE001
            notes.append(f"The definitions could not be applied ({exc2}); no derived view is available.")
            return set()
        for file_name in derive.VIEW_FILES:  # read at the call: a test leaves one out
            try:
                for sql in derive.view_statements(file_name):
                    db.run(con, sql)
            except Exception as exc3:  # noqa: BLE001
                notes.append(f"View file {file_name} not installed: {type(exc3).__name__}: {exc3}")
    return _relations(con) - before
