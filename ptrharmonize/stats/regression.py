"""Regression: logistic (ML and Firth), SPSS-style forward selection, simple linear regression.

``logistic`` wraps statsmodels' GLM; ``forward_lr`` reproduces SPSS ``LOGISTIC REGRESSION
/METHOD=FSTEP(LR)``, the selection the study used; ``firth_logistic`` (module ``firth``) is
written by hand; ``linear`` wraps scipy's linregress.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import statsmodels.api as sm
from scipy import stats

from ._common import NotEstimable, as_vector
from ._design import design
from .firth import firth_logistic

__all__ = ["logistic", "forward_lr", "firth_logistic", "linear"]


def _exp(v: float) -> float:
    """exp() that returns inf instead of raising (odds ratios under separation)."""
    try:
        return math.exp(v)
    except OverflowError:
        return math.inf


def _glm_fit(Xd: np.ndarray, y: np.ndarray) -> Any:
    """Binomial GLM (logit) fitted by IRLS to a tight tolerance (the converged MLE)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sm.GLM(y, Xd, family=sm.families.Binomial()).fit(tol=1e-12, maxiter=200)


def logistic(
    X: Any,
    y: Any,
    names: Sequence[str] | None = None,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Maximum-likelihood logistic regression with Wald inference, as R
    ``glm(y ~ ., family = binomial)`` + ``confint.default`` (Wald limits, exponentiated).

    WHY Wald limits: the study's Table 4 (OR 16, 95% CI 2.165-118.270 for 2/10 vs 12/15) is the
    Wald interval exp(b +- 1.96 se), which is also what SPSS prints; profile limits
    (R ``confint``) would differ. ``X`` is a mapping name -> array, a DataFrame, or a 2-D array;
    ``y`` a 0/1 array or a column name; rows with a missing value are dropped.
    """
    Xd, yv, terms = design(X, y, names)
    if not np.all((yv == 0) | (yv == 1)):
        raise ValueError("y must be 0/1")
    if yv.size == 0 or yv.min() == yv.max():
        raise NotEstimable("logistic regression needs both outcomes among the complete cases")
    if np.linalg.matrix_rank(Xd) < Xd.shape[1]:
        raise NotEstimable(
            "singular design: the columns of " + ", ".join(terms[1:]) + " (with the intercept) "
            "are collinear or constant among the complete cases"
        )
    sep = separation(Xd, yv, terms)
    fit = _glm_fit(Xd, yv)
    z = float(stats.norm.ppf(1 - (1 - confidence) / 2))
    coefficients = []
    for term, b, se in zip(terms, fit.params, fit.bse, strict=True):
        b, se = float(b), float(se)
        direction = sep["directions"].get(term, 0)
        if direction:
            # the ML estimate does not exist: the odds ratio is infinite (or 0), and a Wald
            # interval or p around the last iterate would be an artefact of the stopping rule
            inf = math.inf if direction > 0 else -math.inf
            coefficients.append(
                {"variable": term, "estimate": inf, "se": None, "odds_ratio": _exp(inf),
                 "ci_low": None, "ci_high": None, "statistic": None, "p_value": None,
                 "reason": "separation: the maximum-likelihood estimate is infinite "
                           f"({'+' if direction > 0 else '-'}Infinity on the log-odds scale)"}
            )
            continue
        coefficients.append(
            {
                "variable": term,
                "estimate": b,
                "se": se,
                "odds_ratio": _exp(b),
                "ci_low": _exp(b - z * se),
                "ci_high": _exp(b + z * se),
                "statistic": b / se,
                "p_value": float(2 * stats.norm.sf(abs(b / se))),
            }
        )
    return {
        "test": "logistic",
        "statistic": None,
        "p_value": None,
        "coefficients": coefficients,
        "loglik": float(fit.llf),
        "deviance": float(fit.deviance),
        "aic": float(fit.aic),
        "n": int(yv.size),
        "converged": bool(fit.converged),
        # (quasi-)complete separation, detected by linear programming (not guessed from a huge
        # estimate): the ML estimate does not exist -> the caller reports Firth instead
        "separation": sep,
        "confidence": confidence,
        "variant": "ML logistic regression, Wald z tests and Wald CI (R glm + confint.default)",
    }


def separation(Xd: np.ndarray, y: np.ndarray, terms: Sequence[str]) -> dict[str, Any]:
    """Whether the ML estimate exists: the linear-programming test of Konis (2007), as R's
    `detectseparation` (firthmodels.detect_separation). `Xd` carries the intercept column
    first. Returns `detected`, and `directions` {term: +1 | -1} for the infinite ones."""
    from firthmodels import detect_separation

    if Xd.shape[1] < 2:  # the intercept alone: finite whenever both outcomes occur
        return {"detected": False, "directions": {}, "method": "intercept only"}
    res = detect_separation(Xd[:, 1:], y, fit_intercept=True)
    # firthmodels lists the intercept last
    dirs = [int(res.directions[-1]), *[int(d) for d in res.directions[:-1]]]
    return {
        "detected": bool(res.separation),
        "directions": {t: d for t, d in zip(terms, dirs, strict=True) if d},
        "method": "linear programming (Konis 2007; R detectseparation)",
    }


# --------------------------------------------------------------------------- forward selection


def _loglik(Xd: np.ndarray, y: np.ndarray) -> tuple[float, Any]:
    fit = _glm_fit(Xd, y)
    return float(fit.llf), fit


def _score_stat(Xd: np.ndarray, y: np.ndarray, fit: Any, xnew: np.ndarray) -> float:
    """Rao score statistic for adding ``xnew`` to the model ``fit`` (R add1(test = "Rao"))."""
    p = np.asarray(fit.mu)
    Xf = np.column_stack([Xd, xnew])
    w = p * (1 - p)
    info = Xf.T @ (Xf * w[:, None])
    u = Xf.T @ (y - p)
    return float(u @ np.linalg.solve(info, u))


def _one_df_test(variable: str, stat: float) -> dict[str, Any]:
    """A variable's entry or removal test: its chi-square statistic on 1 df and p."""
    return {"variable": variable, "statistic": stat, "df": 1, "p_value": float(stats.chi2.sf(stat, 1))}


def forward_lr(
    X: Mapping[str, Any],
    y: Any,
    candidates: Sequence[str],
    entry_p: float = 0.05,
    removal_p: float = 0.10,
    entry_test: Literal["lr", "score"] = "lr",
    confidence: float = 0.95,
    max_steps: int = 100,
) -> dict[str, Any]:
    """Forward stepwise logistic regression with likelihood-ratio removal, after SPSS
    ``/METHOD=FSTEP(LR) /CRITERIA=PIN(entry_p) POUT(removal_p)`` (SPSS defaults 0.05 and 0.10).

    Each step: among candidates not in the model, the one with the smallest entry p-value enters
    if that p is below ``entry_p``; then variables in the model are tested for removal by the
    likelihood-ratio test (model without the variable vs with it), and the one with the largest
    p above ``removal_p`` leaves, repeatedly. Selection stops when nothing enters, or when a model
    repeats (SPSS's stop rule, which prevents cycling).

    ``entry_test="lr"`` (default, as definitions.yaml ``entry_p`` is described) enters by the
    likelihood-ratio test. NOTE: SPSS itself enters by the *score* statistic (IBM docs, "Forward
    Selection (Likelihood Ratio)": entry by score, removal by LR); ``entry_test="score"``
    reproduces SPSS's entry rule. The two rarely disagree (they agree on every fixture).

    Rows with a missing value in ``y`` or in any candidate are dropped first (SPSS listwise
    deletion), so every model in the path is fitted to the same patients and LR tests are valid.
    Returns ``selected`` (Wald OR, CI and p from the final model, as SPSS's "Variables in the
    Equation"), ``steps`` and the final model.
    """
    cand = list(candidates)
    cols = {k: np.asarray(X[k], dtype=float) for k in cand}
    yv = np.asarray(y, dtype=float) if not isinstance(y, str) else np.asarray(X[y], dtype=float)
    mat = np.column_stack([cols[k] for k in cand]) if cand else np.empty((yv.size, 0))
    keep = ~np.isnan(yv) & ~np.isnan(mat).any(axis=1)
    yv = yv[keep]
    cols = {k: v[keep] for k, v in cols.items()}

    def design_for(model: list[str]) -> np.ndarray:
        return np.column_stack([np.ones(yv.size), *[cols[k] for k in model]])

    model: list[str] = []
    seen: set[frozenset[str]] = {frozenset()}
    steps: list[dict[str, Any]] = []
    ll_model, fit_model = _loglik(design_for(model), yv)
    for _ in range(max_steps):
        # ---- entry
        tests = []
        for v in cand:
            if v in model:
                continue
            if entry_test == "score":
                stat = _score_stat(design_for(model), yv, fit_model, cols[v])
            else:
                ll_new, _ = _loglik(design_for([*model, v]), yv)
                stat = max(0.0, 2.0 * (ll_new - ll_model))
            tests.append(_one_df_test(v, stat))
        if not tests:
            break
        best = min(tests, key=lambda t: (t["p_value"], -t["statistic"]))
        if not best["p_value"] < entry_p:
            break
        model = [*model, best["variable"]]
        ll_model, fit_model = _loglik(design_for(model), yv)
        steps.append(
            {
                "step": len(steps) + 1,
                "action": "enter",
                "variable": best["variable"],
                "test": entry_test,
                "statistic": best["statistic"],
                "p_value": best["p_value"],
                "candidates": tests,
                "model": list(model),
                "loglik": ll_model,
            }
        )
        # ---- removal
        while len(model) > 0:
            removal = []
            for v in model:
                ll_without, _ = _loglik(design_for([m for m in model if m != v]), yv)
                stat = max(0.0, 2.0 * (ll_model - ll_without))
                removal.append(_one_df_test(v, stat))
            worst = max(removal, key=lambda t: (t["p_value"], -t["statistic"]))
            if not worst["p_value"] > removal_p:
                break
            model = [m for m in model if m != worst["variable"]]
            ll_model, fit_model = _loglik(design_for(model), yv)
            steps.append(
                {
                    "step": len(steps) + 1,
                    "action": "remove",
                    "variable": worst["variable"],
                    "test": "lr",
                    "statistic": worst["statistic"],
                    "p_value": worst["p_value"],
                    "candidates": removal,
                    "model": list(model),
                    "loglik": ll_model,
                }
            )
        key = frozenset(model)
        if key in seen:
            break
        seen.add(key)

    final = logistic({k: cols[k] for k in model}, yv, model, confidence=confidence)
    selected = [
        {
            k: c[k]
            for k in ("variable", "estimate", "se", "odds_ratio", "ci_low", "ci_high", "p_value",
                      "reason")
            if k in c
        }
        for c in final["coefficients"]
        if c["variable"] != "(Intercept)"
    ]
    return {
        "test": "forward_lr",
        "statistic": None,
        "p_value": None,
        "selected": selected,
        "steps": steps,
        "final_model": final,
        "n": int(yv.size),
        "entry_p": entry_p,
        "removal_p": removal_p,
        "entry_test": entry_test,
        "variant": f"SPSS FSTEP(LR)-style forward selection; entry by {entry_test}, removal by LR",
    }


# --------------------------------------------------------------------------- linear


def linear(x: Any, y: Any) -> dict[str, Any]:
    """Simple linear regression y = intercept + slope * x by least squares, as R ``lm(y ~ x)``:
    ``statistic`` is the t value of the slope (n - 2 df) and ``p_value`` its two-sided p.
    Pairs with a missing value are dropped."""
    xv = np.asarray(x, dtype=float)
    yv = np.asarray(y, dtype=float)
    if xv.shape != yv.shape or xv.ndim != 1:
        raise ValueError("x and y must be 1-D and of equal length")
    keep = ~np.isnan(xv) & ~np.isnan(yv)
    xv, yv = as_vector(xv[keep]), as_vector(yv[keep])
    if xv.size < 3:
        raise NotEstimable("linear regression needs at least 3 complete pairs")
    if np.ptp(xv) == 0:
        raise NotEstimable("linear regression is undefined when every x is the same")
    res = stats.linregress(xv, yv)
    return {
        "test": "linear",
        "statistic": float(res.slope / res.stderr),
        "p_value": float(res.pvalue),
        "slope": float(res.slope),
        "intercept": float(res.intercept),
        "slope_se": float(res.stderr),
        "intercept_se": float(res.intercept_stderr),
        "r2": float(res.rvalue**2),
        "df": int(xv.size - 2),
        "n": int(xv.size),
        "variant": "OLS, t test of the slope (R lm)",
    }
