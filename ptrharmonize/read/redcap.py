"""REDCap project exports: the records CSV ("raw" data, one wide row per record, event and
repeating-instrument instance), read one instrument (form) at a time with the help of the
data dictionary and, for longitudinal projects, the instrument-event mapping.

What an export looks like, and what this reader follows (docs/redcap.md cites each source):
- The records CSV has the record id field first, then `redcap_event_name` (longitudinal),
  `redcap_repeat_instrument` and `redcap_repeat_instance` (repeating instruments or events),
  `redcap_data_access_group` (when exported), then every field, and `<form>_complete` after
  each form (0 Incomplete, 1 Unverified, 2 Complete). A repeating instrument's instances are
  rows of their own whose `redcap_repeat_instrument` names the form; non-repeating forms share
  the record's (or event's) row, where `redcap_repeat_instrument` is blank.
- A checkbox field `x` with choices `c1, label | c2, label` has one column per choice,
  `x___c1`, `x___c2`, holding 1 (checked) or 0 (unchecked). A choice whose code is 0 gives the
  column `x___0`: it is a choice like any other, not "unchecked" (redcapAPI's
  `isZeroCodedCheckField`). Which column is which choice is read from the dictionary, never
  guessed from the suffix.
- REDCap writes 0 in every checkbox column of a form nobody filled in. An instance whose fields
  are all empty, whose checkboxes are all 0 and whose status is blank or 0 was not filled in:
  it is not a row of the form here (so its zeros never become "no"). Within a filled instance a
  0 is a known "unchecked", an empty cell unknown.

The reader returns, for one form: the record id, `redcap_event_name`, `redcap_repeat_instance`
and `redcap_data_access_group` (those the file has), the form's fields as text (a checkbox as
its choice columns, 1/0, plus a column named for the field holding the checked codes joined by
`|`, empty when none is checked), `<form>_complete`, `_file` and `_row` (the records file's row).
"""

from __future__ import annotations

import csv as pycsv
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import polars as pl

from . import ReadError, display_name

# The data dictionary as REDCap's "Data Dictionary" download writes it, and as its API's
# metadata export names the same columns.
DICTIONARY_COLUMNS = {
    "name": ("Variable / Field Name", "field_name"),
    "form": ("Form Name", "form_name"),
    "section": ("Section Header", "section_header"),
    "type": ("Field Type", "field_type"),
    "label": ("Field Label", "field_label"),
    "choices": ("Choices, Calculations, OR Slider Labels", "select_choices_or_calculations"),
    "note": ("Field Note", "field_note"),
    "validation": ("Text Validation Type OR Show Slider Number", "text_validation_type_or_show_slider_number"),
    "min": ("Text Validation Min", "text_validation_min"),
    "max": ("Text Validation Max", "text_validation_max"),
    "identifier": ("Identifier?", "identifier"),
}
REQUIRED = ("name", "form", "type")
CHOICE_TYPES = ("dropdown", "radio", "checkbox")
NO_DATA_TYPES = ("descriptive",)  # a field that holds no value and has no column
SPECIAL = ("redcap_event_name", "redcap_repeat_instrument", "redcap_repeat_instance", "redcap_data_access_group")
EVENT_COLUMNS = ("unique_event_name", "form")
CHECKED_SEPARATOR = "|"


@dataclass
class Field:
    name: str
    form: str
    type: str
    label: str = ""
    choices: list[tuple[str, str]] = field(default_factory=list)  # (code, label), in order
    note: str = ""
    validation: str = ""
    minimum: str = ""
    maximum: str = ""
    identifier: bool = False

    def columns(self) -> list[str]:
        """The records-file column(s) of the field (a checkbox: one per choice)."""
        if self.type in NO_DATA_TYPES:
            return []
        if self.type == "checkbox":
            return [checkbox_column(self.name, code) for code, _ in self.choices]
        return [self.name]


