"""Table 4: risk factors of PTR after CAR-T, binary logistic regression with forward selection.

As the study: the variables of `analysis.multivariable_pool` are screened by their univariate
p-value; those with p < `analysis.candidate_p` (0.30) are candidates; forward selection by
likelihood ratio (`stats.regression.forward_lr`, entry p < `analysis.entry_p`) picks the model,
reported as odds ratio, Wald 95% CI and Wald p (the study: CRS >= 3 alone, OR 16.00,
2.165-118.270, p = 0.007).

The univariate p of a pool variable that is a row of Table 3 is that row's p (the test the
study printed: Fisher / chi-square / Student t; for `tocilizumab` the 2x3 dose test, while
the model enters it as any use yes/no). Any other pool variable is screened by a univariate
logistic regression (Wald p).

Because small registries separate (a variable that every PTR patient has gives an infinite
maximum-likelihood odds ratio), Firth's penalized estimate of the selected model
(`stats.regression.firth_logistic`, profile-likelihood CI as R logistf) is reported beside it.
Population: `sql/ptr_multivariable.sql`; the model uses the complete cases of the candidates.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from ..stats._common import NotEstimable
from ..stats.multicenter import gee, logistic_center_fixed
from ..stats.regression import firth_logistic, forward_lr, logistic
from ._common import AnalysisResult, Context, estimable, fmt, headline, not_estimable, num
from .cart_characteristics import characteristic_rows
from .registry import analysis


@analysis("ptr_multivariable", order=50)
def ptr_multivariable(ctx: Context) -> AnalysisResult:
    p = ctx.params
    df = ctx.population("ptr_multivariable")
    events = int(df["ptr"].sum())
    if events == 0 or events == df.height:
        return not_estimable("the CAR-T subgroup has no PTR or no non-PTR patient", n=df.height)

    table3 = {r["variable"]: r for r in characteristic_rows(df, p)}
    screen = []
    for var in p["multivariable_pool"]:
        if var not in df.columns:
            raise ValueError(
                f"analysis.multivariable_pool: {var!r} is not a column of sql/ptr_multivariable.sql"
            )
        if var in table3:
            test, p_value = table3[var]["test"], table3[var]["p_value"]
        else:
            sub = df.select(var, "ptr").drop_nulls()
            try:
                fit = logistic({var: _x(sub[var])}, _x(sub["ptr"]), [var],
                               confidence=p["confidence"])
                test, p_value = "logistic", _terms(fit)[0]["p_value"]
            except NotEstimable:  # constant, or one outcome only: no screen p, not a candidate
                test, p_value = "logistic", None
        screen.append({"variable": var, "univariate_test": test, "univariate_p": p_value,
                       "candidate": p_value is not None and p_value < p["candidate_p"]})
    candidates = [s["variable"] for s in screen if s["candidate"]]
    settings = {k: p[k] for k in ("candidate_p", "entry_p", "removal_p", "entry_test")}
    if not candidates:
        data = {"test": "logistic", "statistic": None, "p_value": None, "n": df.height,
                "events": events, "selected": [], "screen": screen, "candidates": [], **settings}
        return _result(num(data), None)

    # complete cases (SPSS listwise deletion)
    cc = df.select("center_id", *candidates, "ptr").drop_nulls([*candidates, "ptr"])
    X = {v: _x(cc[v]) for v in candidates}
    y = _x(cc["ptr"])
    centers = cc["center_id"].to_list()
    if y.sum() in (0, len(y)):
        return not_estimable("no PTR or no non-PTR patient has every candidate known",
                              n=cc.height, screen=screen, candidates=candidates)
    model = dict(
        forward_lr(X, y, candidates, entry_p=p["entry_p"], removal_p=p["removal_p"],
                   entry_test=p["entry_test"], confidence=p["confidence"])
    )
    selected = [s["variable"] for s in model["selected"]]
    firth = None
    firth_error = None
    if selected:
        try:
            fit = firth_logistic({v: X[v] for v in selected}, y, selected,
                                 confidence=p["confidence"])
            firth = {**fit, "selected": _terms(fit)}
            del firth["coefficients"]
        except NotEstimable as exc:
            firth_error = str(exc)
    reported = report(model, firth, firth_error, n=cc.height, events=int(y.sum()), screen=screen,
                      candidates=candidates)
    if isinstance(reported, AnalysisResult):
        return reported
    data = {
        **reported,
        # beside the pooled model: the selected variables with center as a fixed effect (and
        # the LR test of their interaction with center: heterogeneity), and a GEE with center
        # as the cluster
        "by_center": {
            "logistic_center_fixed": estimable(lambda: logistic_center_fixed(
                {v: X[v] for v in selected}, y, centers, confidence=p["confidence"])),
            "gee_center": estimable(lambda: gee(
                {v: X[v] for v in selected}, y, centers, family="binomial",
                corstr=ctx.gee_corstr, confidence=p["confidence"])),
        } if selected else None,
        **settings,
    }
    return _result(num(data), firth)


def report(model: dict[str, Any], firth: dict[str, Any] | None, firth_error: str | None, *, n: int,
           events: int, screen: list[dict[str, Any]], candidates: list[str]) -> dict[str, Any] | AnalysisResult:
    """Table 4's result from a forward-selected ML model and its Firth fit: the pooled and the
    federated study (federated/study.py) report through this one piece. Under separation
    (detected by linear programming, stats.regression.separation) the ML odds ratio is
    infinite: the reported result is Firth's, with its profile-likelihood CI; without a Firth
    fit the analysis is not estimable (the returned AnalysisResult)."""
    final = model["final_model"]
    selected = [s["variable"] for s in model["selected"]]
    separated = bool(selected) and final["separation"]["detected"]
    if separated and firth is None:
        return not_estimable(
            f"separation of {', '.join(final['separation']['directions'])} and no Firth fit "
            f"({firth_error})", n=n, screen=screen, candidates=candidates, steps=model["steps"])
    reported = firth if separated else model
    first = _terms(final)[0] if selected else {}
    head = reported["selected"][0] if selected else {}
    return {
        **model,
        "test": "firth" if separated else "logistic",
        "method": "firth" if separated else "logistic",
        "reported_because": (
            "separation: the maximum-likelihood estimate of "
            + ", ".join(v for v in final["separation"]["directions"] if v != "(Intercept)")
            + " is infinite, so the reported result is Firth's penalized estimate with its "
            "profile penalized-likelihood CI and LR p (ML kept under `ml`)"
        ) if separated else "no separation: ML logistic regression, Wald CI and p (the study's)",
        "selected": reported["selected"],
        "ml": {"test": "logistic", "selected": model["selected"],
               "separation": final["separation"]},
        "statistic": None if separated else first.get("statistic"),
        "statistic_name": None if separated or not selected else
        "Wald z of the first variable selected",
        "p_value": head.get("p_value"),
        "selection": model["test"],
        "n": n,
        "events": events,
        "screen": screen,
        "candidates": candidates,
        "firth": firth,
        "firth_error": firth_error,
    }


def _terms(fit: dict[str, Any]) -> list[dict[str, Any]]:
    """A fit's coefficients without the intercept."""
    return [c for c in fit["coefficients"] if c["variable"] != "(Intercept)"]


