"""The derived views, installed in the store itself, so that the registry is usable without ptrh.

`derive.install_views` creates the views (PTR, CCI, CRS grades, `patient_summary`...) and the
`def_*()` macros holding the definitions' thresholds in a DuckDB connection. `run-analysis`
does that per run, in memory, over a read-only store (its `--config` never changes what other
readers see). This module writes the same views and macros *into the store file*: an analyst who
opens `registry.duckdb` in the DuckDB CLI, in R (`duckdb` package) or in Python finds
`patient_summary` and the other views beside the base tables, computed with the registry's
definitions (`derivation_definitions` lists every value in force). Ingest calls it after each
stored submission; `ptrh views --store S [--config F]` re-installs them, for example after the
registry changes a definition.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb

from .cdm import load_definitions
from .derive import VIEW_NAMES, install_views
from .errors import UserError
from .lock import StoreLock
from .store import connect as connect_store
from .store import create_schema


def install_store_views(con: duckdb.DuckDBPyConnection, definitions: dict[str, Any] | None = None) -> list[str]:
    """Create (or replace) the derived views and definition macros, persistent, in the database
    `con` is connected to (the store). The CDM tables must exist. Returns the view names."""
    install_views(con, definitions if definitions is not None else load_definitions())
    return [*VIEW_NAMES, "derivation_definitions"]


def install_views_in_store(store: Path, config: Path | None = None, wait_s: float = 0.0) -> list[str]:
    """`ptrh views`: open the store for writing (one writer at a time), install the views with
    the definitions (`config` merged over the registry's), and close it. Returns the view names."""
    store = Path(store)
    if not store.is_file():
        raise UserError(f"no store at {store}: create it with `ptrh ingest EXTRACT --store {store}`")
    if config is not None and not Path(config).is_file():
        raise UserError(f"--config: no such file: {config}")
    definitions = load_definitions(Path(config) if config is not None else None)
    with StoreLock(store, wait_s):
        try:
            con = connect_store(store)
        except duckdb.Error as exc:
            raise UserError(f"{store}: cannot open the store ({str(exc).splitlines()[0]})") from None
        try:
            create_schema(con)  # an older store may lack a table the views read
            con.execute("BEGIN TRANSACTION")
            try:
                names = install_store_views(con, definitions)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("CHECKPOINT")
        finally:
            con.close()
    return names
