"""Heterogeneity between centers, wherever an analysis pools them (issue 18).

A pooled estimate over centers is only a summary of one effect when the centers agree. These
tests ask whether they do, one per kind of pooled result (the choice and the reason):

- `cochran_q`: Cochran's Q and I^2 over per-center estimates with their standard errors
  (fixed-effect inverse-variance weights; I^2 = max(0, (Q - df) / Q), Higgins & Thompson, Stat
  Med 2002;21:1539-1558), as R `metafor::rma(yi, sei = se, method = "FE")` (QE, QEp, I2). Used
  for the CCI-IL-6 slope: the regression is fitted per center, and Q asks whether the slopes
  differ; I^2 says how much of their spread is beyond chance (Q alone has little power with few
  centers).
- `per_center_slopes`: the per-center OLS slopes and standard errors that Q takes (R
  `lm(cci ~ il6)` in each center); a center with fewer than 3 points or one x value is left out
  and named.
- `interaction_f`: for a continuous characteristic compared between two groups (Table 1), the
  F test of group x center in a linear model, R `anova(lm(y ~ group + center), lm(y ~ group *
  center))`: does the group difference differ between centers? (the analogue, for a mean
  difference, of Breslow-Day for an odds ratio, which Table 1's categorical rows use).

Gray's test across centers within a group (the bleeding curves) is `competing.cuminc` with the
center as the group. Arrays in, a plain dict out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import statsmodels.api as sm
from scipy import stats

from ._common import NotEstimable


def cochran_q(estimates: Sequence[float], ses: Sequence[float], labels: Sequence[str] | None = None) -> dict[str, Any]:
    """Cochran's Q (chi-square, k - 1 df) and I^2 (percent) of k estimates with their standard
    errors, around the fixed-effect (inverse-variance) pooled estimate."""
    y = np.asarray(estimates, dtype=float)
    se = np.asarray(ses, dtype=float)
    keep = np.isfinite(y) & np.isfinite(se) & (se > 0)
    y, se = y[keep], se[keep]
    if y.size < 2:
        raise NotEstimable("heterogeneity needs estimates from at least two centers")
    w = 1.0 / se**2
    pooled = float(np.sum(w * y) / np.sum(w))
    q = float(np.sum(w * (y - pooled) ** 2))
    df = int(y.size - 1)
    i2 = max(0.0, (q - df) / q) * 100.0 if q > 0 else 0.0
    return {"test": "cochran_q", "statistic": q, "df": df, "p_value": float(stats.chi2.sf(q, df)),
            "i2_pct": i2, "pooled_fixed": pooled, "pooled_fixed_se": float(np.sqrt(1.0 / np.sum(w))),
            "k": int(y.size),
            "labels": [str(s) for s, k in zip(labels, keep, strict=True) if k] if labels is not None else None,
            "variant": "Cochran's Q and I^2 over per-center estimates, fixed-effect inverse-variance "
                       "weights (R metafor::rma(method = 'FE'))"}


def per_center_slopes(x: Any, y: Any, center: Sequence[Any]) -> dict[str, Any]:
    """OLS slope of y on x (and its standard error) in each center, R `lm(y ~ x)` per center."""
    xv, yv = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    g = np.asarray([str(c) for c in center], dtype=object)
    ok = np.isfinite(xv) & np.isfinite(yv)
    out: dict[str, dict[str, float | int]] = {}
    left_out: dict[str, str] = {}
    for c in sorted(set(g[ok].tolist())):
        m = ok & (g == c)
        if m.sum() < 3 or np.ptp(xv[m]) == 0:
            left_out[c] = "fewer than 3 points or one x value"
            continue
        fit = sm.OLS(yv[m], sm.add_constant(xv[m])).fit()
        out[c] = {"slope": float(fit.params[1]), "se": float(fit.bse[1]), "n": int(m.sum())}
    return {"by_center": out, "left_out": left_out}


def slope_heterogeneity(x: Any, y: Any, center: Sequence[Any]) -> dict[str, Any]:
    """Cochran's Q / I^2 over the per-center slopes of y on x."""
    per = per_center_slopes(x, y, center)
    labels = list(per["by_center"])
    q = cochran_q([per["by_center"][c]["slope"] for c in labels],
                  [per["by_center"][c]["se"] for c in labels], labels)
    return q | {"by_center": per["by_center"], "left_out": per["left_out"],
                "what": "does the slope differ between centers?"}


def interaction_f(y: Any, group: Any, center: Sequence[Any]) -> dict[str, Any]:
    """F test of the group x center interaction of a linear model of y, R `anova(lm(y ~ group +
    center), lm(y ~ group * center))`. `group` is 0/1 (or boolean); missing y are dropped."""
    yv = np.asarray(y, dtype=float)
    gv = np.asarray(group, dtype=float)
    cv = np.asarray([str(c) for c in center], dtype=object)
    ok = np.isfinite(yv) & np.isfinite(gv)
    yv, gv, cv = yv[ok], gv[ok], cv[ok]
    levels = sorted(set(cv.tolist()))
    if len(levels) < 2:
        raise NotEstimable("one center: nothing to compare")
    dummies = np.column_stack([(cv == c).astype(float) for c in levels[1:]])
    base = np.column_stack([np.ones(yv.size), gv, dummies])
    full = np.column_stack([base, dummies * gv[:, None]])
    rb, rf = np.linalg.matrix_rank(base), np.linalg.matrix_rank(full)
    df_num, df_den = int(rf - rb), int(yv.size - rf)
    if df_num < 1 or df_den < 1 or rb < base.shape[1]:
        raise NotEstimable("no center has both groups (or too few patients) to compare the difference")
    rss_b = float(np.sum(sm.OLS(yv, base).fit().resid ** 2))
    beta = np.linalg.lstsq(full, yv, rcond=None)[0]  # a center with one group: rank-deficient
    rss_f = float(np.sum((yv - full @ beta) ** 2))
    if rss_f <= 0:
        raise NotEstimable("the interaction model fits exactly: no residual variance")
    f = ((rss_b - rss_f) / df_num) / (rss_f / df_den)
    return {"test": "interaction_f", "statistic": float(f), "df": [df_num, df_den],
            "p_value": float(stats.f.sf(f, df_num, df_den)), "n": int(yv.size), "centers": levels,
            "what": "does the difference between the groups differ between centers?",
            "variant": "F test of group x center in a linear model (R anova(lm(y ~ group + center), "
                       "lm(y ~ group * center)))"}
