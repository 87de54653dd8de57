"""Table 4 at the coordinator: logistic regression, forward LR selection and Firth, each
Newton step computed from the centers' summed gradients and information matrices.

The code follows `stats.regression.logistic` / `forward_lr` and `stats.firth.firth_logistic`
step for step; only the sums over patients are made at the nodes (`node.glm_parts`) and added
here, so the estimates equal the pooled ones up to the order of floating-point additions
(tested to 1e-6). ML fits use Newton-Raphson from 0 until the step is below 1e-10 (the pooled
code uses statsmodels' IRLS, the same iteration for the logit link). Independent fits (the
candidates of a selection step, the profile limits) run as parallel chains (`rounds.Rounds`),
so a round carries all of their requests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from scipy import optimize, stats

from ..stats._common import NotEstimable
from .disclosure import Refused
from .rounds import Rounds

TOL = 1e-10
MAX_ITER = 200
SEPARATION_METHOD = (
    "federated: Newton-Raphson diverged (not converged, or |estimate| > 15 on the log-odds "
    "scale); the pooled run's linear-programming test (Konis 2007) needs the rows"
)


class Oracle:
    """The pooled sums for one model over the complete cases of `cc`, one round per call."""

    def __init__(self, rounds: Rounds) -> None:
        self.rounds = rounds

    def __call__(self, model: Sequence[str], cc: Sequence[str], beta: np.ndarray,
                 firth: bool = False) -> dict[str, Any]:
        ans = self.rounds.call({"model": list(model), "complete_cases": list(cc),
                                "beta": [float(b) for b in beta], "firth": firth})
        if "refused" in ans:
            raise Refused(ans["refused"])
        return ans


def add_parts(parts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum the centers' answers to one request (a refusal anywhere refuses the sum)."""
    no = [p["refused"] for p in parts if "refused" in p]
    if no:
        return {"refused": "; ".join(sorted(set(no)))}
    out: dict[str, Any] = {"n": sum(p["n"] for p in parts),
                           "events": sum(p["events"] for p in parts),
                           "loglik": math.fsum(p["loglik"] for p in parts)}
    for key in ("grad", "info", "T"):
        if key in parts[0]:
            out[key] = np.sum([np.asarray(p[key], dtype=float) for p in parts], axis=0)
    k = len(out["grad"])
    out["info"] = unpack_info(out["info"], k)
    if "T" in out:
        out["T"] = unpack_sym3(out["T"], k)
    return out


def unpack_info(upper: np.ndarray, k: int) -> np.ndarray:
    """The symmetric k x k matrix from its upper triangle (row by row), as nodes send it."""
    m = np.zeros((k, k))
    m[np.triu_indices(k)] = upper
    return m + np.triu(m, 1).T


def unpack_sym3(unique: np.ndarray, k: int) -> np.ndarray:
    """The fully symmetric k x k x k array from its entries j <= k <= l."""
    import itertools

    from .node import sym3_indices

    T = np.zeros((k, k, k))
    for v, (a, b, c) in zip(unique, zip(*sym3_indices(k), strict=True), strict=True):
        for perm in set(itertools.permutations((a, b, c))):
            T[perm] = v
    return T


# --------------------------------------------------------------------------- ML


def _exp(v: float) -> float:
    try:
        return math.exp(v)
    except OverflowError:
        return math.inf


def estimable(r: Mapping[str, Any], model: Sequence[str]) -> None:
    """As `stats.regression.logistic`: both outcomes, and a design of full rank (the rank of
    X'WX at the start, where every weight is 1/4, is the rank of X)."""
    if r["n"] == 0 or r["events"] in (0, r["n"]):
        raise NotEstimable("logistic regression needs both outcomes among the complete cases")
    if np.linalg.matrix_rank(np.asarray(r["info"])) < len(model) + 1:
        raise NotEstimable(
            "singular design: the columns of " + ", ".join(model) + " (with the intercept) "
            "are collinear or constant among the complete cases")


