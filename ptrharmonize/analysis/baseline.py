"""Table 1: baseline characteristics, CAR-T vs salvage chemotherapy.

Continuous characteristics: Shapiro-Wilk in each group, then Student's t-test when both look
normal, else Mann-Whitney U (`stats.continuous.compare_continuous`). Categorical: Pearson
chi-square without correction when every expected count >= `analysis.min_expected`, else
Fisher's exact. Population: `sql/baseline.sql`.
"""

from __future__ import annotations

import polars as pl

from ..stats.continuous import compare_continuous, describe
from ._common import (
    TREATMENT_GROUPS,
    AnalysisResult,
    Context,
    binary_test,
    count_true,
    fmt,
    fmt_p,
    headline,
    not_estimable,
    num,
    split,
    testable,
)

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
            row |= dict(compare_continuous(x, y, alpha=ctx.params["shapiro_alpha"]))
        else:
            row |= {"test": None, "statistic": None, "p_value": None}
        rows.append(row)
    for var, label in CATEGORICAL.items():
        counts = {g: count_true(groups[g][var]) for g in TREATMENT_GROUPS}
        row = {"variable": var, "label": label, "kind": "categorical", **counts}
        row |= binary_test(*counts.values(), min_expected=ctx.params["min_expected"])
        rows.append(row)

    data = {"n": sizes, "groups_order": list(TREATMENT_GROUPS), "rows": num(rows)}
    return AnalysisResult(
        data=data,
        table=_table(data["rows"]),
        summary=[headline(f"Table 1: {r['label']}", r, sizes) for r in data["rows"][:1]],
    )


def _cell(row: dict, group: str) -> str:
    g = row[group]
    if row["kind"] == "categorical":
        return f"{g['n']}/{g['N']} ({100 * g['n'] / g['N']:.1f}%)" if g["N"] else ""
    if not g.get("n"):
        return ""
    return (
        f"{fmt(g.get('mean'))} \u00b1 {fmt(g.get('sd'))}; "
        f"{fmt(g.get('median'))} ({fmt(g.get('min'))}-{fmt(g.get('max'))})"
    )


def _table(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "variable": [r["variable"] for r in rows],
            "characteristic": [
                r["label"] + (f" ({r['unit']})" if r.get("unit") else "") for r in rows
            ],
            "car_t": [_cell(r, "car_t") for r in rows],
            "chemotherapy": [_cell(r, "chemotherapy") for r in rows],
            "test": [r.get("test") or "" for r in rows],
            "statistic": [fmt(r.get("statistic"), 4) for r in rows],
            "p_value": [fmt_p(r.get("p_value")) for r in rows],
        }
    )
