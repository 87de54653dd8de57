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


def mixed_random_intercept(x: Any, y: Any, groups: Sequence[Any]) -> dict[str, Any]:
    """Linear mixed model y ~ x with a random intercept per group, REML (statsmodels MixedLM),
    as R `lme4::lmer(y ~ x + (1 | group), REML = TRUE)`: the CCI-IL-6 line with the transfusions
    of one patient sharing the patient's level. Beside the GEE (population-averaged, sandwich
    SE), it models the patient effect instead of correcting the SE for it; for a linear model
    both estimate the same slope. Wald z test of the slope (lme4 gives no p; this is the normal
    approximation, honest with many patients, optimistic with few)."""
    import warnings

    xv, yv = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    g = np.asarray([str(v) for v in groups], dtype=object)
    ok = np.isfinite(xv) & np.isfinite(yv)
    xv, yv, g = xv[ok], yv[ok], g[ok]
    if len(set(g.tolist())) < 2 or xv.size < 4 or np.ptp(xv) == 0:
        raise NotEstimable("a mixed model needs two groups, four points and more than one x value")
    # fitted on centered, scaled x and y (CCI is ~1e4, IL-6 ~1e3: the optimizer stalls on the
    # raw scale) and transformed back; the model is equivariant under these affine changes
    mx, sx, my, sy = float(xv.mean()), float(xv.std()), float(yv.mean()), float(yv.std())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Nelder-Mead: statsmodels' default L-BFGS stops at the boundary (patient variance 0)
        # with an infinite likelihood on these data; Nelder-Mead reaches lme4's optimum
        fit = sm.MixedLM((yv - my) / sy, sm.add_constant((xv - mx) / sx), groups=g).fit(
            reml=True, method=["nm", "powell"], maxiter=5000)
    if not np.isfinite(fit.llf):
        raise NotEstimable("the mixed model did not converge (infinite likelihood)")
    a, b = np.asarray(fit.fe_params)
    k = sy / sx
    slope = b * k
    intercept = my + sy * a - slope * mx
    params = np.array([intercept, slope])
    tau2 = float(np.asarray(fit.cov_re)[0, 0]) * sy**2  # patient (group) variance
    s2 = float(fit.scale) * sy**2  # residual variance
    # Standard errors as lme4 computes them: (X' V^-1 X)^-1 at the estimated variances, with
    # V^-1 of a group of n = (I - tau2 / (s2 + n tau2) J) / s2 (statsmodels' own bse_fe differs
    # in the 4th digit: it comes from the joint information of all parameters)
    X = np.column_stack([np.ones(xv.size), xv])
    info = np.zeros((2, 2))
    for grp in set(g.tolist()):
        Xi = X[g == grp]
        sx_ = Xi.sum(axis=0)
        info += (Xi.T @ Xi - tau2 / (s2 + Xi.shape[0] * tau2) * np.outer(sx_, sx_)) / s2
    bse = np.sqrt(np.diag(np.linalg.inv(info)))
    if not (np.all(np.isfinite(params)) and np.all(np.isfinite(bse))):
        raise NotEstimable("the mixed model did not converge")
    z = params[1] / bse[1]
    return {"test": "mixed_random_intercept", "intercept": float(params[0]), "slope": float(params[1]),
            "intercept_se": float(bse[0]), "slope_se": float(bse[1]), "statistic": float(z),
            "p_value": float(2 * stats.norm.sf(abs(z))),
            "group_var": tau2, "residual_var": s2, "converged": bool(fit.converged),
            "n": int(yv.size), "n_groups": len(set(g.tolist())),
            "variant": "linear mixed model, random intercept per patient, REML (R lme4::lmer); Wald z"}
