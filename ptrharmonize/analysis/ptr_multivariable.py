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

from ..stats.regression import firth_logistic, forward_lr, logistic
from ._common import AnalysisResult, Context, fmt, fmt_p, headline, not_applicable, num
from .cart_characteristics import characteristic_rows


def ptr_multivariable(ctx: Context) -> AnalysisResult:
    p = ctx.params
    df = ctx.population("ptr_multivariable")
    events = int(df["ptr"].sum())
    if events == 0 or events == df.height:
        return not_applicable("the CAR-T subgroup has no PTR or no non-PTR patient", n=df.height)

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
            fit = logistic({var: _x(sub[var])}, _x(sub["ptr"]), [var], confidence=p["confidence"])
            test, p_value = "logistic", _terms(fit)[0]["p_value"]
        screen.append({"variable": var, "univariate_test": test, "univariate_p": p_value,
                       "candidate": p_value is not None and p_value < p["candidate_p"]})
    candidates = [s["variable"] for s in screen if s["candidate"]]
    settings = {k: p[k] for k in ("candidate_p", "entry_p", "removal_p", "entry_test")}
    if not candidates:
        data = {"test": "logistic", "statistic": None, "p_value": None, "n": df.height,
                "events": events, "selected": [], "screen": screen, "candidates": [], **settings}
        return _result(num(data), None)

    cc = df.select(*candidates, "ptr").drop_nulls()  # complete cases (SPSS listwise deletion)
    X = {v: _x(cc[v]) for v in candidates}
    y = _x(cc["ptr"])
    if y.sum() in (0, len(y)):
        return not_applicable("no PTR or no non-PTR patient has every candidate known",
                              n=cc.height, screen=screen, candidates=candidates)
    model = dict(
        forward_lr(X, y, candidates, entry_p=p["entry_p"], removal_p=p["removal_p"],
                   entry_test=p["entry_test"], confidence=p["confidence"])
    )
    selected = [s["variable"] for s in model["selected"]]
    firth = None
    if selected:
        fit = firth_logistic({v: X[v] for v in selected}, y, selected, confidence=p["confidence"])
        firth = {**fit, "selected": _terms(fit)}
        del firth["coefficients"]
    # Headline: the Wald test of the first variable selected (the study's "p = 0.007").
    wald = _terms(model["final_model"])[0] if selected else {}
    data = {
        **model,
        "test": "logistic",
        "statistic": wald.get("statistic"),
        "statistic_name": "Wald z of the first variable selected" if selected else None,
        "p_value": wald.get("p_value"),
        "selection": model["test"],
        "n": cc.height,
        "events": int(y.sum()),
        "screen": screen,
        "candidates": candidates,
        "firth": firth,
        **settings,
    }
    return _result(num(data), firth)


def _terms(fit: dict[str, Any]) -> list[dict[str, Any]]:
    """A fit's coefficients without the intercept."""
    return [c for c in fit["coefficients"] if c["variable"] != "(Intercept)"]


def _x(s: pl.Series) -> np.ndarray:
    return s.cast(pl.Float64).to_numpy()


def _result(data: dict[str, Any], firth: dict[str, Any] | None) -> AnalysisResult:
    rows = []
    for method, fit in (("logistic (Wald CI)", data), ("Firth", firth)):
        for s in (fit or {}).get("selected", []):
            rows.append({
                "method": method,
                "variable": s["variable"],
                "odds_ratio": fmt(s.get("odds_ratio"), 5),
                "ci_95": f"{fmt(s.get('ci_low'), 5)}-{fmt(s.get('ci_high'), 6)}",
                "p_value": fmt_p(s.get("p_value")),
            })
    if not rows:
        rows.append({"method": "logistic", "variable": "(none selected)", "odds_ratio": "",
                     "ci_95": "", "p_value": ""})
    n = data.get("n")
    summary = [
        {"label": f"Table 4: {s['variable']} OR {fmt(s.get('odds_ratio'), 4)} "
                  f"({fmt(s.get('ci_low'), 4)}-{fmt(s.get('ci_high'), 4)}), "
                  f"{data.get('events')} events",
         "test": "logistic", "statistic": None, "p_value": s.get("p_value"), "n": n}
        for s in data.get("selected", [])
    ] or [headline("Table 4: no variable selected", data, n)]
    return AnalysisResult(data, pl.DataFrame(rows), summary=summary)