def fit_ml(ev: Oracle, model: Sequence[str], cc: Sequence[str]) -> dict[str, Any]:
    """Newton-Raphson to the ML estimate: beta, its information, log-likelihood, n."""
    beta = np.zeros(len(model) + 1)
    converged = False
    for it in range(MAX_ITER):
        r = ev(model, cc, beta)
        if it == 0:
            estimable(r, model)
        step = np.linalg.solve(r["info"], r["grad"])
        beta = beta + step
        if np.max(np.abs(step)) < TOL:
            converged = True
            break
    r = ev(model, cc, beta)  # the log-likelihood and information at the estimate
    return {"beta": beta, "info": r["info"], "loglik": r["loglik"], "n": r["n"],
            "converged": converged, "model": list(model)}


def wald(fit: Mapping[str, Any], confidence: float) -> dict[str, Any]:
    """`stats.regression.logistic`'s result from a federated ML fit."""
    terms = ["(Intercept)", *fit["model"]]
    beta = np.asarray(fit["beta"], dtype=float)
    diverged = not fit["converged"] or (len(terms) > 1 and np.max(np.abs(beta[1:])) > 15)
    directions = {t: int(np.sign(b)) for t, b in zip(terms, beta, strict=True)
                  if diverged and abs(b) > 15} if len(terms) > 1 else {}
    sep = {"detected": bool(directions), "directions": directions,
           "method": SEPARATION_METHOD if len(terms) > 1 else "intercept only"}
    se = np.sqrt(np.diag(np.linalg.pinv(fit["info"])))
    z = float(stats.norm.ppf(1 - (1 - confidence) / 2))
    coefficients = []
    for term, b, s in zip(terms, beta, se, strict=True):
        b, s = float(b), float(s)
        if directions.get(term):
            inf = math.inf if directions[term] > 0 else -math.inf
            coefficients.append(
                {"variable": term, "estimate": inf, "se": None, "odds_ratio": _exp(inf),
                 "ci_low": None, "ci_high": None, "statistic": None, "p_value": None,
                 "reason": "separation: the maximum-likelihood estimate is infinite "
                           f"({'+' if inf > 0 else '-'}Infinity on the log-odds scale)"})
            continue
        coefficients.append({"variable": term, "estimate": b, "se": s, "odds_ratio": _exp(b),
                             "ci_low": _exp(b - z * s), "ci_high": _exp(b + z * s),
                             "statistic": b / s, "p_value": float(2 * stats.norm.sf(abs(b / s)))})
    ll = float(fit["loglik"])
    return {"test": "logistic", "statistic": None, "p_value": None,
            "coefficients": coefficients, "loglik": ll, "deviance": -2.0 * ll,
            "aic": -2.0 * ll + 2 * len(terms), "n": int(fit["n"]),
            "converged": bool(fit["converged"]), "separation": sep,
            "confidence": confidence,
            "variant": "ML logistic regression, Wald z tests and Wald CI (R glm + "
                       "confint.default); federated Newton-Raphson"}


def logistic(rounds: Rounds, model: Sequence[str], cc: Sequence[str], confidence: float
             ) -> dict[str, Any]:
    return wald(fit_ml(Oracle(rounds), model, cc), confidence)


