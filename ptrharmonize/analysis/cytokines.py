"""Figures 1 and 2A: peak IL-6, IL-10 and IFN-gamma after CAR-T, by CRS grade and by PTR.

Each cytokine: median (range) per group and Mann-Whitney U, two-sided, with R wilcox.test's
defaults (exact without ties when both n < 50, else the normal approximation with continuity
correction: `stats.continuous.mann_whitney`). `statistic` is U of the first group: `crs_le2`
for CRS (grade <= 2 vs >= 3, as the study's Figure 1), `ptr` for PTR (Figure 2A).
Populations: `sql/cytokines_by_crs.sql`, `sql/cytokines_by_ptr.sql`.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from . import _plots
from ._common import (
    CRS_GROUPS,
    CYTOKINES,
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


def _table(res: dict[str, dict], order: Sequence[str]) -> pl.DataFrame:
    rows = []
    for key, (_column, label) in CYTOKINES.items():
        e = res[key]
        row = {"cytokine": label, "unit": "pg/mL"}
        for g in order:
            lo, hi = e["range"][g]
            row[g] = f"{fmt(e['median'][g], 6)} ({fmt(lo, 5)}-{fmt(hi, 5)}), n={e['n'][g]}"
        row |= {"test": e.get("test") or "", "U": fmt(e.get("statistic"), 6),
                "p_value": fmt_p(e.get("p_value"))}
        rows.append(row)
    return pl.DataFrame(rows)


def _figure(x: dict[str, dict], order: Sequence[str], res: dict, title: str):
    panels = [
        (
            f"Peak {label} (pg/mL)",
            {GROUP_LABELS[g]: x[key][g] for g in order},
            res[key].get("p_value"),
        )
        for key, (_column, label) in CYTOKINES.items()
    ]
    return lambda: _plots.box_panels(panels, title=title, log=True)


def _run(df: pl.DataFrame, by: str, order: Sequence[str], title: str, fig: str) -> AnalysisResult:
    groups = split(df, by, order)
    n = {g: groups[g].height for g in order}
    if min(n.values()) == 0:
        return not_estimable(f"group {min(n, key=n.get)} has no patient", n=n)
    x = {key: {g: values(groups[g], column) for g in order}
         for key, (column, _label) in CYTOKINES.items()}
    res = {key: compare_medians(x[key], order) for key in CYTOKINES}
    data = {"n": n, "groups_order": list(order), **res}
    return AnalysisResult(
        data,
        _table(res, order),
        figure=_figure(x, order, res, title),
        summary=[headline(f"{fig}: peak {CYTOKINES[k][1]}", res[k], res[k]["n"]) for k in res],
    )


def cytokines_by_crs(ctx: Context) -> AnalysisResult:
    df = ctx.population("cytokines_by_crs").with_columns(crs_le2=~pl.col("crs_grade_3plus"))
    return _run(df, "crs_le2", CRS_GROUPS, "Peak cytokines by CRS grade after CAR-T", "Fig 1")


def cytokines_by_ptr(ctx: Context) -> AnalysisResult:
    df = ctx.population("cytokines_by_ptr")
    return _run(df, "ptr", PTR_GROUPS, "Peak cytokines, PTR vs non-PTR after CAR-T", "Fig 2A")