@dataclass
class Dictionary:
    fields: list[Field]

    @property
    def record_id(self) -> str:
        """The record id field: the dictionary's first field (REDCap requires it first)."""
        return self.fields[0].name

    def forms(self) -> list[str]:
        return list(dict.fromkeys(f.form for f in self.fields))

    def of_form(self, form: str) -> list[Field]:
        return [f for f in self.fields if f.form == form and f.name != self.record_id]


def checkbox_column(name: str, code: str) -> str:
    """The export column of one checkbox choice: `field___code` (a code's characters other
    than letters, digits and `_` become `_`, and letters are lower case, as REDCap's export
    field names are)."""
    safe = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in code.strip().lower())
    return f"{name}___{safe}"


def parse_choices(text: str) -> list[tuple[str, str]]:
    """`1, Male | 2, Female` -> [("1", "Male"), ("2", "Female")] (a label may hold commas)."""
    out = []
    for part in (text or "").split("|"):
        code, _, label = part.partition(",")
        if code.strip():
            out.append((code.strip(), label.strip()))
    return out


def _rows(path: Path, display: str) -> list[list[str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ReadError(display, message="file not found") from None
    except UnicodeDecodeError:
        raise ReadError(display, message="a REDCap data dictionary is UTF-8 text; this file is not") from None
    try:
        return [r for r in pycsv.reader(text.splitlines()) if any(c.strip() for c in r)]
    except pycsv.Error as exc:
        raise ReadError(display, message=f"not a readable CSV file: {exc}") from None


def read_dictionary(path: Path, root: Path | None = None) -> Dictionary:
    """The data dictionary CSV (REDCap's download, or the API's metadata export)."""
    display = display_name(Path(path), root)
    rows = _rows(Path(path), display)
    if not rows:
        raise ReadError(display, message="the data dictionary is empty")
    header = [h.strip() for h in rows[0]]
    at: dict[str, int] = {}
    for key, names in DICTIONARY_COLUMNS.items():
        for n in names:
            if n in header:
                at[key] = header.index(n)
                break
    missing = [DICTIONARY_COLUMNS[k][0] for k in REQUIRED if k not in at]
    if missing:
        raise ReadError(display, row=1, message="not a REDCap data dictionary: no column "
                        + ", ".join(f"'{m}'" for m in missing))
    fields = []
    for i, r in enumerate(rows[1:], start=2):
        def cell(key: str, r: list[str] = r) -> str:
            j = at.get(key)
            return r[j].strip() if j is not None and j < len(r) else ""
        name, ftype = cell("name"), cell("type").lower()
        if not name or not cell("form") or not ftype:
            raise ReadError(display, row=i, message="a field needs a variable name, a form name and a field type")
        fields.append(Field(
            name=name, form=cell("form"), type=ftype, label=cell("label"),
            choices=parse_choices(cell("choices")) if ftype in CHOICE_TYPES else [], note=cell("note"),
            validation=cell("validation").lower(), minimum=cell("min"), maximum=cell("max"),
            identifier=cell("identifier").lower() == "y",
        ))
    if not fields:
        raise ReadError(display, message="the data dictionary lists no fields")
    return Dictionary(fields)


def read_event_forms(path: Path, root: Path | None = None) -> dict[str, set[str]]:
    """The instrument-event mapping CSV (arm_num, unique_event_name, form): event -> its forms."""
    display = display_name(Path(path), root)
    rows = _rows(Path(path), display)
    header = [h.strip() for h in rows[0]] if rows else []
    if any(c not in header for c in EVENT_COLUMNS):
        raise ReadError(display, row=1, message="not a REDCap instrument-event mapping: it needs the columns "
                        "unique_event_name and form")
    ev, fm = header.index("unique_event_name"), header.index("form")
    out: dict[str, set[str]] = {}
    for r in rows[1:]:
        if max(ev, fm) < len(r):
            out.setdefault(r[ev].strip(), set()).add(r[fm].strip())
    return out


def _select_rows(df: pl.DataFrame, form: str, events: dict[str, set[str]] | None) -> pl.DataFrame:
    """The rows that can hold the form: its instances if it repeats, else the record's rows."""
    if "redcap_repeat_instrument" in df.columns:
        inst = pl.col("redcap_repeat_instrument")
        repeating = df.filter(inst == form).height > 0
        df = df.filter(inst == form) if repeating else df.filter(inst.is_null())
    if events is not None and "redcap_event_name" in df.columns:
        designated = [e for e, forms in events.items() if form in forms]
        df = df.filter(pl.col("redcap_event_name").is_in(designated))
    return df


def _records(path: Path, root: Path | None, encoding: str | None, delimiter: str | None) -> pl.DataFrame:
    """The records file, read once for all the forms a mapping reads from it (keyed by its size
    and modification time, so a changed file is read again)."""
    st = path.stat()
    return _records_read(str(path), None if root is None else str(root), st.st_size, st.st_mtime_ns, encoding, delimiter)


@lru_cache(maxsize=2)
def _records_read(path: str, root: str | None, size: int, mtime_ns: int, encoding: str | None,
                  delimiter: str | None) -> pl.DataFrame:
    from .csv import read_csv

    df = read_csv(Path(path), None if root is None else Path(root), encoding=encoding, delimiter=delimiter)
    assert isinstance(df, pl.DataFrame)
    return df


def read_redcap(path: Path, root: Path | None, *, form: str, dictionary: Path, events: Path | None = None,
                encoding: str | None = None, delimiter: str | None = None) -> pl.DataFrame:
    """One form of a REDCap records export, as described in the module docstring."""
    path = Path(path)
    display = display_name(path, root)
    # Relative names are the mapping's: inside the submission folder (checked by the mapping).
    dictionary, events = (None if p is None else Path(root or path.parent) / p if not Path(p).is_absolute() else Path(p)
                          for p in (dictionary, events))
    assert dictionary is not None
    dd = read_dictionary(dictionary, root)
    if form not in dd.forms():
        raise ReadError(display_name(Path(dictionary), root), message=f"the data dictionary has no form '{form}'; "
                        f"its forms are: {', '.join(dd.forms())}")
    ev = read_event_forms(events, root) if events is not None else None
    records = _records(path, root, encoding, delimiter)
    if dd.record_id not in records.columns:
        raise ReadError(display, row=1, column=dd.record_id, message=f"the record id field '{dd.record_id}' (the data "
                        "dictionary's first field) is not a column of this records export")
    df = _select_rows(records, form, ev)
    fields = [f for f in dd.of_form(form) if f.type not in NO_DATA_TYPES]
    complete = f"{form}_complete"
    plain = [f.name for f in fields if f.type != "checkbox" and f.name in df.columns]
    boxes = {f.name: [(code, c) for code, c in zip((c for c, _ in f.choices), f.columns(), strict=True)
                      if c in df.columns] for f in fields if f.type == "checkbox"}
    checked = [pl.col(c) == "1" for cs in boxes.values() for _, c in cs]
    filled = pl.any_horizontal([pl.col(n).is_not_null() for n in plain] + checked + [pl.lit(False)])
    if complete in df.columns:
        filled = filled | pl.col(complete).is_in(["1", "2"])
    df = df.filter(filled)
    out = [pl.col(dd.record_id)] + [pl.col(c) for c in SPECIAL if c in df.columns and c != "redcap_repeat_instrument"]
    for f in fields:
        if f.type != "checkbox":
            if f.name in df.columns:
                out.append(pl.col(f.name))
            continue
        cs = boxes[f.name]
        out += [pl.col(c) for _, c in cs]
        if cs:
            codes = [pl.when(pl.col(c) == "1").then(pl.lit(code)) for code, c in cs]
            joined = pl.concat_str(codes, separator=CHECKED_SEPARATOR, ignore_nulls=True)
            out.append(pl.when(joined != "").then(joined).alias(f.name))
    if complete in df.columns:
        out.append(pl.col(complete))
    names = [e.meta.output_name() for e in out]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ReadError(display, column=sorted(dupes)[0], message="a checkbox's choice columns and another field "
                        "share this name; REDCap forbids it, so the export and the dictionary do not match")
    return df.select([*out, pl.col("_file"), pl.col("_row")])
