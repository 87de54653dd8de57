"""Firth's bias-reduced logistic regression (Jeffreys-prior penalized likelihood), fitted by the
maintained library `firthmodels` (Luo, MIT; github.com/jzluo/firthmodels).

WHY Firth at all: with a few dozen patients per center, a binary exposure that every exposed
patient shares with the outcome (quasi-complete separation) makes the ordinary maximum-likelihood
estimate infinite; the penalized estimate stays finite and is less biased in small samples.

WHY firthmodels and not the hand-written fit this module held before: it matches R logistf
1.26.1 on the committed references (tests/reference/r_reference.json: logistf's sex2 example,
the study's CRS x PTR table, a separated fixture) to better than 1e-8 relative in the
estimates, the standard errors, the profile-likelihood limits and the penalized LR p-values
(tests/test_stats_reference.py::test_firth_matches_logistf), and it factorises the information
matrix by Cholesky with a pivoted-QR fallback instead of inverting it, which is where the
hand-written version raised `LinAlgError: Singular matrix` on a 460-patient registry. What it
does not offer is written here: the rank check before the fit (a collinear design is
`NotEstimable`, not a crash), the global penalized likelihood-ratio test of logistf's summary,
and standard errors from the plain Fisher information (brglm2, SAS).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from scipy import optimize, stats

from ._common import NotEstimable
from ._design import design

# Convergence: the estimate and the profile limits to 1e-8 (logistf's reference was run at
# 1e-13; firthmodels' step halving cannot go below ~1e-8 on some designs), the constrained fits
# of the LR tests to 1e-6 (the p-values then agree with R to ~1e-10, see the module docstring).
FIT_TOL, LRT_TOL, MAX_ITER = 1e-8, 1e-6, 200


def _penalized_loglik(X: np.ndarray, y: np.ndarray, beta: np.ndarray) -> float:
    """l(b) + 1/2 log|X'WX| (the Jeffreys-penalized log-likelihood that Firth maximises)."""
    eta = X @ beta
    p = 1.0 / (1.0 + np.exp(-eta))
    w = p * (1.0 - p)
    sign, logdet = np.linalg.slogdet(X.T @ (X * w[:, None]))
    if sign <= 0:
        return -math.inf
    return float(np.sum(y * eta - np.logaddexp(0.0, eta)) + 0.5 * logdet)


def _global_lr(X: np.ndarray, y: np.ndarray, pen_full: float) -> float:
    """logistf's "Likelihood ratio test": every slope fixed at 0, the intercept re-maximised,
    the penalty still from the full design."""
    k = X.shape[1]

    def neg(b0: float) -> float:
        beta = np.zeros(k)
        beta[0] = b0
        return -_penalized_loglik(X, y, beta)

    m = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    start = math.log(m / (1 - m))
    res = optimize.minimize_scalar(neg, bracket=(start - 1.0, start + 1.0), tol=1e-12)
    return max(0.0, 2.0 * (pen_full + float(res.fun)))


