"""Multi-center demo data: one canonical truth per center, rendered in that center's own shape.

For each center the generator draws a canonical cohort of relapsed/refractory ALL patients
(CAR-T or salvage chemotherapy; platelet transfusions with pre/post counts, daily lab series,
CRS assessments, bleeding, medications, infections, outcomes), writes it as a canonical
extract (`truth/<center>/`), and renders the same records the way the center sends them
(`centers/<center>/`): GBK CSV with Chinese headers, a Latin-1 semicolon CSV with decimal
commas, an Excel workbook in US units, SPSS files with value labels. The mapping that reads each
shape back is `mappings/<shape>.yaml` (copied to `mappings/<center>.yaml` in the output, with
the center's id). The truth is rounded to each center's own precision first, so reading the
center's files through its mapping gives the truth back exactly (up to float rounding).

Everything is vectorised (numpy/polars); nothing loops over patients or lab rows in Python,
except writing Excel cells and SPSS value labels, which the writers require.

`defects=True` plants one of each realistic defect in the rendered files and lists each in
`defects.json` with the file, the source row and column, and the rule expected to catch it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from .. import units as unitreg
from ..cdm import Catalog, load_catalog
from ..paths import mappings_dir
from .shapes import CANON_DEATH, SHAPE_ORDER, SHAPES, Analyte, Col, Shape, TableShape

LOD = {"IL6": 1.5, "IL10": 1.0, "IFNG": 2.0}
ANALYTES = ["PLT", "ANC", "WBC", "HGB", "CRP", "FERRITIN", "IL6", "IL10", "IFNG"]
LAB_DAYS = (-3, 30)  # daily draws from day -3 to day 30 after the index date
EXCEL_EPOCH = dt.date(1899, 12, 30)


# =========================================================================================
# Truth
# =========================================================================================


def _ids(prefix: str, idx: np.ndarray, width: int = 5) -> pl.Series:
    """Codes like HZ00001 for 0-based indices."""
    return pl.select(pl.concat_str([pl.lit(prefix), pl.lit(pl.Series(idx + 1)).cast(pl.Utf8).str.zfill(width)])).to_series()


def _choice(rng: np.random.Generator, codes: list[str], p: list[float], n: int) -> np.ndarray:
    p_arr = np.asarray(p, dtype=float)
    return np.asarray(codes, dtype=object)[rng.choice(len(codes), size=n, p=p_arr / p_arr.sum())]


def _dates(index_date: np.ndarray, days: np.ndarray) -> np.ndarray:
    return index_date + days.astype("timedelta64[D]")


def _stamps(index_date: np.ndarray, days: np.ndarray, minutes: np.ndarray) -> np.ndarray:
    return index_date.astype("datetime64[m]") + days.astype("timedelta64[D]") + minutes.astype("timedelta64[m]")


@dataclass
class _Patients:
    n: int
    ids: np.ndarray
    car_t: np.ndarray
    index_date: np.ndarray  # datetime64[D]
    bsa: np.ndarray
    death_day: np.ndarray  # float, inf when alive
    ptr: np.ndarray
    id_series: pl.Series

    def pid(self, idx: np.ndarray) -> pl.Series:
        """Patient codes for an array of patient indices (vectorised gather)."""
        return self.id_series.gather(pl.Series(idx, dtype=pl.Int64))


def generate_truth(n: int, rng: np.random.Generator, shape: Shape, center_id: str, id_prefix: str) -> dict[str, pl.DataFrame]:
    """A canonical cohort of `n` patients as typed frames (CDM columns and types)."""
    idx = np.arange(n)
    id_series = _ids(id_prefix, idx).alias("patient_id")
    ids = np.asarray(id_series.to_list(), dtype=object)

    # ---- patients --------------------------------------------------------------------
    sex = _choice(rng, ["M", "F"], [0.58, 0.42], n)
    child = rng.random(n) < 0.35
    age = np.where(child, rng.integers(3, 18, n), rng.integers(18, 71, n))
    male = sex == "M"
    adult_h = np.where(male, rng.normal(172, 7, n), rng.normal(160, 6, n))
    child_h = 95 + 5.5 * (age - 3) + rng.normal(0, 6, n)
    height = np.clip(np.where(child, child_h, adult_h), 85, 200)
    bmi = np.where(child, rng.normal(17, 2, n), rng.normal(23, 3.5, n))
    weight = np.clip(bmi * (height / 100) ** 2, 12, 140)
    diagnosis = _choice(rng, ["B-ALL", "T-ALL", "other"], [0.85, 0.12, 0.03], n)
    refractory = rng.random(n) < 0.3
    disease_status = np.where(refractory, "primary_refractory", "relapsed").astype(object)
    n_relapses = np.where(refractory, 0, 1 + np.minimum(rng.poisson(0.5, n), 3))
    prior_allo = (~refractory) & (rng.random(n) < 0.35)
    extramedullary = rng.random(n) < 0.15
    blasts = rng.uniform(5, 90, n)

    # ---- treatments ------------------------------------------------------------------
    car_t = (rng.random(n) < 0.6) & (diagnosis != "other")
    target = _choice(rng, ["CD19", "CD22", "CD19/CD22"], [0.7, 0.15, 0.15], n)
    target = np.where(diagnosis == "T-ALL", "CD19/CD22", target).astype(object)  # keep it simple
    chemo = _choice(rng, ["VMCP", "Hyper-CVAD A", "FLAG", "MOEP", "CAG"], [0.3, 0.25, 0.2, 0.15, 0.1], n)
    regimen = np.where(car_t, np.char.add(target.astype(str), " CAR-T").astype(object), chemo).astype(object)
    car_target = np.where(car_t, target, None).astype(object)
    index_date = np.datetime64("2017-01-02") + rng.integers(0, 6 * 365, n).astype("timedelta64[D]")
    bsa = 0.007184 * height**0.725 * weight**0.425
    ptr = rng.random(n) < np.where(car_t, 0.4, 0.3)

    # ---- bleeding (first: a fatal bleed sets the date of death) ------------------------
    k_b = rng.poisson(0.45, n)
    b_pid = np.repeat(idx, k_b)
    nb = b_pid.size
    b_day = rng.integers(0, 31, nb)
    b_grade = rng.choice([1, 2, 3, 4], size=nb, p=[0.5, 0.3, 0.15, 0.05])
    b_site = _choice(rng, ["skin", "mucosal", "gi", "gu", "pulmonary", "cns", "retinal", "other"], [0.35, 0.25, 0.12, 0.1, 0.05, 0.05, 0.03, 0.05], nb)
    b_fatal = (b_grade == 4) & (rng.random(nb) < 0.3)
    b_rbc = (b_grade >= 3) | (rng.random(nb) < 0.1)
    b_hemo = b_grade == 4

    died = rng.random(n) < np.where(car_t, 0.3, 0.45)
    death_day = np.where(died, rng.integers(35, 720, n), np.inf).astype(float)
    fatal_day = np.full(n, np.inf)
    np.minimum.at(fatal_day, b_pid[b_fatal], b_day[b_fatal].astype(float))
    death_day = np.minimum(death_day, fatal_day)
    died = np.isfinite(death_day)
    # Keep bleeding events up to the death (a fatal one is the last).
    keep_b = b_day <= death_day[b_pid]
    b_pid, b_day, b_grade, b_site, b_fatal, b_rbc, b_hemo = (a[keep_b] for a in (b_pid, b_day, b_grade, b_site, b_fatal, b_rbc, b_hemo))
    b_order = np.lexsort((b_day, b_pid))
    b_pid, b_day, b_grade, b_site, b_fatal, b_rbc, b_hemo = (a[b_order] for a in (b_pid, b_day, b_grade, b_site, b_fatal, b_rbc, b_hemo))

    P = _Patients(n=n, ids=ids, car_t=car_t, index_date=index_date, bsa=bsa, death_day=death_day, ptr=ptr, id_series=id_series)

    patients = pl.DataFrame(
        {
            "center_id": [center_id] * n,
            "patient_id": ids.tolist(),
            "sex": sex.tolist(),
            "age_years": age.astype(np.int64),
            "height_cm": np.round(height, 1),
            "weight_kg": np.round(weight, 1),
            "diagnosis": diagnosis.tolist(),
            "disease_status": disease_status.tolist(),
            "n_relapses": n_relapses.astype(np.int64),
            "prior_allo_hsct": prior_allo,
            "extramedullary": extramedullary,
            "bm_blast_pct": np.round(blasts, 1),
        }
    )
    treatments = pl.DataFrame(
        {
            "center_id": [center_id] * n,
            "patient_id": ids.tolist(),
            "treatment_type": np.where(car_t, "car_t", "chemotherapy").tolist(),
            "regimen": regimen.tolist(),
            "car_target": car_target.tolist(),
            "index_date": index_date,
        },
        schema_overrides={"car_target": pl.Utf8},
    )
    bleeding = pl.DataFrame(
        {
            "center_id": [center_id] * b_pid.size,
            "patient_id": ids[b_pid].tolist(),
            "onset_on": _dates(index_date[b_pid], b_day),
            "site": b_site.tolist(),
            "who_grade": b_grade.astype(np.int64),
            "rbc_transfusion_24h": b_rbc,
            "hemodynamic_instability": b_hemo,
            "fatal": b_fatal,
        },
        schema_overrides={"site": pl.Utf8, "patient_id": pl.Utf8, "center_id": pl.Utf8},
    )

    transfusions = _transfusions(P, rng, shape, center_id, id_prefix)
    labs = _labs(P, rng, center_id)
    crs, max_grade, crs_day = _crs(P, rng, center_id, shape.crs_scale)
    medications = _medications(P, rng, center_id, max_grade, crs_day)
    infections = _infections(P, rng, center_id)

    # ---- outcomes --------------------------------------------------------------------
    resp = np.where(
        car_t,
        _choice(rng, ["CR", "CRi", "PR", "NR", "NE"], [0.6, 0.15, 0.05, 0.15, 0.05], n),
        _choice(rng, ["CR", "CRi", "PR", "NR", "NE"], [0.3, 0.1, 0.1, 0.4, 0.1], n),
    )
    cause = _choice(rng, CANON_DEATH, [0.55, 0.25, 0.0001, 0.05, 0.15], n)
    cause = np.where(np.isfinite(fatal_day) & (fatal_day <= death_day), "bleeding", cause).astype(object)
    dd = np.where(died, death_day, 0).astype(np.int64)
    death_on = np.where(died, _dates(index_date, dd), np.datetime64("NaT"))
    fu_day = np.where(died, dd, rng.integers(60, 1000, n))
    outcomes = pl.DataFrame(
        {
            "center_id": [center_id] * n,
            "patient_id": ids.tolist(),
            "response": resp.tolist(),
            "death_on": death_on.astype("datetime64[D]"),
            "death_cause": np.where(died, cause, None).tolist(),
            "last_followup_on": _dates(index_date, fu_day),
        },
        schema_overrides={"death_cause": pl.Utf8},
    )
    return {
        "patients": patients,
        "treatments": treatments,
        "transfusions": transfusions,
        "labs": labs,
        "crs_assessments": crs,
        "bleeding_events": bleeding,
        "medications": medications,
        "infections": infections,
        "outcomes": outcomes,
    }


def _transfusions(P: _Patients, rng: np.random.Generator, shape: Shape, center_id: str, prefix: str) -> pl.DataFrame:
    lam = rng.gamma(2.0, 15.0, P.n)  # mean 30 per patient, over-dispersed
    k = np.minimum(rng.poisson(lam), 80)
    pid = np.repeat(np.arange(P.n), k)
    t = pid.size
    day = rng.integers(-5, 41, t)
    minute = rng.integers(8 * 4, 20 * 4, t) * 15
    keep = day <= P.death_day[pid] - 1
    pid, day, minute = pid[keep], day[keep], minute[keep]
    order = np.lexsort((minute, day, pid))
    pid, day, minute = pid[order], day[order], minute[order]
    t = pid.size
    starts = np.concatenate([[0], np.cumsum(np.bincount(pid, minlength=P.n))[:-1]])
    seq = np.arange(t) - starts[pid]
    at = _stamps(P.index_date[pid], day, minute)

    products = list(shape.product_p)
    product = _choice(rng, products, [shape.product_p[p] for p in products], t)
    units = np.ones(t, dtype=float)
    dose = np.zeros(t, dtype=float)
    for p in products:
        m = product == p
        lo, hi = shape.units_per_product[p]
        units[m] = rng.integers(lo, hi + 1, int(m.sum()))
        if p == "apheresis":
            units[m] = np.where(rng.random(int(m.sum())) < 0.08, 2, units[m]) if hi > 1 else units[m]
        dose[m] = units[m] * shape.content[p]
    storage = rng.uniform(12, 130, t)
    abo = rng.random(t) < 0.85
    xm = rng.random(t) < 0.1
    pre = rng.integers(2, 21, t).astype(float)
    refractory = P.ptr[pid] & (rng.random(t) < 0.85)
    cci = np.where(refractory, rng.uniform(0, 4800, t), np.clip(rng.normal(12000, 4000, t), 5200, 25000))
    post = np.round(pre + cci * dose / P.bsa[pid] / 1000.0)
    pre_at = at - rng.integers(30, 600, t).astype("timedelta64[m]")
    late = rng.random(t) < 0.15
    post_at = at + np.where(late, rng.integers(600, 1200, t), rng.integers(60, 120, t)).astype("timedelta64[m]")
    missing_post = rng.random(t) < 0.08
    tid = pl.select(
        pl.concat_str(
            [
                pl.lit(prefix + "-T"),
                pl.lit(pl.Series(pid + 1)).cast(pl.Utf8).str.zfill(5),
                pl.lit("-"),
                pl.lit(pl.Series(seq + 1)).cast(pl.Utf8).str.zfill(3),
            ]
        )
    ).to_series()
    return pl.DataFrame(
        {
            "center_id": [center_id] * t,
            "patient_id": P.pid(pid),
            "transfusion_id": tid,
            "transfused_at": at.astype("datetime64[us]"),
            "product": product.tolist(),
            "units_reported": units,
            "dose_e11": dose,
            "storage_h": storage,
            "abo_compatible": abo,
            "crossmatched": xm,
            "pre_count_e9l": pre,
            "pre_count_at": pre_at.astype("datetime64[us]"),
            "post_count_e9l": np.where(missing_post, np.nan, post),
            "post_count_at": np.where(missing_post, np.datetime64("NaT"), post_at).astype("datetime64[us]"),
        },
        schema_overrides={"product": pl.Utf8, "patient_id": pl.Utf8},
    ).with_columns(pl.col("post_count_e9l").fill_nan(None))


def _labs(P: _Patients, rng: np.random.Generator, center_id: str) -> pl.DataFrame:
    d0, d1 = LAB_DAYS
    days = np.arange(d0, d1 + 1)
    pid = np.repeat(np.arange(P.n), days.size)
    day = np.tile(days, P.n)
    keep = day <= P.death_day[pid]
    pid, day = pid[keep], day[keep]
    m = pid.size
    minute = 6 * 60 + rng.integers(0, 60, m)
    at = _stamps(P.index_date[pid], day, minute).astype("datetime64[us]")
    dpos = np.maximum(day, 0).astype(float)

    base = rng.uniform(20, 120, P.n)[pid]
    rec = np.where(P.ptr, rng.uniform(0, 40, P.n), rng.uniform(40, 180, P.n))[pid]
    t_rec = rng.uniform(12, 26, P.n)[pid]
    plt_ = base * np.exp(-0.35 * dpos) + rec / (1 + np.exp(-(day - t_rec) / 2.0)) + rng.normal(0, 3, m)
    plt_ = np.maximum(np.round(plt_), 1.0)
    anc0 = rng.uniform(0.4, 3.0, P.n)[pid]
    anc_rec = rng.uniform(0.5, 4.0, P.n)[pid]
    anc = anc0 * np.exp(-0.4 * dpos) + anc_rec / (1 + np.exp(-(day - t_rec + 4) / 2.0)) + rng.normal(0, 0.05, m)
    anc = np.maximum(np.round(anc, 2), 0.01)
    wbc = np.round(anc * 1.6 + rng.uniform(0.1, 0.6, m), 2)
    hgb = np.round(np.clip(rng.normal(85, 10, m), 50, 140))
    car = P.car_t[pid]
    crp_peak = np.where(car, rng.lognormal(4.0, 0.8, P.n)[pid], rng.lognormal(2.5, 0.8, P.n)[pid])
    crp = np.round(np.maximum(crp_peak * np.exp(-((day - 4) ** 2) / 18.0) + rng.uniform(0.5, 5, m), 0.5), 1)
    ferritin = np.round(rng.lognormal(7.0, 0.8, P.n)[pid] * (1 + 0.5 * np.exp(-((day - 6) ** 2) / 30.0)))

    frames = []

    def add(mask: np.ndarray, analyte: str, values: np.ndarray, lod: float | None = None) -> None:
        v = values[mask]
        below = np.zeros(v.size, dtype=bool)
        if lod is not None:
            below = v < lod
            v = np.where(below, lod, v)
        frames.append(
            pl.DataFrame(
                {
                    "pid": pid[mask],
                    "measured_at": at[mask],
                    "analyte": [analyte] * int(mask.sum()),
                    "value": v.astype(float),
                    "below_lod": below,
                    "order": np.full(int(mask.sum()), ANALYTES.index(analyte), dtype=np.int64),
                }
            )
        )

    every = np.ones(m, dtype=bool)
    add(every, "PLT", plt_)
    add(every, "ANC", anc)
    add(every, "WBC", wbc)
    add(every, "HGB", hgb)
    add((day >= 0) & (day <= 14), "CRP", crp)
    add((day >= 0) & (day % 3 == 0), "FERRITIN", ferritin)
    cyto = car & (day >= 0) & (day <= 14) & (day % 2 == 0)
    il6 = np.round(rng.lognormal(3.0, 1.6, m) * (1 + 5 * np.exp(-((day - 4) ** 2) / 8.0)) * 0.5, 1)
    il10 = np.round(rng.lognormal(1.8, 1.3, m), 1)
    ifng = np.round(rng.lognormal(2.5, 1.6, m) * 0.6, 1)
    add(cyto, "IL6", il6, LOD["IL6"])
    add(cyto, "IL10", il10, LOD["IL10"])
    add(cyto, "IFNG", ifng, LOD["IFNG"])
    canon = {"PLT": "10^9/L", "ANC": "10^9/L", "WBC": "10^9/L", "HGB": "g/L", "CRP": "mg/L", "FERRITIN": "ng/mL", "IL6": "pg/mL", "IL10": "pg/mL", "IFNG": "pg/mL"}
    labs = pl.concat(frames).sort(["pid", "measured_at", "order"])
    labs = labs.with_columns(P.id_series.gather(labs.get_column("pid")).alias("patient_id"))
    return labs.select(
        pl.lit(center_id).alias("center_id"),
        pl.col("patient_id"),
        pl.col("measured_at"),
        pl.col("analyte"),
        pl.col("value"),
        pl.col("analyte").replace_strict(canon, return_dtype=pl.Utf8).alias("unit"),
        pl.col("below_lod"),
    )


# CRS archetypes: signs that give the same grade on Lee 2014 and ASTCT 2019, so the reported
# grade is consistent with the signs on either scale.
def _crs(P: _Patients, rng: np.random.Generator, center_id: str, scale: str) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    has = P.car_t & (rng.random(P.n) < 0.8)
    maxg = np.where(has, rng.choice([1, 2, 3, 4], size=P.n, p=[0.45, 0.3, 0.17, 0.08]), 0)
    onset = rng.integers(1, 6, P.n)
    length = rng.integers(2, 8, P.n)
    peak = (length // 2).astype(int)
    k = np.where(has, length, 0)
    pid = np.repeat(np.arange(P.n), k)
    starts = np.concatenate([[0], np.cumsum(k)[:-1]])
    j = np.arange(pid.size) - starts[pid]
    day = onset[pid] + j
    keep = day <= P.death_day[pid]
    pid, day, j = pid[keep], day[keep], j[keep]
    grade = np.maximum(1, maxg[pid] - np.abs(j - peak[pid]))
    r = pid.size
    temp = np.round(rng.uniform(38.1, 40.5, r), 1)
    hypo = grade >= 2
    vaso = np.select([grade == 3, grade == 4], [1, 2], 0)
    ne = np.select([grade == 3, grade == 4], [np.round(rng.uniform(22, 40, r), 1), np.round(rng.uniform(40, 80, r), 1)], 0.0)
    g2_o2 = (grade == 2) & (rng.random(r) < 0.5)
    device = np.select([grade == 4, grade == 3, g2_o2], ["ventilator", "high_flow", "low_flow"], "none").astype(object)
    fio2 = np.select(
        [grade == 4, grade == 3, g2_o2],
        [np.round(rng.uniform(60, 100, r)), np.round(rng.uniform(40, 60, r)), np.round(rng.uniform(24, 35, r))],
        21.0,
    )
    flow = np.select([grade == 3, g2_o2], [np.round(rng.uniform(30, 50, r)), rng.integers(1, 7, r).astype(float)], 0.0)
    flow = np.where(grade == 4, np.nan, flow)
    organ = np.select([grade == 1, grade == 4], [rng.integers(0, 2, r), rng.integers(0, 4, r)], rng.integers(0, 3, r))
    trans = np.select([grade == 1, grade == 4], [rng.integers(0, 2, r), rng.integers(0, 4, r)], rng.integers(0, 3, r))
    frame = pl.DataFrame(
        {
            "center_id": [center_id] * r,
            "patient_id": P.pid(pid),
            "assessed_on": _dates(P.index_date[pid], day),
            "max_temp_c": temp,
            "hypotension": hypo,
            "vasopressors": vaso.astype(np.int64),
            "ne_equiv_ug_min": ne.astype(float),
            "vasopressin": np.zeros(r, dtype=bool),
            "fio2_pct": fio2.astype(float),
            "o2_device": device.tolist(),
            "o2_flow_l_min": flow,
            "organ_toxicity_grade": organ.astype(np.int64),
            "transaminitis_grade": trans.astype(np.int64),
            "reported_grade": grade.astype(np.int64),
            "reported_scale": [scale] * r,
        },
        schema_overrides={"patient_id": pl.Utf8, "o2_device": pl.Utf8, "center_id": pl.Utf8, "reported_scale": pl.Utf8},
    ).with_columns(pl.col("o2_flow_l_min").fill_nan(None))
    first_day = np.full(P.n, 0)
    first_day[has] = onset[has]
    return frame, maxg, first_day


def _medications(P: _Patients, rng: np.random.Generator, center_id: str, maxg: np.ndarray, crs_day: np.ndarray) -> pl.DataFrame:
    rows_pid, rows_drug, rows_day, rows_n = [], [], [], []
    plan = [
        ("tocilizumab", maxg >= 2, crs_day, (1, 3)),
        ("corticosteroid", (maxg >= 3) | (rng.random(P.n) < 0.1), crs_day + 1, (1, 7)),
        ("tpo_ra", rng.random(P.n) < 0.3, rng.integers(5, 21, P.n), (3, 14)),
        ("il11", rng.random(P.n) < 0.15, rng.integers(3, 15, P.n), (3, 10)),
        ("ivig", rng.random(P.n) < 0.2, rng.integers(0, 21, P.n), (1, 5)),
        ("gcsf", rng.random(P.n) < 0.5, rng.integers(3, 15, P.n), (3, 10)),
    ]
    for drug, mask, start, (lo, hi) in plan:
        mask = mask & (start <= P.death_day)
        sel = np.nonzero(mask)[0]
        rows_pid.append(sel)
        rows_drug.append(np.full(sel.size, drug, dtype=object))
        rows_day.append(start[sel])
        rows_n.append(rng.integers(lo, hi + 1, sel.size))
    pid = np.concatenate(rows_pid)
    drug = np.concatenate(rows_drug)
    day = np.concatenate(rows_day)
    nd = np.concatenate(rows_n)
    order = np.lexsort((day, pid))
    pid, drug, day, nd = pid[order], drug[order], day[order], nd[order]
    return pl.DataFrame(
        {
            "center_id": [center_id] * pid.size,
            "patient_id": P.pid(pid),
            "drug": drug.tolist(),
            "started_on": _dates(P.index_date[pid], day),
            "n_doses": nd.astype(np.int64),
        },
        schema_overrides={"patient_id": pl.Utf8, "drug": pl.Utf8, "center_id": pl.Utf8},
    )


def _infections(P: _Patients, rng: np.random.Generator, center_id: str) -> pl.DataFrame:
    k = rng.poisson(0.5, P.n)
    pid = np.repeat(np.arange(P.n), k)
    day = rng.integers(0, 61, pid.size)
    keep = day <= P.death_day[pid]
    pid, day = pid[keep], day[keep]
    kind = _choice(rng, ["bacterial", "viral", "fungal", "unknown"], [0.5, 0.25, 0.15, 0.1], pid.size)
    order = np.lexsort((day, pid))
    return pl.DataFrame(
        {
            "center_id": [center_id] * pid.size,
            "patient_id": P.pid(pid[order]),
            "onset_on": _dates(P.index_date[pid], day)[order],
            "kind": kind[order].tolist(),
        },
        schema_overrides={"patient_id": pl.Utf8, "kind": pl.Utf8, "center_id": pl.Utf8},
    )


# =========================================================================================
# Rounding the truth to the center's precision
# =========================================================================================


def _cdm_unit(catalog: Catalog, table: str, column: str) -> str | None:
    return catalog.tables[table].column(column).unit


def _round_trip(expr: pl.Expr, canon: str | None, native: str | None, dec: int | None) -> pl.Expr:
    """The canonical value the center means when it writes `round(native value, dec)`."""
    if native and canon:
        to_native = unitreg.convert(expr, canon, native)
        r = to_native.round(dec) if dec is not None else to_native
        return unitreg.convert(r, native, canon)
    return expr.round(dec) if dec is not None else expr


def quantize(truth: dict[str, pl.DataFrame], shape: Shape, catalog: Catalog) -> dict[str, pl.DataFrame]:
    """Round every number to the center's own unit and precision, translate free text, and
    keep only the tables the center sends: the truth the center's files stand for."""
    out: dict[str, pl.DataFrame] = {}
    canon_units = catalog.tables["labs"].extra.get("canonical_units", {})
    for table, df in truth.items():
        if table not in shape.tables:
            continue
        exprs = []
        if table == "labs":
            analytes: dict[str, Analyte] = {}
            for ts in shape.tables["labs"]:
                analytes.update(ts.analytes)
            v = pl.col("value")
            chain = pl.when(pl.lit(False)).then(pl.lit(None, pl.Float64))
            for a, spec in analytes.items():
                chain = chain.when(pl.col("analyte") == a).then(_round_trip(v, canon_units[a], spec.unit, spec.dec))
            exprs.append(chain.otherwise(v).alias("value"))
            df = df.filter(pl.col("analyte").is_in(list(analytes)))
        else:
            cols = shape.tables[table][0].cols
            for name, col in cols.items():
                if col.dec is not None or col.unit:
                    exprs.append(_round_trip(pl.col(name), _cdm_unit(catalog, table, name), col.unit, col.dec).alias(name))
        if table == "outcomes":
            exprs.append(pl.col("death_cause").replace(shape.death_causes))
        if table == "crs_assessments":
            exprs.append(pl.lit(shape.crs_scale).alias("reported_scale"))
        out[table] = df.with_columns(exprs) if exprs else df
    return out