def forward_lr(rounds: Rounds, candidates: Sequence[str], entry_p: float, removal_p: float,
               entry_test: str, confidence: float, max_steps: int = 100) -> dict[str, Any]:
    """`stats.regression.forward_lr` (SPSS FSTEP) over the complete cases of the candidates."""
    ev = Oracle(rounds)
    cand = list(candidates)

    def ll_of(model: list[str]) -> dict[str, Any]:
        return fit_ml(ev, model, cand)

    model: list[str] = []
    seen: set[frozenset[str]] = {frozenset()}
    steps: list[dict[str, Any]] = []
    current = ll_of(model)
    for _ in range(max_steps):
        todo = [v for v in cand if v not in model]
        if not todo:
            break

        def entry(v: str, model: list[str] = model, current: dict = current) -> dict[str, Any]:
            if entry_test == "score":
                r = ev([*model, v], cand, np.append(current["beta"], 0.0))
                u = np.asarray(r["grad"])
                stat = float(u @ np.linalg.solve(r["info"], u))
            else:
                stat = max(0.0, 2.0 * (ll_of([*model, v])["loglik"] - current["loglik"]))
            return {"variable": v, "statistic": stat, "df": 1,
                    "p_value": float(stats.chi2.sf(stat, 1))}

        tests = rounds.map(entry, todo)
        best = min(tests, key=lambda t: (t["p_value"], -t["statistic"]))
        if not best["p_value"] < entry_p:
            break
        model = [*model, best["variable"]]
        current = ll_of(model)
        steps.append({"step": len(steps) + 1, "action": "enter", "variable": best["variable"],
                      "test": entry_test, "statistic": best["statistic"],
                      "p_value": best["p_value"], "candidates": tests, "model": list(model),
                      "loglik": current["loglik"]})
        while model:
            def removal(v: str, model: list[str] = model, current: dict = current
                        ) -> dict[str, Any]:
                without = ll_of([m for m in model if m != v])
                stat = max(0.0, 2.0 * (current["loglik"] - without["loglik"]))
                return {"variable": v, "statistic": stat, "df": 1,
                        "p_value": float(stats.chi2.sf(stat, 1))}

            tests_out = rounds.map(removal, model)
            worst = max(tests_out, key=lambda t: (t["p_value"], -t["statistic"]))
            if not worst["p_value"] > removal_p:
                break
            model = [m for m in model if m != worst["variable"]]
            current = ll_of(model)
            steps.append({"step": len(steps) + 1, "action": "remove",
                          "variable": worst["variable"], "test": "lr",
                          "statistic": worst["statistic"], "p_value": worst["p_value"],
                          "candidates": tests_out, "model": list(model),
                          "loglik": current["loglik"]})
        key = frozenset(model)
        if key in seen:
            break
        seen.add(key)

    final = wald(current if current["model"] == model else ll_of(model), confidence)
    selected = [{k: c[k] for k in ("variable", "estimate", "se", "odds_ratio", "ci_low",
                                   "ci_high", "p_value", "reason") if k in c}
                for c in final["coefficients"] if c["variable"] != "(Intercept)"]
    return {"test": "forward_lr", "statistic": None, "p_value": None, "selected": selected,
            "steps": steps, "final_model": final, "n": int(current["n"]), "entry_p": entry_p,
            "removal_p": removal_p, "entry_test": entry_test,
            "variant": f"SPSS FSTEP(LR)-style forward selection; entry by {entry_test}, "
                       "removal by LR; federated Newton-Raphson"}


# --------------------------------------------------------------------------- Firth