def firth_logistic(
    X: Any,
    y: Any,
    names: Sequence[str] | None = None,
    ci: Literal["profile", "wald"] = "profile",
    confidence: float = 0.95,
    se_type: Literal["fisher", "augmented"] = "fisher",
    max_iter: int = MAX_ITER,
    tol: float = FIT_TOL,
) -> dict[str, Any]:
    """Firth logistic regression (firthmodels' Newton-Raphson on the penalized likelihood).

    Inputs as ``regression.logistic`` (mapping / DataFrame / array ``X``; 0/1 ``y``; ``names``).

    ``ci="profile"`` (default, = logistf's default ``pl = TRUE``): confidence limits from the
    profile penalized likelihood, and p-values from the penalized likelihood-ratio test of
    beta_j = 0. WHY: near separation the penalized likelihood is strongly asymmetric, and the
    Wald interval (symmetric on the log-odds scale) badly misstates the uncertainty.
    ``ci="wald"`` gives Wald limits and p-values from the Firth standard errors (logistf
    ``pl = FALSE``).

    ``se_type="fisher"`` (default): standard errors sqrt(diag((X'WX)^-1)) at the estimate, the
    inverse Fisher information of Firth (1993) and Heinze & Schemper (2002), as brglm2 and SAS
    report. ``se_type="augmented"``: the information of the augmented pseudo-data that logistf
    >= 1.24 and firthmodels report (smaller by a few percent). Only ``se`` and the Wald
    limits/p-values depend on it.

    Raises ``NotEstimable`` when the design is singular (collinear columns, a constant column)
    or the outcome has one value only: no penalty makes those estimable.
    """
    from firthmodels import FirthLogisticRegression

    Xd, yv, terms = design(X, y, names)
    n, k = Xd.shape
    if not np.all((yv == 0) | (yv == 1)):
        raise ValueError("y must be 0/1")
    if n == 0 or yv.min() == yv.max():
        raise NotEstimable("Firth regression needs both outcomes among the complete cases")
    if np.linalg.matrix_rank(Xd) < k:
        raise NotEstimable(
            "singular design: the columns of " + ", ".join(terms[1:]) + " (with the intercept) "
            "are collinear or constant among the complete cases"
        )
    model = FirthLogisticRegression(backend="numpy", max_iter=max_iter, gtol=tol, xtol=tol)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(Xd[:, 1:], yv)
        # firthmodels puts the intercept last; this module reports it first, as R does
        beta = np.concatenate([[model.intercept_], model.coef_])
        order = np.r_[k - 1, 0 : k - 1]
        alpha = 1 - confidence
        if ci == "profile":
            limits = model.conf_int(alpha=alpha, method="pl", tol=tol, max_iter=max_iter)[order]
            model.set_params(gtol=LRT_TOL, xtol=LRT_TOL)
            model.lrt()
            p_values = np.asarray(model.lrt_pvalues_)[order]
    p_hat = 1.0 / (1.0 + np.exp(-(Xd @ beta)))
    w = p_hat * (1.0 - p_hat)
    info = Xd.T @ (Xd * w[:, None])
    if se_type == "augmented":
        se = np.asarray(model.bse_)[order]
    else:
        se = np.sqrt(np.diag(np.linalg.pinv(info)))
    if ci == "wald":
        z = float(stats.norm.ppf(1 - alpha / 2))
        limits = np.column_stack([beta - z * se, beta + z * se])
        p_values = 2 * stats.norm.sf(np.abs(beta / se))
    pen = _penalized_loglik(Xd, yv, beta)
    lr_global = _global_lr(Xd, yv, pen) if k > 1 else 0.0

    coefficients = []
    for j, term in enumerate(terms):
        lo, hi = float(limits[j, 0]), float(limits[j, 1])
        coefficients.append(
            {
                "variable": term,
                "estimate": float(beta[j]),
                "se": float(se[j]),
                "odds_ratio": math.exp(beta[j]),
                "ci_low": math.exp(lo) if math.isfinite(lo) else None,
                "ci_high": math.exp(hi) if math.isfinite(hi) else None,
                "log_ci_low": lo if math.isfinite(lo) else None,
                "log_ci_high": hi if math.isfinite(hi) else None,
                "p_value": float(p_values[j]) if math.isfinite(p_values[j]) else None,
            }
        )
    return {
        "test": "firth",
        "statistic": lr_global,
        "p_value": float(stats.chi2.sf(lr_global, k - 1)) if k > 1 else None,
        "df": k - 1,
        "coefficients": coefficients,
        "penalized_loglik": pen,
        "loglik": float(np.sum(yv * (Xd @ beta) - np.logaddexp(0.0, Xd @ beta))),
        "n": int(n),
        "iterations": int(model.n_iter_),
        "converged": bool(model.converged_),
        "warnings": sorted({str(c.message) for c in caught}),
        "ci_method": "profile penalized likelihood" if ci == "profile" else "Wald",
        "se_type": se_type,
        "p_method": "penalized likelihood ratio" if ci == "profile" else "Wald",
        "confidence": confidence,
        "variant": "Firth (Jeffreys prior) penalized ML, firthmodels, as R logistf",
    }

