"""Figure 3A: platelets transfused until the count first stays >= 20 x10^9/L, PTR vs non-PTR.

Two measures: the dose in x10^11 platelets, the **primary** one because it means the same at
every center, and units as the centers count them (the study, one center: 65.5 (40-171) vs 50
(25-86) units, p = 0.0426; totals 1,249 vs 597). A unit holds a different number of platelets
from one center to the next (apheresis vs pooled, local splitting), so with several centers the
units are compared **only within each center** (`units.within_center`) and the pooled units
test is withheld (`units.test` None with the reason). Each comparison: median (range), total,
Mann-Whitney U (`stats.continuous.mann_whitney`, U of the PTR group, `--mann-whitney`).
Heterogeneity: Kruskal-Wallis of the dose across centers (`dose_e11.heterogeneity`).
Population: `sql/platelet_dose_by_ptr.sql`.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from ..stats.multicenter import kruskal
from . import _plots
from ._common import (
    GROUP_LABELS,
    PTR_GROUPS,
    AnalysisResult,
    Context,
    center_ids,
    compare_medians,
    estimable,
    fmt,
    headline,
    not_estimable,
    split,
    values,
)
from .registry import analysis

MEASURES = {
    "dose_e11": ("plt_dose_e11_until_recovery", "Platelets transfused (\u00d710\u00b9\u00b9)"),
    "units": ("plt_units_until_recovery", "Platelet units transfused (units)"),
}


@analysis("platelet_dose_by_ptr", order=90)
def platelet_dose_by_ptr(ctx: Context) -> AnalysisResult:
    df = ctx.population("platelet_dose_by_ptr")
    groups = split(df, "ptr", PTR_GROUPS)
    n = {g: groups[g].height for g in PTR_GROUPS}
    if min(n.values()) == 0:
        return not_estimable("the CAR-T subgroup has no PTR or no non-PTR patient", n=n)
    centers = center_ids(df)
    data: dict[str, Any] = {"n": n, "groups_order": list(PTR_GROUPS), "primary": "dose_e11",
                            "center_ids": centers}
    rows, panels = [], []
    for key, (column, label) in MEASURES.items():
        x = {g: values(groups[g], column) for g in PTR_GROUPS}
        e = compare_medians(x, PTR_GROUPS, ctx.mann_whitney)
        e["total"] = {g: float(x[g].sum()) for g in PTR_GROUPS}
        if key == "units" and len(centers) > 1:
            e |= {"test": None, "statistic": None, "p_value": None,
                  "reason": "units hold different numbers of platelets at different centers: "
                            "compared within each center only (within_center); the dose "
                            "(x10^11) is the pooled comparison",
                  "within_center": _within_center(df, column, ctx.mann_whitney)}
        if key == "dose_e11":
            known = df.filter(pl.col(column).is_not_null())
            e["heterogeneity"] = estimable(lambda known=known, column=column: kruskal(
                known[column].cast(pl.Float64).to_numpy(), known["center_id"].to_list()))
        data[key] = e
        shown = ("units differ by center: tested within each center only"
                 if e.get("within_center") is not None else e.get("p_value"))
        panels.append((label, {GROUP_LABELS[g]: x[g] for g in PTR_GROUPS}, shown))
        for g in PTR_GROUPS:
            lo, hi = e["range"][g]
            rows.append({"measure": key, "center_id": "all" if len(centers) != 1 else centers[0],
                         "group": g, "n": e["n"][g], "median": e["median"][g], "min": lo,
                         "max": hi, "total": e["total"][g], "test": e.get("test"),
                         "U": e.get("statistic"), "p_value": e.get("p_value")})
        for c, w in (e.get("within_center") or {}).items():
            for g in PTR_GROUPS:
                lo, hi = w["range"][g]
                rows.append({"measure": key, "center_id": c, "group": g, "n": w["n"][g],
                             "median": w["median"][g], "min": lo, "max": hi, "total": None,
                             "test": w.get("test"), "U": w.get("statistic"),
                             "p_value": w.get("p_value")})

    def figure():
        return _plots.box_panels(
            panels, title="Platelets transfused until the count stays \u2265 20 \u00d710\u2079/L"
        )

    table = pl.DataFrame(rows, schema={
        "measure": pl.Utf8, "center_id": pl.Utf8, "group": pl.Utf8, "n": pl.Int64,
        "median": pl.Float64, "min": pl.Float64, "max": pl.Float64, "total": pl.Float64,
        "test": pl.Utf8, "U": pl.Float64, "p_value": pl.Float64})
    return AnalysisResult(
        data,
        table,
        figure,
        [
            headline(
                f"Fig 3A: platelet {k}, median "
                + " vs ".join(fmt(data[k]["median"][g], 4) for g in PTR_GROUPS),
                data[k],
                data[k]["n"],
            )
            for k in MEASURES
        ],
    )


def _within_center(df: pl.DataFrame, column: str, variant: str) -> dict[str, Any]:
    out = {}
    for c in center_ids(df):
        groups = split(df.filter(pl.col("center_id") == c), "ptr", PTR_GROUPS)
        out[c] = compare_medians({g: values(groups[g], column) for g in PTR_GROUPS}, PTR_GROUPS,
                                 variant)
    return out
