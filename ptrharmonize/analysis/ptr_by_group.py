"""Table 2: PTR incidence, CAR-T vs salvage chemotherapy.

`ptr_by_group`: pooled 2x2 table (rows CAR-T, chemotherapy; columns PTR, no PTR), Pearson
chi-square without continuity correction when every expected count >= `analysis.min_expected`,
else Fisher's exact (the study: chi2 = 7.406, p = 0.007 on 15/26 vs 3/18).

`ptr_by_group_stratified`: the same comparison stratified by center, Cochran-Mantel-Haenszel
with the Mantel-Haenszel common odds ratio and the Breslow-Day test of homogeneity of the odds
ratios across centers, since pooled centers differ in case mix and in PTR practice.
"""

from __future__ import annotations

import polars as pl

from ..stats.categorical import chi2_or_fisher, cmh
from ._common import (
    GROUP_LABELS,
    TREATMENT_GROUPS,
    AnalysisResult,
    Context,
    fmt,
    fmt_p,
    headline,
    not_estimable,
    num,
)


def _counts(df: pl.DataFrame) -> dict[str, dict[str, int]]:
    """`{car_t: {ptr, n}, chemotherapy: {ptr, n}}`."""
    out = {}
    for g in TREATMENT_GROUPS:
        sub = df.filter(pl.col("treatment_type") == g)
        out[g] = {"ptr": int(sub["ptr"].sum()), "n": sub.height}
    return out


def _table2x2(groups: dict[str, dict[str, int]]) -> list[list[int]]:
    return [[groups[g]["ptr"], groups[g]["n"] - groups[g]["ptr"]] for g in TREATMENT_GROUPS]


def ptr_by_group(ctx: Context) -> AnalysisResult:
    groups = _counts(ctx.population("ptr_by_group"))
    if min(v["n"] for v in groups.values()) == 0:
        return not_estimable("one treatment group has no patient", groups=groups)
    res = dict(chi2_or_fisher(_table2x2(groups), min_expected=ctx.params["min_expected"]))
    data = num(
        {
            **res,
            "groups": groups,
            "table": {"rows": list(TREATMENT_GROUPS), "columns": ["ptr", "non_ptr"],
                      "counts": _table2x2(groups)},
            "min_expected": ctx.params["min_expected"],
        }
    )
    table = pl.DataFrame(
        {
            "group": [GROUP_LABELS[g] for g in TREATMENT_GROUPS],
            "n": [groups[g]["n"] for g in TREATMENT_GROUPS],
            "ptr": [groups[g]["ptr"] for g in TREATMENT_GROUPS],
            "non_ptr": [groups[g]["n"] - groups[g]["ptr"] for g in TREATMENT_GROUPS],
            "ptr_pct": [
                round(100 * groups[g]["ptr"] / groups[g]["n"], 1) for g in TREATMENT_GROUPS
            ],
            "test": [data["test"], ""],
            "statistic": [fmt(data.get("statistic"), 4), ""],
            "p_value": [fmt_p(data.get("p_value")), ""],
        }
    )
    n = {g: v["n"] for g, v in groups.items()}
    return AnalysisResult(data, table, summary=[headline("PTR: CAR-T vs chemotherapy", data, n)])


def ptr_by_group_stratified(ctx: Context) -> AnalysisResult:
    df = ctx.population("ptr_by_group_stratified")
    strata: dict[str, dict] = {}
    dropped: list[str] = []
    for (center,), sub in df.group_by(["center_id"], maintain_order=True):
        groups = _counts(sub)
        # A center that treated only one group says nothing about the comparison.
        if min(v["n"] for v in groups.values()) == 0:
            dropped.append(center)
        else:
            strata[center] = groups
    if not strata:
        return not_estimable("no center treated patients in both groups", centers_dropped=dropped)
    res = cmh(
        [_table2x2(g) for g in strata.values()],
        correct=ctx.params["cmh_correct"],
        confidence=ctx.params["confidence"],
    )
    data = num(
        {
            **res,
            "centers": strata,
            "centers_dropped": dropped,
            "groups": {
                g: {
                    "ptr": sum(s[g]["ptr"] for s in strata.values()),
                    "n": sum(s[g]["n"] for s in strata.values()),
                }
                for g in TREATMENT_GROUPS
            },
        }
    )
    rows = [
        {"center_id": c, **{g: f"{s[g]['ptr']}/{s[g]['n']}" for g in TREATMENT_GROUPS}}
        for c, s in strata.items()
    ]
    rows.append(
        {
            "center_id": "CMH (all centers)",
            **{g: f"{v['ptr']}/{v['n']}" for g, v in data["groups"].items()},
            "statistic": fmt(data.get("statistic"), 4),
            "p_value": fmt_p(data.get("p_value")),
            "common_odds_ratio": f"{fmt(data.get('common_odds_ratio'), 4)} "
            f"({fmt(data.get('ci_low'), 4)}-{fmt(data.get('ci_high'), 4)})",
            "breslow_day_p": fmt_p(data.get("breslow_day_p_value")),
        }
    )
    cols = ["center_id", *TREATMENT_GROUPS, "statistic", "p_value", "common_odds_ratio",
            "breslow_day_p"]
    table = pl.DataFrame([{c: r.get(c, "") for c in cols} for r in rows])
    n = {g: v["n"] for g, v in data["groups"].items()}
    return AnalysisResult(
        data, table, summary=[headline("PTR: CAR-T vs chemo, CMH by center", data, n)]
    )