# =========================================================================================
# Rendering a center's files
# =========================================================================================


def _num_text(expr: pl.Expr, dec: int | None, decimal: str) -> pl.Expr:
    if dec == 0:
        t = expr.round(0).cast(pl.Int64).cast(pl.Utf8)
    elif dec is not None:
        t = expr.round(dec).cast(pl.Utf8)
    else:
        t = pl.when(expr == expr.round(0)).then(expr.cast(pl.Int64).cast(pl.Utf8)).otherwise(expr.cast(pl.Utf8))
    return t.str.replace(".", ",", literal=True) if decimal == "," else t


def _native_number(expr: pl.Expr, canon: str | None, col: Col) -> pl.Expr:
    e = unitreg.convert(expr, canon, col.unit) if (col.unit and canon) else expr.cast(pl.Float64)
    return e.round(col.dec) if col.dec is not None else e


def _render_column(df: pl.DataFrame, table: str, name: str, col: Col, shape: Shape, catalog: Catalog, typed: bool) -> pl.Expr:
    spec = catalog.tables[table].column(name)
    c = pl.col(name)
    if spec.type in ("integer", "decimal"):
        if col.recode:
            return c.cast(pl.Utf8).replace(col.recode)
        n = _native_number(c, spec.unit, col)
        if typed:
            return n.cast(pl.Int64) if (spec.type == "integer" or col.dec == 0) else n
        return _num_text(n, col.dec if spec.type == "decimal" else 0, shape.decimal)
    if spec.type == "boolean":
        mapping = col.recode or {"true": shape.bools[0], "false": shape.bools[1]}
        return pl.when(c).then(pl.lit(mapping["true"])).when(c.not_()).then(pl.lit(mapping["false"]))
    if spec.type in ("date", "timestamp"):
        if col.fmt == "serial":
            days = (c.cast(pl.Date) - pl.lit(EXCEL_EPOCH)).dt.total_days()
            return days if typed else days.cast(pl.Utf8)
        fmt = col.fmt or (shape.date_fmt if spec.type == "date" else shape.ts_fmt)
        if typed and not col.fmt:
            return c
        return c.dt.strftime(fmt)
    if col.recode:
        return c.replace(col.recode)
    return c


