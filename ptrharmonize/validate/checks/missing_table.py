"""A table declared `required_table: true` was not submitted (evaluated from the file list)."""

from __future__ import annotations

from . import Check

CHECK = Check(
    name="missing_table",
    level="structure",
    category="completeness",
    message="The file for table '{table}' is missing from the submission. It is required: add {table}.csv or {table}.parquet.",
    table_attributes={"required_table": (bool, False)},
)
