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

from ..stats.multicenter import kruskal
from . import _plots
from ._common import (
    CRS_GROUPS,
    CYTOKINES,
    GROUP_LABELS,
    PTR_GROUPS,
    AnalysisResult,
    Context,
    as_float,
    compare_medians,
    estimable,
    headline,
    not_estimable,
    split,
    values,
)
from .registry import analysis


def _table(res: dict[str, dict], order: Sequence[str]) -> pl.DataFrame:
    rows = []
    for key, (_column, label) in CYTOKINES.items():
        e = res[key]
        row: dict = {"cytokine": label, "unit": "pg/mL"}
        for g in order:
            lo, hi = e["range"][g]
            row |= {f"{g}_n": e["n"][g], f"{g}_median": as_float(e["median"][g]),
                    f"{g}_min": as_float(lo), f"{g}_max": as_float(hi)}
        row |= {"test": e.get("test"), "U": as_float(e.get("statistic")),
                "p_value": as_float(e.get("p_value")),
                "center_heterogeneity_p_value": as_float(e["heterogeneity"].get("p_value"))}
        rows.append(row)
    schema = {"cytokine": pl.Utf8, "unit": pl.Utf8}
    for g in order:
        schema |= {f"{g}_n": pl.Int64, f"{g}_median": pl.Float64, f"{g}_min": pl.Float64,
                   f"{g}_max": pl.Float64}
    schema |= {"test": pl.Utf8, "U": pl.Float64, "p_value": pl.Float64,
               "center_heterogeneity_p_value": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


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


def _run(
    df: pl.DataFrame, by: str, order: Sequence[str], title: str, fig: str, variant: str = "r"
) -> AnalysisResult:
    groups = split(df, by, order)
    n = {g: groups[g].height for g in order}
    if min(n.values()) == 0:
        return not_estimable(f"group {min(n, key=n.get)} has no patient", n=n)
    x = {key: {g: values(groups[g], column) for g in order}
         for key, (column, _label) in CYTOKINES.items()}
    res = {key: compare_medians(x[key], order, variant) for key in CYTOKINES}
    for key, (column, _label) in CYTOKINES.items():
        # pooled over centers whose assays may differ: does the level differ between centers?
        known = df.filter(pl.col(column).is_not_null() & pl.col(by).is_not_null())
        res[key]["heterogeneity"] = estimable(lambda known=known, column=column: kruskal(
            known[column].cast(pl.Float64).to_numpy(), known["center_id"].to_list()))
    data = {"n": n, "groups_order": list(order), **res}
    return AnalysisResult(
        data,
        _table(res, order),
        figure=_figure(x, order, res, title),
        summary=[headline(f"{fig}: peak {CYTOKINES[k][1]}", res[k], res[k]["n"]) for k in res],
    )


@analysis("cytokines_by_crs", order=60)
def cytokines_by_crs(ctx: Context) -> AnalysisResult:
    df = ctx.population("cytokines_by_crs").with_columns(crs_le2=~pl.col("crs_grade_3plus"))
    return _run(df, "crs_le2", CRS_GROUPS, "Peak cytokines by CRS grade after CAR-T", "Fig 1",
                ctx.mann_whitney)


@analysis("cytokines_by_ptr", order=70)
def cytokines_by_ptr(ctx: Context) -> AnalysisResult:
    df = ctx.population("cytokines_by_ptr")
    return _run(df, "ptr", PTR_GROUPS, "Peak cytokines, PTR vs non-PTR after CAR-T", "Fig 2A",
                ctx.mann_whitney)
