"""A submission: what one center sent, as CDM-shaped frames that remember their source rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import polars as pl


@dataclass
class Submission:
    """CDM table name -> frame with CDM column names plus `_file` (Utf8) and `_row` (Int64).

    Values are either the text written in the file (the engine parses it, so that a bad cell
    becomes one issue instead of a failed read) or already typed by a mapping.
    `files` lists every source file read, for checksums; `read_issues` holds problems found
    while reading (an issue-table frame), which the engine merges into its own table.
    """

    tables: dict[str, pl.LazyFrame | pl.DataFrame]
    source_path: Path
    center_id: str | None = None
    files: list[Path] = field(default_factory=list)
    mapping_file: Path | None = None
    read_issues: pl.DataFrame | None = None
    # Mapped submissions: per table, lazy queries of the cells as the center wrote them
    # (`mapping/written.py`), run for the issue list's flagged rows only.
    written: dict[str, list[pl.LazyFrame]] = field(default_factory=dict)
    # Mapped submissions: per table, the (file, header) of every source column the mapping does
    # not read. Never stored, but a center must not send a column named like an identifier
    # (phi.yaml) even unread: the structural check names it.
    unread_columns: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    # An export for several centers (mapping/centers.py): the centers its mapping names, each
    # split into a submission of its own before validation; None for one center.
    centers: list[str] | None = None
