"""Tests on contingency tables: Pearson chi-square, Fisher's exact test, Cochran-Mantel-Haenszel.

Every function returns a plain, JSON-serialisable dict with at least ``test``, ``statistic`` and
``p_value``. The variants are fixed to the ones the reference study used (and documented in
docs/statistics.md); each is verified against R 4.2 in tests/test_stats_reference.py.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats
from scipy.special import gammaln

from ._common import DBL_EPSILON, NotEstimable, as_table, fnum, to_list, zeroin

# R fisher.test, 2 x 2: tables with probability <= p_obs * (1 + 1e-7) count as "as extreme".
_REL_ERR_2X2 = 1e-7
# R fisher.test, larger tables (FEXACT): log-probability tolerance of the network algorithm.
_TOL_RXC = 3.45254e-7
# Refuse exact enumeration beyond this many tables (R's FEXACT fails on such tables too).
MAX_FISHER_TABLES = 5_000_000


# --------------------------------------------------------------------------- Pearson chi-square


def pearson_chi2(table: Any) -> dict[str, Any]:
    """Pearson chi-square test of independence WITHOUT continuity correction.

    Matches R ``chisq.test(x, correct = FALSE)``. WHY no Yates correction: the study's methods
    state the uncorrected Pearson test (chi2 = 7.406 for 15/26 vs 3/18 is the uncorrected value;
    Yates would give 5.81), and the correction is known to be conservative.
    """
    obs = as_table(table).astype(float)
    n = obs.sum()
    rows, cols = obs.sum(axis=1), obs.sum(axis=0)
    if np.any(rows == 0) or np.any(cols == 0):
        raise NotEstimable("Pearson chi-square is undefined for a table with an empty row or column")
    expected = np.outer(rows, cols) / n
    statistic = float(np.sum((obs - expected) ** 2 / expected))
    df = (obs.shape[0] - 1) * (obs.shape[1] - 1)
    return {
        "test": "chi2",
        "statistic": statistic,
        "p_value": float(stats.chi2.sf(statistic, df)),
        "df": int(df),
        "expected": to_list(expected),
        "variant": "Pearson, no continuity correction (R chisq.test(correct = FALSE))",
    }


# --------------------------------------------------------------------------- Fisher exact


def _fisher_2x2(x: np.ndarray) -> tuple[float, float]:
    """Two-sided p and conditional MLE odds ratio, a line-by-line port of R's fisher.test (2 x 2)."""
    m = int(x[:, 0].sum())
    n = int(x[:, 1].sum())
    k = int(x[0, :].sum())
    a = int(x[0, 0])
    lo = max(0, k - n)
    hi = min(k, m)
    support = np.arange(lo, hi + 1, dtype=float)
    logdc = stats.hypergeom.logpmf(support, m + n, m, k)

    def dnhyper(ncp: float) -> np.ndarray:
        d = logdc + math.log(ncp) * support
        d = np.exp(d - d.max())
        return d / d.sum()

    def mnhyper(ncp: float) -> float:
        if ncp == 0:
            return float(lo)
        if ncp == math.inf:
            return float(hi)
        return float(np.sum(support * dnhyper(ncp)))

    d = dnhyper(1.0)
    p_value = float(np.sum(d[d <= d[a - lo] * (1 + _REL_ERR_2X2)]))

    if a == lo:
        estimate = 0.0
    elif a == hi:
        estimate = math.inf
    else:
        mu = mnhyper(1.0)
        if mu > a:
            estimate = zeroin(lambda t: mnhyper(t) - a, 0.0, 1.0)
        elif mu < a:
            estimate = 1.0 / zeroin(lambda t: mnhyper(1.0 / t) - a, DBL_EPSILON, 1.0)
        else:
            estimate = 1.0
    return min(1.0, p_value), estimate


def _log_factorials(n: int) -> np.ndarray:
    return gammaln(np.arange(n + 1, dtype=float) + 1.0)


