"""Figure 2B: 12-h CCI of each evaluable transfusion against the IL-6 of the same day.

Ordinary least squares of CCI on IL-6 (`stats.regression.linear`: slope, intercept, R^2, and
the slope's t-test p; R `lm(cci ~ il6)`). The unit of analysis is the transfusion, as in the
study (about 79 transfusions, p = 0.0065, R^2 = 0.09); transfusions of one patient are not
independent, which the study did not model and this reproduction does not either.
Population: `sql/cci_vs_il6.sql`.
"""

from __future__ import annotations

import polars as pl

from ..stats.regression import linear
from . import _plots
from ._common import AnalysisResult, Context, fmt, fmt_p, headline, not_estimable, num, values

X_LABEL = "IL-6 on the day of transfusion (pg/mL)"
Y_LABEL = "12-h CCI (/\u00b5L \u00d7 m\u00b2 / 10\u00b9\u00b9)"


def cci_vs_il6(ctx: Context) -> AnalysisResult:
    df = ctx.population("cci_vs_il6")
    x, y = values(df, "il6_same_day"), values(df, "cci")
    n_patients = df.select(pl.struct("center_id", "patient_id").n_unique()).item()
    if len(x) < 3:
        return not_estimable("fewer than 3 transfusions with a same-day IL-6", n=len(x))
    res = dict(linear(x, y))
    data = num({"test": "linear", **res, "n": len(x), "n_patients": n_patients,
                "x": "il6_same_day", "y": "cci"})
    table = pl.DataFrame(
        {
            "n_transfusions": [data["n"]],
            "n_patients": [n_patients],
            "slope": [fmt(data.get("slope"), 5)],
            "intercept": [fmt(data.get("intercept"), 6)],
            "r2": [fmt(data.get("r2"), 4)],
            "t": [fmt(data.get("statistic"), 4)],
            "p_value": [fmt_p(data.get("p_value"))],
        }
    )

    def figure():
        return _plots.scatter_fit(
            x, y, data.get("slope"), data.get("intercept"), X_LABEL, Y_LABEL,
            f"CCI vs same-day IL-6 (n = {data['n']}, R\u00b2 = {fmt(data.get('r2'), 2)}, "
            f"{_plots.p_label(data.get('p_value'))})",
        )

    return AnalysisResult(data, table, figure, [headline("Fig 2B: CCI vs IL-6 slope", data, data["n"])])
