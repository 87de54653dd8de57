"""The content of a store as comparable data, for tests that say "the store is exactly as it was"
or "these two stores hold the same"."""

from __future__ import annotations

from pathlib import Path

import duckdb


def snapshot(store: Path, tables: list[str] | None = None, without: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """Every row of every table (or of `tables`), sorted, leaving out the columns `without`
    (e.g. the random submission ids when two stores are compared)."""
    con = duckdb.connect(str(store), read_only=True)
    try:
        names = tables or sorted(r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall())
        out = {}
        for t in names:
            cols = [c for (c,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
                [t]).fetchall() if c not in without]
            sel = ", ".join('"' + c.replace('"', '""') + '"' for c in cols)
            out[t] = sorted(map(repr, con.execute(f'SELECT {sel} FROM "{t}"').fetchall()))
        return out
    finally:
        con.close()
