"""Write a REDCap-shaped center: the parts of one records file, as REDCap's raw export holds
them, plus the project's data dictionary (the shape read by `ptrharmonize.read.redcap`).

The mapping says which form (instrument) each CDM table is; a table keyed by patient is a form
filled once per record (its fields on the record's row), any other table a repeating
instrument (a row per instance, named in `redcap_repeat_instrument`, numbered in
`redcap_repeat_instance`). The dictionary is derived from the mapping: a value map of codes is a
dropdown (a yes/no map a `yesno` field, a `field___code` column a checkbox choice), numbers are
text fields with `integer`/`number` validation, dates `date_dmy` (REDCap still exports them
YYYY-MM-DD), and a column's `description` is its field label.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import polars as pl

from ..cdm import Catalog, ColumnSpec, load_catalog
from ..mapping.model import ColumnMap
from .render import Written

HEADER = ["Variable / Field Name", "Form Name", "Section Header", "Field Type", "Field Label",
          "Choices, Calculations, OR Slider Labels", "Field Note", "Text Validation Type OR Show Slider Number",
          "Text Validation Min", "Text Validation Max", "Identifier?", "Branching Logic (Show field only if...)",
          "Required Field?", "Custom Alignment", "Question Number (surveys only)", "Matrix Group Name",
          "Matrix Ranking?", "Field Annotation"]
DAG = "redcap_data_access_group"
INSTRUMENT, INSTANCE = "redcap_repeat_instrument", "redcap_repeat_instance"
PER_PATIENT = ("center_id", "patient_id")


def _form(w: Written) -> str:
    return str(w.part.block.reader_options["form"])


def _record_id(w: Written) -> str:
    return str(w.part.block.columns["patient_id"].column)


def _repeats(w: Written, catalog: Catalog) -> bool:
    return tuple(catalog.tables[w.part.table].key) != PER_PATIENT


def _fields(w: Written) -> list[str]:
    return [c for c in w.frame.columns if c not in (_record_id(w), DAG)]


# ---------------------------------------------------------------------------------- records


def _base_rows(items: list[Written], rid: str) -> pl.DataFrame:
    """One row per record with every once-per-record form's fields (first value of each)."""
    frames = []
    for w in items:
        f = w.frame.with_columns(pl.lit("2").alias(f"{_form(w)}_complete"))
        frames.append(f.with_columns(pl.int_range(pl.len()).alias(f"__pos_{_form(w)}")))
    if not frames:
        return pl.DataFrame(schema={rid: pl.Utf8})
    df = pl.concat(frames, how="diagonal_relaxed")
    df = df.group_by(rid, maintain_order=True).agg(pl.all().drop_nulls().first())
    for w in items:  # a form nobody filled in: status 0 and 0 in its checkboxes, as REDCap writes
        status = f"{_form(w)}_complete"
        boxes = [c for c in _fields(w) if "___" in c]
        df = df.with_columns([pl.col(status).fill_null("0")] + [
            pl.when(pl.col(status) == "0").then(pl.lit("0")).otherwise(pl.col(c)).alias(c) for c in boxes])
    return df


def _repeat_rows(w: Written, rid: str, order: int) -> pl.DataFrame:
    form = _form(w)
    return w.frame.rename({_record_id(w): rid}).with_columns(
        pl.lit(form).alias(INSTRUMENT),
        (pl.int_range(pl.len()).over(rid) + 1).cast(pl.Utf8).alias(INSTANCE),
        pl.lit("2").alias(f"{form}_complete"),
        pl.lit(order).alias("__form"),
        pl.int_range(pl.len()).alias("__pos"),
    )


