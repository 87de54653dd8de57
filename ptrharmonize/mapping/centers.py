"""One export, several centers (issue 19): a REDCap project whose data access groups are centers,
or any file whose column names each row's center, is split into one submission per center.

A mapping is for several centers when the value map of its `center_id` column names more than
one center (`dag: {seattle: US-SEA, portland: US-POR}`). Then each row's center comes from its
own cell, so the mapping has no top-level `center_id`, and every block maps `center_id` from a
column through an exact value map: no `default:` and no `unmapped: drop` (a row of a group the
map does not name would be given to a guessed center, or silently lost).

The split (`split_submission`) keeps each center's rows as a submission of its own: its own
validation, issue list, rule results, thresholds and transaction in the store. A row whose
center is blank, or not one the map names, belongs to no center: it is returned apart, for an
issue at its row and column (`validate/unassigned.py`), and is never stored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import polars as pl

from ..cdm import FILE_COL, ROW_COL
from ..center_id import center_id_problem
from ..submission import Submission
from .language import CENTER_COLUMN
from .model import SourceBlock


def center_targets(blocks: list[SourceBlock]) -> list[str]:
    """The centers the `center_id` value maps of the blocks name, in order of first mention."""
    out: list[str] = []
    for b in blocks:
        cm = b.columns.get(CENTER_COLUMN)
        if cm is None or cm.values is None:
            continue
        for t in cm.values.targets():
            if t is not None and t not in out:
                out.append(t)
    return out


def several_centers_problems(top_center: Any, blocks: list[SourceBlock]) -> list[dict[str, str]]:
    """What a mapping for several centers must not do (errors); [] for a one-center mapping."""
    centers = center_targets(blocks)
    if len(centers) < 2:
        return []
    named = ", ".join(centers)
    out = []
    if top_center is not None:
        out.append({"level": "error", "where": "center_id",
                    "message": f"the value map of center_id names several centers ({named}): each row's center "
                               "comes from its own cell, so remove the top-level center_id"})
    for b in blocks:
        cm = b.columns.get(CENTER_COLUMN)
        where = f"{b.where}.columns.{CENTER_COLUMN}"
        if cm is None or cm.is_constant or not cm.column or cm.values is None:
            out.append({"level": "error", "where": where,
                        "message": f"a mapping for several centers ({named}) maps center_id in every table from the "
                                   "column that names the row's center (redcap_data_access_group), with its value map"})
            continue
        vm = cm.values
        if vm.has_default or any(t is not None and "$" in t for _, t in vm.patterns):
            out.append({"level": "error", "where": where,
                        "message": "the center of a row is never guessed: no `default:` and no $-template in the "
                                   "value map of center_id; a group it does not name is reported at its row"})
        if cm.unmapped == "drop":
            out.append({"level": "error", "where": where,
                        "message": "`unmapped: drop` would lose the rows of a group the value map does not name; "
                                   "they are reported at their rows instead (leave `unmapped` out)"})
        for t in vm.targets():
            _, why = center_id_problem(t)
            if t is not None and why:
                out.append({"level": "error", "where": where, "message": f"'{t}': {why}"})
    return out


def mapping_centers(blocks: list[SourceBlock]) -> list[str] | None:
    """The centers of a mapping for several centers, None for a mapping of one center."""
    centers = center_targets(blocks)
    return centers if len(centers) > 1 else None


@dataclass
class Split:
    """An export split by center: a submission per center that has rows (in the map's order),
    the rows of no center by table, the centers named but absent, and each table's rows."""

    parts: list[Submission]
    unassigned: dict[str, pl.DataFrame]
    absent: list[str]
    totals: dict[str, int]


def split_submission(sub: Submission, centers: list[str], keep: tuple[str, ...] = ()) -> Split:
    """Each center's frames are the export's, filtered lazily: a streamed file is read again
    per center, never held whole; the rows of no center are collected (their place, center and
    the `keep` columns, e.g. the patient code, only)."""
    present: set[str] = set()
    unassigned: dict[str, pl.DataFrame] = {}
    totals: dict[str, int] = {}
    for table, frame in sub.tables.items():
        lf = frame.lazy()
        names = lf.collect_schema().names()
        if CENTER_COLUMN not in names:
            continue
        counts = lf.group_by(CENTER_COLUMN).len().collect()
        totals[table] = int(counts.get_column("len").sum())
        values = counts.get_column(CENTER_COLUMN).to_list()
        present |= {v for v in values if v in centers}
        if any(v is None or v not in centers for v in values):
            cols = [FILE_COL, ROW_COL, CENTER_COLUMN, *(c for c in keep if c in names)]
            unassigned[table] = (lf.filter(pl.col(CENTER_COLUMN).is_null() | ~pl.col(CENTER_COLUMN).is_in(centers))
                                 .select(cols).sort(ROW_COL).collect())
    parts = [replace(sub, tables={t: f.lazy().filter(pl.col(CENTER_COLUMN) == c) for t, f in sub.tables.items()},
                     center_id=c)
             for c in centers if c in present]
    return Split(parts, unassigned, [c for c in centers if c not in present], totals)
