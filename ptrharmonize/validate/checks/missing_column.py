"""A CDM column is absent from a submitted table's header."""

from __future__ import annotations

from . import Check

CHECK = Check(
    name="missing_column",
    level="structure",
    message="Column '{column}' ({label}) is missing from the {table} file. Add the column, even if some cells are empty.",
)
