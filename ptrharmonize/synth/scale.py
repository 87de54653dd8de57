"""Registry-scale canonical extracts, fast: numpy draws per center, polars writers.

`generate_registry(out, patients=50_000, centers=100)` writes one canonical extract folder per
center (`out/C001/labs.csv`, ...; or `.parquet`), about 30 platelet transfusions and 200 lab rows
per patient (so 50,000 patients give ~1.5 M transfusions and ~10 M lab rows), with a small rate
of planted defects (bad numbers, out-of-range values, unknown codes, wrong units, counts taken
before the transfusion) so validation has something to find. Everything is vectorised: no
Python loop over patients or rows, only over centers and analytes.

The values are plausible, not calibrated (the calibrated cohort is `synth/paper.py`): about a
third of CAR-T patients are refractory (low count increments), CRS signs follow the grade,
deaths fall after the transfusion window, and a fatal bleed only happens to a patient who died.
Error rules hit by the planted defects need a tolerance to be stored: `tolerances()` gives one
(a thresholds file for `ptrh ingest --thresholds`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from . import defects as planter

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
EPOCH = dt.date(1970, 1, 1)
START = (dt.date(2016, 1, 1) - EPOCH).days
END = (dt.date(2024, 6, 30) - EPOCH).days
TS = "%Y-%m-%dT%H:%M:%S"

# analyte -> (unit, log-normal median, sigma, probability measured on a given day for CAR-T,
#            same for chemotherapy)
ANALYTES = {
    "PLT": ("10^9/L", 35.0, 0.9, 1.0, 1.0),
    "ANC": ("10^9/L", 1.2, 1.1, 1.0, 1.0),
    "WBC": ("10^9/L", 2.5, 0.9, 1.0, 1.0),
    "HGB": ("g/L", 85.0, 0.15, 1.0, 1.0),
    "CRP": ("mg/L", 25.0, 1.2, 1.0, 1.0),
    "IL6": ("pg/mL", 40.0, 1.6, 0.3, 0.0),
    "IL10": ("pg/mL", 12.0, 1.3, 0.3, 0.0),
    "IFNG": ("pg/mL", 20.0, 1.5, 0.3, 0.0),
    "FERRITIN": ("ng/mL", 1500.0, 1.0, 0.2, 0.2),
}

# Planted defects (the one planter, `synth/defects.py`): each of these at `defect_rate` of rows.
DEFECTS = planter.SCALE
TEXT_DEFECTS = [n for n in DEFECTS if planter.CATALOG[n].text]  # only where the file is text (CSV)


@dataclass
class ScaleStats:
    centers: int
    patients: int
    rows: dict[str, int]
    bytes: int
    seconds: float


def _ts_str(us: np.ndarray) -> pl.Series:
    return pl.Series(us, dtype=pl.Int64).cast(pl.Datetime("us"))


def _date(days: np.ndarray) -> pl.Series:
    return pl.Series(days.astype(np.int32), dtype=pl.Int32).cast(pl.Date)


def _center_sizes(patients: int, centers: int, rng: np.random.Generator) -> np.ndarray:
    """Unequal centers (log-normal weights), every center at least one patient."""
    if centers <= 1:
        return np.array([patients])
    w = rng.lognormal(0.0, 0.6, centers)
    sizes = np.maximum(1, np.floor(w / w.sum() * (patients - centers)).astype(int) + 1)
    sizes[0] += patients - sizes.sum()
    return sizes


def _round(x: np.ndarray, d: int) -> np.ndarray:
    return np.round(x, d)


def center_tables(center: str, n: int, seed: int, defect_rate: float = 2e-4) -> dict[str, pl.DataFrame]:
    """The nine canonical tables of one center, typed (dates, timestamps, floats, booleans)."""
    rng = np.random.default_rng(seed)
    pid = pl.Series(np.arange(1, n + 1)).cast(pl.Utf8).str.zfill(6)
    pid = ("P" + pid).to_numpy().astype(object)
    cid = np.full(n, center, dtype=object)

    # -- patients -------------------------------------------------------------------------
    age = np.clip(np.round(rng.gamma(4.0, 7.0, n)), 1, 85).astype(np.int64)
    child = age < 16
    sex = rng.choice(np.array(["M", "F"], dtype=object), n, p=[0.56, 0.44])
    height = np.where(child, 75 + 6.2 * age, rng.normal(168, 9, n)) + rng.normal(0, 4, n)
    height = _round(np.clip(height, 60, 205), 1)
    weight = np.where(child, 9 + 2.6 * age, rng.normal(68, 13, n)) * rng.lognormal(0, 0.08, n)
    weight = _round(np.clip(weight, 6, 160), 1)
    cart = rng.random(n) < 0.75
    diag = rng.choice(np.array(["B-ALL", "T-ALL", "other"], dtype=object), n, p=[0.85, 0.1, 0.05])
    status = rng.choice(np.array(["relapsed", "primary_refractory"], dtype=object), n, p=[0.7, 0.3])
    n_rel = np.where(status == "relapsed", rng.integers(1, 4, n), 0)
    patients = pl.DataFrame({
        "center_id": cid, "patient_id": pid, "sex": sex, "age_years": age,
        "height_cm": height, "weight_kg": weight, "diagnosis": diag, "disease_status": status,
        "n_relapses": n_rel, "prior_allo_hsct": rng.random(n) < 0.3,
        "extramedullary": rng.random(n) < 0.15, "bm_blast_pct": _round(rng.uniform(0, 95, n), 1),
    })

    # -- treatments -----------------------------------------------------------------------
    index_day = rng.integers(START, END, n)
    target = rng.choice(np.array(["CD19", "CD22", "CD19/CD22"], dtype=object), n, p=[0.7, 0.1, 0.2])
    treatments = pl.DataFrame({
        "center_id": cid, "patient_id": pid,
        "treatment_type": np.where(cart, "car_t", "chemotherapy").astype(object),
        "regimen": np.where(cart, np.char.add("CAR-T ", target.astype(str)), "FLAG-IDA").astype(object),
        "car_target": pl.Series(np.where(cart, target, None).tolist(), dtype=pl.Utf8),
        "index_date": _date(index_day),
    })

    # -- outcomes (death after the transfusion and lab windows) -----------------------------
    dead = rng.random(n) < 0.25
    death_day = index_day + rng.integers(75, 720, n)
    fu_day = np.where(dead, death_day, index_day + rng.integers(90, 1100, n))
    outcomes = pl.DataFrame({
        "center_id": cid, "patient_id": pid,
        "response": rng.choice(np.array(["CR", "CRi", "PR", "NR", "NE"], dtype=object), n,
                               p=[0.6, 0.1, 0.1, 0.15, 0.05]),
        "death_on": _date(death_day),
        "death_cause": rng.choice(np.array(["progression", "infection", "bleeding", "CRS"], dtype=object), n),
        "last_followup_on": _date(fu_day),
        "_dead": dead,
    }).with_columns(
        pl.when(pl.col("_dead")).then(pl.col("death_on")).alias("death_on"),
        pl.when(pl.col("_dead")).then(pl.col("death_cause")).alias("death_cause"),
    ).drop("_dead")

    # -- transfusions: ~30 per patient, within days -7..60 of the index date -----------------
    refractory = rng.random(n) < np.where(cart, 0.35, 0.25)
    k = rng.negative_binomial(2, 2 / 32, n)
    pi = np.repeat(np.arange(n), k)
    m = pi.size
    seq = np.arange(m) - np.repeat(np.cumsum(k) - k, k)
    day_off = rng.integers(-7, 61, m)
    t_us = (index_day[pi] + day_off).astype(np.int64) * DAY_US + rng.integers(7 * 60, 21 * 60, m) * 60_000_000
    t_us = t_us[np.lexsort((t_us, pi))]  # in time order within each patient
    product = rng.choice(np.array(["apheresis", "pooled", "whole_blood_derived"], dtype=object), m, p=[0.7, 0.2, 0.1])
    units = np.where(product == "apheresis", 1.0, rng.integers(4, 7, m).astype(float))
    dose = _round(np.clip(rng.normal(3.2, 0.7, m), 1.0, 8.0), 2)
    pre = _round(np.clip(rng.lognormal(np.log(10), 0.5, m), 1, 60), 0)
    bsa = 0.007184 * height[pi] ** 0.725 * weight[pi] ** 0.425
    cci = np.where(refractory[pi], rng.lognormal(np.log(2500), 0.7, m), rng.lognormal(np.log(11000), 0.45, m))
    post = _round(np.clip(pre + cci * dose / bsa / 1000.0, 0, 1500), 0)
    pre_us = t_us - rng.integers(30, 360, m) * 60_000_000
    post_us = t_us + np.where(rng.random(m) < 0.5, rng.integers(60, 120, m), rng.integers(600, 1200, m)) * 60_000_000
    tid = pl.Series(pid[pi]) + "-T" + pl.Series(seq + 1).cast(pl.Utf8).str.zfill(3)
    transfusions = pl.DataFrame({
        "center_id": cid[pi], "patient_id": pid[pi], "transfusion_id": tid,
        "transfused_at": _ts_str(t_us), "product": product, "units_reported": units,
        "dose_e11": dose, "storage_h": _round(rng.uniform(6, 150, m), 1),
        "abo_compatible": rng.random(m) < 0.85, "crossmatched": rng.random(m) < 0.1,
        "pre_count_e9l": pre, "pre_count_at": _ts_str(pre_us),
        "post_count_e9l": post, "post_count_at": _ts_str(post_us),
    })

    # -- labs: a daily series from day -3, ~200 rows per patient ----------------------------
    nd = rng.poisson(34, n) + 1
    dpi = np.repeat(np.arange(n), nd)
    dseq = np.arange(dpi.size) - np.repeat(np.cumsum(nd) - nd, nd)
    day_us = (index_day[dpi] - 3 + dseq).astype(np.int64) * DAY_US + 6 * HOUR_US
    parts = []
    for analyte, (unit, med, sigma, p_cart, p_chemo) in ANALYTES.items():
        p = np.where(cart[dpi], p_cart, p_chemo)
        sel = np.flatnonzero(rng.random(dpi.size) < p)
        if sel.size == 0:
            continue
        v = rng.lognormal(np.log(med), sigma, sel.size)
        if analyte in ("PLT", "ANC", "WBC"):
            # counts recover over the series
            v = v * (1 + dseq[sel] / 30.0)
        v = _round(np.clip(v, 0, 1900 if analyte in ("PLT", "WBC") else 1e6), 2)
        below = (v < 1.0) & (analyte in ("IL6", "IL10", "IFNG"))
        parts.append(pl.DataFrame({
            "_p": dpi[sel].astype(np.int64),
            "measured_at": _ts_str(day_us[sel] + rng.integers(0, 120, sel.size) * 60_000_000),
            "analyte": np.full(sel.size, analyte, dtype=object),
            "value": v, "unit": np.full(sel.size, unit, dtype=object), "below_lod": below,
        }))
    labs = pl.concat(parts).sort(["_p", "measured_at"])
    lp = labs["_p"].to_numpy()
    labs = labs.select(
        pl.Series("center_id", cid[lp]), pl.Series("patient_id", pid[lp]),
        "measured_at", "analyte", "value", "unit", "below_lod",
    )

    # -- CRS assessments: CAR-T patients, days 0..~7 --------------------------------------
    cp = np.flatnonzero(cart)
    kc = rng.poisson(6, cp.size) + 1
    ci = np.repeat(cp, kc)
    cs = np.arange(ci.size) - np.repeat(np.cumsum(kc) - kc, kc)
    mc = ci.size
    # signs that give the same grade under Lee 2014 and ASTCT 2019; 3% reported one grade off
    grade = rng.choice(np.arange(5), mc, p=[0.35, 0.35, 0.18, 0.09, 0.03])
    temp = _round(np.where(grade >= 1, rng.uniform(38.0, 40.5, mc), rng.uniform(36.3, 37.8, mc)), 1)
    vaso = np.where(grade >= 4, 2, np.where(grade == 3, 1, 0))
    fio2 = np.where(grade >= 4, 60.0, np.where(grade == 3, 45.0, np.where(grade == 2, 28.0, 21.0)))
    device = np.where(grade >= 4, "ventilator", np.where(grade == 3, "high_flow",
                      np.where(grade == 2, "low_flow", "none"))).astype(object)
    off = rng.random(mc) < 0.03
    reported = np.where(off, np.clip(grade + rng.choice(np.array([-1, 1]), mc), 0, 4), grade)
    crs = pl.DataFrame({
        "center_id": cid[ci], "patient_id": pid[ci], "assessed_on": _date(index_day[ci] + cs),
        "max_temp_c": temp, "hypotension": grade >= 2, "vasopressors": vaso,
        "ne_equiv_ug_min": np.where(vaso > 0, _round(rng.uniform(20, 40, mc), 1), 0.0),
        "vasopressin": np.zeros(mc, dtype=bool), "fio2_pct": fio2, "o2_device": device,
        "o2_flow_l_min": np.where(grade == 3, 30.0, np.where(grade == 2, 3.0, 0.0)),
        "organ_toxicity_grade": np.where(grade >= 3, rng.integers(0, 3, mc), 0),
        "transaminitis_grade": rng.integers(0, 2, mc), "reported_grade": reported,
        "reported_scale": rng.choice(np.array(["astct2019", "lee2014"], dtype=object), mc, p=[0.7, 0.3]),
    })

    # -- bleeding events, medications, infections -----------------------------------------
    kb = rng.poisson(0.35, n)
    bi = np.repeat(np.arange(n), kb)
    mb = bi.size
    wg = rng.choice(np.arange(1, 5), mb, p=[0.6, 0.25, 0.1, 0.05])
    fatal = (wg == 4) & dead[bi] & (rng.random(mb) < 0.5)
    bleeding = pl.DataFrame({
        "center_id": cid[bi], "patient_id": pid[bi], "onset_on": _date(index_day[bi] + rng.integers(0, 45, mb)),
        "site": rng.choice(np.array(["skin", "mucosal", "gi", "gu", "pulmonary", "cns", "retinal", "other"],
                                    dtype=object), mb, p=[0.4, 0.25, 0.12, 0.08, 0.05, 0.04, 0.03, 0.03]),
        "who_grade": wg, "rbc_transfusion_24h": wg >= 3, "hemodynamic_instability": wg == 4, "fatal": fatal,
    })
    km = rng.poisson(1.5, n)
    mi = np.repeat(np.arange(n), km)
    mm = mi.size
    medications = pl.DataFrame({
        "center_id": cid[mi], "patient_id": pid[mi],
        "drug": rng.choice(np.array(["tocilizumab", "corticosteroid", "tpo_ra", "il11", "ivig", "gcsf"],
                                    dtype=object), mm, p=[0.3, 0.25, 0.15, 0.05, 0.1, 0.15]),
        "started_on": _date(index_day[mi] + rng.integers(0, 30, mm)),
        "n_doses": rng.integers(1, 11, mm),
    })
    ki = rng.poisson(0.4, n)
    ii = np.repeat(np.arange(n), ki)
    infections = pl.DataFrame({
        "center_id": cid[ii], "patient_id": pid[ii], "onset_on": _date(index_day[ii] + rng.integers(0, 60, ii.size)),
        "kind": rng.choice(np.array(["bacterial", "viral", "fungal", "unknown"], dtype=object), ii.size,
                           p=[0.5, 0.3, 0.15, 0.05]),
    })
    tables = {
        "patients": patients, "treatments": treatments, "transfusions": transfusions, "labs": labs,
        "crs_assessments": crs, "bleeding_events": bleeding, "medications": medications,
        "infections": infections, "outcomes": outcomes,
    }
    return planter.plant_rate(tables, [n for n in DEFECTS if n not in TEXT_DEFECTS], rng, defect_rate)


def write_extract(tables: dict[str, pl.DataFrame], folder: Path, fmt: str, rng: np.random.Generator,
                  defect_rate: float) -> int:
    """Write one canonical extract folder; returns the bytes written."""
    folder.mkdir(parents=True, exist_ok=True)
    total = 0
    for name, df in tables.items():
        path = folder / f"{name}.{fmt}"
        if fmt == "parquet":
            df.write_parquet(path, compression="zstd", statistics=False)
        else:
            # Values a center typed as text ('<5'): the engine reports each as a type issue.
            df = planter.plant_rate({name: df}, TEXT_DEFECTS, rng, defect_rate)[name]
            df.write_csv(path, datetime_format=TS, date_format="%Y-%m-%d")
        total += path.stat().st_size
    return total


def generate_registry(out: Path, patients: int = 50_000, centers: int = 100, fmt: str = "csv",
                      seed: int = 20240101, defect_rate: float = 2e-4) -> ScaleStats:
    """One canonical extract folder per center under `out` (`out/C001`, ...)."""
    import time

    if fmt not in ("csv", "parquet"):
        raise ValueError("fmt must be 'csv' or 'parquet'")
    t0 = time.perf_counter()
    out = Path(out)
    rng = np.random.default_rng(seed)
    sizes = _center_sizes(patients, centers, rng)
    rows: dict[str, int] = {}
    nbytes = 0
    for i, n in enumerate(sizes, start=1):
        center = f"C{i:03d}"
        tables = center_tables(center, int(n), seed * 1000 + i, defect_rate)
        for t, df in tables.items():
            rows[t] = rows.get(t, 0) + df.height
        nbytes += write_extract(tables, out / center, fmt, np.random.default_rng(seed + i), defect_rate)
    return ScaleStats(len(sizes), int(sizes.sum()), rows, nbytes, time.perf_counter() - t0)


def tolerances(path: Path, rate: float = 0.01) -> Path:
    """A thresholds file tolerating the planted error defects (1% of rows by default)."""
    lines = ["rule_id,center_id,threshold"]
    lines += [f"{r},,{rate}" for r in planter.rules(DEFECTS)]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(path)