def _fisher_2xk(x: np.ndarray) -> float:
    """Exact two-sided p for a 2 x k table by full enumeration of the first row (vectorised)."""
    r1 = int(x[0].sum())
    cols = x.sum(axis=0).astype(int)
    n = int(cols.sum())
    lf = _log_factorials(n)

    def log_choose(nn: np.ndarray | int, kk: np.ndarray) -> np.ndarray:
        return lf[nn] - lf[kk] - lf[nn - kk]

    log_total = lf[n] - lf[r1] - lf[n - r1]
    # partial first-row sums and partial log-probabilities, expanded one column at a time
    sums = np.zeros(1, dtype=np.int64)
    logp = np.zeros(1)
    remaining = int(cols.sum())
    for c in cols[:-1]:
        remaining -= int(c)
        xs = np.arange(c + 1, dtype=np.int64)
        new_sums = (sums[:, None] + xs[None, :]).ravel()
        new_logp = (logp[:, None] + log_choose(int(c), xs)[None, :]).ravel()
        keep = (new_sums <= r1) & (new_sums + remaining >= r1)
        sums, logp = new_sums[keep], new_logp[keep]
        if sums.size > MAX_FISHER_TABLES:
            raise NotEstimable("table too large for exact enumeration; use the chi-square test")
    last = r1 - sums
    logp = logp + log_choose(int(cols[-1]), last) - log_total
    obs_logp = float(np.sum(log_choose(cols, x[0].astype(np.int64))) - log_total)
    p = float(np.exp(logp[logp <= obs_logp + _TOL_RXC]).sum())
    return min(1.0, p)


def _compositions(total: int, parts: int) -> np.ndarray:
    """All ways to write ``total`` as an ordered sum of ``parts`` non-negative integers (M x parts)."""
    if parts == 1:
        return np.array([[total]], dtype=np.int64)
    blocks = []
    for first in range(total, -1, -1):
        rest = _compositions(total - first, parts - 1)
        blocks.append(np.column_stack([np.full(rest.shape[0], first, dtype=np.int64), rest]))
    return np.vstack(blocks)


