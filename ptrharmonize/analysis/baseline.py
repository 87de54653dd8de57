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

from functools import partial

import polars as pl

from ..stats.continuous import compare_continuous
from ._common import (
    TREATMENT_GROUPS,
    AnalysisResult,
    Context,
    binary_row,
    characteristics_table,
    continuous_by_center,
    continuous_row,
    headline,
    not_estimable,
    num,
    split,
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

    test = partial(compare_continuous, alpha=ctx.params["shapiro_alpha"], mann_whitney_variant=ctx.mann_whitney)
    rows = []
    for var, (label, unit) in CONTINUOUS.items():
        row = {"variable": var, "label": label, "unit": unit, "kind": "continuous"}
        row |= continuous_row(groups, var, test)
        # heterogeneity between centers of the CAR-T vs chemotherapy difference (issue 18)
        row["by_center"] = continuous_by_center(df, "car_t", var)
        rows.append(row)
    for var, label in CATEGORICAL.items():
        # beside the pooled test: CMH stratified by center, Breslow-Day heterogeneity
        rows.append({"variable": var, "label": label, "kind": "categorical"}
                    | binary_row(df, "car_t", groups, var, ctx.params))

    data = {"n": sizes, "groups_order": list(TREATMENT_GROUPS), "rows": num(rows)}
    return AnalysisResult(
        data=data,
        table=characteristics_table(data["rows"], TREATMENT_GROUPS),
        summary=[headline(f"Table 1: {r['label']}", r, sizes) for r in data["rows"][:1]],
    )
