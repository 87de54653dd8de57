"""Profile a center's files as they are: per file, sheet and column, what is in it.

The first step of onboarding a center (OHDSI's WhiteRabbit does this for OMOP): before anyone
writes a mapping, see each column's inferred type, how much of it is empty, how many distinct
values it has, its range, its most frequent values and the date format it is written in. Values
seen fewer than `min_count` times are never shown (they may be identifiers), and neither are
the values of a column that looks like an identifier. A column whose name says it holds a direct
identifier (`schemas/phi.yaml` `columns.name_pattern`: Nom, Date de naissance, Geboortedatum,
MRN, ...) shows nothing of its values, not even its range: the smallest and largest birth date
are two patients' birth dates.

Every file the readers take is profiled: CSV (encoding and delimiter sniffed), every sheet of
an Excel workbook (its header row found below any title rows), Parquet and SPSS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from ..read import FORMATS, ReadError, display_name, read_source

TOP_VALUES = 10
_NUMBER = re.compile(r"^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$")
_THOUSANDS_DOT = re.compile(r"^[+-]?\d{1,3}(\.\d{3})+(,\d+)?$")


@dataclass
class ColumnProfile:
    """What one source column holds (no value seen fewer than `min_count` times)."""

    file: str
    sheet: str | None
    column: str
    position: int
    n_rows: int
    n_empty: int
    n_distinct: int
    kind: str                      # integer, decimal, date, timestamp, text, empty
    decimal: str | None = None     # "," when the numbers are written with a decimal comma
    minimum: str | None = None
    maximum: str | None = None
    median: float | None = None
    date_format: str | None = None
    top: list[tuple[str, int]] = field(default_factory=list)
    hidden_values: int = 0         # distinct values not shown (seen < min_count times)
    identifier_like: bool = False
    direct_identifier: bool = False  # named like a direct identifier (phi.yaml): no value, no range shown
    values: list[str] = field(default_factory=list, repr=False)  # distinct values (for drafting; never rendered)

    @property
    def fraction_empty(self) -> float:
        return self.n_empty / self.n_rows if self.n_rows else 1.0


@dataclass
class FileProfile:
    file: str
    sheet: str | None
    format: str
    header_row: int
    n_rows: int
    columns: list[ColumnProfile]
    error: str | None = None


def identifier_name_pattern() -> re.Pattern[str] | None:
    """The identifier column-name pattern of the catalog in use (phi.yaml), or None."""
    from ..cdm import load_catalog

    spec = ((load_catalog().phi or {}).get("columns") or {}).get("name_pattern")
    return re.compile(spec) if spec else None


def scan_folder(folder: Path, lexicon: dict[str, Any], min_count: int = 5,
                identifier_names: re.Pattern[str] | None = None, skip: set[Path] | None = None) -> list[FileProfile]:
    """Profile every readable file under `folder` (sorted by path); a file that cannot be read
    is listed with its reason instead of stopping the scan. A column whose name matches
    `identifier_names` is a direct identifier: nothing of its values is shown."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReadError(str(folder), message="not a folder")
    out: list[FileProfile] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS
                       and p.resolve() not in (skip or set())):
        display = display_name(path, folder)
        fmt = FORMATS[path.suffix.lower()]
        try:
            for sheet, header_row, frame in _frames(path, folder, fmt):
                prof = profile_frame(frame, display, sheet, fmt, header_row, lexicon, min_count)
                for c in prof.columns:
                    if identifier_names is not None and identifier_names.match(c.column):
                        hide_values(c)
                out.append(prof)
        except ReadError as exc:
            out.append(FileProfile(display, None, fmt, 1, 0, [], error=str(exc)))
    return out


def hide_values(c: ColumnProfile) -> None:
    """A direct identifier's column: its values, range and median are never shown (its
    distinct values stay in memory for the drafter, which never renders them)."""
    c.direct_identifier = c.identifier_like = True
    c.top, c.minimum, c.maximum, c.median = [], None, None, None


def _frames(path: Path, root: Path, fmt: str):
    if fmt == "spss":  # the labels a person sees (Maschio), not the stored numbers
        yield None, 1, read_source(path, root, value_labels=True)
        return
    if fmt != "excel":
        yield None, 1, read_source(path, root)
        return
    from ..read.bounded import bounded

    # The sheets and their header rows, found by calamine in the bounded reader process.
    sheets = bounded(display_name(path, root), _sheet_headers, path, root)
    for name, header in sheets.iter_rows():
        if header is None:
            continue
        yield name, header, read_source(path, root, sheet=name, header_row=header)