@dataclass
class Rendered:
    """One source file (or sheet) as the center writes it, before planting defects."""

    table: str
    shape: TableShape
    frame: pl.DataFrame
    numeric_text: set[str]  # Excel: text columns whose cells are numbers unless they are not


def render(truth: dict[str, pl.DataFrame], shape: Shape, catalog: Catalog) -> list[Rendered]:
    typed = shape.writer in ("excel", "spss")
    out: list[Rendered] = []
    for table, shapes in shape.tables.items():
        if table not in truth:
            continue
        df = truth[table]
        for ts in shapes:
            if ts.labs:
                out.append(_render_labs(df, ts, shape, catalog, typed))
                continue
            exprs = [_render_column(df, table, name, col, shape, catalog, typed).alias(col.src) for name, col in ts.cols.items()]
            out.append(Rendered(table, ts, df.select(exprs), set()))
    return out


def _lab_value_text(shape: Shape, analytes: dict[str, Analyte], catalog: Catalog, with_prefix: bool) -> pl.Expr:
    canon = catalog.tables["labs"].extra.get("canonical_units", {})
    chain = pl.when(pl.lit(False)).then(pl.lit(None, pl.Utf8))
    for a, spec in analytes.items():
        n = unitreg.convert(pl.col("value"), canon[a], spec.unit).round(spec.dec)
        text = _num_text(n, spec.dec, "." if shape.writer != "csv" else shape.decimal)
        if with_prefix:
            text = pl.when(pl.col("below_lod")).then(pl.lit(spec.lod_prefix) + text).otherwise(text)
        chain = chain.when(pl.col("analyte") == a).then(text)
    return chain.otherwise(pl.lit(None, pl.Utf8))