def firth_parts(ev: Oracle, model: Sequence[str], cc: Sequence[str]
                ) -> Callable[[np.ndarray], tuple[float, np.ndarray, np.ndarray]]:
    """`stats.firth._fit_parts` from the pooled sums: penalized log-likelihood, penalized
    score X'(y - p + h(1/2 - p)) with h from the pooled information, information."""

    def parts(beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        r = ev(model, cc, beta, firth=True)
        info = np.asarray(r["info"])
        sign, logdet = np.linalg.slogdet(info)
        pen = r["loglik"] + 0.5 * logdet if sign > 0 else -math.inf
        inv = np.linalg.inv(info)
        score = np.asarray(r["grad"]) + np.einsum("jkl,kl->j", np.asarray(r["T"]), inv)
        return pen, score, info

    return parts


def _limit(excess: Callable[[float], float], start: float, step: float) -> float:
    """Where `excess` crosses 0 moving from `start` by `step` (doubling), by Brent's method."""
    inner, outer = start, start + step
    for _ in range(60):
        if excess(outer) > 0:
            return float(optimize.brentq(excess, inner, outer, xtol=1e-12, rtol=1e-13))
        inner, outer = outer, outer + step
        step *= 2
    return math.copysign(math.inf, step)


def _maximize(parts: Callable, beta0: np.ndarray, free: np.ndarray, max_iter: int,
              tol: float, max_step: float = 5.0) -> tuple[np.ndarray, float, int, bool]:
    """`stats.firth._maximize` with the parts computed by the network."""
    beta = beta0.copy()
    pen, score, info = parts(beta)
    for it in range(1, max_iter + 1):
        sub = info[np.ix_(free, free)]
        delta = np.linalg.solve(sub, score[free])
        biggest = np.max(np.abs(delta)) if delta.size else 0.0
        if biggest > max_step:
            delta *= max_step / biggest
        for _ in range(30):
            trial = beta.copy()
            trial[free] += delta
            new_pen, new_score, new_info = parts(trial)
            if new_pen >= pen - 1e-12 * abs(pen):
                break
            delta /= 2
        beta, pen, score, info = trial, new_pen, new_score, new_info
        if (delta.size == 0 or np.max(np.abs(delta)) < tol) and np.max(
            np.abs(score[free]), initial=0.0
        ) < tol:
            return beta, pen, it, True
    return beta, pen, max_iter, False


def firth_logistic(rounds: Rounds, model: Sequence[str], cc: Sequence[str],
                   confidence: float = 0.95, max_iter: int = MAX_ITER, tol: float = TOL
                   ) -> dict[str, Any]:
    """`stats.firth.firth_logistic` (profile CI, Fisher SE) with federated parts."""
    ev = Oracle(rounds)
    estimable(ev(model, cc, np.zeros(len(model) + 1)), model)
    parts = firth_parts(ev, model, cc)
    terms = ["(Intercept)", *model]
    k = len(terms)
    all_free = np.ones(k, dtype=bool)
    beta, pen, iterations, converged = _maximize(parts, np.zeros(k), all_free, max_iter, tol)
    _, _, info = parts(beta)
    at = Oracle(rounds)(model, cc, beta)
    se = np.sqrt(np.diag(np.linalg.pinv(info)))
    crit = float(stats.chi2.ppf(confidence, 1))

    def profile(j: int, value: float) -> float:
        start = beta.copy()
        start[j] = value
        free = all_free.copy()
        free[j] = False
        return _maximize(parts, start, free, max_iter, tol)[1]

    def null_fit() -> float:
        null_free = np.zeros(k, dtype=bool)
        null_free[0] = True
        return _maximize(parts, np.zeros(k), null_free, max_iter, tol)[1]

    def job(spec: tuple[str, int]) -> float:
        what, j = spec
        if what == "null":
            return null_fit()
        b, s = float(beta[j]), float(se[j])

        def excess(value: float) -> float:
            return 2.0 * (pen - profile(j, value)) - crit

        if what == "lo":
            return _limit(excess, b, -s)
        if what == "hi":
            return _limit(excess, b, s)
        return max(0.0, 2.0 * (pen - profile(j, 0.0)))

    specs = [("null", 0)] + [(w, j) for j in range(k) for w in ("lo", "hi", "lr")]
    answers = dict(zip(specs, rounds.map(job, specs), strict=True))
    lr_global = max(0.0, 2.0 * (pen - answers[("null", 0)]))
    coefficients = []
    for j, term in enumerate(terms):
        b, s = float(beta[j]), float(se[j])
        lo, hi = answers[("lo", j)], answers[("hi", j)]
        fin_lo, fin_hi = math.isfinite(lo), math.isfinite(hi)
        coefficients.append({"variable": term, "estimate": b, "se": s, "odds_ratio": math.exp(b),
                             "ci_low": math.exp(lo) if fin_lo else None,
                             "ci_high": math.exp(hi) if fin_hi else None,
                             "log_ci_low": lo if fin_lo else None,
                             "log_ci_high": hi if fin_hi else None,
                             "p_value": float(stats.chi2.sf(answers[("lr", j)], 1))})
    return {"test": "firth", "statistic": lr_global,
            "p_value": float(stats.chi2.sf(lr_global, k - 1)) if k > 1 else None,
            "df": k - 1, "coefficients": coefficients, "penalized_loglik": pen,
            "loglik": float(at["loglik"]), "n": int(at["n"]), "iterations": iterations,
            "warnings": [], "converged": converged,
            "ci_method": "profile penalized likelihood", "se_type": "fisher",
            "p_method": "penalized likelihood ratio", "confidence": confidence,
            "variant": "Firth (Jeffreys prior) penalized ML, as R logistf; federated "
                       "(pooled information, per-center hat-value sums)"}
