"""The one defect planter: realistic mistakes planted in canonical tables, each with the rule
that must catch it.

The same planter serves the hand-built extracts of the tests (explicit cells), the demo
centers (one of each defect, before the tables are written in a center's own shape, so a
planted value passes through the center's codes and units like any other) and the registry
scale generator (each defect at a small rate). A value planted as text in a typed column
(`<5` in a number, `31.02.2019` in a date) turns that column into canonical text, so it is
written exactly as planted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

Value = Callable[[pl.DataFrame], pl.Expr]


def lit(v: Any) -> Value:
    return lambda _frame: pl.lit(v)


@dataclass(frozen=True)
class Defect:
    """A mistake a center makes: the cells it changes, the rows it can be in, the rule."""

    rule_id: str
    table: str
    cells: dict[str, Value]  # column -> the value planted (an expression over the row)
    description: str
    where: Callable[[pl.DataFrame], pl.Expr] | None = None  # default: the first column is filled
    at_least: int = 0  # demo centers: plant at this row or later
    text: bool = False  # the planted value is text (only where the file is text)

    @property
    def column(self) -> str:
        return next(iter(self.cells))


def _unknown_patient(frame: pl.DataFrame) -> pl.Expr:
    first = str(frame.get_column("patient_id").drop_nulls().head(1).to_list()[0]) if frame.height else "P"
    return pl.lit(re.sub(r"\d+$", "", first) + "99999")


def _col(name: str) -> Callable[[pl.DataFrame], pl.Expr]:
    return lambda _f: pl.col(name).is_not_null()


CATALOG: dict[str, Defect] = {d.rule_id + (":" + d.column if d.rule_id.endswith("range") else ""): d for d in [
    Defect("transfusions.pre_count_e9l.type", "transfusions", {"pre_count_e9l": lit("<5")}, "'<5' written in a numeric column", at_least=2, text=True),
    Defect("outcomes.death_on.type", "outcomes", {"death_on": lit("31.02.2019")}, "an impossible date (31 February)", text=True),
    Defect("labs.plt_wrong_unit", "labs", {"value": lambda f: pl.col("value").cast(pl.Float64, strict=False) * 1000},
           "a platelet count written in /uL where x10^9/L is declared", where=lambda f: pl.col("analyte") == "PLT", at_least=3),
    Defect("transfusions.post_after_transfusion", "transfusions",
           {"post_count_at": lambda f: pl.col("transfused_at") - pl.duration(hours=2)},
           "a post-transfusion count taken before the transfusion", at_least=1),
    Defect("treatments.car_target_required", "treatments", {"car_target": lit(None)}, "a CAR-T patient without a CAR target",
           where=lambda f: pl.col("treatment_type") == "car_t"),
    Defect("transfusions.patient_id.references", "transfusions", {"patient_id": _unknown_patient},
           "a transfusion of a patient who is not in the patients file", at_least=4),
    Defect("crs_assessments.reported_grade_consistent", "crs_assessments", {"reported_grade": lit(3)},
           "a CRS grade the recorded signs contradict", where=lambda f: pl.col("reported_grade") == 1),
    Defect("transfusions.transfusion_id.unique", "transfusions", {"transfusion_id": lambda f: pl.col("transfusion_id").shift(1)},
           "a duplicated transfusion id", where=lambda f: pl.int_range(pl.len()) >= 1, at_least=6),
    Defect("patients.sex.required", "patients", {"sex": lit(None)}, "an empty required cell", at_least=1),
    Defect("labs.value.type", "labs", {"value": lit("<5")}, "'<5' written as a lab value", text=True),
    Defect("labs.unit_canonical", "labs", {"unit": lit("ng/mL")}, "a platelet count with another analyte's unit",
           where=lambda f: pl.col("analyte") == "PLT"),
    Defect("labs.analyte.codes", "labs", {"analyte": lit("PLATELETS")}, "an analyte name instead of its code"),
    Defect("labs.value.range", "labs", {"value": lambda f: -pl.col("value").cast(pl.Float64, strict=False) - 1}, "a negative lab value"),
    Defect("transfusions.storage_over_7_days", "transfusions", {"storage_h": lit(200.0)}, "a unit stored 200 hours"),
    Defect("transfusions.dose_e11.range", "transfusions", {"dose_e11": lit(0.0)}, "a dose of zero"),
    Defect("transfusions.dose_or_units", "transfusions", {"dose_e11": lit(None), "units_reported": lit(None)},
           "a transfusion with neither dose nor units", where=lambda f: pl.lit(True)),
    Defect("patients.height_cm.range", "patients", {"height_cm": lambda f: pl.col("height_cm") / 100}, "a height written in metres"),
    Defect("patients.bsa_inputs_for_transfused", "patients", {"height_cm": lit(None)}, "a transfused patient without a height"),
]}

# One of each, for the demo centers (`ptrh synth centers --defects`), in the order they are dealt.
DEMO = ["transfusions.pre_count_e9l.type", "outcomes.death_on.type", "labs.plt_wrong_unit",
        "transfusions.post_after_transfusion", "treatments.car_target_required", "transfusions.patient_id.references",
        "crs_assessments.reported_grade_consistent", "transfusions.transfusion_id.unique", "patients.sex.required"]
# At a rate, for the registry scale generator.
SCALE = ["labs.value.type", "labs.plt_wrong_unit", "labs.unit_canonical", "labs.analyte.codes", "labs.value.range:value",
         "transfusions.post_after_transfusion", "transfusions.storage_over_7_days", "transfusions.dose_e11.range:dose_e11",
         "transfusions.dose_or_units", "patients.height_cm.range:height_cm", "patients.bsa_inputs_for_transfused"]


@dataclass
class Planted:
    defect: Defect
    index: int  # the row of the table (0-based)
    value: Any = None  # the first cell's planted value
    extra: dict[str, Any] = field(default_factory=dict)


def canonical_text(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """A typed column as the canonical text a CDM extract writes (for a planted text value)."""
    dtype = frame.schema[column]
    c = pl.col(column)
    if dtype == pl.Utf8:
        return frame
    if dtype == pl.Date:
        t = c.dt.strftime("%Y-%m-%d")
    elif isinstance(dtype, pl.Datetime):
        t = c.dt.strftime("%Y-%m-%dT%H:%M:%S")
    elif dtype == pl.Boolean:
        t = pl.when(c).then(pl.lit("true")).when(~c).then(pl.lit("false"))
    elif dtype.is_float():
        t = pl.when(c == c.round(0)).then(c.cast(pl.Int64, strict=False).cast(pl.Utf8)).otherwise(c.cast(pl.Utf8))
    else:
        t = c.cast(pl.Utf8)
    return frame.with_columns(t.alias(column))


def apply(frame: pl.DataFrame, defect: Defect, mask: pl.Series) -> pl.DataFrame:
    """Plant `defect` in the rows of `frame` where `mask` is true."""
    m = pl.lit(mask)
    exprs = []
    for col, value in defect.cells.items():
        v = value(frame)
        if defect.text:
            frame = canonical_text(frame, col)
            v = v.cast(pl.Utf8)
        dtype = frame.schema[col]
        exprs.append(pl.when(m).then(v.cast(dtype, strict=False) if dtype != pl.Null else v).otherwise(pl.col(col)).alias(col))
    return frame.with_columns(exprs)


def _row(frame: pl.DataFrame, defect: Defect) -> int | None:
    cond = defect.where(frame) if defect.where is not None else pl.col(defect.column).is_not_null()
    idx = frame.with_row_index("__i").filter(cond.fill_null(False)).get_column("__i")
    if idx.len() == 0:
        return None
    later = idx.filter(idx >= defect.at_least)
    return int(later[0]) if later.len() else int(idx[-1])


def plant_one(frame: pl.DataFrame, defect: Defect) -> tuple[pl.DataFrame, Planted | None]:
    """One instance of `defect`, in its first eligible row at or after `at_least`."""
    i = _row(frame, defect)
    if i is None:
        return frame, None
    mask = pl.Series(np.arange(frame.height) == i)
    out = apply(frame, defect, mask)
    return out, Planted(defect, i, out.get_column(defect.column)[i])


def plant_rate(tables: dict[str, pl.DataFrame], names: list[str], rng: np.random.Generator, rate: float,
               text: bool = True) -> dict[str, pl.DataFrame]:
    """Each defect in about `rate` of its table's eligible rows (text defects only if `text`)."""
    out = dict(tables)
    for name in names:
        d = CATALOG[name]
        if d.table not in out or (d.text and not text) or rate <= 0:
            continue
        frame = out[d.table]
        r = rate * 10 if d.table == "patients" else rate  # a few per small table
        mask = pl.Series(rng.random(frame.height) < max(r, 1e-3 if d.table == "patients" else 0.0))
        if d.where is not None:
            mask = mask & frame.select(d.where(frame).fill_null(False)).to_series()
        out[d.table] = apply(frame, d, mask)
    return out


def plant_cells(tables: dict[str, pl.DataFrame], cells: list[tuple[str, int, str, Any]]) -> dict[str, pl.DataFrame]:
    """Explicit edits (table, row index, column, value): the hand-built extracts of the tests."""
    out = dict(tables)
    for table, i, column, value in cells:
        d = Defect("cell", table, {column: lit(value)}, "an edited cell", text=isinstance(value, str))
        out[table] = apply(out[table], d, pl.Series(np.arange(out[table].height) == i))
    return out


def rules(names: list[str]) -> list[str]:
    return list(dict.fromkeys(CATALOG[n].rule_id for n in names))
