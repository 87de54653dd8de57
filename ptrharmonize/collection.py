"""What a center collects: which CDM tables and columns a submission holds, and which not.

Three states are kept apart everywhere (issue 16; CDM v1: "an absent table means not collected
... Empty means unknown"): a fact is *known*, *unknown* (an empty cell: not recorded for this
patient) or *not collected* (the center does not collect that table or column at all). The
last is a property of the submission, not of a cell, so it is recorded here, once per center
and submission, in the store table `collection`, and the derived views read it: a center that
does not collect bleeding gets NULL bleeding outcomes, not "no bleeding".

A table or column is not collected when
- the submission has no such table (an absent file, or a mapping without the table),
- the table is there but the column is not (a canonical file without the column, a mapping
  that does not map it), or
- the mapping declares it: `not_collected: [bleeding_events, transfusions.storage_h]`. A
  declaration wins over a column the files happen to carry (a column of blanks exported by a
  system that has the field but whose center never fills it).

A center whose store rows have no `collection` record (a store written before this record
existed, or tables inserted by hand) is taken as collecting everything: the views then behave
as before, and `run-analysis` says so in its notes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from .cdm import Catalog, load_catalog

COLLECTION_DDL = """
CREATE TABLE IF NOT EXISTS collection (
  submission_id VARCHAR,
  center_id VARCHAR,
  "table" VARCHAR,
  "column" VARCHAR,        -- NULL: the table itself
  collected BOOLEAN,
  how VARCHAR              -- submitted | absent | declared
)
"""

COLLECTION_SCHEMA: dict[str, pl.DataType] = {
    "table": pl.Utf8(),
    "column": pl.Utf8(),
    "collected": pl.Boolean(),
    "how": pl.Utf8(),
}

# Tables every submission must carry: never "not collected" (validation reports them missing).
KEY_COLUMNS = ("center_id", "patient_id")


@dataclass(frozen=True)
class Declaration:
    """`not_collected:` of a mapping, checked against the CDM."""

    tables: frozenset[str]
    columns: frozenset[tuple[str, str]]
    problems: tuple[str, ...] = ()


def parse_declaration(entries: Any, catalog: Catalog | None = None) -> Declaration:
    """`[table, table.column, ...]` -> a Declaration; unknown names and required tables or key
    columns (which a center cannot leave out) are problems, not silently ignored."""
    catalog = catalog or load_catalog()
    if entries is None:
        return Declaration(frozenset(), frozenset())
    if isinstance(entries, str):
        entries = [entries]
    problems: list[str] = []
    tables: set[str] = set()
    columns: set[tuple[str, str]] = set()
    if not isinstance(entries, list):
        return Declaration(frozenset(), frozenset(),
                           ("not_collected must be a list of table or table.column names",))
    for e in entries:
        if not isinstance(e, str) or not e.strip():
            problems.append(f"not_collected: {e!r} is not a table or table.column name")
            continue
        table, _, column = e.strip().partition(".")
        spec = catalog.tables.get(table)
        if spec is None:
            problems.append(f"not_collected: '{table}' is not a CDM table")
            continue
        if not column:
            if spec.required_table:
                problems.append(f"not_collected: '{table}' is required and cannot be declared not collected")
            else:
                tables.add(table)
            continue
        if column not in spec.column_names:
            problems.append(f"not_collected: '{table}' has no column '{column}'")
        elif column in KEY_COLUMNS:
            problems.append(f"not_collected: '{table}.{column}' identifies the rows and cannot be left out")
        else:
            columns.add((table, column))
    return Declaration(frozenset(tables), frozenset(columns), tuple(problems))


def declared_in_mapping(mapping_file: Path | None, catalog: Catalog | None = None) -> Declaration:
    """The `not_collected:` list of a mapping file (empty without a mapping or the key)."""
    if mapping_file is None or not Path(mapping_file).is_file():
        return Declaration(frozenset(), frozenset())
    import yaml

    try:
        doc = yaml.safe_load(Path(mapping_file).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        # the mapping reader reports a broken file with its line; nothing to add here
        return Declaration(frozenset(), frozenset())
    if not isinstance(doc, dict):
        return Declaration(frozenset(), frozenset())
    return parse_declaration(doc.get("not_collected"), catalog)


def collection_frame(columns: dict[str, list[str]], declared: Declaration | None = None,
                     catalog: Catalog | None = None) -> pl.DataFrame:
    """One row per CDM table (column NULL) and per CDM column: collected or not, and how we know.

    `columns`: the submitted tables and the CDM columns each carries (the engine's record)."""
    catalog = catalog or load_catalog()
    declared = declared or Declaration(frozenset(), frozenset())
    rows: list[dict[str, Any]] = []
    for table, spec in catalog.tables.items():
        present = table in columns
        if table in declared.tables:
            t_state, t_how = False, "declared"
        else:
            t_state, t_how = present, "submitted" if present else "absent"
        rows.append({"table": table, "column": None, "collected": t_state, "how": t_how})
        have = set(columns.get(table, ()))
        for col in spec.column_names:
            if not t_state:
                state, how = False, t_how
            elif (table, col) in declared.columns:
                state, how = False, "declared"
            elif col in have:
                state, how = True, "submitted"
            else:
                state, how = False, "absent"
            rows.append({"table": table, "column": col, "collected": state, "how": how})
    return pl.DataFrame(rows, schema=COLLECTION_SCHEMA)


def not_collected_list(frame: pl.DataFrame) -> dict[str, Any]:
    """`{tables: [...], columns: ["table.column", ...]}` (columns of not-collected tables left
    out): what the QA report and `validate` show."""
    if frame is None or frame.height == 0:
        return {"tables": [], "columns": []}
    off = frame.filter(~pl.col("collected"))
    tables = sorted(off.filter(pl.col("column").is_null())["table"].to_list())
    cols = sorted(f"{r['table']}.{r['column']}" for r in off.filter(pl.col("column").is_not_null())
                  .iter_rows(named=True) if r["table"] not in tables)
    how = {f"{r['table']}" + (f".{r['column']}" if r["column"] else ""): r["how"]
           for r in off.iter_rows(named=True)}
    return {"tables": tables, "columns": cols,
            "how": {k: how[k] for k in [*tables, *cols]}}


def write(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, center: str, submission_id: str) -> None:
    """Replace the center's record (inside the caller's transaction)."""
    con.execute(COLLECTION_DDL).fetchall()
    con.execute("DELETE FROM collection WHERE center_id = ?", [center]).fetchall()
    con.register("_new_collection", frame.to_arrow())
    try:
        con.execute('INSERT INTO collection SELECT ?, ?, "table", "column", collected, how '
                    "FROM _new_collection", [submission_id, center]).fetchall()
    finally:
        con.unregister("_new_collection")