def _render_labs(df: pl.DataFrame, ts: TableShape, shape: Shape, catalog: Catalog, typed: bool) -> Rendered:
    df = df.filter(pl.col("analyte").is_in(list(ts.analytes)))
    ids = [_render_column(df, "labs", name, col, shape, catalog, typed).alias(col.src) for name, col in ts.cols.items()]
    with_prefix = ts.lod_col is None
    value = _lab_value_text(shape, ts.analytes, catalog, with_prefix)
    if ts.labs == "long":
        labels = {a: s.label for a, s in ts.analytes.items()}
        unit_text = {a: s.unit for a, s in ts.analytes.items()}
        cols = [
            *ids,
            pl.col("analyte").replace_strict(labels, return_dtype=pl.Utf8).alias(ts.analyte_col or "analyte"),
            value.alias(ts.value_col or "value"),
            pl.col("analyte").replace_strict(unit_text, return_dtype=pl.Utf8).alias(ts.unit_col or "unit"),
        ]
        if ts.lod_col is not None:
            cols.append(_render_column(df, "labs", "below_lod", ts.lod_col, shape, catalog, typed).alias(ts.lod_col.src))
        frame = df.select(cols)
        if shape.writer == "spss":
            frame = frame.with_columns(pl.col(ts.value_col or "value").cast(pl.Float64))
        return Rendered("labs", ts, frame, {ts.value_col or "value"} if shape.writer == "excel" else set())
    # wide: one row per draw, one column per analyte
    id_names = [c.src for c in ts.cols.values()]
    long = df.select([*ids, pl.col("analyte").replace_strict({a: s.label for a, s in ts.analytes.items()}, return_dtype=pl.Utf8).alias("__label"), value.alias("__value")])
    labels = [s.label for s in ts.analytes.values()]
    if long.height:
        wide = long.pivot(on="__label", index=id_names, values="__value", aggregate_function="first", maintain_order=True)
    else:
        wide = pl.DataFrame(schema={**{n: long.schema[n] for n in id_names}})
    for lab in labels:
        if lab not in wide.columns:
            wide = wide.with_columns(pl.lit(None, pl.Utf8).alias(lab))
    wide = wide.select([*id_names, *labels])
    return Rendered("labs", ts, wide, set(labels) if shape.writer == "excel" else set())