def records(items: list[Written], catalog: Catalog) -> tuple[pl.DataFrame, dict[int, list[int]]]:
    """The records file, and for each part (by its index in `items`) the file row of each of
    its rows (header = row 1)."""
    rid = _record_id(items[0])
    once = [w for w in items if not _repeats(w, catalog)]
    items_once = [w.__class__(w.part, w.frame.rename({_record_id(w): rid})) for w in once]
    base = _base_rows(items_once, rid).with_columns(pl.lit(-1).alias("__form"))
    parts = [base] + [_repeat_rows(w, rid, i) for i, w in enumerate(items) if _repeats(w, catalog)]
    df = pl.concat(parts, how="diagonal_relaxed")
    first_seen = df.select(rid).unique(maintain_order=True).with_row_index("__rec")
    df = (df.join(first_seen, on=rid, how="left")
          .sort(["__rec", "__form", pl.col(INSTANCE).cast(pl.Int64, strict=False)], nulls_last=False, maintain_order=True)
          .with_row_index("__file_row", offset=2))
    rows: dict[int, list[int]] = {}
    for i, w in enumerate(items):
        if _repeats(w, catalog):
            sel = df.filter(pl.col(INSTRUMENT) == _form(w)).sort("__pos")
        else:
            sel = df.filter(pl.col(f"__pos_{_form(w)}").is_not_null()).sort(f"__pos_{_form(w)}")
        rows[i] = [int(r) for r in sel.get_column("__file_row").to_list()]
    columns = [rid, INSTRUMENT, INSTANCE] + ([DAG] if DAG in df.columns else [])
    for w in items:
        columns += [c for c in _fields(w) if c not in columns] + [f"{_form(w)}_complete"]
    return df.select([pl.col(c).cast(pl.Utf8) if c in df.columns else pl.lit(None, pl.Utf8).alias(c) for c in columns]), rows


# ---------------------------------------------------------------------------------- dictionary


def _humanize(code: str | None) -> str:
    return (code or "").replace("_", " ").capitalize() if code and code.islower() else (code or "")


def _choices(cm: ColumnMap, col: ColumnSpec) -> str:
    vm = cm.values
    assert vm is not None
    return " | ".join(f"{k}, {_humanize(t)}" for k, t in vm.written if t is not None)


def _field(name: str, form: str, cm: ColumnMap, col: ColumnSpec) -> list[str]:
    """One dictionary row (18 columns) for a field that is not a checkbox."""
    label = cm.description or col.label
    ftype, choices, validation, lo, hi = "text", "", "", "", ""
    if cm.values is not None and cm.values.written and not cm.values.patterns:
        targets = {t for _, t in cm.values.written}
        ftype = "yesno" if col.type == "boolean" and targets == {"true", "false"} else "dropdown"
        choices = "" if ftype == "yesno" else _choices(cm, col)
    elif col.type in ("integer", "decimal") and not cm.below_lod:  # "<1.5" is no number
        validation = "integer" if col.type == "integer" else "number"
        if cm.unit is None or cm.unit == col.unit:
            lo = "" if col.min is None else f"{col.min:g}"
            hi = "" if col.max is None else f"{col.max:g}"
    elif col.type == "date":
        validation = "date_dmy"  # shown day-month-year on the form; exported YYYY-MM-DD
    elif col.type == "timestamp":
        validation = "datetime_dmy"
    note = f"in {cm.unit}" if cm.unit else ""
    return [name, form, "", ftype, label, choices, note, validation, lo, hi] + [""] * 8


def dictionary(items: list[Written], catalog: Catalog) -> list[list[str]]:
    """The data dictionary rows: the record id first, then each form's fields in order."""
    rid = _record_id(items[0])
    rows = [[rid, _form(items[0]), "", "text", "Record ID"] + [""] * 13]
    seen = {rid}
    for w in items:
        block, form = w.part.block, _form(w)
        by_source = {cm.column: (n, cm) for n, cm in block.columns.items() if cm.column}
        for c in _fields(w):
            name = c.split("___")[0]
            if name in seen or c not in by_source:
                continue
            seen.add(name)
            cdm, cm = by_source[c]
            col = catalog.tables[block.table].column(cdm)
            if "___" not in c:
                rows.append(_field(c, form, cm, col))
                continue
            boxes = [(x.split("___")[1], by_source[x]) for x in _fields(w) if x.split("___")[0] == name and x in by_source]
            choices = " | ".join(f"{code}, {catalog.tables[block.table].column(n).label}" for code, (n, _) in boxes)
            rows.append([name, form, "", "checkbox", cm.description or name, choices] + [""] * 12)
    return rows


def write_redcap(items: list[Written], folder: Path) -> list[Path]:
    """The records file and the dictionary of the parts that share one records file; each
    part's `file_rows` is set to the records-file row of each of its rows."""
    catalog = load_catalog()
    block = items[0].part.block
    df, rows = records(items, catalog)
    for i, w in enumerate(items):
        w.file_rows = rows[i]
    path = folder / block.file
    path.write_text(df.write_csv(), encoding="utf-8")
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([HEADER, *dictionary(items, catalog)])
    dd = folder / str(block.reader_options["dictionary"])
    dd.write_text(buf.getvalue(), encoding="utf-8")
    return [path, dd]
