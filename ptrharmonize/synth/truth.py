"""The canonical truth of a demo center: a cohort of relapsed/refractory ALL patients drawn with
numpy (CAR-T or salvage chemotherapy; platelet transfusions with pre/post counts, daily lab
series, CRS assessments, bleeding, medications, infections, outcomes). Vectorised: nothing loops
over patients or rows in Python. The center's mapping shapes only what `invert.profile` says
(products and platelet content per unit, CRS scale, id prefix); `invert.quantize` then rounds
the truth to what the center's files can say."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from .invert import Profile

CANON_DEATH = ["disease progression", "infection", "bleeding", "CRS", "other"]
LOD = {"IL6": 1.5, "IL10": 1.0, "IFNG": 2.0}
ANALYTES = ["PLT", "ANC", "WBC", "HGB", "CRP", "FERRITIN", "IL6", "IL10", "IFNG"]
LAB_DAYS = (-3, 30)  # daily draws from day -3 to day 30 after the index date

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


def generate_truth(n: int, rng: np.random.Generator, shape: Profile, center_id: str, id_prefix: str) -> dict[str, pl.DataFrame]:
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
    crs, max_grade, crs_day = _crs(P, rng, center_id, shape.crs_scale or "lee2014")
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


def _transfusions(P: _Patients, rng: np.random.Generator, shape: Profile, center_id: str, prefix: str) -> pl.DataFrame:
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

    # Products the center's mapping can write, the first most often; as many units as make
    # an adult dose (~2.4-3.6 x10^11) at the center's declared content per unit.
    products = shape.products or ["apheresis"]
    weights = [0.6] + [0.4 / (len(products) - 1)] * (len(products) - 1) if len(products) > 1 else [1.0]
    product = _choice(rng, products, weights, t)
    target = rng.uniform(2.4, 3.6, t)
    content = np.array([shape.content.get(p, 0.0) for p in product], dtype=float)
    units = np.where(content > 0, np.maximum(1.0, np.round(target / np.where(content > 0, content, 1.0))), 1.0)
    dose = np.where(content > 0, units * content, np.round(target, 1))
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
