"""The study's clinical derivations, installed as SQL views over the store.

The views live in `ptrharmonize/views/*.sql`, one readable file per derivation. No threshold
is written in them: every threshold is a call to a DuckDB macro `def_<section>_<key>()` made
from `schemas/definitions.yaml` (merged with an analyst's `--config`) by `definition_sql`, which
also holds the CRS grade the validation engine needs before anything is stored.

Entry points:
- `install_views(con, definitions)`: every view over the store tables of `store.create_schema`.
- `definition_macros(definitions)` (from `definition_sql`): the validated `(macro, key, literal)`
  triples, for reports.
"""

from __future__ import annotations

import re
from typing import Any

import duckdb

from .definition_sql import (  # noqa: F401 - re-exported: derive is where the analyses find them
    _NAME_RE,
    VIEWS_DIR,
    DefinitionError,
    create_macros,
    definition_macros,
    install_crs_graded,
    view_statements,
)

# Installation order: each file only reads tables and views created before it.
VIEW_FILES: tuple[str, ...] = (
    "patient_index.sql",
    "collection.sql",
    "bsa.sql",
    "transfusion_cci.sql",
    "ptr.sql",
    "crs_masking.sql",
    "crs_graded.sql",
    "crs.sql",
    "transfusion_il6.sql",
    "lab_daily.sql",
    "followup.sql",
    "recovery.sql",
    "platelet_dose.sql",
    "bleeding.sql",
    "peaks.sql",
    "exposures.sql",
    "patient_summary.sql",
    "missing.sql",
)

# Every view the files create, in order (checked by the tests against the files).
VIEW_NAMES: tuple[str, ...] = (
    "patient_index",
    "center_collects",
    "patient_bsa",
    "transfusion_units",
    "transfusion_events",
    "transfusion_cci",
    "patient_ptr",
    "crs_fever_masking",
    "crs_graded",
    "patient_crs",
    "transfusion_il6",
    "lab_daily",
    "lab_runs",
    "patient_followup",
    "patient_recovery",
    "patient_platelet_dose",
    "patient_bleeding",
    "patient_peaks",
    "patient_exposures",
    "patient_summary",
    "patient_missing",
)

def _create_definitions_view(con: duckdb.DuckDBPyConnection, macros: list[tuple[str, str, str]], temporary: bool) -> None:
    """`derivation_definitions(key, macro, value)`: what the installed views use, as text."""
    temp = "TEMP " if temporary else ""
    parts = [
        f"SELECT '{key}' AS key, 'def_{name}' AS macro, CAST(def_{name}() AS VARCHAR) AS value"
        for name, key, _literal in macros
        if _NAME_RE.match(name) and re.fullmatch(r"[a-z0-9_.]+", key)
    ]
    con.execute(f"CREATE OR REPLACE {temp}VIEW derivation_definitions AS\n" + "\nUNION ALL ".join(parts))


def install_views(
    con: duckdb.DuckDBPyConnection,
    definitions: dict[str, Any] | None = None,
    *,
    temporary: bool = False,
) -> None:
    """Create (or replace) every derived view over the store tables.

    The CDM tables must exist (`store.create_schema`). With `temporary=True` the macros and
    views are session-local, so an analysis can apply its own `--config` to a store opened
    read-only without changing what other readers of the file see.
    """
    macros = definition_macros(definitions)
    create_macros(con, macros, temporary)
    _create_definitions_view(con, macros, temporary)
    _ensure_collection(con)
    for name in VIEW_FILES:
        for sql in view_statements(name, temporary):
            con.execute(sql)


def _ensure_collection(con: duckdb.DuckDBPyConnection) -> None:
    """The views read `collection` (which tables and columns each center collects, written at
    ingest). A connection without it (a store from before the record, hand-made tables) gets
    an empty session-local one: every center is then taken as collecting everything."""
    try:
        con.execute("SELECT * FROM collection LIMIT 0").fetchall()
    except duckdb.CatalogException:
        from .collection import COLLECTION_DDL

        con.execute(COLLECTION_DDL.replace("CREATE TABLE", "CREATE TEMP TABLE", 1)).fetchall()


