"""A submitted column that the CDM does not know (it is ignored)."""

from __future__ import annotations

from . import Check

CHECK = Check(
    name="unknown_column",
    level="structure",
    severity="warning",
    message="Column '{column}' is not part of the common data model for {table}; it will be ignored. Check its spelling if it should be used.",
)