def _fisher_rxc(x: np.ndarray) -> float:
    """Exact two-sided p for an r x c table: all tables with the observed margins are enumerated
    column by column (vectorised over the partial tables), each column's cells being every
    composition of its total that fits the remaining row sums; the last column is implied."""
    rows = x.sum(axis=1).astype(np.int64)
    cols = x.sum(axis=0).astype(np.int64)
    n = int(rows.sum())
    lf = _log_factorials(n)
    const = float(lf[rows].sum() + lf[cols].sum() - lf[n])
    obs_logp = const - float(lf[x.astype(np.int64)].sum())
    threshold = obs_logp + _TOL_RXC
    # put the longer margin along the columns: fewer rows -> fewer compositions per column
    if x.shape[0] > x.shape[1]:
        rows, cols = cols, rows
    remaining = rows[None, :].copy()
    partial = np.zeros(1)
    for c in cols[:-1]:
        comps = _compositions(int(c), rows.size)
        comp_lf = lf[comps].sum(axis=1)
        chunk = max(1, 2_000_000 // comps.shape[0])
        new_rem: list[np.ndarray] = []
        new_par: list[np.ndarray] = []
        total_states = 0
        for start in range(0, remaining.shape[0], chunk):
            rem = remaining[start : start + chunk]
            fits = np.all(comps[None, :, :] <= rem[:, None, :], axis=2)
            si, ci = np.nonzero(fits)
            total_states += si.size
            if total_states > MAX_FISHER_TABLES:
                raise NotEstimable("table too large for exact enumeration; use the chi-square test")
            new_rem.append(rem[si] - comps[ci])
            new_par.append(partial[start : start + chunk][si] - comp_lf[ci])
        remaining = np.vstack(new_rem)
        partial = np.concatenate(new_par)
    logp = const + partial - lf[remaining].sum(axis=1)
    return min(1.0, float(np.exp(logp[logp <= threshold]).sum()))


def fisher_exact(table: Any) -> dict[str, Any]:
    """Fisher's exact test, two-sided, as R ``fisher.test(x)``.

    2 x 2: the p-value sums the hypergeometric probabilities of all tables no more probable than
    the observed one (relative tolerance 1e-7, as R), and ``statistic`` is R's conditional
    maximum-likelihood odds ratio (found with R's own root finder, so the digits agree; it is
    0 or ``inf`` when the observed cell is at the edge of its support).

    Larger tables: R uses the network algorithm (FEXACT); the p-value is the same quantity, so
    here it is computed by exact enumeration of all tables with the observed margins (tolerance
    3.45254e-7 on the log scale, FEXACT's). Enumeration is vectorised but still grows fast with
    n and table size: beyond MAX_FISHER_TABLES partial tables a ValueError is raised (R's FEXACT
    runs out of workspace on such tables too); they are the tables where every expected count is
    large and ``chi2_or_fisher`` picks the chi-square test anyway. ``statistic`` is ``None`` for
    tables larger than 2 x 2 (R reports none).
    """
    x = as_table(table)
    if x.shape == (2, 2):
        p_value, estimate = _fisher_2x2(x)
        return {
            "test": "fisher",
            "statistic": float(estimate),
            "p_value": p_value,
            "statistic_name": "conditional MLE odds ratio",
            "variant": "two-sided, R fisher.test",
        }
    if x.shape[0] == 2:
        p_value = _fisher_2xk(x)
    elif x.shape[1] == 2:
        p_value = _fisher_2xk(x.T)
    else:
        p_value = _fisher_rxc(x)
    return {
        "test": "fisher",
        "statistic": None,
        "p_value": p_value,
        "statistic_name": None,
        "variant": "two-sided, exact enumeration (= R fisher.test network algorithm)",
    }


def chi2_or_fisher(table: Any, min_expected: float = 5) -> dict[str, Any]:
    """The study's rule: Pearson chi-square (uncorrected) when every expected count is at least
    ``min_expected``, else Fisher's exact test.

    ``min_expected`` is the caller's (schemas/definitions.yaml ``min_expected``); the result
    carries ``rule`` and ``min_expected_count`` so a report can show why a test was chosen.
    """
    x = as_table(table)
    rows, cols = x.sum(axis=1), x.sum(axis=0)
    expected = np.outer(rows, cols) / x.sum() if x.sum() > 0 else np.zeros(x.shape)
    smallest = float(expected.min())
    if smallest >= min_expected:
        out = pearson_chi2(x)
    else:
        out = fisher_exact(x)
        out["expected"] = to_list(expected)
    out["rule"] = f"chi2 if every expected count >= {min_expected:g}, else Fisher"
    out["min_expected_count"] = smallest
    return out


# --------------------------------------------------------------------------- Mantel-Haenszel


def _breslow_day(
    strata: np.ndarray, psi: float, tarone: bool
) -> tuple[float | None, float | None, int]:
    """Breslow-Day test of homogeneous odds ratios around the Mantel-Haenszel estimate ``psi``.

    Strata with an empty row or column carry no information on the odds ratio and are skipped.
    Returns (statistic, p, number of strata used); None when undefined (psi 0 or infinite).
    """
    if not (0 < psi < math.inf):
        return None, None, 0
    stat = 0.0
    resid = 0.0
    var_sum = 0.0
    used = 0
    for t in strata:
        a, b, c, d = (float(v) for v in t.ravel())
        n1, m1, n = a + b, a + c, a + b + c + d
        if n1 == 0 or m1 == 0 or n1 == n or m1 == n:
            continue
        lo, hi = max(0.0, n1 + m1 - n), min(n1, m1)
        # E[a] solves A (n - n1 - m1 + A) = psi (n1 - A)(m1 - A), the root inside [lo, hi]
        qa = 1.0 - psi
        qb = (n - n1 - m1) + psi * (n1 + m1)
        qc = -psi * n1 * m1
        if abs(qa) < 1e-15:
            ea = -qc / qb
        else:
            disc = math.sqrt(qb * qb - 4 * qa * qc)
            # numerically stable pair of roots
            qq = -0.5 * (qb + math.copysign(disc, qb))
            roots = [qq / qa, qc / qq]
            inside = [r for r in roots if lo - 1e-9 <= r <= hi + 1e-9]
            ea = inside[0]
        var = 1.0 / (1.0 / ea + 1.0 / (n1 - ea) + 1.0 / (m1 - ea) + 1.0 / (n - n1 - m1 + ea))
        stat += (a - ea) ** 2 / var
        resid += a - ea
        var_sum += var
        used += 1
    if used < 2:
        return None, None, used
    if tarone:
        stat -= resid**2 / var_sum
    return stat, float(stats.chi2.sf(stat, used - 1)), used


def cmh(
    tables: Any,
    correct: bool = False,
    confidence: float = 0.95,
    tarone: bool = True,
) -> dict[str, Any]:
    """Cochran-Mantel-Haenszel test for K stratified 2 x 2 tables, MH common odds ratio with the
    Robins-Breslow-Greenland confidence interval, and the Breslow-Day homogeneity test.

    Matches R ``mantelhaen.test(x, correct = correct, exact = FALSE)`` (x a 2 x 2 x K array with
    ``x[, , k] = tables[k]``). WHY ``correct=False`` by default: the study compares groups with the
    uncorrected Pearson chi-square, and with a single stratum the uncorrected CMH statistic is
    that Pearson statistic times (n - 1)/n; pooling centers should not switch to a more
    conservative variant. The correction, when asked for, is applied as R does: only when
    |sum(a - E[a])| >= 0.5.

    Breslow-Day: the statistic around the MH estimate, with Tarone's (1985) correction by default
    (``tarone=True``), because with the MH estimate plugged in only the corrected statistic is
    asymptotically chi-square with K - 1 df; ``tarone=False`` gives the original Breslow-Day
    (DescTools::BreslowDayTest default). Strata with fewer than 2 subjects are dropped (R stops
    with an error instead); strata with an empty margin are skipped for Breslow-Day only.
    """
    arr = np.asarray(tables, dtype=float)
    if arr.ndim != 3 or arr.shape[1:] != (2, 2):
        raise ValueError("cmh() expects a list of 2 x 2 tables")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr != np.round(arr)):
        raise ValueError("counts must be finite, non-negative whole numbers")
    totals = arr.sum(axis=(1, 2))
    dropped = int(np.sum(totals < 2))
    arr = arr[totals >= 2]
    if arr.shape[0] == 0:
        raise NotEstimable("no stratum with at least 2 subjects")
    a, b, c, d = arr[:, 0, 0], arr[:, 0, 1], arr[:, 1, 0], arr[:, 1, 1]
    n = a + b + c + d
    r1, r2, c1, c2 = a + b, c + d, a + c, b + d
    delta = float(np.sum(a - r1 * c1 / n))
    variance = float(np.sum(r1 * r2 * c1 * c2 / (n**2 * (n - 1))))
    yates = 0.5 if (correct and abs(delta) >= 0.5) else 0.0
    statistic = (abs(delta) - yates) ** 2 / variance if variance > 0 else math.nan
    p_value = float(stats.chi2.sf(statistic, 1)) if variance > 0 else math.nan

    s_diag = float(np.sum(a * d / n))
    s_offd = float(np.sum(b * c / n))
    estimate = s_diag / s_offd if s_offd > 0 else (math.inf if s_diag > 0 else math.nan)
    if 0 < s_diag and 0 < s_offd:
        sd = math.sqrt(
            float(np.sum((a + d) * a * d / n**2)) / (2 * s_diag**2)
            + float(np.sum(((a + d) * b * c + (b + c) * a * d) / n**2)) / (2 * s_diag * s_offd)
            + float(np.sum((b + c) * b * c / n**2)) / (2 * s_offd**2)
        )
        z = float(stats.norm.ppf(1 - (1 - confidence) / 2))
        ci_low, ci_high = estimate * math.exp(-z * sd), estimate * math.exp(z * sd)
    else:
        ci_low = ci_high = math.nan

    bd, bd_p, bd_used = _breslow_day(arr, estimate, tarone)
    return {
        "test": "cmh",
        "statistic": fnum(statistic),
        "p_value": fnum(p_value),
        "df": 1,
        "common_odds_ratio": fnum(estimate),
        "ci_low": fnum(ci_low),
        "ci_high": fnum(ci_high),
        "confidence": confidence,
        "breslow_day_statistic": fnum(bd),
        "breslow_day_p_value": fnum(bd_p),
        "breslow_day_df": bd_used - 1 if bd is not None else None,
        "breslow_day_tarone": tarone,
        "strata": int(arr.shape[0]),
        "strata_dropped": dropped,
        "correct": correct,
        "variant": (
            "Mantel-Haenszel chi-squared test "
            + ("with" if yates else "without")
            + " continuity correction (R mantelhaen.test(correct = "
            + ("TRUE" if correct else "FALSE")
            + ")); RBG CI; Breslow-Day"
            + (" with Tarone correction" if tarone else "")
        ),
    }
