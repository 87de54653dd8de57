"""Table 1: baseline characteristics, CAR-T vs salvage chemotherapy.

Continuous characteristics: Shapiro-Wilk in each group, then Student's t-test when both look
normal, else Mann-Whitney U (`stats.continuous.compare_continuous`). Categorical: Pearson
chi-square without correction when every expected count >= `analysis.min_expected`, else
Fisher's exact. Population: `sql/baseline.sql`.

Centers (issue 18): each categorical row also as CMH stratified by center with Breslow-Day
(Tarone) heterogeneity; each continuous row with the F test of group x center (does the
CAR-T vs chemotherapy difference differ between centers?), under `by_center`.
"""

from __future__ import annotations

import polars as pl

from ..stats.continuous import compare_continuous, describe
from ._common import (
    TREATMENT_GROUPS,
    AnalysisResult,
    Context,
    binary_test,
    characteristics_table,
    cmh_by_center,
    continuous_by_center,
    count_true,
    headline,
    not_estimable,
    num,
    split,
    testable,
)
from .registry import analysis

# variable -> (label, unit)
CONTINUOUS = {
    "age_years": ("Age", "years"),
    "bsa_m2": ("Body surface area", "m2"),
    "bm_blast_pct": ("Bone-marrow blasts", "%"),
    "n_relapses": ("Number of relapses", None),
}
CATEGORICAL = {
    "male": "Male sex",
    "relapsed": "Relapsed (vs primary refractory)",
    "prior_allo_hsct": "Prior allogeneic HSCT",
    "extramedullary": "Extramedullary disease",
    "infection": "Infection",
}


@analysis("baseline", order=10)
def baseline(ctx: Context) -> AnalysisResult:
    df = ctx.population("baseline").with_columns(car_t=pl.col("treatment_type") == "car_t")
    groups = split(df, "car_t", TREATMENT_GROUPS)
    sizes = {g: groups[g].height for g in TREATMENT_GROUPS}
    if min(sizes.values()) == 0:
        return not_estimable("one treatment group has no patient", n=sizes)

    rows = []
    for var, (label, unit) in CONTINUOUS.items():
        x, y = (groups[g][var].drop_nulls().cast(pl.Float64).to_numpy() for g in TREATMENT_GROUPS)
        row = {"variable": var, "label": label, "unit": unit, "kind": "continuous"}
        row |= {g: dict(describe(v)) for g, v in zip(TREATMENT_GROUPS, (x, y), strict=True)}
        if testable(x, y, 2):
            row |= dict(compare_continuous(x, y, alpha=ctx.params["shapiro_alpha"],
                                          mann_whitney_variant=ctx.mann_whitney))
        else:
            row |= {"test": None, "statistic": None, "p_value": None}
        # heterogeneity between centers of the CAR-T vs chemotherapy difference (issue 18)
        row["by_center"] = continuous_by_center(df, "car_t", var)
        rows.append(row)
    for var, label in CATEGORICAL.items():
        counts = {g: count_true(groups[g][var]) for g in TREATMENT_GROUPS}
        row = {"variable": var, "label": label, "kind": "categorical", **counts}
        row |= binary_test(*counts.values(), min_expected=ctx.params["min_expected"])
        if "center_id" in df.columns:
            # beside the pooled test: CMH stratified by center, Breslow-Day heterogeneity
            row["by_center"] = cmh_by_center(df, "car_t", var, ctx.params)
        rows.append(row)

    data = {"n": sizes, "groups_order": list(TREATMENT_GROUPS), "rows": num(rows)}
    return AnalysisResult(
        data=data,
        table=characteristics_table(data["rows"], TREATMENT_GROUPS),
        summary=[headline(f"Table 1: {r['label']}", r, sizes) for r in data["rows"][:1]],
    )
