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
from ..stats.multicenter import gee, logistic_center_fixed
from ._common import (
    GROUP_LABELS,
    TREATMENT_GROUPS,
    AnalysisResult,
    Context,
    cmh_by_center,
    estimable,
    headline,
    not_estimable,
    num,
)
from .registry import analysis


def _counts(df: pl.DataFrame) -> dict[str, dict[str, int]]:
    """`{car_t: {ptr, n}, chemotherapy: {ptr, n}}`."""
    out = {}
    for g in TREATMENT_GROUPS:
        sub = df.filter(pl.col("treatment_type") == g)
        out[g] = {"ptr": int(sub["ptr"].sum()), "n": sub.height}
    return out


def _table2x2(groups: dict[str, dict[str, int]]) -> list[list[int]]:
    return [[groups[g]["ptr"], groups[g]["n"] - groups[g]["ptr"]] for g in TREATMENT_GROUPS]


@analysis("ptr_by_group", order=20)
def ptr_by_group(ctx: Context) -> AnalysisResult:
    df = ctx.population("ptr_by_group")
    groups = _counts(df)
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
            # beside the pooled test: the same comparison stratified by center, with the
            # Breslow-Day test of heterogeneity between centers (details: ptr_by_group_stratified)
            "by_center": cmh_by_center(
                df.with_columns(car_t=pl.col("treatment_type") == "car_t"), "car_t", "ptr",
                ctx.params),
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
            "test": [data["test"], None],
            "statistic": [_f(data.get("statistic")), None],
            "p_value": [_f(data.get("p_value")), None],
            "by_center_cmh_p_value": [_f(data["by_center"].get("p_value")), None],
            "breslow_day_p_value": [
                _f((data["by_center"].get("heterogeneity") or {}).get("p_value")), None],
        },
        schema_overrides={"statistic": pl.Float64, "p_value": pl.Float64,
                          "by_center_cmh_p_value": pl.Float64, "breslow_day_p_value": pl.Float64},
    )
    n = {g: v["n"] for g, v in groups.items()}
    return AnalysisResult(data, table, summary=[headline("PTR: CAR-T vs chemotherapy", data, n)])


@analysis("ptr_by_group_stratified", order=30)
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
    known = df.filter(pl.col("ptr").is_not_null() & pl.col("center_id").is_in(list(strata)))
    x = {"car_t": (known["treatment_type"] == "car_t").cast(pl.Float64).to_numpy()}
    y = known["ptr"].cast(pl.Float64).to_numpy()
    centers = known["center_id"].to_list()
    res["heterogeneity"] = {"test": "breslow_day_tarone",
                            "statistic": res.get("breslow_day_statistic"),
                            "p_value": res.get("breslow_day_p_value")}
    res["logistic_center_fixed"] = estimable(
        lambda: logistic_center_fixed(x, y, centers, confidence=ctx.params["confidence"]))
    res["gee_center"] = estimable(
        lambda: gee(x, y, centers, family="binomial", corstr=ctx.gee_corstr,
                    confidence=ctx.params["confidence"]))
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
        {"center_id": c, **{f"{g}_{k}": s[g][k] for g in TREATMENT_GROUPS for k in ("ptr", "n")}}
        for c, s in strata.items()
    ]
    fe = data.get("logistic_center_fixed") or {}
    fe_term = next((t for t in fe.get("coefficients", []) if t["variable"] == "car_t"), {})
    gee_term = next((t for t in (data.get("gee_center") or {}).get("coefficients", [])
                     if t["variable"] == "car_t"), {})
    rows.append(
        {
            "center_id": "CMH (all centers)",
            **{f"{g}_{k}": v[k] for g, v in data["groups"].items() for k in ("ptr", "n")},
            "statistic": _f(data.get("statistic")),
            "p_value": _f(data.get("p_value")),
            "odds_ratio": _f(data.get("common_odds_ratio")),
            "ci_low": _f(data.get("ci_low")),
            "ci_high": _f(data.get("ci_high")),
            "breslow_day_p_value": _f(data.get("breslow_day_p_value")),
        }
    )
    for label, term in (("logistic, center fixed effect", fe_term), ("GEE, center cluster", gee_term)):
        if term:
            rows.append({"center_id": label, "odds_ratio": _f(term.get("odds_ratio")),
                         "ci_low": _f(term.get("ci_low")), "ci_high": _f(term.get("ci_high")),
                         "p_value": _f(term.get("p_value"))})
    cols = {"center_id": pl.Utf8, **{f"{g}_{k}": pl.Int64 for g in TREATMENT_GROUPS
                                     for k in ("ptr", "n")},
            "statistic": pl.Float64, "p_value": pl.Float64, "odds_ratio": pl.Float64,
            "ci_low": pl.Float64, "ci_high": pl.Float64, "breslow_day_p_value": pl.Float64}
    table = pl.DataFrame([{c: r.get(c) for c in cols} for r in rows], schema=cols)
    n = {g: v["n"] for g, v in data["groups"].items()}
    return AnalysisResult(
        data, table, summary=[headline("PTR: CAR-T vs chemo, CMH by center", data, n)]
    )


def _f(x: object) -> float | None:
    return None if x is None else float(x)  # type: ignore[arg-type]
