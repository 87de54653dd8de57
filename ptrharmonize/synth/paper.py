"""The calibrated study cohort: a canonical extract whose analysis reproduces the paper.

`generate_paper_cohort(out)` writes one CSV per CDM table (UTF-8, ISO dates and timestamps,
`true`/`false`) for a synthetic single-center cohort of 44 patients with relapsed/refractory
B-ALL: 26 treated with CAR-T, 18 with salvage chemotherapy. Nothing in the extract is a result:
every published number comes out of patient histories through the toolkit's derivations --
transfusions with pre/post counts, doses and heights/weights give the CCIs and PTR; daily CRS
signs give the Lee 2014 grade; daily PLT/ANC series give improvement, recovery and the platelet
dose; cytokine series give the peaks; bleeding events and follow-up dates give the competing
events. `verify_paper_cohort(folder)` recomputes every published number from the CSV files
alone (polars + scipy, the study's definitions written out again, no SQL views), so the cohort
can be checked without the rest of the toolkit.

HOW IT WAS CALIBRATED (the full account, with every choice, is `PAPER_COHORT.md`)
The published medians, ranges and tests pin down per-patient *latent* values: each CAR-T
patient belongs to one of four groups -- A: PTR and CRS >= 3 (12), B: PTR and CRS <= 2 (2),
C: no PTR and CRS >= 3 (3), D: no PTR and CRS <= 2 (8) -- and the peak cytokines, peak
temperature and platelet units of each group were solved for offline (rank orderings searched
with the R rules of `wilcox.test` / `t.test`, values filled so every median and range is the
printed one). Those values are the constants below (`_PEAKS`, and the temperature and units
columns of `_CART`); the histories are rendered deterministically around them. Figure 2B is
the one figure calibrated at generation time (`_calibrate_fig2b`: which days IL-6 was measured,
how strongly increments follow the day's IL-6). The seed only varies filler (doses, storage
times, count noise, the day a petechia appears) and never a published number; dates, heights
and weights come from a fixed generator so Table 1 does not depend on it either.

PRINTED FIGURES THAT CANNOT ALL HOLD, AND WHICH ONE IS FOLLOWED
- Bleeding: the grade counts (0: 6, 1: 10, 2: 4, 3: 2, 4: 3 -> five patients with grade 3-4)
  contradict the Fisher test 3/14 vs 0/11 (p = 0.230). The tests are followed: within 30 days
  only the three fatal grade-4 bleeds (all PTR) are grade 3-4. The two grade-3 bleeds happen
  after day 30 (days 41 and 47, red cells given), so the worst grade over the whole follow-up
  is the printed 6/10/4/2/3 while the 30-day distribution is 6/10/6/0/3.
- Cumulative incidence 67% vs 0% and Gray's p = 0.023 with three events in 14 patients need
  heavy censoring: 8 PTR patients leave follow-up before the first bleed (day 21) and 2 more
  before the third (day 27); 4 non-PTR patients leave before day 21 (discharged to the
  referring hospital, registry follow-up ends; the paper: "some patients died or were lost to
  follow-up"). Aalen-Johansen then gives 1/6 + 1/6 + 1/3 = 2/3, and cmprsk's Gray test
  chi2 = 5.136, p = 0.0234. Every lab-derived outcome of a censored patient happens before
  the censoring date.
- Mann-Whitney p-values that no untied sample of the study's sizes can give with R's exact
  test (IL-6 by PTR: 0.0246 or 0.0211, not 0.024; IL-10 by CRS: 0.091, not 0.090; units:
  0.0442, not 0.0426) are reached with ties, for which R uses the normal approximation with
  continuity correction: six IL-6 peaks are 5000 pg/mL (the assay's upper limit before
  2017-07, when undiluted samples above it were reported as 5000), three IL-10 peaks are
  40.00 pg/mL, and platelet units (whole numbers) tie naturally.
- Peak temperature: t = -2.189 is non-PTR minus PTR (SPSS orders groups by code, non-PTR
  first), Student t with pooled variance, df = 23.
- Corticosteroid p = 0.208 is Fisher's exact (the text says chi-square); neutrophil
  improvement is 8/14 vs 6/11; tocilizumab p = 0.241 is the yes/no test (10/14 vs 5/11).

API
    generate_paper_cohort(out: Path, seed: int = 2021) -> None
    verify_paper_cohort(folder: Path) -> dict   # every published number, recomputed
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..cdm import TABLE_ORDER, load_catalog

CENTER_ID = "ZJU1"
DEFAULT_SEED = 2021
_DEMOGRAPHY_SEED = 20210416   # index dates, heights and weights (Table 1): fixed, not the seed

# ============================================================================= calibration
# Peak cytokines (pg/mL) per group, ascending; a patient takes the value of its `rank` within
# its group for all three cytokines (so the three are rank-correlated, as in real CRS).
# Solved so that every published median / range / Mann-Whitney p holds in the PTR split and in
# the CRS split at once (see PAPER_COHORT.md, "Cytokines").
_PEAKS: dict[str, dict[str, tuple[float, ...]]] = {
    "IL6": {
        "A": (374.90, 5000.0, 5000.0, 5000.0, 11068.09, 11134.69, 12458.75, 13274.82, 13702.69,
              14144.35, 14600.25, 43753.92),
        "B": (664.04, 9726.05),
        "C": (5000.0, 12860.32, 15070.84),
        "D": (47.57, 79.70, 133.54, 223.75, 660.07, 1531.15, 5000.0, 5000.0),
    },
    "IFNG": {
        "A": (258.57, 488.43, 626.90, 1032.74, 3018.20, 3169.44, 3986.91, 5015.22, 6308.76,
              7935.93, 9982.79, 12557.57),
        "B": (113.80, 804.63),
        "C": (296.49, 1972.94, 2287.94),
        "D": (2.63, 9.23, 32.42, 186.21, 187.33, 380.55, 1325.52, 1701.31),
    },
    "IL10": {
        "A": (23.48, 40.00, 42.31, 47.34, 265.45, 267.05, 317.41, 390.48, 418.40, 773.41,
              1334.26, 3556.74),
        "B": (50.07, 198.00),
        "C": (92.53, 364.42, 2301.83),
        "D": (13.35, 40.00, 40.00, 44.75, 171.01, 229.26, 340.10, 448.31),
    },
}
IL6_UPPER_LIMIT = 5000.0        # reporting limit of the IL-6 assay before 2017-07-01
IL6_LIMIT_UNTIL = dt.date(2017, 7, 1)


@dataclass(frozen=True)
class _CarT:
    """Latent plan of one CAR-T patient (group, rank, CRS, follow-up, outcomes)."""

    key: str
    grp: str            # A, B, C, D (see module docstring); X: PTR without cytokine data
    rank: int           # rank within the group for the cytokine peaks
    crs: int            # Lee 2014 maximum grade (rendered as daily signs)
    end: int            # last day of follow-up (death or censoring); 120 = followed long
    temp: float         # peak temperature, degC
    plt: str            # impr_rec | late_rec | quick | none
    anc: str            # impr | late | none
    toci: int           # tocilizumab doses (0, 1, 2)
    cortico: bool
    infection: bool
    response: str
    bleed: int          # worst WHO grade within 30 days
    units: int          # platelet units transfused (all before the count stays >= 20)
    death: str | None = None   # cns | pulmonary | gi: fatal grade-4 bleed, onset end-1
    late_g3: int | None = None  # day of a WHO grade-3 bleed after day 30
    prior_hsct: bool = False
    il6_capped: bool = False    # index date before IL6_LIMIT_UNTIL (peak 5000 = the limit)


LONG = 120  # "followed long": labs to day 90, last follow-up later

# Units: non-PTR 25,31,33,34,50,50,64,69,70,85,86 (sum 597, median 50); PTR 40,51,55,56,61,61,
# 61,70,95,98,117,156,157,171 (sum 1,249, median 65.5); R wilcox.test p = 0.04257 (ties).
# Peak temperatures: Student t (non-PTR minus PTR) = -2.1889, p = 0.0390, Shapiro p 0.38/0.86.
_CART: tuple[_CarT, ...] = (
    # A: PTR, CRS >= 3. A1-A3 die of bleeding on days 22, 25, 28 (the three Gray events).
    _CarT("A1", "A", 11, 4, 22, 40.9, "none", "none", 2, True, True, "NE", 4, 171, death="cns"),
    _CarT("A2", "A", 9, 3, 25, 40.5, "none", "none", 2, True, True, "NE", 4, 157, death="pulmonary", prior_hsct=True),
    _CarT("A3", "A", 6, 4, 28, 40.9, "none", "impr", 2, True, True, "NE", 4, 156, death="gi"),
    _CarT("A4", "A", 1, 3, 19, 39.1, "impr_rec", "impr", 1, False, False, "CR", 1, 40, prior_hsct=True, il6_capped=True),
    _CarT("A5", "A", 4, 3, 20, 40.2, "impr_rec", "impr", 2, True, True, "CR", 1, 51),
    _CarT("A6", "A", 8, 3, 18, 39.9, "impr_rec", "impr", 2, False, False, "CR", 1, 55, prior_hsct=True),
    _CarT("A7", "A", 2, 3, 26, 40.2, "quick", "impr", 1, False, True, "CR", 2, 61, il6_capped=True),
    _CarT("A8", "A", 0, 3, 16, 38.6, "none", "impr", 1, True, False, "CR", 1, 61),
    _CarT("A9", "A", 3, 3, 17, 39.6, "none", "impr", 0, False, True, "CR", 1, 70, prior_hsct=True, il6_capped=True),
    _CarT("A10", "A", 5, 3, 15, 39.1, "none", "none", 0, True, True, "CR", 2, 95),
    _CarT("A11", "A", 7, 3, 14, 39.7, "none", "none", 0, False, False, "NR", 2, 61),
    _CarT("A12", "A", 10, 4, 25, 39.4, "none", "none", 2, True, True, "PR", 2, 98, prior_hsct=True),
    # B: PTR, CRS <= 2. B2 is the one PTR patient followed past the last bleed.
    _CarT("B1", "B", 0, 2, 20, 39.1, "impr_rec", "impr", 1, False, False, "CR", 0, 56),
    _CarT("B2", "B", 1, 2, LONG, 39.1, "late_rec", "late", 0, False, False, "CR", 1, 117),
    # C: no PTR, CRS >= 3
    _CarT("C1", "C", 0, 3, 17, 39.4, "impr_rec", "impr", 2, True, False, "CR", 0, 33, prior_hsct=True, il6_capped=True),
    _CarT("C2", "C", 1, 3, 16, 40.1, "none", "none", 2, True, True, "NR", 1, 34),
    _CarT("C3", "C", 2, 4, LONG, 39.9, "late_rec", "impr", 1, False, True, "CR", 1, 86),
    # D: no PTR, CRS <= 2
    _CarT("D1", "D", 0, 1, 19, 38.7, "impr_rec", "impr", 0, False, False, "CR", 0, 25),
    _CarT("D2", "D", 2, 1, 18, 38.4, "impr_rec", "impr", 0, False, False, "CR", 0, 31),
    _CarT("D3", "D", 6, 2, LONG, 39.5, "late_rec", "impr", 2, False, False, "CR", 0, 50, il6_capped=True),
    _CarT("D4", "D", 4, 2, LONG, 39.1, "late_rec", "impr", 0, False, False, "CR", 0, 50),
    _CarT("D5", "D", 1, 1, LONG, 39.0, "late_rec", "late", 0, False, False, "CR", 1, 64),
    _CarT("D6", "D", 3, 1, LONG, 38.6, "late_rec", "late", 0, False, False, "CR", 1, 69),
    _CarT("D7", "D", 5, 2, LONG, 38.8, "late_rec", "late", 0, False, False, "CR", 2, 70, late_g3=41),
    _CarT("D8", "D", 7, 2, LONG, 39.3, "late_rec", "late", 2, False, False, "NR", 2, 85, late_g3=47, il6_capped=True),
    # X: the CAR-T patient with PTR and no cytokine profile (left out of subgroup analyses)
    _CarT("X", "X", 0, 3, LONG, 39.8, "late_rec", "impr", 2, False, False, "CR", 1, 80),
)

# Demographics. CAR-T: median age 26 (15-66), 12/26 men; chemotherapy: 35.5 (16-67), 8/18 men.
_CART_AGES = (25, 33, 41, 19, 26, 17, 22, 48, 24, 30, 57, 15, 26, 35, 21, 61, 18, 28, 38, 23,
              66, 20, 45, 24, 25, 52)
_CART_MEN = frozenset({"A1", "A3", "A5", "A8", "A10", "B2", "C1", "C3", "D2", "D4", "D6", "X"})
_CHEMO_AGES = (35, 16, 50, 28, 62, 22, 39, 33, 46, 19, 67, 36, 25, 53, 30, 42, 58, 34)
_CHEMO_MEN = frozenset({0, 2, 4, 7, 9, 11, 13, 16})
_CHEMO_PTR = frozenset({1, 6, 12})
_CHEMO_REGIMENS = ("VMCP", "VICP", "Hyper-CVAD A", "Hyper-CVAD B", "FLAG", "MTX + Ara-C")

# IL-6 measurement days (with IL-10 and IFN-gamma); more days are added for some patients so
# that exactly 79 evaluable CAR-T transfusions have an IL-6 of the same day (Figure 2B).
_CYTO_DAYS = (0, 1, 2, 3, 4, 5, 6, 7, 9, 11, 14, 21, 28)
N_CCI_IL6 = 79
CCI_P_TARGET = (0.00648, 0.00652)   # linear regression p, printed 0.0065


# ============================================================================= helpers

def _key_int(s: str) -> int:
    """A stable small integer from a patient key (varies day-of-peak and the like by patient)."""
    return sum((i + 1) * ord(c) for i, c in enumerate(s))


def _bsa(height: float, weight: float) -> float:
    """Du Bois body surface area (m2), as the study (0.007184 x H^0.725 x W^0.425)."""
    return 0.007184 * height**0.725 * weight**0.425


def _ts(index: dt.date, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(index + dt.timedelta(days=day), dt.time(hour, minute))


def _lab_days(end: int) -> list[int]:
    """Blood counts daily to day 35, then every 3 days to day 90 (within follow-up)."""
    last = min(end, 90)
    return list(range(0, min(last, 35) + 1)) + list(range(38, last + 1, 3))


def _peak_day(key: str) -> int:
    """CRS and cytokine peak on day 2-5 after the infusion."""
    return 2 + _key_int(key) % 4


@dataclass
class _Tx:
    day: int
    units: int
    dose: float
    category: str = "ok"      # fail (CCI < 5000) | partial (5000-9000) | ok
    kind: str = "ok"          # ok | late (post count next morning) | old (stored >= 72 h) | abo
    storage_h: float = 30.0
    crossmatched: bool = False
    cci_target: float = 0.0
    u: float = 0.5            # where in its category's CCI range (drawn once)
    pre0: int = 10            # drawn pre-transfusion count
    pre: int = 0
    inc: int = 0


@dataclass
class _Hist:
    """One patient's history before it is written out as rows."""

    key: str
    pid: str
    treatment: str
    index: dt.date
    end: int                  # last day with data (death or last follow-up; LONG: day 90)
    age: int
    sex: str
    height: float
    weight: float
    plan: _CarT | None = None
    ptr: bool = False
    txs: list[_Tx] = field(default_factory=list)
    plt: dict[int, int] = field(default_factory=dict)        # morning counts by day
    anc: dict[int, float] = field(default_factory=dict)
    cyto_days: list[int] = field(default_factory=list)
    cyto: dict[str, dict[int, float]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def bsa(self) -> float:
        return _bsa(self.height, self.weight)

    def cci(self, t: _Tx) -> float:
        return t.inc * 1000 * self.bsa / t.dose


# ============================================================================= transfusions

def _units_split(total: int, n: int) -> list[int]:
    """`n` transfusions adding up to `total` units: bags of 10 units, a few pooled 5-15."""
    units = [10] * n
    diff, i = total - 10 * n, n - 1
    while diff:
        step = 1 if diff > 0 else -1
        if 5 <= units[i] + step <= 15:
            units[i] += step
            diff -= step
        i = (i - 1) % n
    return units


def _spread_days(first: int, last: int, n: int) -> list[int]:
    days = sorted({round(first + k * (last - first) / max(n - 1, 1)) for k in range(n)})
    d = first
    while len(days) < n:
        if d not in days:
            days = sorted([*days, d])
        d += 1
    return days


def _transfusion_plan(h: _Hist, units: int, first: int, last: int, fail_from: int | None,
                      rng: np.random.Generator, n_bad: int = 1) -> None:
    """Transfusion days, units, doses, and which ones fail.

    `fail_from`: the failing pair (two consecutive evaluable transfusions with CCI < 5000,
    i.e. PTR) is the first two transfusions on or after this day; None for a patient without
    PTR. `n_bad`: how many transfusions (never the failing pair) are not evaluable for PTR."""
    n = max(2, round(units / 10))
    days = _spread_days(first, last, n)
    txs = []
    for d, u in zip(days, _units_split(units, len(days)), strict=True):
        t = _Tx(day=d, units=u, dose=round(u * float(rng.uniform(0.25, 0.29)), 2))
        t.storage_h = round(float(rng.uniform(14, 60)), 1)
        t.u = float(rng.uniform(0, 1))
        t.pre0 = int(rng.integers(5, 16))
        txs.append(t)
    h.txs = txs
    h.extra["fpos"] = None
    if fail_from is not None:
        fpos = next((i for i, t in enumerate(txs) if t.day >= fail_from), 0)
        fpos = min(fpos, len(txs) - 2)
        h.extra["fpos"] = fpos
        txs[fpos].category = txs[fpos + 1].category = "fail"
    # not evaluable: a unit stored >= 72 h, an ABO-incompatible (minor) unit, a post count
    # taken the next morning; never one of the failing pair
    kinds = ("old", "abo", "late")
    k = _key_int(h.key)
    placed = 0
    for i in range(len(txs) - 2, -1, -1):
        if placed >= n_bad:
            break
        if h.extra["fpos"] is not None and i in (h.extra["fpos"], h.extra["fpos"] + 1):
            continue
        kind = kinds[(k + placed) % 3]
        txs[i].kind = kind
        if kind == "old":
            txs[i].storage_h = round(float(rng.uniform(76, 110)), 1)
        placed += 1


_CCI_RANGE = {"fail": (900.0, 4200.0), "partial": (5800.0, 9000.0), "ok": (9000.0, 21000.0)}


def _cci_targets(h: _Hist, strength: float) -> None:
    """The CCI each transfusion aims at, within its category's range: a mix of the drawn
    position `u` and of the inflammation of that day (IL-6, on a log scale), weighted by
    `strength` in [-1, 1] -- the one knob that sets how strongly CCI falls (> 0) or rises (< 0)
    with IL-6 within a category (Figure 2B); the categories themselves always fall with it."""
    il6 = h.extra.get("il6_all", {})
    for t in h.txs:
        lo, hi = _CCI_RANGE[t.category]
        z = 0.0
        if t.day in il6:
            z = min(1.0, max(0.0, math.log(max(il6[t.day], 5.0) / 5.0) / math.log(10000.0)))
        pos = (1 - abs(strength)) * t.u + abs(strength) * ((1 - z) if strength >= 0 else z)
        t.cci_target = lo + (hi - lo) * pos


def _set_increments(h: _Hist) -> None:
    """Integer increments (post - pre, x10^9/L) that give each transfusion a CCI on the right
    side of 5000."""
    for t in h.txs:
        t.pre = t.pre0 if t.category == "fail" else min(t.pre0 + 3, 19)
        exact = t.cci_target * t.dose / (1000 * h.bsa)
        t.inc = max(1, math.floor(exact)) if t.category == "fail" else math.ceil(exact)
        while t.category == "fail" and h.cci(t) >= 4800 and t.inc > 1:
            t.inc -= 1
        while t.category != "fail" and h.cci(t) < 5300:
            t.inc += 1


# ============================================================================= lab series

def _plt_series(h: _Hist) -> None:
    """Morning platelet counts consistent with the transfusions and the patient's course.

    Before the first transfusion the count falls from 28-55 to just above 20; every
    transfusion day has its pre count (< 20); after a transfusion the count rises by part of
    the increment and falls back below 20 within three days (so no 7-day run above 20 while
    the patient is transfused). After the last transfusion: `impr_rec` rises at once and stays
    > 20, reaching >= 100 on `rec_day`; `late_rec` (last transfusion on day >= 30) rises slowly
    to >= 100 on `rec_day`; `quick` goes 38, 66, 104, 131 (>= 100 within 4 days of leaving
    20 behind, no 7-day run before censoring); `none` stays below 20."""
    role, rec_day, m0 = h.extra["plt_role"], h.extra["plt_rec_day"], h.extra["m0"]
    m: dict[int, int] = {}
    first = h.txs[0].day
    for d in range(first):
        m[d] = max(21, round(m0 * (23 / m0) ** (d / max(first - 1, 1))))
    for i, t in enumerate(h.txs):
        m[t.day] = t.pre
        nxt = h.txs[i + 1].day if i + 1 < len(h.txs) else None
        if nxt is None and role != "none":
            break
        v1 = t.pre + round((0.55 if t.category != "fail" else 0.3) * t.inc)
        for k, d in enumerate(range(t.day + 1, nxt if nxt is not None else h.end + 1), start=1):
            v = v1 * 0.8 ** (k - 1)
            if k >= 3 or nxt is None:
                v = min(v, 18 - (k % 3))
            m[d] = int(max(4, round(v)))
    last = h.txs[-1]
    if role in ("impr_rec", "late_rec"):
        assert rec_day is not None
        top = 104 if role == "impr_rec" else 103
        v = float(max(24, last.pre + round(0.55 * last.inc)))
        g = (top / v) ** (1 / max(rec_day - last.day - 1, 1))
        for d in range(last.day + 1, min(h.end, 90) + 1):
            m[d] = round(v)
            v = v * g if v < top else min(v * (1.12 if role == "impr_rec" else 1.03), 240)
    elif role == "quick":
        for d, v in zip(range(last.day + 1, h.end + 1), (38, 66, 104, 131, 150), strict=False):
            m[d] = v
    h.plt = {d: m[d] for d in _lab_days(h.end) if d in m}
    for t in h.txs:
        h.plt[t.day] = t.pre


def _anc_series(h: _Hist, role: str, start: int, rec: int, rng: np.random.Generator) -> None:
    """ANC: below 0.5 from day 1 (agranulocytosis); `impr`/`late`: above 0.5 from `start`,
    >= 2.0 from `rec` on; `none`: below 0.5 to the end of follow-up."""
    out = {}
    for d in _lab_days(h.end):
        if d == 0:
            v = rng.uniform(0.7, 1.6)
        elif role == "none" or d < start:
            v = rng.uniform(0.30, 0.45) if d == 1 else rng.uniform(0.04, 0.42)
        elif d < rec:
            v = 0.62 * (2.1 / 0.62) ** ((d - start) / max(rec - start, 1))
        else:
            v = 2.1 + 0.1 * ((d - rec) % 9) + rng.uniform(0.05, 0.6)
        out[d] = round(float(v), 2)
    h.anc = out


def _cyto_series(peak: float, pk: int, days: list[int], capped: bool, lam: float,
                 base: float) -> dict[int, float]:
    """A cytokine series: geometric rise from `base` to the peak on day `pk`, exponential fall.
    `capped`: the true peak is above the assay limit, and every value above the limit is
    reported as the limit (the reported peak is then the limit itself)."""
    top = peak * 2.4 if capped else peak
    out = {}
    for d in days:
        if d < pk:
            v = base * (top / base) ** ((d / pk) ** 1.5)
        elif d == pk:
            v = top
        else:
            v = max(base * 1.3, top * math.exp(-lam * (d - pk)))
        out[d] = round(min(v, peak) if capped else v, 2)
    out[pk] = peak
    return out


# ============================================================================= CAR-T patients

def _cart_histories(rng: np.random.Generator) -> list[_Hist]:
    fixed = np.random.default_rng(_DEMOGRAPHY_SEED)  # dates, heights, weights: not the seed's
    early = [p for p in _CART if p.il6_capped]
    later = [p for p in _CART if not p.il6_capped]
    dates: dict[str, dt.date] = {}
    for i, p in enumerate(early):   # before the IL-6 assay had its extended range
        dates[p.key] = dt.date(2016, 5, 9) + dt.timedelta(days=61 * i + int(fixed.integers(0, 20)))
    for i, p in enumerate(later):
        dates[p.key] = dt.date(2017, 8, 14) + dt.timedelta(days=34 * i + int(fixed.integers(0, 14)))
    ids = {p.key: f"ZJ-C{n:02d}" for n, p in enumerate(sorted(_CART, key=lambda p: dates[p.key]), 1)}
    hists = []
    for i, p in enumerate(_CART):
        male = p.key in _CART_MEN
        height = round(float(fixed.uniform(165, 182) if male else fixed.uniform(152, 168)), 1)
        weight = round(float(fixed.uniform(54, 80) if male else fixed.uniform(44, 64)), 1)
        end = min(p.end, 90)
        h = _Hist(p.key, ids[p.key], "car_t", dates[p.key], end, _CART_AGES[i],
                  "M" if male else "F", height, weight, plan=p, ptr=p.grp in "ABX")
        _cart_course(h, p, rng)
        hists.append(h)
    return hists


def _cytokines(h: _Hist, p: _CarT, days: list[int]) -> None:
    """The IL-6 / IL-10 / IFN-gamma series on the measurement `days` (and IL-6 on every day of
    the first month, `il6_all`, the inflammation that the CCIs respond to)."""
    k = _key_int(p.key)
    h.cyto_days = sorted(days)
    for j, analyte in enumerate(("IL6", "IL10", "IFNG")):
        peak = _PEAKS[analyte][p.grp][p.rank]
        capped = analyte == "IL6" and p.il6_capped and peak == IL6_UPPER_LIMIT
        base = min({"IL6": 6.0, "IL10": 2.5, "IFNG": 1.2}[analyte] * (1 + (k + j) % 5 / 4), peak / 3)
        lam = 0.55 + (k % 5) / 20
        h.cyto[analyte] = _cyto_series(peak, h.extra["pk"], h.cyto_days, capped, lam, base)
        if analyte == "IL6":
            h.extra["il6_all"] = _cyto_series(peak, h.extra["pk"], list(range(36)), capped, lam, base)


def _cart_course(h: _Hist, p: _CarT, rng: np.random.Generator) -> None:
    pk = h.extra["pk"] = _peak_day(p.key)
    k = _key_int(p.key)
    if p.grp != "X":  # the patient without a cytokine profile has no cytokine labs
        _cytokines(h, p, [d for d in _CYTO_DAYS if d <= h.end])
    # --- transfusions: until the day before the count stays > 20 (impr_rec), to day 30-32
    # (late_rec), to day 22 (quick), or to the end of follow-up (none). impr_rec: the last
    # transfusion at least 10 days before the end of follow-up, so that the 7-day improvement
    # run, which starts only on the 4th day after it (counts of days 1-3 could be the
    # transfused platelets; issue 17), is complete while the patient is observed.
    if p.plt == "impr_rec":
        first, last = 2, (min(8, p.end - 10) if p.grp in "CD" else p.end - 10)
    elif p.plt == "late_rec":
        first, last = 2, 30 + k % 3
    elif p.plt == "quick":
        first, last = 3, 22
    else:
        first, last = 2, p.end - 1
    _transfusion_plan(h, p.units, first, last, pk - 1 if h.ptr else None, rng,
                      n_bad=1 if last - first < 12 else 2)
    fpos = h.extra["fpos"]
    for i, t in enumerate(h.txs):
        if not h.ptr or i in (fpos, fpos + 1):
            continue
        if i < fpos:
            t.category = "partial"       # before CRS: moderate increments
        elif p.plt == "none" or p.grp == "X":
            t.category = "fail" if (p.death or i % 4 != 3) else "partial"
        else:
            t.category = "partial" if i < fpos + 3 else "ok"
    if not h.ptr and p.key in ("C3", "D6"):
        # one isolated poor increment without PTR (its neighbours are adequate)
        mid = next(j for j in range(len(h.txs) // 2, 0, -1)
                   if all(h.txs[i].kind == "ok" for i in (j - 1, j, j + 1)))
        h.txs[mid].category = "fail"
    if p.key in ("A12", "B2"):
        # one cross-match-compatible unit late in the course, with a good increment
        t = h.txs[-2]
        t.crossmatched, t.category, t.kind = True, "ok", "ok"
    h.extra["plt_role"] = p.plt
    h.extra["plt_rec_day"] = {"impr_rec": p.end - 2, "late_rec": 44 + k % 30}.get(p.plt)
    h.extra["m0"] = int(rng.integers(28, 56))
    # --- neutrophils
    if p.anc == "impr":
        start = 9 + k % 3 if p.end < 30 else 12 + k % 6
        rec = min(start + 4, p.end - 1) if p.end < 30 else start + 5 + k % 8
    elif p.anc == "late":
        start = 32 + k % 5
        rec = start + 8 + k % 17
    else:
        start = rec = 999
    _anc_series(h, p.anc, start, rec, rng)


def _finish_counts(h: _Hist, strength: float) -> None:
    """CCI targets, increments and the platelet series (redone while calibrating Figure 2B)."""
    _cci_targets(h, strength)
    _set_increments(h)
    _plt_series(h)


# ============================================================================= chemotherapy

def _chemo_histories(rng: np.random.Generator) -> list[_Hist]:
    fixed = np.random.default_rng(_DEMOGRAPHY_SEED + 1)
    hists = []
    for i in range(18):
        key = f"S{i + 1}"
        male = i in _CHEMO_MEN
        height = round(float(fixed.uniform(165, 182) if male else fixed.uniform(152, 168)), 1)
        weight = round(float(fixed.uniform(54, 82) if male else fixed.uniform(44, 66)), 1)
        index = dt.date(2011, 7, 4) + dt.timedelta(days=165 * i + int(fixed.integers(0, 40)))
        end = 60 + (i * 7) % 40
        h = _Hist(key, f"ZJ-S{i + 1:02d}", "chemotherapy", index, end, _CHEMO_AGES[i],
                  "M" if male else "F", height, weight, ptr=i in _CHEMO_PTR)
        k = _key_int(key)
        units = 20 + (k * 7) % 50
        _transfusion_plan(h, units, 8, 16 + k % 5, 9 if h.ptr else None, rng,
                          n_bad=1 if i % 3 else 0)
        fpos = h.extra["fpos"]
        for j, t in enumerate(h.txs):
            if h.ptr and j not in (fpos, fpos + 1):
                t.category = "partial"
        h.extra["plt_role"] = "impr_rec"
        h.extra["plt_rec_day"] = h.txs[-1].day + 10 + k % 8
        h.extra["m0"] = int(rng.integers(60, 140))
        _finish_counts(h, 0.0)
        _anc_series(h, "impr", 14 + k % 6, 20 + k % 9, rng)
        h.extra["regimen"] = _CHEMO_REGIMENS[i % len(_CHEMO_REGIMENS)]
        h.extra["infection"] = i % 5 in (0, 3)
        hists.append(h)
    return hists


# ============================================================================= Figure 2B

def _regression_points(hists: list[_Hist]) -> list[tuple[_Hist, _Tx]]:
    return [(h, t) for h in hists if h.treatment == "car_t" and h.cyto
            for t in h.txs if t.kind == "ok" and t.day in h.cyto["IL6"]]


def _fit_cci_il6(hists: list[_Hist]) -> tuple[float, float, int]:
    from scipy import stats

    pts = _regression_points(hists)
    x = [h.cyto["IL6"][t.day] for h, t in pts]
    y = [h.cci(t) for h, t in pts]
    r = stats.linregress(x, y)
    return float(r.slope), float(r.pvalue), len(pts)


def _calibrate_fig2b(hists: list[_Hist]) -> None:
    """Figure 2B: exactly N_CCI_IL6 evaluable CAR-T transfusions with an IL-6 of the same day,
    and the study's regression p-value (0.0065).

    1. IL-6 measurement days are added on (or dropped from) evaluable transfusion days until
       the count is N_CCI_IL6 (latest-but-one transfusion day first, never day 0 or the peak).
    2. `strength` (how much each CCI follows the day's IL-6, see `_cci_targets`) is bisected
       until the p-value is near the target; the increments are whole counts, so p moves in
       small steps.
    3. One IL-6 value after the peak is moved, between its neighbours, until p is on target.
    Then the platelet series are drawn around the final increments."""
    cart = [h for h in hists if h.treatment == "car_t"]
    for h in cart:
        _cci_targets(h, 0.5)
        _set_increments(h)
    measured = sorted((h for h in cart if h.cyto), key=lambda h: h.key)

    def n_points() -> int:
        return len(_regression_points(hists))

    for _ in range(200):
        n = n_points()
        if n == N_CCI_IL6:
            break
        for h in measured:
            assert h.plan is not None
            ok_days = [t.day for t in h.txs if t.kind == "ok" and t.day <= min(h.end, 30)]
            if n < N_CCI_IL6:
                add = [d for d in ok_days if d not in h.cyto_days]
                if add:
                    _cytokines(h, h.plan, [*h.cyto_days, add[len(add) // 2]])
            else:
                drop = [d for d in ok_days if d in h.cyto_days and d not in (0, h.extra["pk"])]
                if drop:
                    _cytokines(h, h.plan, [d for d in h.cyto_days if d != drop[-1]])
            if n_points() == N_CCI_IL6:
                break
    if n_points() != N_CCI_IL6:
        raise RuntimeError(f"could not place {N_CCI_IL6} IL-6 measurements on transfusion days")

    lo, hi = CCI_P_TARGET
    target = (lo + hi) / 2

    def p_at_strength(strength: float) -> float:
        for h in cart:
            _cci_targets(h, strength)
            _set_increments(h)
        return _fit_cci_il6(hists)[1]

    a, b = -1.0, 1.0
    pa, pb = p_at_strength(a), p_at_strength(b)
    if not pb <= target <= pa:
        raise RuntimeError(f"Figure 2B: p ranges {pb:.5f}-{pa:.5f}, target {target}")
    for _ in range(60):
        mid = (a + b) / 2
        pm = p_at_strength(mid)
        if pm > target:
            a, pa = mid, pm
        else:
            b, pb = mid, pm
    best = a if abs(pa - target) < abs(pb - target) else b
    p_now = p_at_strength(best)

    if not lo <= p_now < hi:
        pts = _regression_points(hists)
        tuners = sorted({(h.key, t.day): (h, t) for h, t in pts if t.day > h.extra["pk"]}.values(),
                        key=lambda ht: (ht[0].key, ht[1].day))
        for h, t in tuners:
            series, day = h.cyto["IL6"], t.day
            before = [d for d in h.cyto_days if d < day]
            after = [d for d in h.cyto_days if d > day]
            ceiling = series[before[-1]] if before else series[h.extra["pk"]]
            floor = series[after[0]] if after else 1.0
            if ceiling - floor < 2.0:
                continue
            orig = series[day]

            def p_at(v: float, series: dict[int, float] = series, day: int = day) -> float:
                series[day] = round(v, 2)
                return _fit_cci_il6(hists)[1]

            u, w = floor + 0.01, ceiling - 0.01
            pu, pw = p_at(u), p_at(w)
            if (pu - target) * (pw - target) > 0:
                series[day] = orig
                continue
            for _ in range(80):
                mid = (u + w) / 2
                pm = p_at(mid)
                if lo <= pm < hi:
                    break
                if (pu - target) * (pm - target) <= 0:
                    w, pw = mid, pm
                else:
                    u, pu = mid, pm
            if lo <= _fit_cci_il6(hists)[1] < hi:
                break
            series[day] = orig
    slope, p_final, n = _fit_cci_il6(hists)
    if not (lo <= p_final < hi and slope < 0 and n == N_CCI_IL6):
        raise RuntimeError(f"Figure 2B calibration failed (p = {p_final:.5f}, n = {n})")
    for h in cart:
        _plt_series(h)


# ============================================================================= rows

_GRADE_SIGNS: dict[str, dict[str, Any]] = {
    # one day's signs for each Lee 2014 grade (the variant is chosen per patient)
    "g0": dict(hypotension=False, vasopressors=0, ne_equiv_ug_min=0.0, vasopressin=False,
               fio2_pct=21.0, o2_device="none", o2_flow_l_min=0.0, organ_toxicity_grade=0,
               transaminitis_grade=0),
    "g1": dict(hypotension=False, vasopressors=0, ne_equiv_ug_min=0.0, vasopressin=False,
               fio2_pct=21.0, o2_device="none", o2_flow_l_min=0.0, organ_toxicity_grade=1,
               transaminitis_grade=1),
    "g2_hypo": dict(hypotension=True, vasopressors=1, ne_equiv_ug_min=8.0, vasopressin=False,
                    fio2_pct=21.0, o2_device="none", o2_flow_l_min=0.0, organ_toxicity_grade=1,
                    transaminitis_grade=1),
    "g2_o2": dict(hypotension=False, vasopressors=0, ne_equiv_ug_min=0.0, vasopressin=False,
                  fio2_pct=32.0, o2_device="low_flow", o2_flow_l_min=3.0, organ_toxicity_grade=2,
                  transaminitis_grade=1),
    "g3_pressor": dict(hypotension=True, vasopressors=1, ne_equiv_ug_min=26.0, vasopressin=False,
                       fio2_pct=30.0, o2_device="low_flow", o2_flow_l_min=3.0,
                       organ_toxicity_grade=2, transaminitis_grade=2),
    "g3_o2": dict(hypotension=True, vasopressors=1, ne_equiv_ug_min=10.0, vasopressin=False,
                  fio2_pct=50.0, o2_device="high_flow", o2_flow_l_min=35.0,
                  organ_toxicity_grade=2, transaminitis_grade=2),
    "g4": dict(hypotension=True, vasopressors=2, ne_equiv_ug_min=32.0, vasopressin=False,
               fio2_pct=70.0, o2_device="ventilator", o2_flow_l_min=None, organ_toxicity_grade=3,
               transaminitis_grade=2),
}


def _day_grades(grade: int, pk: int, last: int) -> dict[int, int]:
    """Daily Lee grade over days 0..last: fever from pk-2 (at least day 1), the maximum grade on
    the peak day (and the next for grade >= 3), stepping down after; afebrile from pk+4."""
    out = {}
    onset = max(1, pk - 2)
    for d in range(last + 1):
        if d < onset or d > pk + 3 + (grade >= 3):
            g = 0
        elif d == pk or (grade >= 3 and d == pk + 1):
            g = grade
        elif d == pk - 1 and grade >= 3:
            g = 2
        elif d > pk and grade >= 2 and d <= pk + 1 + (grade >= 3):
            g = 2 if grade >= 3 else 1
        else:
            g = 1
        out[d] = g
    return out


def _crs_rows(h: _Hist) -> list[dict[str, Any]]:
    p = h.plan
    assert p is not None
    pk = h.extra["pk"]
    last = min(h.end, 14)
    grades = _day_grades(p.crs, pk, last)
    k = _key_int(p.key)
    rows = []
    for d, g in grades.items():
        if g == 0:
            temp = 36.6 + ((k + d) % 10) / 10
            variant = "g0"
        else:
            temp = p.temp if d == pk else max(38.1, round(p.temp - 0.3 * abs(d - pk) - 0.2, 1))
            variant = {1: "g1", 2: "g2_hypo" if k % 2 else "g2_o2",
                       3: "g3_pressor" if k % 3 else "g3_o2", 4: "g4"}[g]
        rows.append(dict(center_id=CENTER_ID, patient_id=h.pid,
                         assessed_on=h.index + dt.timedelta(days=d),
                         max_temp_c=round(temp, 1), **_GRADE_SIGNS[variant],
                         reported_grade=g, reported_scale="lee2014"))
    return rows


_BLEED_SITES = {1: ("skin", "mucosal"), 2: ("mucosal", "gu", "gi")}
_DEATH_SITE = {"cns": ("cns", "intracranial hemorrhage"),
               "pulmonary": ("pulmonary", "pulmonary hemorrhage"),
               "gi": ("gi", "gastrointestinal hemorrhage")}


def _bleeding_rows(h: _Hist, worst: int, death: str | None, late_g3: int | None,
                   rng: np.random.Generator) -> list[dict[str, Any]]:
    rows = []
    k = _key_int(h.key)

    def add(day: int, site: str, grade: int, rbc: bool = False, unstable: bool = False,
            fatal: bool = False) -> None:
        rows.append(dict(center_id=CENTER_ID, patient_id=h.pid,
                         onset_on=h.index + dt.timedelta(days=day), site=site, who_grade=grade,
                         rbc_transfusion_24h=rbc, hemodynamic_instability=unstable, fatal=fatal))

    last = min(h.end, 28)
    if worst >= 1:
        add(int(rng.integers(3, max(4, last - 2))), _BLEED_SITES[1][k % 2], 1)
    if worst >= 2:
        add(int(rng.integers(5, max(6, last))), _BLEED_SITES[2][k % 3], 2)
    if death is not None:
        site, _ = _DEATH_SITE[death]
        add(h.end - 1, site, 4, rbc=True, unstable=True, fatal=True)
    if late_g3 is not None:
        add(late_g3, "gi" if k % 2 else "gu", 3, rbc=True)
    return rows


def _rows(hists: list[_Hist], rng: np.random.Generator) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLE_ORDER}
    for h in hists:
        p = h.plan
        cart = h.treatment == "car_t"
        ci = dict(center_id=CENTER_ID, patient_id=h.pid)
        k = _key_int(h.key)
        # ---------------------------------------------------------------- patients
        if cart:
            assert p is not None
            prior = p.prior_hsct
            relapsed = k % 6 != 0
        else:
            prior = k % 5 == 1
            relapsed = k % 5 != 2
        out["patients"].append(dict(
            **ci, sex=h.sex, age_years=h.age, height_cm=h.height, weight_kg=h.weight,
            diagnosis="B-ALL", disease_status="relapsed" if relapsed else "primary_refractory",
            n_relapses=(1 + k % 3) if relapsed else 0, prior_allo_hsct=prior,
            extramedullary=k % 5 == 3, bm_blast_pct=round(8 + (k * 37) % 83 + (k % 10) / 10, 1)))
        # ---------------------------------------------------------------- treatments
        out["treatments"].append(dict(
            **ci, treatment_type=h.treatment,
            regimen="CD19 CAR-T" if cart else h.extra["regimen"],
            car_target="CD19" if cart else None, index_date=h.index))
        # ---------------------------------------------------------------- transfusions
        for n, t in enumerate(h.txs, start=1):
            post_at = _ts(h.index, t.day, 17)
            post = t.pre + t.inc
            if t.kind == "late":
                post_at = _ts(h.index, t.day + 1, 6)
                post = h.plt[t.day + 1]
            out["transfusions"].append(dict(
                **ci, transfusion_id=f"{h.pid}-T{n:02d}", transfused_at=_ts(h.index, t.day, 10),
                product="apheresis" if t.units == 10 else "pooled", units_reported=t.units,
                dose_e11=t.dose, storage_h=t.storage_h, abo_compatible=t.kind != "abo",
                crossmatched=t.crossmatched, pre_count_e9l=t.pre,
                pre_count_at=_ts(h.index, t.day, 6), post_count_e9l=post, post_count_at=post_at))
        # ---------------------------------------------------------------- labs
        labs = out["labs"]
        post_days = {t.day: t.pre + t.inc for t in h.txs if t.kind != "late"}
        for d in sorted(set(h.plt) | set(h.anc)):
            at = _ts(h.index, d, 6)
            if d in h.plt:
                labs.append(dict(**ci, measured_at=at, analyte="PLT", value=float(h.plt[d]),
                                 unit="10^9/L", below_lod=False))
            if d in h.anc:
                anc = h.anc[d]
                wbc = round(anc + 0.15 + ((k + d) % 7) / 10, 2)
                hgb = float(68 + (k * 3 + d * 5) % 40)
                labs.append(dict(**ci, measured_at=at, analyte="ANC", value=anc,
                                 unit="10^9/L", below_lod=False))
                labs.append(dict(**ci, measured_at=at, analyte="WBC", value=wbc,
                                 unit="10^9/L", below_lod=False))
                labs.append(dict(**ci, measured_at=at, analyte="HGB", value=hgb,
                                 unit="g/L", below_lod=False))
            if d in post_days:
                labs.append(dict(**ci, measured_at=_ts(h.index, d, 17), analyte="PLT",
                                 value=float(post_days[d]), unit="10^9/L", below_lod=False))
        for analyte, series in h.cyto.items():
            for d, v in series.items():
                labs.append(dict(**ci, measured_at=_ts(h.index, d, 6, 30), analyte=analyte,
                                 value=v, unit="pg/mL", below_lod=False))
        # ---------------------------------------------------------------- CRS
        if cart:
            out["crs_assessments"].extend(_crs_rows(h))
        # ---------------------------------------------------------------- bleeding
        if cart:
            assert p is not None
            out["bleeding_events"].extend(_bleeding_rows(h, p.bleed, p.death, p.late_g3, rng))
        else:
            out["bleeding_events"].extend(_bleeding_rows(h, k % 3, None, None, rng))
        # ---------------------------------------------------------------- medications
        meds = out["medications"]

        def med(drug: str, day: int, doses: int, h: _Hist = h, ci: dict[str, str] = ci,
                meds: list[dict[str, Any]] = meds) -> None:
            meds.append(dict(**ci, drug=drug, started_on=h.index + dt.timedelta(days=day),
                             n_doses=doses))

        first_low_anc = min(d for d, v in h.anc.items() if v < 0.5)
        rec = [d for d, v in h.anc.items() if v >= 2.0 and d > first_low_anc]
        med("gcsf", first_low_anc, max(1, (rec[0] if rec else h.end) - first_low_anc))
        if cart:
            assert p is not None
            pk = h.extra["pk"]
            if p.toci:
                med("tocilizumab", pk, p.toci)
            if p.cortico:
                med("corticosteroid", pk + 1, 3 + k % 3)
            if p.key in ("A5", "A12", "B2", "D8"):
                med("tpo_ra", 10, 7 + k % 7)
            if p.key in ("A3", "A10", "C3"):
                med("il11", 8, 5 + k % 5)
            if p.key == "A2":
                med("ivig", 12, 3)
        # ---------------------------------------------------------------- infections
        infected = p.infection if cart and p is not None else h.extra.get("infection", False)
        if infected:
            day = min(h.extra.get("pk", 8) + 3 + k % 6, h.end - 1)
            out["infections"].append(dict(**ci, onset_on=h.index + dt.timedelta(days=day),
                                          kind=("bacterial", "fungal", "viral", "bacterial")[k % 4]))
        # ---------------------------------------------------------------- outcomes
        if cart:
            assert p is not None
            death_on = h.index + dt.timedelta(days=h.end) if p.death else None
            cause = _DEATH_SITE[p.death][1] if p.death else None
            last_fu = (h.index + dt.timedelta(days=h.end) if p.end != LONG
                       else h.index + dt.timedelta(days=120 + (k * 13) % 240))
            response = p.response
        else:
            death_on, cause = None, None
            last_fu = h.index + dt.timedelta(days=h.end + 30 + k % 200)
            response = ("CR", "CR", "NR", "CRi", "PR")[k % 5]
        out["outcomes"].append(dict(**ci, response=response, death_on=death_on,
                                    death_cause=cause, last_followup_on=last_fu))
    return out


# ============================================================================= writing

def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dt.datetime):
        return v.isoformat(timespec="seconds")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, float):
        if v == int(v):
            return str(int(v))
        return f"{v:.4f}".rstrip("0").rstrip(".")
    return str(v)


def _build(seed: int) -> tuple[list[_Hist], dict[str, list[dict[str, Any]]]]:
    rng = np.random.default_rng(seed)
    hists = _cart_histories(rng) + _chemo_histories(rng)
    _calibrate_fig2b(hists)
    return hists, _rows(hists, rng)


def generate_paper_cohort(out: Path, seed: int = DEFAULT_SEED) -> None:
    """Write the calibrated 44-patient cohort as a canonical extract (one CSV per CDM table)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _, rows = _build(seed)
    catalog = load_catalog()
    for table in TABLE_ORDER:
        columns = catalog.tables[table].column_names
        recs = sorted(rows[table], key=lambda r: tuple(_fmt(r.get(c)) for c in columns[:4]))
        with (out / f"{table}.csv").open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(columns)
            for r in recs:
                unknown = set(r) - set(columns)
                if unknown:
                    raise KeyError(f"{table}: not CDM columns: {sorted(unknown)}")
                w.writerow([_fmt(r.get(c)) for c in columns])


# ============================================================================= verification
# Everything below recomputes the published numbers from the CSV files alone, with the study's
# definitions written out again in Python (no SQL views), so that the cohort can be checked
# independently of the derivation layer it is meant to test.

def _read(folder: Path) -> dict[str, Any]:
    import polars as pl

    catalog = load_catalog()
    casts = {"integer": pl.Int64, "decimal": pl.Float64}
    frames = {}
    for table in TABLE_ORDER:
        df = pl.read_csv(Path(folder) / f"{table}.csv", infer_schema_length=0)
        exprs = []
        for col in catalog.tables[table].columns:
            c = pl.col(col.name)
            if col.type in casts:
                exprs.append(c.cast(casts[col.type]))
            elif col.type == "boolean":
                exprs.append(c.replace_strict({"true": True, "false": False}, default=None,
                                              return_dtype=pl.Boolean))
            elif col.type == "date":
                exprs.append(c.str.to_date("%Y-%m-%d"))
            elif col.type == "timestamp":
                exprs.append(c.str.to_datetime("%Y-%m-%dT%H:%M:%S"))
            else:
                exprs.append(c)
        frames[table] = df.select(exprs)
    return frames


def _wilcox(x: list[float], y: list[float]) -> tuple[float, float]:
    """R wilcox.test(x, y) two-sided: exact without ties (n < 50), else normal approximation
    with tie-corrected variance and continuity correction. Returns (W, p)."""
    from scipy import stats

    ties = len(set(x) | set(y)) < len(x) + len(y) or len(set(x)) < len(x) or len(set(y)) < len(y)
    r = stats.mannwhitneyu(x, y, alternative="two-sided",
                           method="asymptotic" if ties else "exact", use_continuity=True)
    return float(r.statistic), float(r.pvalue)


def _fisher(a: int, n1: int, b: int, n2: int) -> float:
    from scipy import stats

    return float(stats.fisher_exact([[a, n1 - a], [b, n2 - b]]).pvalue)


def _runs_meet(days: dict[int, bool], required: int, window: tuple[int, int]) -> int | None:
    """First run start of `required` consecutive calendar days that qualify (a missing day
    breaks the run), completed within the window; None if no such run."""
    run_start, prev = None, None
    for d in sorted(days):
        if not (window[0] <= d <= window[1]):
            continue
        if days[d] and prev is not None and run_start is not None and d - prev == 1:
            pass
        elif days[d]:
            run_start = d
        else:
            run_start = None
        prev = d
        if run_start is not None and d - run_start + 1 >= required:
            return run_start
    return None


def _patients(folder: Path) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """One dict per patient with every derived characteristic, and the transfusion list."""
    import polars as pl

    t = _read(folder)
    pats: dict[str, dict[str, Any]] = {}
    for r in t["patients"].join(t["treatments"], on=["center_id", "patient_id"]).iter_rows(named=True):
        r["bsa"] = _bsa(r["height_cm"], r["weight_kg"])
        pats[r["patient_id"]] = r

    def day(pid: str, value: dt.date | dt.datetime) -> int:
        d = value.date() if isinstance(value, dt.datetime) else value
        return (d - pats[pid]["index_date"]).days

    # ---------------------------------------------------------------- CCI, PTR (consecutive)
    txs = []
    for pid, g in t["transfusions"].sort("transfused_at").group_by("patient_id", maintain_order=True):
        rows = list(g.iter_rows(named=True))
        for i, r in enumerate(rows):
            nxt = rows[i + 1]["transfused_at"] if i + 1 < len(rows) else None
            hours_pre = (r["transfused_at"] - r["pre_count_at"]).total_seconds() / 3600
            hours_post = (r["post_count_at"] - r["transfused_at"]).total_seconds() / 3600
            # post count 10 min .. 12 h after the end of a 30-minute infusion (issue 17)
            ev = (r["abo_compatible"] is True and r["storage_h"] < 72 and 0 <= hours_pre <= 24
                  and 0.5 + 10 / 60 <= hours_post <= 12.5 and (nxt is None or r["post_count_at"] <= nxt))
            cci = (r["post_count_e9l"] - r["pre_count_e9l"]) * 1000 * pats[pid[0]]["bsa"] / r["dose_e11"]
            txs.append(dict(r, cci=cci, evaluable=ev, day=day(pid[0], r["transfused_at"])))
    for pid, p in pats.items():
        # PTR window: days 0..30 from the index date (issue 17); one unit per day here, so
        # every transfusion is its own event
        ev = [x for x in txs if x["patient_id"] == pid and x["evaluable"] and 0 <= x["day"] <= 30]
        low = [x["cci"] < 5000 for x in ev]
        p["ptr"] = any(a and b for a, b in zip(low, low[1:], strict=False))
        p["ptr_any_two"] = sum(low) >= 2
        p["tx_days"] = {x["day"] for x in txs if x["patient_id"] == pid}
        p["units_all"] = sum(x["units_reported"] for x in txs if x["patient_id"] == pid)

    # ---------------------------------------------------------------- CRS (Lee 2014 from signs)
    def lee(r: dict[str, Any]) -> int:
        if r["o2_device"] == "ventilator" or (r["organ_toxicity_grade"] or 0) >= 4:
            return 4
        pressors = r["vasopressors"] or 0
        if ((r["fio2_pct"] or 21) >= 40 or pressors >= 2 or (r["ne_equiv_ug_min"] or 0) >= 20
                or (r["organ_toxicity_grade"] or 0) >= 3 or (r["transaminitis_grade"] or 0) >= 4):
            return 3
        if (r["hypotension"] or pressors >= 1 or (r["fio2_pct"] or 21) > 21
                or (r["o2_device"] not in (None, "none")) or (r["o2_flow_l_min"] or 0) > 0
                or (r["organ_toxicity_grade"] or 0) >= 2 or (r["transaminitis_grade"] or 0) >= 2):
            return 2
        return 1 if (r["max_temp_c"] or 0) >= 38.0 else 0

    for p in pats.values():
        p.update(crs=0, temp=None, reported_ok=True)
    for r in t["crs_assessments"].iter_rows(named=True):
        p = pats[r["patient_id"]]
        g = lee(r)
        p["crs"] = max(p["crs"], g)
        p["reported_ok"] &= r["reported_grade"] == g
        if 0 <= day(r["patient_id"], r["assessed_on"]) <= 30:
            p["temp"] = max(p["temp"] or 0, r["max_temp_c"])

    # ---------------------------------------------------------------- labs
    labs = t["labs"].with_columns(pl.col("measured_at").dt.date().alias("d"))
    for p in pats.values():
        p.update(IL6=None, IL10=None, IFNG=None)
    daily: dict[tuple[str, str], dict[int, float]] = {}
    for (pid, analyte, d), g in labs.group_by(["patient_id", "analyte", "d"]):
        dd = (d - pats[pid]["index_date"]).days
        vmin, vmax = g["value"].min(), g["value"].max()
        daily.setdefault((pid, analyte), {})[dd] = vmin
        if analyte in ("IL6", "IL10", "IFNG") and 0 <= dd <= 30:
            pats[pid][analyte] = max(pats[pid][analyte] or 0, vmax)
    il6_by_day: dict[tuple[str, int], float] = {}
    for r in labs.filter(pl.col("analyte") == "IL6").iter_rows(named=True):
        key = (r["patient_id"], day(r["patient_id"], r["measured_at"]))
        il6_by_day[key] = max(il6_by_day.get(key, 0.0), r["value"])
    for pid, p in pats.items():
        p["has_cytokines"] = p["IL6"] is not None
        anc = daily.get((pid, "ANC"), {})
        plt = daily.get((pid, "PLT"), {})
        first_agran = min((d for d, v in anc.items() if 0 <= d <= 30 and v < 0.5), default=None)
        p["neut_impr"] = first_agran is not None and _runs_meet(
            {d: v > 0.5 and d > first_agran for d, v in anc.items()}, 4, (0, 30)) is not None
        first_low = min((d for d, v in plt.items() if 0 <= d <= 30 and v < 20), default=None)

        def explained(d: int, tx_days: set[int] = p["tx_days"]) -> bool:
            """A platelet count within 3 days after a transfusion could be the transfusion's
            (issue 17: runs and recovery start after the last transfusion that explains it)."""
            return any(d - 3 <= t <= d for t in tx_days)

        qual = {d: first_low is not None and d > first_low and v > 20 and not explained(d)
                for d, v in plt.items()}
        qual |= {d: False for d in p["tx_days"] if d not in qual}
        p["plt_impr"] = first_low is not None and _runs_meet(qual, 7, (0, 30)) is not None

        def recovered(series: dict[int, float], normal: float, platelets: bool = False) -> bool:
            below = [d for d, v in series.items() if 0 <= d <= 90 and v < normal]
            first = min(below) if below else None
            return any(0 <= d <= 90 and v >= normal and (first is None or d > first)
                       and not (platelets and explained(d))
                       for d, v in series.items())

        p["neut_rec"] = recovered(anc, 2.0)
        p["plt_rec"] = recovered(plt, 100, platelets=True)
        fall = min((d for d, v in plt.items() if v < 20), default=None)
        stays = _runs_meet({d: fall is not None and d > fall and v >= 20 for d, v in plt.items()},
                           7, (0, 90))
        p["units"] = sum(x["units_reported"] for x in txs if x["patient_id"] == pid
                         and 0 <= x["day"] <= 90 and (stays is None or x["day"] < stays))

    # ---------------------------------------------------------------- exposures
    for p in pats.values():
        p.update(infection=False, toci_doses=0, cortico=False)
    for r in t["infections"].iter_rows(named=True):
        if 0 <= day(r["patient_id"], r["onset_on"]) <= 30:
            pats[r["patient_id"]]["infection"] = True
    for r in t["medications"].iter_rows(named=True):
        if not 0 <= day(r["patient_id"], r["started_on"]) <= 30:
            continue
        if r["drug"] == "tocilizumab":
            pats[r["patient_id"]]["toci_doses"] += r["n_doses"] or 1
        if r["drug"] == "corticosteroid":
            pats[r["patient_id"]]["cortico"] = True
    for r in t["outcomes"].iter_rows(named=True):
        pats[r["patient_id"]].update(response=r["response"], death_on=r["death_on"],
                                     last_followup_on=r["last_followup_on"])

    # ---------------------------------------------------------------- bleeding, competing events
    last_record: dict[str, dt.date] = {}
    for table, col in (("labs", "measured_at"), ("transfusions", "transfused_at"),
                       ("crs_assessments", "assessed_on"), ("bleeding_events", "onset_on"),
                       ("medications", "started_on"), ("infections", "onset_on")):
        for r in t[table].iter_rows(named=True):
            v = r[col].date() if isinstance(r[col], dt.datetime) else r[col]
            last_record[r["patient_id"]] = max(last_record.get(r["patient_id"], v), v)
    for pid, p in pats.items():
        ev = [(day(pid, r["onset_on"]), r["who_grade"])
              for r in t["bleeding_events"].filter(pl.col("patient_id") == pid).iter_rows(named=True)]
        in30 = [g for d, g in ev if 0 <= d <= 30]
        p["bleed30"] = max(in30, default=0)
        p["bleed_ever"] = max((g for _, g in ev), default=0)
        severe = min((d for d, g in ev if 0 <= d <= 30 and g >= 3), default=None)
        death = day(pid, p["death_on"]) if p["death_on"] else None
        death = death if death is not None and 0 <= death <= 30 else None
        if severe is not None and (death is None or severe <= death):
            p["event"], p["time"] = 1, float(severe)
        elif death is not None:
            p["event"], p["time"] = 2, float(death)
        else:
            contact = max(d for d in (p["last_followup_on"], p["death_on"], last_record.get(pid)) if d)
            p["event"], p["time"] = 0, float(min(30, max(0, (contact - p["index_date"]).days)))
    for x in txs:
        x["il6_same_day"] = il6_by_day.get((x["patient_id"], x["day"]))
    return pats, txs


def _logistic(y: list[int], cols: list[list[float]]) -> Any:
    import statsmodels.api as sm

    X = np.column_stack([np.ones(len(y)), *[np.asarray(c, float) for c in cols]])
    return sm.Logit(np.asarray(y, float), X).fit(disp=0, method="newton", maxiter=100)


def _forward_lr(y: list[int], pool: dict[str, list[float]], entry_p: float = 0.05) -> list[str]:
    """Forward selection by likelihood ratio (entry p < entry_p) from the candidates."""
    import warnings

    from scipy import stats

    selected: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        while True:
            base = _logistic(y, [pool[v] for v in selected]).llf
            best = None
            for v in pool:
                if v in selected:
                    continue
                llf = _logistic(y, [pool[w] for w in [*selected, v]]).llf
                p = float(stats.chi2.sf(2 * (llf - base), 1))
                if best is None or p < best[1]:
                    best = (v, p)
            if best is None or best[1] >= entry_p:
                return selected
            selected.append(best[0])


def verify_paper_cohort(folder: Path) -> dict[str, Any]:
    """Recompute every published number from the canonical extract in `folder`.

    Returns a nested dict (counts, medians, ranges, test statistics and p-values) keyed like
    published-results.md. Pure polars / scipy / statsmodels: the study's definitions are
    implemented here again, independently of the SQL views."""
    import warnings

    from scipy import stats

    pats, txs = _patients(Path(folder))
    res: dict[str, Any] = {}
    cart = [p for p in pats.values() if p["treatment_type"] == "car_t"]
    chemo = [p for p in pats.values() if p["treatment_type"] == "chemotherapy"]
    sub = [p for p in cart if p["has_cytokines"]]
    ptr = [p for p in sub if p["ptr"]]
    non = [p for p in sub if not p["ptr"]]

    # ---- cohort and Table 1
    ages_c, ages_s = [p["age_years"] for p in cart], [p["age_years"] for p in chemo]
    res["cohort"] = {
        "n_car_t": len(cart), "n_chemo": len(chemo), "n_subgroup": len(sub),
        "age_car_t": (float(np.median(ages_c)), min(ages_c), max(ages_c)),
        "age_chemo": (float(np.median(ages_s)), min(ages_s), max(ages_s)),
        "men_car_t": sum(p["sex"] == "M" for p in cart),
        "men_chemo": sum(p["sex"] == "M" for p in chemo),
        "excluded_has_ptr": [p["ptr"] for p in cart if not p["has_cytokines"]],
        "ptr_rule_agrees": all(p["ptr"] == p["ptr_any_two"] for p in pats.values()),
        "reported_crs_consistent": all(p["reported_ok"] for p in cart),
    }
    base: dict[str, float] = {}
    for var in ("age_years", "bsa", "bm_blast_pct", "n_relapses"):
        x = [float(p[var]) for p in cart]
        y = [float(p[var]) for p in chemo]
        normal = stats.shapiro(x).pvalue >= 0.05 and stats.shapiro(y).pvalue >= 0.05
        base[var] = (float(stats.ttest_ind(x, y).pvalue) if normal else _wilcox(x, y)[1])
    for var, f in (("male", lambda p: p["sex"] == "M"), ("relapsed", lambda p: p["disease_status"] == "relapsed"),
                   ("prior_allo_hsct", lambda p: p["prior_allo_hsct"]),
                   ("extramedullary", lambda p: p["extramedullary"]),
                   ("infection", lambda p: p["infection"])):
        a, b = sum(map(f, cart)), sum(map(f, chemo))
        table = np.array([[a, len(cart) - a], [b, len(chemo) - b]])
        exp = table.sum(1)[:, None] * table.sum(0)[None, :] / table.sum()
        base[var] = (float(stats.chi2_contingency(table, correction=False)[1]) if exp.min() >= 5
                     else _fisher(a, len(cart), b, len(chemo)))
    res["baseline_p"] = base

    # ---- Table 2
    a, b = sum(p["ptr"] for p in cart), sum(p["ptr"] for p in chemo)
    chi2, p2, _, _ = stats.chi2_contingency([[a, len(cart) - a], [b, len(chemo) - b]], correction=False)
    res["ptr_by_group"] = {"car_t": (a, len(cart)), "chemo": (b, len(chemo)),
                           "chi2": float(chi2), "p": float(p2)}

    # ---- Table 3
    flags = {
        "cr": lambda p: p["response"] in ("CR", "CRi"),
        "tocilizumab": lambda p: p["toci_doses"] > 0,
        "corticosteroid": lambda p: p["cortico"],
        "infection": lambda p: p["infection"],
        "neutrophil_improvement_30d": lambda p: p["neut_impr"],
        "neutrophil_recovery_90d": lambda p: p["neut_rec"],
        "platelet_improvement_30d": lambda p: p["plt_impr"],
        "platelet_recovery_90d": lambda p: p["plt_rec"],
        "bleeding_grade_3plus": lambda p: p["bleed30"] >= 3,
        "crs_grade_3plus": lambda p: p["crs"] >= 3,
    }
    t3 = {}
    for var, f in flags.items():
        x, y = sum(map(f, ptr)), sum(map(f, non))
        t3[var] = {"ptr": (x, len(ptr)), "non_ptr": (y, len(non)),
                   "p": _fisher(x, len(ptr), y, len(non))}
    t3["tocilizumab"]["doses"] = {
        g: [sum(min(p["toci_doses"], 2) == k for p in grp) for k in (0, 1, 2)]
        for g, grp in (("ptr", ptr), ("non_ptr", non))}
    tt = stats.ttest_ind([p["temp"] for p in non], [p["temp"] for p in ptr], equal_var=True)
    t3["peak_temp_c"] = {"t": float(tt.statistic), "p": float(tt.pvalue), "df": len(sub) - 2,
                         "shapiro_p": (float(stats.shapiro([p["temp"] for p in ptr]).pvalue),
                                       float(stats.shapiro([p["temp"] for p in non]).pvalue))}
    res["table3"] = t3
    lo = [p for p in sub if p["crs"] <= 2]
    hi = [p for p in sub if p["crs"] >= 3]
    res["crs"] = {"le2": (sum(p["ptr"] for p in lo), len(lo)), "ge3": (sum(p["ptr"] for p in hi), len(hi))}

    # ---- Table 4
    y = [int(p["ptr"]) for p in sub]
    columns = {
        "crs_grade_3plus": [float(p["crs"] >= 3) for p in sub],
        "peak_temp_c": [float(p["temp"]) for p in sub],
        "infection": [float(p["infection"]) for p in sub],
        "tocilizumab": [float(p["toci_doses"] > 0) for p in sub],
        "corticosteroid": [float(p["cortico"]) for p in sub],
    }
    screen = {"crs_grade_3plus": t3["crs_grade_3plus"]["p"], "peak_temp_c": t3["peak_temp_c"]["p"],
              "infection": t3["infection"]["p"], "corticosteroid": t3["corticosteroid"]["p"],
              "tocilizumab": t3["tocilizumab"]["p"]}
    candidates = {v: columns[v] for v, pv in screen.items() if pv < 0.30}
    selected = _forward_lr(y, candidates)
    # a wider pool (every Table 3 row, the cytokines raw and log, baseline data): the selection
    # must not change whichever reasonable pool an analyst offers
    wide = dict(columns)
    for var, f in flags.items():
        if var not in ("crs_grade_3plus",):
            wide[var] = [float(f(p)) for p in sub]
    for c in ("IL6", "IL10", "IFNG"):
        wide[c] = [float(p[c]) for p in sub]
        wide[f"log_{c}"] = [math.log(p[c]) for p in sub]
    for var in ("age_years", "bsa", "bm_blast_pct", "n_relapses"):
        wide[var] = [float(p[var]) for p in sub]
    for var in ("prior_allo_hsct", "extramedullary"):
        wide[var] = [float(bool(p[var])) for p in sub]
    wide["male"] = [float(p["sex"] == "M") for p in sub]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wide_selected = _forward_lr(y, wide)
        fit = _logistic(y, [columns["crs_grade_3plus"]])
    beta, se = float(fit.params[1]), float(fit.bse[1])
    z = stats.norm.ppf(0.975)
    res["multivariable"] = {
        "candidates": sorted(candidates), "selected": selected, "wide_pool_selected": wide_selected,
        "odds_ratio": math.exp(beta), "ci_low": math.exp(beta - z * se),
        "ci_high": math.exp(beta + z * se), "p": float(2 * stats.norm.sf(abs(beta / se))),
    }

    # ---- Figures 1 and 2A
    def panel(g1: list[dict[str, Any]], g2: list[dict[str, Any]], names: tuple[str, str]) -> dict[str, Any]:
        out = {}
        for c in ("IL6", "IL10", "IFNG"):
            x, y2 = [p[c] for p in g1], [p[c] for p in g2]
            w, pv = _wilcox(x, y2)
            out[c] = {"median": {names[0]: float(np.median(x)), names[1]: float(np.median(y2))},
                      "range": {names[0]: (min(x), max(x)), names[1]: (min(y2), max(y2))},
                      "W": w, "p": pv}
        return out

    res["cytokines_by_ptr"] = panel(ptr, non, ("ptr", "non_ptr"))
    res["cytokines_by_crs"] = panel(lo, hi, ("crs_le2", "crs_ge3"))

    # ---- Figure 2B
    ids = {p["patient_id"] for p in sub}
    pts = [(x["il6_same_day"], x["cci"]) for x in txs
           if x["patient_id"] in ids and x["evaluable"] and x["il6_same_day"] is not None]
    lr = stats.linregress([a for a, _ in pts], [b for _, b in pts])
    res["cci_vs_il6"] = {"n": len(pts), "slope": float(lr.slope), "p": float(lr.pvalue),
                         "r2": float(lr.rvalue**2)}

    # ---- Figure 3A
    up, un = [p["units"] for p in ptr], [p["units"] for p in non]
    w, pv = _wilcox(un, up)
    res["units"] = {"median": {"non_ptr": float(np.median(un)), "ptr": float(np.median(up))},
                    "range": {"non_ptr": (min(un), max(un)), "ptr": (min(up), max(up))},
                    "total": {"non_ptr": sum(un), "ptr": sum(up)}, "W": w, "p": pv,
                    "all_transfused_before_stays": all(p["units"] == p["units_all"] for p in sub)}

    # ---- Figure 3B and the bleeding counts
    grp = ptr + non
    time = [p["time"] for p in grp]
    status = [p["event"] for p in grp]
    labels = ["ptr" if p["ptr"] else "non_ptr" for p in grp]
    # Gray's test and the Aalen-Johansen estimate from the R-verified statistics layer; what is
    # independent of the pipeline here is the derivation of times and events from the extract.
    from ..stats.competing import cuminc

    ci = cuminc(time, status, labels, 30)
    res["bleeding"] = {
        "cif_30": {"ptr": ci["cif_at_horizon"]["ptr"], "non_ptr": ci["cif_at_horizon"]["non_ptr"]},
        "gray_statistic": ci["statistic"], "gray_p": ci["p_value"],
        "grades_30d": [sum(p["bleed30"] == g for p in sub) for g in range(5)],
        "grades_ever": [sum(p["bleed_ever"] == g for p in sub) for g in range(5)],
        "grade4_ptr_died": all(p["ptr"] and p["death_on"] is not None for p in sub if p["bleed30"] == 4),
    }
    res["other"] = {
        "cr_total": sum(flags["cr"](p) for p in sub),
        "toci_levels": [sum(min(p["toci_doses"], 2) == k for p in sub) for k in (0, 1, 2)],
        "cortico_total": sum(p["cortico"] for p in sub),
    }
    return res
