"""Figure 3A: platelets transfused until the count first stays >= 20 x10^9/L, PTR vs non-PTR.

Two measures: units as the centers count them (the study: 65.5 (40-171) vs 50 (25-86) units,
p = 0.0426; totals 1,249 vs 597) and the dose in x10^11 platelets, which stays comparable when
centers' units hold different numbers of platelets. Each: median (range), total, Mann-Whitney
U (`stats.continuous.mann_whitney`, U of the PTR group). Population: `sql/platelet_dose_by_ptr.sql`.
"""

from __future__ import annotations

import polars as pl

from . import _plots
from ._common import (
    GROUP_LABELS,
    PTR_GROUPS,
    AnalysisResult,
    Context,
    compare_medians,
    fmt,
    fmt_p,
    headline,
    not_estimable,
    split,
    values,
)

MEASURES = {
    "units": ("plt_units_until_recovery", "Platelet units transfused (units)"),
    "dose_e11": ("plt_dose_e11_until_recovery", "Platelets transfused (\u00d710\u00b9\u00b9)"),
}


def platelet_dose_by_ptr(ctx: Context) -> AnalysisResult:
    groups = split(ctx.population("platelet_dose_by_ptr"), "ptr", PTR_GROUPS)
    n = {g: groups[g].height for g in PTR_GROUPS}
    if min(n.values()) == 0:
        return not_estimable("the CAR-T subgroup has no PTR or no non-PTR patient", n=n)
    data: dict = {"n": n, "groups_order": list(PTR_GROUPS)}
    rows, panels = [], []
    for key, (column, label) in MEASURES.items():
        x = {g: values(groups[g], column) for g in PTR_GROUPS}
        e = compare_medians(x, PTR_GROUPS)
        e["total"] = {g: float(x[g].sum()) for g in PTR_GROUPS}
        data[key] = e
        panels.append((label, {GROUP_LABELS[g]: x[g] for g in PTR_GROUPS}, e.get("p_value")))
        row = {"measure": label}
        for g in PTR_GROUPS:
            lo, hi = e["range"][g]
            row[g] = f"{fmt(e['median'][g], 5)} ({fmt(lo, 5)}-{fmt(hi, 5)}), n={e['n'][g]}"
            row[f"total_{g}"] = fmt(e["total"][g], 6)
        row |= {"test": e.get("test") or "", "U": fmt(e.get("statistic"), 6),
                "p_value": fmt_p(e.get("p_value"))}
        rows.append(row)

    def figure():
        return _plots.box_panels(
            panels, title="Platelets transfused until the count stays \u2265 20 \u00d710\u2079/L"
        )

    return AnalysisResult(
        data,
        pl.DataFrame(rows),
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
