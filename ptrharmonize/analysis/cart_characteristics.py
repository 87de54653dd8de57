"""Table 3: characteristics after CAR-T, PTR vs non-PTR.

Population: `sql/cart_characteristics.sql` (CAR-T with cytokine data). One row per variable:

- yes/no variables: 2x2 table (rows PTR, non-PTR), Pearson chi-square without correction when
  every expected count >= `analysis.min_expected`, else Fisher's exact (in the study's 25
  patients every row falls to Fisher).
- `tocilizumab`: any use, yes/no, by the same rule ("whether or not to use tocilizumab", the
  paper's words): 10/14 vs 5/11 gives Fisher p = 0.24063, the published 0.241. The number of
  doses (0, 1, >= `analysis.tocilizumab_max_doses`, the study's 4/4/6 vs 6/1/4) is reported per
  group under `doses`, with its own 2x3 test under `doses_test` (Fisher p = 0.34363 on the
  study's split, R fisher.test agrees), which is NOT the published figure.
- `peak_temp_c`: Student's t-test (equal variances) as the study reported it (t = -2.189,
  df = 23), whatever Shapiro-Wilk says. The difference is non-PTR minus PTR (SPSS orders the
  groups by code, non-PTR = 0 first), so a higher mean in PTR gives a negative t as printed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from ..stats.categorical import chi2_or_fisher
from ..stats.continuous import student_t
from ._common import (
    PTR_GROUPS,
    AnalysisResult,
    Context,
    binary_row,
    binary_test,
    characteristics_table,
    cmh_by_center,
    continuous_by_center,
    continuous_row,
    count_true,
    headline,
    not_estimable,
    num,
    split,
)
from .registry import analysis

LABELS = {
    "cr": "Complete remission (CR/CRi)",
    "tocilizumab": "Tocilizumab (any; doses 0 / 1 / 2+)",
    "corticosteroid": "Corticosteroid",
    "infection": "Infection",
    "neutrophil_improvement_30d": "Neutrophil improvement, 30 d",
    "neutrophil_recovery_90d": "Neutrophil recovery, 90 d",
    "platelet_improvement_30d": "Platelet improvement, 30 d",
    "platelet_recovery_90d": "Platelet recovery, 90 d",
    "crs_grade_3plus": "CRS grade >= 3",
    "bleeding_grade_3plus": "WHO grade 3-4 bleeding, 30 d",
    "peak_temp_c": "Peak temperature (\u00b0C)",
}
VARIABLES = tuple(LABELS)


def characteristic_rows(df: pl.DataFrame, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Table 3 rows, in the study's order, for a population with a `ptr` column."""
    groups = split(df, "ptr", PTR_GROUPS)
    rows = []
    for var in VARIABLES:
        row: dict[str, Any] = {"variable": var, "label": LABELS[var]}
        if var == "peak_temp_c":
            row |= _temperature(groups)
            if "center_id" in df.columns:
                # a continuous row: F test of PTR x center (issue 18)
                row["by_center"] = continuous_by_center(df, "ptr", var)
        elif var == "tocilizumab":
            row |= _tocilizumab(groups, params)
            if "center_id" in df.columns:
                # beside the pooled test: CMH stratified by center, Breslow-Day heterogeneity
                row["by_center"] = cmh_by_center(df, "ptr", var, params)
        else:
            row |= binary_row(df, "ptr", groups, var, params)
        rows.append(num(row))
    return rows


def _temperature(groups: dict[str, pl.DataFrame]) -> dict[str, Any]:
    # non-PTR first, as SPSS ordered the groups (module docstring)
    out: dict[str, Any] = {"kind": "continuous"} | continuous_row(groups, "peak_temp_c", student_t,
                                                                   order=("non_ptr", "ptr"))
    out["first_group"] = "non_ptr"
    return out


def _tocilizumab(groups: dict[str, pl.DataFrame], params: dict[str, Any]) -> dict[str, Any]:
    top = int(params["tocilizumab_max_doses"])
    levels = [str(k) for k in range(top)] + [f"{top}+"]
    out: dict[str, Any] = {"kind": "doses", "levels": levels}
    table = []
    for g in PTR_GROUPS:
        doses = groups[g]["tocilizumab_doses"].drop_nulls().clip(upper_bound=top).to_list()
        per_level = [doses.count(k) for k in range(top + 1)]
        out[g] = count_true(groups[g]["tocilizumab"]) | {
            "doses": dict(zip(levels, per_level, strict=True))
        }
        table.append(per_level)
    out |= binary_test(out["ptr"], out["non_ptr"], min_expected=params["min_expected"])
    arr = np.array(table)
    arr = arr[:, arr.sum(axis=0) > 0]  # a dose level nobody had carries no information
    out["doses_test"] = {"test": None, "statistic": None, "p_value": None}
    if arr.shape[1] >= 2 and min(arr.sum(axis=1)) > 0:
        out["doses_test"] = chi2_or_fisher(arr.tolist(), min_expected=params["min_expected"])
    return out


@analysis("cart_characteristics", order=40)
def cart_characteristics(ctx: Context) -> AnalysisResult:
    df = ctx.population("cart_characteristics")
    n = {"ptr": int(df["ptr"].sum()), "non_ptr": int((~df["ptr"]).sum())}
    if min(n.values()) == 0:
        return not_estimable("the CAR-T subgroup has no PTR or no non-PTR patient", n=n)
    rows = characteristic_rows(df, ctx.params)
    data = {"n": n, "groups_order": list(PTR_GROUPS), "rows": rows}
    keys = {"crs_grade_3plus", "peak_temp_c"}
    return AnalysisResult(
        data,
        table(rows),
        summary=[headline(f"Table 3: {r['label']}", r, n) for r in rows if r["variable"] in keys],
    )


def table(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return characteristics_table(rows, PTR_GROUPS)
