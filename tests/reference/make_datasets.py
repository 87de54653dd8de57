"""Generate the synthetic fixture datasets under tests/reference/data/ (run once; output committed).

The numbers are arbitrary but deterministic (numpy default_rng with fixed seeds) and rounded to a
few decimals, so the CSV text that R reads is exactly what Python reads. `make_reference.R` then
computes the R reference values from these files. `sex2.csv` is not generated here: it is the
`sex2` data set shipped with the R package logistf (Heinze & Schemper 2002), exported with
`write.csv(sex2, row.names = FALSE)`.

Usage: python tests/reference/make_datasets.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "data"


def _write(name: str, header: list[str], rows: list[list[object]]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with (OUT / name).open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def _unique_round(rng: np.random.Generator, draw, n: int, decimals: int) -> np.ndarray:
    """Draw n values rounded to `decimals` with no duplicates (for tie-free fixtures)."""
    seen: set[float] = set()
    out: list[float] = []
    while len(out) < n:
        v = float(np.round(draw(rng), decimals))
        if v not in seen:
            seen.add(v)
            out.append(v)
    return np.array(out)


def continuous() -> None:
    rng = np.random.default_rng(20240501)
    rows: list[list[object]] = []

    def add(ds: str, x: np.ndarray, y: np.ndarray | None) -> None:
        rows.extend([ds, "x", repr(float(v))] for v in x)
        if y is not None:
            rows.extend([ds, "y", repr(float(v))] for v in y)

    # tie-free, both n < 50 -> exact Wilcoxon distribution
    pool = _unique_round(rng, lambda r: r.lognormal(7, 1.2), 16, 2)
    add("mw_exact_small", pool[:7], pool[7:])
    pool = _unique_round(rng, lambda r: r.lognormal(8, 1.3), 25, 2)
    add("mw_exact_il6", pool[:14] * 1.0 + 0, pool[14:] / 4)
    # W exactly at n.x*n.y/2 -> two-sided p capped at 1
    add("mw_exact_p1", np.array([1.0, 4.0, 5.0, 8.0]), np.array([2.0, 3.0, 6.0, 7.0]))
    # ties -> normal approximation with tie and continuity correction
    add(
        "mw_ties_units",
        rng.integers(25, 90, 11).astype(float),
        rng.integers(40, 172, 14).astype(float),
    )
    add("mw_ties_small", np.array([1.0, 2, 2, 3, 5]), np.array([2.0, 3, 3, 4, 6, 6]))
    # tie-free but n >= 50 -> normal approximation with continuity correction
    pool = _unique_round(rng, lambda r: r.normal(50, 10), 112, 3)
    add("mw_large", pool[:60], pool[60:] + 4)
    pool = _unique_round(rng, lambda r: r.normal(0, 1), 99, 4)
    add("mw_boundary_49_50", pool[:49], pool[49:] + 0.3)
    add(
        "mw_large_ties",
        rng.integers(0, 12, 70).astype(float),
        rng.integers(1, 14, 55).astype(float),
    )
    # Student / Welch t
    add(
        "t_peak_temp",
        np.round(rng.normal(39.6, 0.6, 14), 1),
        np.round(rng.normal(39.0, 0.7, 11), 1),
    )
    add("t_unequal_var", np.round(rng.normal(10, 1, 10), 3), np.round(rng.normal(11.5, 4, 16), 3))
    # compare_continuous: both groups normal -> t; skewed -> Mann-Whitney
    add("cmp_normal", np.round(rng.normal(100, 15, 20), 2), np.round(rng.normal(110, 15, 18), 2))
    add(
        "cmp_skewed", np.round(rng.lognormal(6, 1.5, 15), 2), np.round(rng.lognormal(7, 1.5, 12), 2)
    )
    # one-sample Shapiro-Wilk at the algorithm's branch points (n = 3, 4..11, > 11)
    add("sw_n3", np.array([1.2, 3.4, 3.9]), None)
    add("sw_n7", np.round(rng.normal(0, 1, 7), 3), None)
    add("sw_n60", np.round(rng.exponential(2, 60), 3), None)
    _write("continuous.csv", ["dataset", "group", "value"], rows)


def logistic() -> None:
    # study Table 4: CRS >= 3 vs PTR in the 25 analysed CAR-T patients
    rows = [[0, 1]] * 2 + [[0, 0]] * 8 + [[1, 1]] * 12 + [[1, 0]] * 3
    _write("crs_ptr.csv", ["crs3", "ptr"], rows)

    rng = np.random.default_rng(7)
    n = 80
    x1 = np.round(rng.normal(39.3, 0.7, n), 1)  # peak temperature
    x2 = rng.integers(0, 2, n)  # CRS >= 3
    x3 = np.round(rng.normal(0, 1, n), 2)
    x4 = rng.integers(0, 2, n)
    x5 = np.round(rng.normal(0, 1, n), 2)
    eta = -0.8 + 1.1 * (x1 - 39.3) + 1.6 * x2 + 0.45 * x3 + 0.0 * x4 + 0.0 * x5
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    _write(
        "logistic_multi.csv",
        ["y", "temp", "crs3", "x3", "x4", "x5"],
        [
            [int(a), float(b), int(c), float(d), int(e), float(f)]
            for a, b, c, d, e, f in zip(y, x1, x2, x3, x4, x5, strict=True)
        ],
    )

    # forward selection with a removal step: a = b + c + noise enters first, then b and c make it redundant
    rng = np.random.default_rng(7)
    n = 120
    b = rng.normal(0, 1, n)
    c = rng.normal(0, 1, n)
    a = np.round(b + c + rng.normal(0, 0.35, n), 2)
    b, c = np.round(b, 2), np.round(c, 2)
    d = np.round(rng.normal(0, 1, n), 2)
    eta = 0.2 + 1.4 * b + 1.4 * c
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    _write(
        "forward_removal.csv",
        ["y", "a", "b", "c", "d"],
        [
            [int(v), float(w), float(x), float(z), float(u)]
            for v, w, x, z, u in zip(y, a, b, c, d, strict=True)
        ],
    )

    # quasi-complete separation: every exposed patient has the outcome (ML does not exist)
    rng = np.random.default_rng(11)
    xs = np.array([1] * 6 + [0] * 16)
    ys = np.array([1] * 6 + [1] * 4 + [0] * 12)
    zs = np.round(rng.normal(0, 1, xs.size), 2)
    _write(
        "firth_separation.csv",
        ["y", "x", "z"],
        [[int(a), int(b), float(c)] for a, b, c in zip(ys, xs, zs, strict=True)],
    )

    rng = np.random.default_rng(3)
    n = 79
    il6 = np.round(rng.lognormal(7.5, 1.4, n), 2)
    cci = np.round(12000 - 0.09 * il6 + rng.normal(0, 5000, n), 1)
    _write(
        "linear_cci_il6.csv",
        ["il6", "cci"],
        [[float(a), float(b)] for a, b in zip(il6, cci, strict=True)],
    )


def competing() -> None:
    rows: list[list[object]] = []

    def add(ds: str, time, status, group, strata=None) -> None:
        for i in range(len(time)):
            rows.append(
                [
                    ds,
                    repr(float(time[i])),
                    int(status[i]),
                    str(group[i]),
                    "s1" if strata is None else str(strata[i]),
                ]
            )

    rng = np.random.default_rng(101)
    # two groups, continuous times (no ties)
    n = 40
    g = np.array(["a"] * 20 + ["b"] * 20)
    t = _unique_round(rng, lambda r: r.exponential(30), n, 2)
    s = rng.choice([0, 1, 2], n, p=[0.3, 0.45, 0.25])
    s[g == "b"] = rng.choice([0, 1, 2], 20, p=[0.3, 0.2, 0.5])
    add("cr_two", t, s, g)

    # integer days with many ties, including ties between event types and censorings
    n = 60
    g = rng.choice(["ptr", "nonptr"], n)
    t = rng.integers(1, 21, n)
    s = np.where(
        g == "ptr",
        rng.choice([0, 1, 2], n, p=[0.3, 0.5, 0.2]),
        rng.choice([0, 1, 2], n, p=[0.4, 0.3, 0.3]),
    )
    add("cr_ties", t, s, g)

    # three groups, one with no event of interest
    n = 45
    g = np.array(["g1"] * 15 + ["g2"] * 15 + ["g3"] * 15)
    t = rng.integers(1, 31, n)
    s = rng.choice([0, 1, 2], n, p=[0.35, 0.4, 0.25])
    s[g == "g3"] = rng.choice([0, 2], 15, p=[0.6, 0.4])
    add("cr_three_zero", t, s, g)

    # study-like: bleeding (1) vs death (2) within 90 days, PTR 14 vs non-PTR 11
    t_ptr = [3, 5, 8, 12, 12, 20, 27, 35, 41, 60, 90, 90, 90, 90]
    s_ptr = [1, 1, 2, 1, 0, 2, 1, 2, 0, 0, 0, 0, 0, 0]
    t_non = [10, 18, 25, 40, 90, 90, 90, 90, 90, 90, 90]
    s_non = [2, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]
    add("cr_bleeding", t_ptr + t_non, s_ptr + s_non, ["ptr"] * 14 + ["nonptr"] * 11)

    # stratified Gray test: 2 groups x 3 centers
    n = 90
    g = rng.choice(["a", "b"], n)
    st = rng.choice(["c1", "c2", "c3"], n)
    t = np.round(rng.exponential(20, n), 1)
    s = np.where(
        g == "a",
        rng.choice([0, 1, 2], n, p=[0.3, 0.45, 0.25]),
        rng.choice([0, 1, 2], n, p=[0.3, 0.3, 0.4]),
    )
    add("cr_strata", t, s, g, st)

    # no competing events: the CIF is 1 - Kaplan-Meier
    n = 30
    g = rng.choice(["a", "b"], n)
    t = rng.integers(1, 16, n)
    s = rng.choice([0, 1], n, p=[0.4, 0.6])
    add("cr_no_competing", t, s, g)

    # events and a censoring at time 0, censorings tied with events, a group of one
    add(
        "cr_time_zero",
        [0, 0, 0, 1, 1, 1, 2, 3, 3, 5, 0, 1, 2, 2, 4, 6, 7],
        [1, 2, 0, 1, 0, 2, 1, 0, 1, 0, 1, 1, 0, 2, 1, 0, 2],
        ["a"] * 10 + ["b"] * 6 + ["c"],
    )

    _write("competing.csv", ["dataset", "time", "status", "group", "strata"], rows)


if __name__ == "__main__":
    continuous()
    logistic()
    competing()
