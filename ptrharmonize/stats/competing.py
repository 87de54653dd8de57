"""Cumulative incidence under competing risks, and Gray's test: a port of R ``cmprsk::cuminc``.

No maintained Python library has Gray's (1988) K-sample test for cumulative incidence functions,
and lifelines' AalenJohansenFitter jitters tied event times, so its estimate differs from
cmprsk's on tied data (day-resolution registries are all ties). Both the estimate and the test
are therefore ported here from cmprsk 2.2's Fortran (``cinc`` in cincsub.f, ``crstm``/``crst``
in crstm.f, ``tpoi`` in tpoi.f; Robert Gray, GPL), statement by statement, with rho = 0 by
default. Verified against ``cmprsk::cuminc`` / ``timepoints`` in tests/test_stats_reference.py.

Status coding: 0 = censored, 1 = event of interest, 2 = competing event.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
from scipy import stats

from ._common import NotEstimable, fnum


def _cinc(y: np.ndarray, status: np.ndarray) -> tuple[list[float], list[float], list[float]]:
    """Cumulative incidence of cause 1 and its variance for one group (cmprsk ``cinc``).

    ``y`` sorted ascending. Returns cmprsk's step-function corner vectors (x, f, v): x starts at
    0, each event time of cause 1 appears twice (value before and after the jump), and the last
    element carries the estimate out to the largest follow-up time.
    """
    n = y.size
    ic = (status != 0).astype(int)
    icc = (status == 1).astype(int)
    fk = 1.0
    v1 = v2 = v3 = 0.0
    x, f, v = [0.0], [0.0], [0.0]
    rs = float(n)
    i = 0
    while i < n:
        j = i
        while j + 1 < n and y[j + 1] == y[i]:
            j += 1
        nd1 = int(icc[i : j + 1].sum())
        nd2 = int(ic[i : j + 1].sum()) - nd1
        nd = nd1 + nd2
        if nd > 0:
            fkn = fk * (rs - nd) / rs
            if nd1 > 0:
                f.append(f[-1])
                f.append(f[-1] + fk * nd1 / rs)
            if nd2 > 0 and fkn > 0:
                t5 = 1.0 - (nd2 - 1.0) / (rs - 1.0) if nd2 > 1 else 1.0
                t6 = fk * fk * t5 * nd2 / (rs * rs)
                t3 = 1.0 / fkn
                t4 = f[-1] / fkn
                v1 += t4 * t4 * t6
                v2 += t3 * t4 * t6
                v3 += t3 * t3 * t6
            if nd1 > 0:
                t5 = 1.0 - (nd1 - 1.0) / (rs - 1.0) if nd1 > 1 else 1.0
                t6 = fk * fk * t5 * nd1 / (rs * rs)
                t3 = 1.0 / fkn if fkn > 0 else 0.0
                t4 = 1.0 + t3 * f[-1]
                v1 += t4 * t4 * t6
                v2 += t3 * t4 * t6
                v3 += t3 * t3 * t6
                t2 = f[-1]
                x.extend([float(y[j]), float(y[j])])
                v.append(v[-1])
                v.append(v1 + t2 * t2 * v3 - 2 * t2 * v2)
            fk = fkn
        rs = float(n - (j + 1))
        i = j + 1
    x.append(float(y[-1]))
    f.append(f[-1])
    v.append(v[-1])
    return x, f, v


def _crst(
    y: np.ndarray, m: np.ndarray, ig: np.ndarray, ng: int, rho: float
) -> tuple[np.ndarray, np.ndarray]:
    """Score vector (first ng - 1 groups) and its covariance for one stratum (cmprsk ``crst``).

    ``y`` sorted ascending; ``m`` 0/1/2; ``ig`` group index 0..ng-1.
    """
    n = y.size
    ng1 = ng - 1
    rs = np.bincount(ig, minlength=ng).astype(float)
    s = np.zeros(ng1)
    v = np.zeros((ng1, ng1))  # lower triangle used, as cmprsk's packed v
    f1m = np.zeros(ng)
    f1 = np.zeros(ng)
    skmm = np.ones(ng)
    skm = np.ones(ng)
    v3 = np.zeros(ng)
    v2 = np.zeros((ng1, ng))
    c = np.zeros((ng, ng))
    a = np.zeros((ng, ng))
    fm = 0.0
    f = 0.0
    ll = 0
    while ll < n:
        lu = ll
        while lu + 1 < n and y[lu + 1] == y[ll]:
            lu += 1
        d = np.zeros((3, ng), dtype=np.int64)
        for idx in range(ll, lu + 1):
            d[m[idx], ig[idx]] += 1
        nd1 = int(d[1].sum())
        nd2 = int(d[2].sum())
        if nd1 > 0 or nd2 > 0:
            tr = 0.0
            tq = 0.0
            for i in range(ng):
                if rs[i] <= 0:
                    continue
                td = d[1, i] + d[2, i]
                skm[i] = skmm[i] * (rs[i] - td) / rs[i]
                f1[i] = f1m[i] + (skmm[i] * d[1, i]) / rs[i]
                tr += rs[i] / skmm[i]
                tq += rs[i] * (1 - f1m[i]) / skmm[i]
            f = fm + nd1 / tr
            fb = (1 - fm) ** rho
            for i in range(ng):
                a[i, i:] = 0.0
                if rs[i] <= 0:
                    continue
                t1 = rs[i] / skmm[i]
                a[i, i] = fb * t1 * (1 - t1 / tr)
                if a[i, i] != 0:
                    c[i, i] += a[i, i] * nd1 / (tr * (1 - fm))
                for j in range(i + 1, ng):
                    if rs[j] <= 0:
                        continue
                    a[i, j] = -fb * t1 * rs[j] / (skmm[j] * tr)
                    if a[i, j] != 0:
                        c[i, j] += a[i, j] * nd1 / (tr * (1 - fm))
            for i in range(1, ng):
                for j in range(i):
                    a[i, j] = a[j, i]
                    c[i, j] = c[j, i]
            for i in range(ng1):
                if rs[i] <= 0:
                    continue
                s[i] += fb * (d[1, i] - nd1 * rs[i] * (1 - f1m[i]) / (skmm[i] * tq))
            if nd1 > 0:
                for k in range(ng):
                    if rs[k] <= 0:
                        continue
                    t4 = 1 - (1 - f) / skm[k] if skm[k] > 0 else 1.0
                    t5 = 1 - (nd1 - 1) / (tr * skmm[k] - 1) if nd1 > 1 else 1.0
                    t3 = t5 * skmm[k] * nd1 / (tr * rs[k])
                    v3[k] += t4 * t4 * t3
                    for i in range(ng1):
                        t1 = a[i, k] - t4 * c[i, k]
                        v2[i, k] += t1 * t4 * t3
                        for j in range(i + 1):
                            t2 = a[j, k] - t4 * c[j, k]
                            v[i, j] += t1 * t2 * t3
            if nd2 > 0:
                for k in range(ng):
                    if skm[k] <= 0 or d[2, k] <= 0:
                        continue
                    t4 = (1 - f) / skm[k]
                    t5 = 1 - (d[2, k] - 1.0) / (rs[k] - 1.0) if d[2, k] > 1 else 1.0
                    t6 = rs[k]
                    t3 = t5 * ((skmm[k] ** 2) * d[2, k]) / (t6**2)
                    v3[k] += t4 * t4 * t3
                    for i in range(ng1):
                        t1 = t4 * c[i, k]
                        v2[i, k] -= t1 * t4 * t3
                        for j in range(i + 1):
                            t2 = t4 * c[j, k]
                            v[i, j] += t1 * t2 * t3
        if lu >= n - 1:
            break
        for idx in range(ll, lu + 1):
            rs[ig[idx]] -= 1
        fm = f
        f1m[:] = f1
        skmm[:] = skm
        ll = lu + 1
    for i in range(ng1):
        for j in range(i + 1):
            for k in range(ng):
                v[i, j] += c[i, k] * c[j, k] * v3[k] + c[i, k] * v2[j, k] + c[j, k] * v2[i, k]
    full = np.tril(v) + np.tril(v, -1).T
    return s, full


def _value_at(x: list[float], vals: list[float], t: float) -> float | None:
    """cmprsk ``timepoints`` lookup: the right-continuous step value at t, None (R's NA) when t is
    negative or beyond the group's largest follow-up time."""
    if t > x[-1] or t < x[0]:
        return None
    k = int(np.searchsorted(np.asarray(x), t, side="right"))  # first index with x > t
    return float(vals[k]) if k < len(x) else float(vals[-1])


def _sort_levels(values: Sequence[Hashable]) -> list[Hashable]:
    levels = list(dict.fromkeys(values))
    try:
        return sorted(levels)  # type: ignore[type-var]
    except TypeError:
        return sorted(levels, key=str)


def cuminc(
    time: Any,
    status: Any,
    group: Any,
    horizon: float,
    strata: Any = None,
    rho: float = 0.0,
) -> dict[str, Any]:
    """Aalen-Johansen cumulative incidence of the event of interest per group, and Gray's test.

    Equals R ``cmprsk::cuminc(time, status, group, strata, rho = 0)``: ``curves`` are the
    estimates (``time``/``cif``/``var``: value just after each jump, starting at time 0 and
    ending at the group's largest follow-up time), ``cif_at_horizon`` / ``var_at_horizon`` are
    ``timepoints(fit, horizon)`` (None - R's NA - when the horizon lies beyond a group's largest
    follow-up time), and ``statistic``/``p_value``/``df`` are Gray's test for the event of
    interest (status 1), stratified when ``strata`` is given. ``statistic`` and ``p_value`` are
    None when the test is undefined (one group, or a singular score covariance, e.g. no event of
    interest at all; R then prints a statistic of -1).

    Tied times are handled as in cmprsk (all events at a time before censorings at that time).
    Groups are ordered as R orders factor levels (sorted); rows with a missing value are dropped.
    """
    t = np.asarray(time, dtype=float)
    st = np.asarray(status, dtype=float)
    g = list(group)
    if not (t.size == st.size == len(g)):
        raise ValueError("time, status and group must have the same length")
    sv = list(strata) if strata is not None else [1] * t.size
    if len(sv) != t.size:
        raise ValueError("strata must have the same length as time")

    def missing(v: Any) -> bool:
        return v is None or (isinstance(v, float) and math.isnan(v))

    keep = np.array(
        [
            not (math.isnan(t[i]) or math.isnan(st[i]) or missing(g[i]) or missing(sv[i]))
            for i in range(t.size)
        ],
        dtype=bool,
    )
    t, st = t[keep], st[keep]
    g = [g[i] for i in range(len(g)) if keep[i]]
    sv = [sv[i] for i in range(len(sv)) if keep[i]]
    if t.size == 0:
        raise NotEstimable("no complete observations")
    if not np.all(np.isin(st, [0, 1, 2])):
        raise ValueError("status must be 0 (censored), 1 (event of interest) or 2 (competing)")
    if np.any(t < 0):
        raise ValueError("times must be non-negative")
    m = st.astype(np.int64)

    levels = _sort_levels(g)
    gi = np.array([levels.index(v) for v in g], dtype=np.int64)
    slevels = _sort_levels(sv)
    si = np.array([slevels.index(v) for v in sv], dtype=np.int64)
    order = np.argsort(t, kind="stable")
    t, m, gi, si = t[order], m[order], gi[order], si[order]

    curves: dict[str, dict[str, list[float]]] = {}
    at_horizon: dict[str, float | None] = {}
    var_horizon: dict[str, float | None] = {}
    events: dict[str, int] = {}
    for k, level in enumerate(levels):
        sel = gi == k
        x, f, v = _cinc(t[sel], m[sel])
        key = str(level)
        at_horizon[key] = _value_at(x, f, horizon)
        var_horizon[key] = _value_at(x, v, horizon)
        # compact form: keep the last value at each distinct corner time
        times: list[float] = []
        cif: list[float] = []
        var: list[float] = []
        for xi, fi, vi in zip(x, f, v, strict=True):
            if times and times[-1] == xi:
                cif[-1], var[-1] = fi, vi
            else:
                times.append(xi)
                cif.append(fi)
                var.append(vi)
        curves[key] = {"time": times, "cif": cif, "var": var}
        events[key] = int(np.sum(m[sel] == 1))

    ng = len(levels)
    statistic: float | None = None
    p_value: float | None = None
    if ng > 1:
        s = np.zeros(ng - 1)
        vs = np.zeros((ng - 1, ng - 1))
        for k in range(len(slevels)):
            sel = si == k
            s_k, v_k = _crst(t[sel], m[sel], gi[sel], ng, rho)
            s += s_k
            vs += v_k
        if np.linalg.matrix_rank(vs) == ng - 1:
            statistic = float(s @ np.linalg.solve(vs, s))
            p_value = float(stats.chi2.sf(statistic, ng - 1))
    return {
        "test": "gray",
        "statistic": fnum(statistic),
        "p_value": fnum(p_value),
        "df": ng - 1,
        "horizon": float(horizon),
        "cif_at_horizon": at_horizon,
        "var_at_horizon": var_horizon,
        "curves": curves,
        "groups": [str(v) for v in levels],
        "n": {str(level): int(np.sum(gi == k)) for k, level in enumerate(levels)},
        "events": events,
        "strata": len(slevels),
        "rho": rho,
        "variant": "Aalen-Johansen CIF and Gray's test (rho = 0), port of R cmprsk::cuminc",
    }
