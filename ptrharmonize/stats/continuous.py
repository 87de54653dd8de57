"""Two-group comparisons of a continuous variable, and descriptive statistics.

The study compared continuous variables by Shapiro-Wilk on each group, then Student's t-test if
both groups look normal, else the Mann-Whitney U test (``compare_continuous``). Each test here is
pinned to R's default variant so the numbers agree with R to ~1e-9 (see docs/statistics.md).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from ._common import NotEstimable, as_vector, fnum


def describe(x: Any) -> dict[str, Any]:
    """n, mean, sample SD (n - 1 denominator, as R ``sd``), median, min and max; missing dropped."""
    v = as_vector(x)
    n = int(v.size)
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "median": None, "min": None, "max": None}
    return {
        "n": n,
        "mean": float(np.mean(v)),
        "sd": float(np.std(v, ddof=1)) if n > 1 else None,
        "median": float(np.median(v)),
        "min": float(np.min(v)),
        "max": float(np.max(v)),
    }


# --------------------------------------------------------------------------- Mann-Whitney


def _wilcox_counts(m: int, n: int) -> list[int]:
    """Exact null frequencies of W = 0..m*n for samples of sizes m and n (R's cwilcox), as
    Python integers: the coefficients of prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i)."""
    size = m * n + 1
    coef = [0] * size
    coef[0] = 1
    for i in range(1, m + 1):
        shift = n + i
        for k in range(size - 1, shift - 1, -1):  # multiply by (1 - q^(n+i))
            coef[k] -= coef[k - shift]
        for k in range(i, size):  # divide by (1 - q^i)
            coef[k] += coef[k - i]
    return coef


def _pwilcox(q: float, m: int, n: int, lower_tail: bool = True) -> float:
    """R ``pwilcox(q, m, n, lower.tail)`` computed exactly with integer counts."""
    counts = _wilcox_counts(min(m, n), max(m, n))
    total = sum(counts)
    k = math.floor(q + 1e-7)
    if k < 0:
        lower = 0
    elif k >= m * n:
        lower = total
    else:
        lower = sum(counts[: k + 1])
    return (lower if lower_tail else total - lower) / total


MANN_WHITNEY_VARIANTS = ("r", "spss")


def mann_whitney(
    x: Any, y: Any, exact: bool | None = None, correct: bool = True, variant: str = "r"
) -> dict[str, Any]:
    """Wilcoxon rank-sum / Mann-Whitney U test, two-sided; ``variant="r"`` (default) exactly as
    R ``wilcox.test(x, y)``, ``variant="spss"`` as SPSS's asymptotic significance.

    ``statistic`` is R's W = U of the first sample (pairs with x > y, ties counting 1/2).
    R's defaults are kept: the exact null distribution when both samples have fewer than 50
    observations and there are no ties; otherwise the normal approximation with the tie
    correction of the variance and a continuity correction of 0.5. WHY R's rule and not scipy's
    ``method='auto'``: scipy switches to the normal approximation from n = 8 and so would not
    reproduce the R p-values the study (and its readers) used.

    ``variant="spss"``: SPSS NPAR TESTS /M-W "Asymp. Sig. (2-tailed)": always the normal
    approximation, Z = (U - n1 n2 / 2) / sqrt(n1 n2 / (N (N - 1)) ((N^3 - N) / 12 - sum(t^3 - t)
    / 12)) with the tie correction and **no** continuity correction (IBM SPSS Algorithms,
    NPAR TESTS, Mann-Whitney U). The study ran its group tests in SPSS/Prism; its printed
    p-values (0.024, 0.090, 0.0426) are reproduced by R's rule (exact or continuity-corrected),
    which is why "r" stays the default. The result carries ``z`` either way when approximate.
    """
    if variant not in MANN_WHITNEY_VARIANTS:
        raise ValueError(f"Mann-Whitney variant must be one of {MANN_WHITNEY_VARIANTS}, not {variant!r}")
    if variant == "spss":
        exact, correct = False, False
    xv, yv = as_vector(x, "x"), as_vector(y, "y")
    nx, ny = int(xv.size), int(yv.size)
    if nx == 0 or ny == 0:
        raise NotEstimable("both groups need at least one observation")
    r = stats.rankdata(np.concatenate([xv, yv]))
    w = float(np.sum(r[:nx]) - nx * (nx + 1) / 2)
    ties = np.unique(r).size != r.size
    use_exact = (nx < 50 and ny < 50) if exact is None else exact
    if use_exact and not ties:
        if w > nx * ny / 2:
            p = _pwilcox(w - 1, nx, ny, lower_tail=False)
        else:
            p = _pwilcox(w, nx, ny)
        p_value = min(2 * p, 1.0)
        is_exact = True
        text = "exact null distribution (no ties, both n < 50)"
    else:
        _, tie_counts = np.unique(r, return_counts=True)
        z = w - nx * ny / 2
        sigma = math.sqrt(
            (nx * ny / 12)
            * (
                (nx + ny + 1)
                - float(np.sum(tie_counts**3 - tie_counts)) / ((nx + ny) * (nx + ny - 1))
            )
        )
        if sigma == 0:
            raise NotEstimable("Mann-Whitney U is undefined when every value is the same")
        correction = math.copysign(0.5, z) if (correct and z != 0) else 0.0
        zz = (z - correction) / sigma
        p_value = float(2 * min(stats.norm.cdf(zz), stats.norm.sf(zz)))
        is_exact = False
        z_value = zz
        text = "normal approximation, tie-corrected variance" + (
            ", continuity correction 0.5" if correct else ", no continuity correction"
        )
    if variant == "spss":
        text += " (SPSS NPAR TESTS asymptotic)"
    else:
        text += " (R wilcox.test)"
    return {
        "test": "mann_whitney",
        "statistic": w,
        "p_value": p_value,
        "exact": bool(is_exact),
        "z": None if is_exact else float(z_value),
        "n": [nx, ny],
        "mann_whitney": variant,
        "variant": text,
    }


# --------------------------------------------------------------------------- t-tests


def student_t(x: Any, y: Any) -> dict[str, Any]:
    """Two-sample Student t-test with pooled variance, as R ``t.test(x, y, var.equal = TRUE)``.

    WHY pooled: the study reports t = -2.189 with df = 23 for 14 vs 11 patients, i.e. n1 + n2 - 2,
    which only the equal-variance test gives.
    """
    xv, yv = as_vector(x, "x"), as_vector(y, "y")
    res = stats.ttest_ind(xv, yv, equal_var=True)
    return {
        "test": "t",
        "statistic": float(res.statistic),
        "p_value": float(res.pvalue),
        "df": float(xv.size + yv.size - 2),
        "mean_x": float(np.mean(xv)),
        "mean_y": float(np.mean(yv)),
        "variant": "Student, pooled variance (R t.test(var.equal = TRUE))",
    }


def welch_t(x: Any, y: Any) -> dict[str, Any]:
    """Welch's unequal-variance t-test, as R ``t.test(x, y)`` (R's default); offered for pooled
    multi-center data where equal variances are less plausible. Not the study's choice."""
    xv, yv = as_vector(x, "x"), as_vector(y, "y")
    vx, vy = np.var(xv, ddof=1) / xv.size, np.var(yv, ddof=1) / yv.size
    df = (vx + vy) ** 2 / (vx**2 / (xv.size - 1) + vy**2 / (yv.size - 1))
    res = stats.ttest_ind(xv, yv, equal_var=False)
    return {
        "test": "welch_t",
        "statistic": float(res.statistic),
        "p_value": float(res.pvalue),
        "df": float(df),
        "mean_x": float(np.mean(xv)),
        "mean_y": float(np.mean(yv)),
        "variant": "Welch, Satterthwaite df (R t.test default)",
    }