# ---- writers ------------------------------------------------------------------------------


def _write_csv(frame: pl.DataFrame, path: Path, shape: Shape) -> None:
    text = frame.select(pl.all().cast(pl.Utf8)).write_csv(separator=shape.delimiter, quote_style="necessary", line_terminator="\r\n" if shape.encoding != "utf-8" else "\n")
    path.write_bytes(text.encode(shape.encoding))


_NUM = re.compile(r"^-?\d+(\.\d+)?$")


def _excel_cell(v: Any, numeric_text: bool) -> Any:
    if numeric_text and isinstance(v, str) and _NUM.match(v):
        f = float(v)
        return int(f) if f.is_integer() and "." not in v else f
    return v


def _write_excel(items: list[Rendered], path: Path, shape: Shape) -> None:
    import openpyxl

    wb = openpyxl.Workbook(write_only=True)
    for r in items:
        ws = wb.create_sheet(r.shape.sheet or r.table)
        for row in range(1, shape.header_row):
            ws.append([shape.title if (row == 1 and shape.title) else None])
        ws.append(list(r.frame.columns))
        flags = [c in r.numeric_text for c in r.frame.columns]
        for rec in r.frame.iter_rows():
            ws.append([_excel_cell(v, f) for v, f in zip(rec, flags, strict=True)])
    wb.save(path)


