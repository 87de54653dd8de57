"""Apply a mapping to a submission folder: each block's file is opened by the readers, its
columns checked against the mapping, and its plan built; the result is a `Submission`."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ..cdm import FILE_COL, ROW_COL, Catalog, load_catalog
from ..read import ReadError, format_of
from ..submission import Submission
from .centers import mapping_centers
from .language import MappingError, load_mapping, resolve_in
from .model import Mapping, SourceBlock, roles
from .parse import parse_mapping
from .plan import Source, plan_block
from .readers import companion_files, open_source
from .written import written_frame


def _check_columns(block: SourceBlock, source_cols: list[str]) -> None:
    """Every column the block names is in the file, once."""
    needed = block.source_columns()
    missing = [c for c in needed if c not in source_cols]
    if missing:
        raise MappingError(
            block.file,
            f"column(s) {', '.join(repr(m) for m in missing)} named in the mapping ({block.where}) are not in the file; "
            f"its columns are: {', '.join(source_cols)}",
        )
    # The readers name a repeated header `x`, `x.1`, ...: a mapping that names `x` could mean either.
    ambiguous = [c for c in needed if f"{c}.1" in source_cols]
    if ambiguous:
        raise MappingError(
            block.file,
            f"column(s) {', '.join(repr(a) for a in ambiguous)} named in the mapping ({block.where}) appear more "
            "than once in the file's header; rename the copies so that each column has its own name",
        )


def read_block(block: SourceBlock, root: Path, stream: bool = True) -> tuple[Source, Path]:
    """The block's file as a `Source` (columns renamed to internal names), and its path."""
    path = resolve_in(root, block.file)
    lf = open_source(path, root, block, stream)
    schema = lf.collect_schema()
    source_cols = [c for c in schema.names() if c not in (FILE_COL, ROW_COL)]
    _check_columns(block, source_cols)
    safe = {c: f"__s{i}" for i, c in enumerate(source_cols)}
    lf = lf.rename(safe)  # literal renames: source names never reach an expression as patterns
    internal = {safe[c]: schema[c] for c in source_cols}
    return Source(lf=lf, schema=internal, safe=safe, block=block, excel=format_of(path, block.fmt) == "excel"), path


def usable_mapping(mapping_path: Path, root: Path, catalog: Catalog) -> Mapping:
    """The parsed mapping, or MappingError listing its errors (the folder must exist)."""
    if not root.is_dir():
        raise ReadError(str(root), message="submission folder not found")
    m = parse_mapping(load_mapping(mapping_path), mapping_path, catalog)
    errors = [p for p in m.problems if p["level"] == "error"]
    if errors:
        lines = "; ".join(f"{p['where']}: {p['message']}" for p in errors[:10])
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        raise MappingError(mapping_path.name, f"the mapping has {len(errors)} error(s): {lines}{more}", errors)
    return m


def mapped_files(mapping_path: Path, submission_folder: Path, catalog: Catalog | None = None) -> list[Path]:
    """The files a mapped submission consists of, without reading them: what its checksums cover
    (the same list, in the same order, as `apply_mapping(...).files`)."""
    root = Path(submission_folder)
    m = usable_mapping(Path(mapping_path), root, catalog or load_catalog())
    return list(dict.fromkeys(resolve_in(root, f) for block in m.blocks for f in [block.file, *companion_files(block)]))


def apply_mapping(mapping_path: Path, submission_folder: Path, catalog: Catalog | None = None,
                  lazy: bool = False) -> Submission:
    """Read a center's submission folder through its mapping; return CDM-shaped frames.

    `lazy=True` returns each table as a LazyFrame that reads, recodes, converts and parses the
    center's files as it streams (the validation engine sinks it to its typed stage); the
    default collects them. Raises MappingError for an invalid mapping (every structural problem
    listed) or one that does not fit the files (a named source column absent), and ReadError
    for a file that cannot be read. Bad cells never raise: they stay as written for validation."""
    catalog = catalog or load_catalog()
    mapping_path = Path(mapping_path)
    root = Path(submission_folder)
    m = usable_mapping(mapping_path, root, catalog)
    cdm = roles(catalog)
    files: list[Path] = []
    frames: dict[str, list[pl.LazyFrame]] = {}
    written: dict[str, list[pl.LazyFrame]] = {}
    unread: dict[str, list[tuple[str, str]]] = {}
    for block in m.blocks:
        src, path = read_block(block, root, stream=lazy)
        read_cols = set(block.source_columns())
        unread.setdefault(block.table, []).extend((block.file, c) for c in src.safe if c not in read_cols)
        files += [path, *(resolve_in(root, f) for f in companion_files(block))]
        frames.setdefault(block.table, []).append(plan_block(src, m, catalog.tables[block.table], cdm))
        w = written_frame(src, cdm)  # run for the flagged rows only (validate/written.py)
        if w is not None:
            written.setdefault(block.table, []).append(w)
    tables: dict[str, pl.DataFrame | pl.LazyFrame] = {}
    for t, fs in frames.items():
        lf = fs[0] if len(fs) == 1 else pl.concat(fs, how="vertical")
        tables[t] = lf if lazy else lf.collect()
    return Submission(tables=tables, source_path=root, center_id=m.center_id, files=list(dict.fromkeys(files)),
                      mapping_file=mapping_path, written=written, unread_columns=unread,
                      centers=mapping_centers(m.blocks))