# --------------------------------------------------------------------------- Shapiro-Wilk


def shapiro(x: Any) -> dict[str, Any]:
    """Shapiro-Wilk normality test (Royston's AS R94 algorithm, as R ``shapiro.test``).

    scipy's implementation is the same algorithm in double precision (agrees with R to ~1e-9).
    R requires 3 <= n <= 5000; the same limits are enforced here.
    """
    v = as_vector(x)
    if not 3 <= v.size <= 5000:
        raise NotEstimable("Shapiro-Wilk needs between 3 and 5000 non-missing values")
    if np.ptp(v) == 0:
        raise NotEstimable("Shapiro-Wilk is undefined when all values are identical")
    res = stats.shapiro(v)
    return {
        "test": "shapiro",
        "statistic": float(res.statistic),
        "p_value": float(res.pvalue),
        "n": int(v.size),
    }


def compare_continuous(
    x: Any, y: Any, alpha: float = 0.05, mann_whitney_variant: str = "r"
) -> dict[str, Any]:
    """The study's rule: Shapiro-Wilk on each group; Student's t-test when neither rejects
    normality at ``alpha`` (definitions.yaml ``shapiro_alpha``), else the Mann-Whitney U test.

    Returns the chosen test's dict plus ``normality`` (the two Shapiro-Wilk results, or None for a
    group with fewer than 3 values or no spread, which then counts as "not shown normal") and
    ``rule``.
    """
    normality: list[dict[str, Any] | None] = []
    for v in (x, y):
        try:
            normality.append(shapiro(v))
        except ValueError:
            normality.append(None)
    both_normal = all(s is not None and s["p_value"] >= alpha for s in normality)
    out = student_t(x, y) if both_normal else mann_whitney(x, y, variant=mann_whitney_variant)
    out["normality"] = normality
    out["rule"] = f"Student t if Shapiro-Wilk p >= {alpha:g} in both groups, else Mann-Whitney U"
    out["alpha"] = fnum(alpha)
    return out