def _write_spss(r: Rendered, path: Path, shape: Shape, catalog: Catalog) -> None:
    import pyreadstat

    frame = r.frame
    labels: dict[str, dict[int | float, str]] = {}
    exprs = []
    cols = dict(r.shape.cols)
    if r.shape.lod_col is not None:
        cols["below_lod"] = r.shape.lod_col
    src_to_cdm = {c.src: name for name, c in cols.items()}
    for name in frame.columns:
        cdm = src_to_cdm.get(name)
        if r.shape.labs == "long" and name == r.shape.analyte_col:
            texts = [s.label for s in r.shape.analytes.values()]
        elif cdm is not None:
            spec = catalog.tables[r.table].column(cdm)
            col = cols[cdm]
            if spec.type == "boolean":
                texts = [shape.bools[1], shape.bools[0]]  # 0 = No, 1 = Sì
            elif col.recode and spec.type == "code":
                texts = list(dict.fromkeys(col.recode.values()))
            else:
                continue
        else:
            continue
        code_of = {t: i for i, t in enumerate(texts)} if texts[0] == shape.bools[1] else {t: i + 1 for i, t in enumerate(texts)}
        labels[name] = {float(v): k for k, v in code_of.items()}
        exprs.append(pl.col(name).replace_strict(code_of, default=None, return_dtype=pl.Float64).alias(name))
    if exprs:
        frame = frame.with_columns(exprs)
    pyreadstat.write_sav(frame, str(path), variable_value_labels=labels)


