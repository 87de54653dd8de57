"""DuckDB 2.0 idioms in one place.

DuckDB 2.0 changed its Python API: `execute()` leaves a pending result that blocks the next
statement until fetched, relations no longer have `fetchone()`, and `fetch_arrow_table()` is
gone. Every module goes through these helpers so the next API change is fixed once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import polars as pl


def qi(name: str) -> str:
    """Quote an identifier for DuckDB. Every identifier that reaches SQL text goes through here."""
    return '"' + name.replace('"', '""') + '"'


def literal_path(path: Path | str) -> str:
    """A file path for DuckDB's readers, which expand `*`, `?` and `[...]` as a pattern: each is
    escaped as a one-character class, so a folder `G[1]` never reads the files of `G1`."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in str(path))


def run(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> None:
    """Execute a statement and drain its result, so the connection is free for the next one."""
    cur = con.execute(sql, params or [])
    cur.fetchall()


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[tuple]:
    return con.execute(sql, params or []).fetchall()


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    out = con.execute(sql, params or []).fetchall()
    return out[0][0] if out else None


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
    """A query's result as a polars frame (through Arrow)."""
    if params:
        return pl.from_arrow(con.execute(sql, params).to_arrow_table())
    return pl.from_arrow(con.sql(sql).to_arrow_table())
