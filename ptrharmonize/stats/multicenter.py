"""Center-aware inference, beside the study's pooled tests (issue 18).

The study pooled one center. A registry pools many, which differ in case mix, in PTR practice
and in what a platelet "unit" is; a pooled test can then be confounded by center (Simpson), and
patients (or transfusions) of one center are not independent. Each function here is one
center-aware counterpart of a pooled test, from statsmodels, pinned to the variant R computes
(tests/reference/make_multicenter.R, r_multicenter.json):

- `logistic_center_fixed`: logistic regression with center as a fixed effect (R
  `glm(y ~ x + factor(center), binomial)`), and the heterogeneity of the exposure's effect
  across centers as the LR test of the exposure x center interaction (R `anova(..., test =
  "Chisq")`).
- `gee`: generalized estimating equations with a cluster (center, or patient for repeated
  transfusions), sandwich standard errors, as R `geepack::geeglm(id =, corstr =)`.
- `kruskal`: Kruskal-Wallis across centers (R `kruskal.test`), the heterogeneity of a continuous
  measure between centers.

The CMH test with Breslow-Day (`categorical.cmh`) and Gray's test stratified by center
(`competing.cuminc(strata=)`) complete the set. Arrays in, a plain dict out.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import statsmodels.api as sm
from scipy import stats

from ._common import NotEstimable
from .regression import _exp, _glm_fit  # one binomial fit and one overflow-safe exp for both


def _levels(groups: Sequence[Any]) -> list[str]:
    return sorted({str(g) for g in groups})


def _complete(columns: Mapping[str, Any], y: Any, groups: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    names = list(columns)
    mat = np.column_stack([np.asarray(columns[k], dtype=float) for k in names]) if names else np.empty((len(y), 0))
    yv = np.asarray(y, dtype=float)
    g = np.asarray([None if v is None else str(v) for v in groups], dtype=object)
    keep = ~np.isnan(yv) & ~np.isnan(mat).any(axis=1) & np.array([v is not None for v in g])
    return mat[keep], yv[keep], g[keep], names


def _wald(terms: Sequence[str], params: Any, bse: Any, confidence: float, exp: bool) -> list[dict[str, Any]]:
    z = float(stats.norm.ppf(1 - (1 - confidence) / 2))
    out = []
    for t, b, s in zip(terms, np.asarray(params, dtype=float), np.asarray(bse, dtype=float), strict=True):
        row: dict[str, Any] = {"variable": t, "estimate": float(b), "se": float(s),
                               "statistic": float(b / s) if s > 0 else None,
                               "p_value": float(2 * stats.norm.sf(abs(b / s))) if s > 0 else None}
        lo, hi = b - z * s, b + z * s
        if exp:
            row |= {"odds_ratio": _exp(b), "ci_low": _exp(lo), "ci_high": _exp(hi)}
        else:
            row |= {"ci_low": float(lo), "ci_high": float(hi)}
        out.append(row)
    return out


def logistic_center_fixed(
    X: Mapping[str, Any], y: Any, center: Sequence[Any], confidence: float = 0.95
) -> dict[str, Any]:
    """Logistic regression of `y` on the columns of `X` plus one indicator per center but the
    first (sorted), as R `glm(y ~ x + factor(center), family = binomial)`: Wald z, p and CI.

    Heterogeneity: the likelihood-ratio test of every exposure x center interaction (df = the
    rank the interactions add), R `anova(fe, glm(y ~ x * factor(center)), test = "Chisq")`.
    Separation (a center where every patient has the outcome) is detected by linear programming
    and reported; the exposures' estimates stay finite when only a center term separates.
    Raises `NotEstimable` with fewer than two centers, one outcome, or a singular design."""
    from .regression import separation

    mat, yv, g, names = _complete(X, y, center)
    levels = _levels(g)
    if len(levels) < 2:
        raise NotEstimable("center as a fixed effect needs at least two centers")
    if yv.size == 0 or yv.min() == yv.max():
        raise NotEstimable("logistic regression needs both outcomes among the complete cases")
    dummies = np.column_stack([(g == c).astype(float) for c in levels[1:]])
    Xd = np.column_stack([np.ones(yv.size), mat, dummies])
    terms = ["(Intercept)", *names, *[f"center[{c}]" for c in levels[1:]]]
    if np.linalg.matrix_rank(Xd) < Xd.shape[1]:
        raise NotEstimable("singular design: an exposure is collinear with the centers "
                           "(for example a center that treats only one group)")
    fit = _glm_fit(Xd, yv)
    inter = np.column_stack([mat[:, [j]] * dummies for j in range(mat.shape[1])]) if names else np.empty((yv.size, 0))
    Xi = np.column_stack([Xd, inter])
    df = int(np.linalg.matrix_rank(Xi) - np.linalg.matrix_rank(Xd))
    lr = max(0.0, 2.0 * (float(_glm_fit(Xi, yv).llf) - float(fit.llf))) if df > 0 else None
    sep = separation(Xd, yv, terms)
    coefficients = _wald(terms, fit.params, fit.bse, confidence, exp=True)
    for c in coefficients:
        if sep["directions"].get(c["variable"]):
            c |= {"odds_ratio": math.inf if sep["directions"][c["variable"]] > 0 else 0.0,
                  "ci_low": None, "ci_high": None, "p_value": None, "statistic": None,
                  "reason": "separation: the maximum-likelihood estimate is infinite"}
    return {
        "test": "logistic_center_fixed",
        "statistic": None,
        "p_value": None,
        "coefficients": coefficients,
        "centers": levels,
        "n": int(yv.size),
        "separation": sep,
        "heterogeneity": {
            "test": "lr_interaction", "statistic": lr, "df": df,
            "p_value": float(stats.chi2.sf(lr, df)) if lr is not None else None,
            "what": "exposure x center interaction (does the effect differ between centers?)",
        },
        "confidence": confidence,
        "variant": "ML logistic regression with center indicators (R glm + factor(center)); "
                   "Wald CI; heterogeneity by LR test of the interaction",
    }


def gee(
    X: Mapping[str, Any],
    y: Any,
    groups: Sequence[Any],
    family: Literal["binomial", "gaussian"] = "binomial",
    corstr: Literal["exchangeable", "independence"] = "exchangeable",
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Generalized estimating equations with `groups` as the clusters (statsmodels GEE, robust
    sandwich covariance, no small-sample correction), as R `geepack::geeglm(y ~ x, id = groups,
    family =, corstr =)`: the exchangeable correlation and the scale are estimated without a
    degrees-of-freedom correction (statsmodels `ddof_scale=0`), which is what geepack computes.

    WHY: patients of one center, or transfusions of one patient, are correlated; the pooled
    tests treat them as independent and understate the uncertainty. With few clusters (fewer
    than ~20-40) the sandwich standard error is itself unreliable (too small): `n_clusters` is
    reported so the reader can judge. Binomial: odds ratios; Gaussian: coefficients."""
    import statsmodels.genmod.cov_struct as cov

    mat, yv, g, names = _complete(X, y, groups)
    clusters = _levels(g)
    if len(clusters) < 2:
        raise NotEstimable("GEE needs at least two clusters")
    if family == "binomial" and (yv.size == 0 or yv.min() == yv.max()):
        raise NotEstimable("logistic GEE needs both outcomes")
    order = np.argsort(g, kind="stable")
    mat, yv, g = mat[order], yv[order], g[order]
    Xd = np.column_stack([np.ones(yv.size), mat])
    if np.linalg.matrix_rank(Xd) < Xd.shape[1]:
        raise NotEstimable("singular design: a covariate is constant or collinear")
    fam = sm.families.Binomial() if family == "binomial" else sm.families.Gaussian()
    structure = cov.Exchangeable() if corstr == "exchangeable" else cov.Independence()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = sm.GEE(yv, Xd, groups=g, family=fam, cov_struct=structure).fit(
                maxiter=200, ctol=1e-12, ddof_scale=0
            )
            params, bse = np.asarray(fit.params), np.asarray(fit.bse)
        except (ValueError, np.linalg.LinAlgError, ZeroDivisionError) as exc:
            # statsmodels stops on data it cannot fit (a NaN deviance from the start, a
            # singular working covariance): a property of the data, not a bug
            raise NotEstimable(f"the GEE could not be fitted: {exc}") from exc
    if not np.all(np.isfinite(params)) or not np.all(np.isfinite(bse)):
        raise NotEstimable("the GEE did not converge to finite estimates (separation, or too "
                           "few clusters for the sandwich covariance)")
    sizes = np.unique(g, return_counts=True)[1]
    alpha = getattr(structure, "dep_params", None)
    return {
        "test": "gee",
        "statistic": None,
        "p_value": None,
        "coefficients": _wald(["(Intercept)", *names], params, bse, confidence,
                              exp=family == "binomial"),
        "family": family,
        "corstr": corstr,
        "working_correlation": float(alpha) if isinstance(alpha, float | np.floating) else None,
        "n": int(yv.size),
        "n_clusters": len(clusters),
        "cluster_size": {"min": int(sizes.min()), "max": int(sizes.max())},
        "confidence": confidence,
        "variant": f"GEE ({family}, {corstr} working correlation), sandwich SE, "
                   "R geepack::geeglm",
    }


def kruskal(values: Any, groups: Sequence[Any]) -> dict[str, Any]:
    """Kruskal-Wallis test of `values` across `groups` (tie-corrected, chi-square with k - 1
    df), as R `kruskal.test(values ~ groups)`: here, whether a measure differs between
    centers. Missing values are dropped; groups without a value are left out."""
    v = np.asarray(values, dtype=float)
    g = np.asarray([str(x) for x in groups], dtype=object)
    keep = ~np.isnan(v)
    v, g = v[keep], g[keep]
    levels = _levels(g)
    samples = [v[g == c] for c in levels]
    if len(levels) < 2 or np.ptp(v) == 0:
        raise NotEstimable("Kruskal-Wallis needs two groups and values that differ")
    res = stats.kruskal(*samples)
    return {"test": "kruskal_wallis", "statistic": float(res.statistic),
            "p_value": float(res.pvalue), "df": len(levels) - 1, "groups": levels,
            "n": {c: int(s.size) for c, s in zip(levels, samples, strict=True)},
            "variant": "Kruskal-Wallis, tie-corrected, chi-square approximation (R kruskal.test)"}