# =========================================================================================
# Defects
# =========================================================================================


@dataclass(frozen=True)
class DefectPlan:
    shape: str
    table: str
    cdm_column: str
    rule_id: str
    description: str


DEFECTS = [
    DefectPlan("cn_hangzhou", "transfusions", "pre_count_e9l", "transfusions.pre_count_e9l.type", "'<5' written in a numeric column"),
    DefectPlan("eu_leiden", "outcomes", "death_on", "outcomes.death_on.type", "an impossible date (31 February)"),
    DefectPlan("cn_hangzhou", "labs", "value", "labs.plt_wrong_unit", "a platelet count of 15000 in a column declared x10^9/L"),
    DefectPlan("us_boston", "transfusions", "post_count_at", "transfusions.post_after_transfusion", "a post-transfusion count taken before the transfusion"),
    DefectPlan("eu_leiden", "treatments", "car_target", "treatments.car_target_required", "a CAR-T patient without a CAR target"),
    DefectPlan("us_boston", "transfusions", "patient_id", "transfusions.patient_id.references", "a transfusion of a patient who is not in the patients file"),
    DefectPlan("cn_hangzhou", "crs_assessments", "reported_grade", "crs_assessments.reported_grade_consistent", "a CRS grade the recorded signs contradict"),
    DefectPlan("eu_leiden", "transfusions", "transfusion_id", "transfusions.transfusion_id.unique", "a duplicated transfusion id"),
    DefectPlan("us_boston", "patients", "sex", "patients.sex.required", "an empty required cell"),
]


def _set(frame: pl.DataFrame, i: int, column: str, value: Any) -> pl.DataFrame:
    dtype = frame.schema[column]
    lit = pl.lit(value, dtype) if value is not None else pl.lit(None, dtype)
    return frame.with_columns(pl.when(pl.int_range(pl.len()) == i).then(lit).otherwise(pl.col(column)).alias(column))


def _first(frame: pl.DataFrame, cond: pl.Expr, at_least: int = 0) -> int:
    idx = frame.with_row_index("__i").filter(cond).get_column("__i")
    idx = idx.filter(idx >= at_least)
    if idx.len() == 0:
        raise ValueError("no row fits the defect")
    return int(idx[0])


def plant_defect(plan: DefectPlan, items: list[Rendered], shape: Shape) -> tuple[int, str, str] | None:
    """Plant one defect; returns (frame index, file, source column) or None if impossible."""
    r = next((x for x in items if x.table == plan.table and (plan.table != "labs" or x.shape.labs == "long")), None)
    if r is None or r.frame.height == 0:
        return None
    ts = r.shape
    f = r.frame
    try:
        if plan.rule_id == "transfusions.pre_count_e9l.type":
            col = ts.cols["pre_count_e9l"].src
            i = _first(f, pl.col(col).is_not_null(), 2)
            f = _set(f, i, col, "<5")
        elif plan.rule_id == "outcomes.death_on.type":
            col = ts.cols["death_on"].src
            i = _first(f, pl.col(col).is_not_null()) if f.get_column(col).null_count() < f.height else 0
            f = _set(f, i, col, "31.02.2019")
        elif plan.rule_id == "labs.plt_wrong_unit":
            col = ts.value_col or "value"
            i = _first(f, pl.col(ts.analyte_col or "analyte") == ts.analytes["PLT"].label, 3)
            f = _set(f, i, col, "15000")
        elif plan.rule_id == "transfusions.post_after_transfusion":
            col = ts.cols["post_count_at"].src
            at = ts.cols["transfused_at"].src
            i = _first(f, pl.col(col).is_not_null(), 1)
            f = _set(f, i, col, f.get_column(at)[i] - dt.timedelta(hours=2))
        elif plan.rule_id == "treatments.car_target_required":
            col = ts.cols["car_target"].src
            i = _first(f, pl.col(col).is_not_null())
            f = _set(f, i, col, None)
        elif plan.rule_id == "transfusions.patient_id.references":
            col = ts.cols["patient_id"].src
            i = min(4, f.height - 1)
            f = _set(f, i, col, f"{shape.id_prefix}99999")
        elif plan.rule_id == "crs_assessments.reported_grade_consistent":
            col = ts.cols["reported_grade"].src
            grade1 = ts.cols["reported_grade"].recode["1"] if ts.cols["reported_grade"].recode else 1
            i = _first(f, pl.col(col) == grade1)
            three = ts.cols["reported_grade"].recode["3"] if ts.cols["reported_grade"].recode else 3
            f = _set(f, i, col, three)
        elif plan.rule_id == "transfusions.transfusion_id.unique":
            col = ts.cols["transfusion_id"].src
            i = min(6, f.height - 1)
            f = _set(f, i, col, f.get_column(col)[i - 1])
        elif plan.rule_id == "patients.sex.required":
            col = ts.cols["sex"].src
            i = min(1, f.height - 1)
            f = _set(f, i, col, None)
        else:
            return None
    except ValueError:
        return None
    r.frame = f
    return i, (ts.file if shape.writer != "excel" else (shape.workbook or ts.file)), col