def _sheet_headers(path: Path, root: Path) -> pl.DataFrame:
    """Each sheet of a workbook and the row its header is on (None: no header found)."""
    import python_calamine

    from ..read.excel import check_sheet_size

    wb = python_calamine.CalamineWorkbook.from_path(str(path))
    names, headers = [], []
    for name in wb.sheet_names:
        # The sheet's extent first: calamine aborts the process on a cell at XFD1048576.
        check_sheet_size(path, name, display_name(path, root))
        rows = wb.get_sheet_by_name(name).to_python(skip_empty_area=False, nrows=20)
        names.append(name)
        headers.append(header_row_of(rows[:20]))
    return pl.DataFrame({"sheet": names, "header": headers}, schema={"sheet": pl.Utf8, "header": pl.Int64})


def header_row_of(rows: list[list[Any]]) -> int | None:
    """The sheet row (1-based) holding the column names: the first row, among the first 20,
    whose cells are mostly filled with distinct text and that has at least two of them (a title
    row has one cell, a blank row none)."""
    for i, row in enumerate(rows[:20]):
        cells = [str(c).strip() for c in row if c is not None and str(c).strip()]
        if len(cells) >= 2 and len(set(cells)) == len(cells) and \
                sum(not _NUMBER.match(c) for c in cells) >= 0.8 * len(cells) and len(cells) >= 0.5 * len(row):
            return i + 1
    return None


def profile_frame(frame: pl.DataFrame, file: str, sheet: str | None, fmt: str, header_row: int,
                  lexicon: dict[str, Any], min_count: int) -> FileProfile:
    cols = [c for c in frame.columns if c not in ("_file", "_row")]
    profiles = [profile_column(frame.get_column(c), file, sheet, c, i + 1, lexicon, min_count)
                for i, c in enumerate(cols)]
    return FileProfile(file, sheet, fmt, header_row, frame.height, profiles)


def profile_column(s: pl.Series, file: str, sheet: str | None, name: str, position: int,
                   lexicon: dict[str, Any], min_count: int) -> ColumnProfile:
    text = s.cast(pl.Utf8, strict=False).str.strip_chars()
    text = text.set(text == "", None) if text.len() else text
    n_rows = s.len()
    present = text.drop_nulls()
    counts = present.value_counts(sort=True)
    n_distinct = counts.height
    values = present.unique(maintain_order=True).to_list()
    prof = ColumnProfile(file, sheet, name, position, n_rows, n_rows - present.len(), n_distinct, "empty",
                         values=values[:5000])
    if present.len() == 0:
        return prof
    prof.identifier_like = n_distinct >= 0.9 * present.len() and present.len() >= min_count
    _infer(prof, values, present, lexicon)
    # Many distinct texts are identifiers or free text (names can hide in it): never listed.
    prof.identifier_like = prof.identifier_like or (prof.kind == "text" and n_distinct > 30)
    shown = [(str(v), int(n)) for v, n in counts.iter_rows() if n >= min_count]
    prof.hidden_values = n_distinct - len(shown)
    prof.top = [] if prof.identifier_like else shown[:TOP_VALUES]
    return prof


def _infer(prof: ColumnProfile, values: list[str], present: pl.Series, lexicon: dict[str, Any]) -> None:
    sample = values[:2000]
    if all(_NUMBER.match(v) or _THOUSANDS_DOT.match(v) for v in sample):
        prof.decimal = "," if any("," in v for v in sample) and not any("." in v for v in sample) else "."
        nums = present.str.replace(",", ".", literal=True).cast(pl.Float64, strict=False).drop_nulls()
        prof.kind = "integer" if all(re.fullmatch(r"[+-]?\d+", v) for v in sample) else "decimal"
        if nums.len():
            prof.minimum, prof.maximum = _fmt(nums.min()), _fmt(nums.max())
            prof.median = float(nums.median())
        return
    for kind, key in (("timestamp", "timestamp_formats"), ("date", "date_formats")):
        fmt = date_format_of(sample, lexicon.get(key, []))
        if fmt is not None:
            prof.kind, prof.date_format = kind, fmt
            parsed = sorted(datetime.strptime(v, fmt) for v in sample)
            prof.minimum, prof.maximum = parsed[0].isoformat(" "), parsed[-1].isoformat(" ")
            return
    prof.kind = "text"


def date_format_of(values: list[str], formats: list[str]) -> str | None:
    """The first format that parses every value; where two do (03/04/2019), the one that also
    parses the unambiguous values (13/04/2019) wins by being the only one left."""
    for fmt in formats:
        try:
            for v in values:
                datetime.strptime(v, fmt)
        except ValueError:
            continue
        return fmt
    return None


def _fmt(x: float) -> str:
    return f"{x:g}"
