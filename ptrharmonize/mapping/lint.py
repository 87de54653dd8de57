"""`lint_mapping`: every problem of a mapping, with or without the submission it reads.

Without data: what `parse_mapping` finds (unknown keys, tables, columns, units, value-map
targets, formats, unsafe paths, unmapped required columns). With the folder: also files that
are missing or unreadable and source columns the files do not have."""

from __future__ import annotations

import re
from pathlib import Path

from ..cdm import FILE_COL, ROW_COL, Catalog, load_catalog
from ..read import ReadError, read_source
from .centers import mapping_centers
from .coverage import uncovered_values
from .language import CENTER_COLUMN, check_relative_path, load_mapping, resolve_in
from .language import problem as _p
from .model import SourceBlock
from .parse import parse_mapping


def _references(block: SourceBlock) -> list[tuple[str, str]]:
    """(where in the mapping, source column) for every source column the block names."""
    refs: list[tuple[str, str]] = []
    for name, cm in block.columns.items():
        if cm.column:
            refs.append((f"{block.where}.columns.{name}", cm.column))
        if cm.time_column:
            refs.append((f"{block.where}.columns.{name}.time_column", cm.time_column))
    for a, cm in (block.unpivot or {}).items():
        if cm.column:
            refs.append((f"{block.where}.unpivot.{a}", cm.column))
    if block.rows:
        refs.append((f"{block.where}.rows", str(block.rows["column"])))
    return refs


def _check_block_data(block: SourceBlock, root: Path, catalog: Catalog, skip: set[str]) -> list[dict[str, str]]:
    if check_relative_path(block.file):
        return []  # reported by the parse
    try:
        path = resolve_in(root, block.file)
        if not path.exists():
            return [_p("error", f"{block.where}.file", f"file '{block.file}' is not in the submission folder")]
        # Read whole (not streamed): the lint also finds what breaks a file's rows.
        frame = read_source(path, root, block.fmt, **block.reader_options)
    except ReadError as exc:
        return [_p("error", f"{block.where}.file", str(exc))]
    have = set(frame.columns) - {FILE_COL, ROW_COL}
    missing = [
        _p("error", where, f"source column '{col}' is not in {block.file} (its columns: {', '.join(sorted(have))})")
        for where, col in _references(block) if col not in have
    ]
    return missing or uncovered_values(block, frame, catalog, skip)


def lint_mapping(mapping_path: Path, submission_folder: Path | None = None, catalog: Catalog | None = None) -> list[dict[str, str]]:
    """Problems in a mapping file, as dicts {level: error|warning, where, message}."""
    catalog = catalog or load_catalog()
    mapping_path = Path(mapping_path)
    m = parse_mapping(load_mapping(mapping_path), mapping_path, catalog)
    problems = list(m.problems)
    if submission_folder is None:
        return problems
    root = Path(submission_folder)
    if not root.is_dir():
        problems.append(_p("error", "--data", f"submission folder '{root}' not found"))
        return problems
    several = mapping_centers(m.blocks) is not None
    for block in m.blocks:  # the center column of an export of several centers: _center_coverage
        problems += _check_block_data(block, root, catalog, {CENTER_COLUMN} if several else set())
    if several and not any(p["level"] == "error" and not p["where"].endswith(".values") for p in problems):
        problems += _center_coverage(m.blocks, root)
    return problems


def _center_coverage(blocks: list[SourceBlock], root: Path) -> list[dict[str, str]]:
    """An export of several centers: the groups (center column values) of its rows that the
    value map of center_id does not name, and its rows with none, once per file and column.
    Validation reports each such row and stores none of them."""
    import polars as pl

    out, seen = [], set()
    for b in blocks:
        cm = b.columns.get(CENTER_COLUMN)
        if cm is None or not cm.column or cm.values is None or (b.file, cm.column) in seen:
            continue
        seen.add((b.file, cm.column))
        try:
            col = read_source(resolve_in(root, b.file), root, b.fmt, **b.reader_options).get_column(cm.column)
        except (ReadError, pl.exceptions.ColumnNotFoundError):
            continue
        text = col.cast(pl.Utf8).str.strip_chars()
        blank = int((text.is_null() | (text == "")).sum())
        known = set(cm.values.exact)
        others = sorted({v for v in text.drop_nulls().to_list() if v and v.casefold() not in known
                         and not any(re.search("(?i)" + rx, v) for rx, _ in cm.values.patterns)})
        if others or blank:
            what = ([f"the value(s) {', '.join(repr(v) for v in others[:10])}"] if others else []) + \
                   ([f"{blank} row(s) with none"] if blank else [])
            out.append(_p("error", f"{b.where}.columns.{CENTER_COLUMN}",
                          f"{cm.column} in {b.file} holds {' and '.join(what)}, which the value map of center_id "
                          "does not name: those rows belong to no center; validation reports each and stores none"))
    return out


def source_columns(mapping_path: Path) -> dict[str, dict[str, str]]:
    """CDM table -> CDM column -> the source column that feeds it (for messages that name the
    center's own column instead of the CDM's)."""
    return sources(mapping_path)[0]


def sources(mapping_path: Path) -> tuple[dict[str, dict[str, str]], list[dict[str, str | None]]]:
    """From one parse of the mapping: the source column of each CDM column (`source_columns`),
    and (table, file, sheet, format) of each block, where a nurse finds a row of that table (a
    workbook's sheet; for SPSS, a case number rather than a row)."""
    from ..read import format_of
    from .model import roles

    catalog = load_catalog()
    m = parse_mapping(load_mapping(Path(mapping_path)), Path(mapping_path), catalog)
    measurement = roles(catalog).measurement
    columns: dict[str, dict[str, str]] = {}
    places: list[dict[str, str | None]] = []
    for b in m.blocks:
        cols = columns.setdefault(b.table, {})
        for name, cm in b.columns.items():
            if cm.column and name not in cols:
                cols[name] = cm.column
        if b.unpivot and measurement is not None:
            cols.setdefault(measurement.value, " / ".join(cm.column for cm in b.unpivot.values() if cm.column))
        try:
            fmt = format_of(Path(b.file), b.fmt)
        except Exception:  # noqa: BLE001 - an unknown format is the lint's to report
            fmt = None
        sheet = b.reader_options.get("sheet")
        places.append({"table": b.table, "file": b.file, "sheet": None if sheet is None else str(sheet),
                       "format": fmt})
    return columns, places