def _source_row(i: int, shape: Shape) -> int:
    return (shape.header_row if shape.writer == "excel" else 1) + 1 + i


# =========================================================================================
# Driver
# =========================================================================================


def _write_truth(tables: dict[str, pl.DataFrame], folder: Path, fmt: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for table, df in tables.items():
        if fmt == "parquet":
            df.write_parquet(folder / f"{table}.parquet")
        else:
            df.write_csv(folder / f"{table}.csv", date_format="%Y-%m-%d", datetime_format="%Y-%m-%dT%H:%M:%S")


def _write_mapping(shape: Shape, key: str, center_id: str, out: Path) -> Path:
    src = mappings_dir() / f"{shape.key}.yaml"
    text = src.read_text(encoding="utf-8")
    if center_id != shape.center_id:
        text = re.sub(r"(?m)^center_id:.*$", f"center_id: {center_id}", text, count=1)
    dst = out / f"{key}.yaml"
    dst.write_text(text, encoding="utf-8")
    return dst


def split_patients(total: int, centers: int) -> list[int]:
    """`total` patients over `centers` centers, as evenly as possible (the first ones get the
    remainder): `ptrh synth centers --patients 50000 --centers 100` is 500 each."""
    if centers < 1 or total < centers:
        raise ValueError("at least one patient per center")
    return [total // centers + (1 if k < total % centers else 0) for k in range(centers)]


def generate_centers(
    out: Path,
    patients_per_center: int | list[int] = 40,
    seed: int = 20240601,
    defects: bool = False,
    centers: int = 4,
    truth_format: str = "csv",
    shapes: list[str] | None = None,
    render_files: bool = True,
) -> dict[str, Any]:
    """Write `centers` demo centers (cycling through the shapes) under `out`.

    Layout: `centers/<key>/` the center's own files, `truth/<key>/` the canonical truth,
    `mappings/<key>.yaml` the mapping to read the center's files, `manifest.json`, and with
    `defects=True` also `defects.json` (one entry per planted defect). Returns the manifest.
    `render_files=False` writes only the truth (fast, for scale tests)."""
    if centers < 1:
        raise ValueError("centers must be at least 1")
    sizes = [patients_per_center] * centers if isinstance(patients_per_center, int) else list(patients_per_center)
    if len(sizes) != centers or min(sizes) < 1:
        raise ValueError("patients_per_center must be at least 1 (one number, or one per center)")
    if truth_format not in ("csv", "parquet"):
        raise ValueError("truth_format is csv or parquet")
    order = shapes or SHAPE_ORDER
    for s in order:
        if s not in SHAPES:
            raise ValueError(f"unknown center shape '{s}' (known: {', '.join(SHAPES)})")
    catalog = load_catalog()
    out = Path(out)
    for sub in ("centers", "truth", "mappings"):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
    (out / "mappings").mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"seed": seed, "patients": sum(sizes), "patients_per_center": sizes, "centers": [],
                                "defects": []}
    for k in range(centers):
        shape = SHAPES[order[k % len(order)]]
        copy = k // len(order)
        key = shape.key if copy == 0 else f"{shape.key}_{copy + 1}"
        center_id = shape.center_id if copy == 0 else f"{shape.center_id}{copy + 1}"
        prefix = shape.id_prefix if copy == 0 else f"{shape.id_prefix}{copy + 1}"
        rng = np.random.default_rng([seed, k])
        truth = quantize(generate_truth(sizes[k], rng, shape, center_id, prefix), shape, catalog)
        _write_truth(truth, out / "truth" / key, truth_format)
        entry = {
            "key": key,
            "shape": shape.key,
            "center_id": center_id,
            "folder": f"centers/{key}",
            "truth": f"truth/{key}",
            "mapping": f"mappings/{key}.yaml",
            "rows": {t: df.height for t, df in truth.items()},
        }
        manifest["centers"].append(entry)
        if not render_files:
            continue
        _write_mapping(shape, key, center_id, out / "mappings")
        folder = out / "centers" / key
        folder.mkdir(parents=True, exist_ok=True)
        items = render(truth, shape, catalog)
        if defects and copy == 0:
            for plan in DEFECTS:
                if plan.shape != shape.key:
                    continue
                hit = plant_defect(plan, items, shape)
                if hit is None:
                    continue
                i, file, col = hit
                manifest["defects"].append(
                    {
                        "center": key,
                        "center_id": center_id,
                        "file": file,
                        "sheet": next((x.shape.sheet for x in items if x.table == plan.table and x.shape.sheet), None),
                        "row": _source_row(i, shape),
                        "column": col,
                        "table": plan.table,
                        "cdm_column": plan.cdm_column,
                        "rule_id": plan.rule_id,
                        "description": plan.description,
                    }
                )
        if shape.writer == "csv":
            for r in items:
                _write_csv(r.frame, folder / r.shape.file, shape)
        elif shape.writer == "excel":
            _write_excel(items, folder / (shape.workbook or "workbook.xlsx"), shape)
        else:
            for r in items:
                _write_spss(r, folder / r.shape.file, shape, catalog)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    if defects:
        (out / "defects.json").write_text(json.dumps(manifest["defects"], indent=2, ensure_ascii=False), encoding="utf-8")
    return manifest
