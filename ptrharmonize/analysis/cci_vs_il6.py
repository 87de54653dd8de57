"""Figure 2B: 12-h CCI of each evaluable transfusion against the IL-6 of the same day.

Ordinary least squares of CCI on IL-6 (`stats.regression.linear`: slope, intercept, R^2, and
the slope's t-test p; R `lm(cci ~ il6)`). The unit of analysis is the transfusion, as in the
study (about 79 transfusions, p = 0.0065, R^2 = 0.09); transfusions of one patient are not
independent, which the study did not model: `gee_patient` gives the same regression with the
patient as the cluster (GEE, sandwich SE, as R geepack::geeglm). `heterogeneity_between_centers`:
the slope in each center and Cochran's Q / I^2 across them (R metafor::rma(method = "FE")).
`mixed_patient`: a linear mixed model with a random intercept per patient (REML, R lme4::lmer).
Population: `sql/cci_vs_il6.sql`.
"""

from __future__ import annotations

import polars as pl

from ..stats.heterogeneity import mixed_random_intercept, slope_heterogeneity
from ..stats.multicenter import gee
from ..stats.regression import linear
from . import _plots
from ._common import (
    AnalysisResult,
    Context,
    as_float,
    estimable,
    fmt,
    headline,
    not_estimable,
    num,
    values,
)
from .registry import analysis

X_LABEL = "IL-6 on the day of transfusion (pg/mL)"
Y_LABEL = "12-h CCI (/\u00b5L \u00d7 m\u00b2 / 10\u00b9\u00b9)"


@analysis("cci_vs_il6", order=80)
def cci_vs_il6(ctx: Context) -> AnalysisResult:
    df = ctx.population("cci_vs_il6")
    x, y = values(df, "il6_same_day"), values(df, "cci")
    n_patients = df.select(pl.struct("center_id", "patient_id").n_unique()).item()
    if len(x) < 3:
        return not_estimable("fewer than 3 transfusions with a same-day IL-6", n=len(x))
    res = dict(linear(x, y))
    both = df.filter(pl.col("il6_same_day").is_not_null() & pl.col("cci").is_not_null())
    patient = [f"{c}\x1f{p}" for c, p in zip(both["center_id"].to_list(),
                                              both["patient_id"].to_list(), strict=True)]
    # beside the study's OLS (every transfusion independent): the same line with the
    # transfusions of one patient as a cluster (GEE, sandwich SE, R geepack::geeglm)
    clustered = estimable(lambda: gee(
        {"il6_same_day": values(both, "il6_same_day")}, values(both, "cci"), patient,
        family="gaussian", corstr=ctx.gee_corstr, confidence=ctx.params["confidence"]))
    # heterogeneity between centers (issue 18): the slope fitted in each center, Cochran's Q
    # and I^2 around their fixed-effect pool (R metafor::rma(method = "FE")); Q rather than a
    # center x IL-6 interaction because the per-center slopes are what a reader compares, and
    # I^2 says how much they differ beyond chance where Q has little power (few centers)
    centers = both["center_id"].cast(pl.Utf8).to_list()
    het = (estimable(lambda: slope_heterogeneity(values(both, "il6_same_day"), values(both, "cci"), centers))
           if len(set(centers)) >= 2 else {"status": "not_estimable", "reason": "one center"})
    # the same line as a linear mixed model, a random intercept per patient (REML, R lme4::lmer)
    mixed = estimable(lambda: mixed_random_intercept(values(both, "il6_same_day"), values(both, "cci"),
                                                     patient))
    data = num({"test": "linear", **res, "n": len(x), "n_patients": n_patients,
                "x": "il6_same_day", "y": "cci", "gee_patient": clustered, "mixed_patient": mixed,
                "heterogeneity_between_centers": het})
    gee_slope = next((c for c in (clustered.get("coefficients") or [])
                      if c["variable"] == "il6_same_day"), {})
    table = pl.DataFrame(
        {
            "model": ["OLS (transfusions independent; the study's)",
                      "GEE, patient as the cluster",
                      "Per-center slopes, fixed-effect pool; statistic = Cochran's Q across centers",
                      "Linear mixed model, random intercept per patient (REML); Wald z"],
            "n_transfusions": [data["n"], clustered.get("n"),
                               sum(c["n"] for c in (het.get("by_center") or {}).values()) or None,
                               mixed.get("n")],
            "n_patients": [n_patients, clustered.get("n_clusters"), None, mixed.get("n_groups")],
            "slope": [as_float(data.get("slope")), as_float(gee_slope.get("estimate")),
                      as_float(het.get("pooled_fixed")), as_float(mixed.get("slope"))],
            "slope_se": [as_float(data.get("slope_se")), as_float(gee_slope.get("se")),
                         as_float(het.get("pooled_fixed_se")), as_float(mixed.get("slope_se"))],
            "intercept": [as_float(data.get("intercept")), None, None, as_float(mixed.get("intercept"))],
            "r2": [as_float(data.get("r2")), None, None, None],
            "statistic": [as_float(data.get("statistic")), as_float(gee_slope.get("statistic")),
                          as_float(het.get("statistic")), as_float(mixed.get("statistic"))],
            "p_value": [as_float(data.get("p_value")), as_float(gee_slope.get("p_value")),
                        as_float(het.get("p_value")), as_float(mixed.get("p_value"))],
        },
        schema_overrides={c: pl.Float64 for c in ("slope", "slope_se", "intercept", "r2",
                                                  "statistic", "p_value")}
        | {"n_transfusions": pl.Int64, "n_patients": pl.Int64},
    )

    def figure():
        return _plots.scatter_fit(
            x, y, data.get("slope"), data.get("intercept"), X_LABEL, Y_LABEL,
            f"CCI vs same-day IL-6 (n = {data['n']}, R\u00b2 = {fmt(data.get('r2'), 2)}, "
            f"t test of the slope, {_plots.p_label(data.get('p_value'))})",
        )

    return AnalysisResult(data, table, figure, [headline("Fig 2B: CCI vs IL-6 slope", data, data["n"])])