def _x(s: pl.Series) -> np.ndarray:
    return s.cast(pl.Float64).to_numpy()


def _result(data: dict[str, Any], firth: dict[str, Any] | None) -> AnalysisResult:
    """Table 4: the reported fit first (ML, or Firth under separation), the other beside it.
    Numbers stay numbers; the `method` column says which fit each row is."""
    reported = data.get("method", "logistic")
    fits = [("logistic (ML, Wald CI)", data.get("ml") or data), ("Firth (profile CI)", firth)]
    if reported == "firth":
        fits.reverse()
    rows = []
    for method, fit in fits:
        for s in (fit or {}).get("selected", []):
            rows.append({
                "method": method,
                "reported": method.lower().startswith(reported),
                "variable": s["variable"],
                "odds_ratio": _f(s.get("odds_ratio")),
                "ci_low": _f(s.get("ci_low")),
                "ci_high": _f(s.get("ci_high")),
                "p_value": _f(s.get("p_value")),
                "note": s.get("reason") or "",
            })
    if not rows:
        rows.append({"method": "logistic", "reported": True, "variable": "(none selected)",
                     "odds_ratio": None, "ci_low": None, "ci_high": None, "p_value": None,
                     "note": ""})
    if reported == "firth":
        rows[0]["note"] = data.get("reported_because", "")
    n = data.get("n")
    label = "Firth" if reported == "firth" else "OR"
    summary = [
        {"label": f"Table 4: {s['variable']} {label} {fmt(_f(s.get('odds_ratio')), 4)} "
                  f"({fmt(_f(s.get('ci_low')), 4)}-{fmt(_f(s.get('ci_high')), 4)}), "
                  f"{data.get('events')} events",
         "test": data.get("test"), "statistic": None, "p_value": s.get("p_value"), "n": n}
        for s in data.get("selected", [])
    ] or [headline("Table 4: no variable selected", data, n)]
    return AnalysisResult(data, pl.DataFrame(rows, schema=TABLE_SCHEMA), summary=summary)


TABLE_SCHEMA = {"method": pl.Utf8, "reported": pl.Boolean, "variable": pl.Utf8,
                "odds_ratio": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64,
                "p_value": pl.Float64, "note": pl.Utf8}


def _f(x: Any) -> float | None:
    """A number of results.json as a float for the table ("Infinity" back to inf)."""
    if x is None:
        return None
    return float(x)
