"""Figure 3B: cumulative incidence of WHO grade 3-4 bleeding after CAR-T, PTR vs non-PTR.

Death before a grade 3-4 bleed is a competing event, so the incidence is the Aalen-Johansen
estimate (not 1 - Kaplan-Meier), compared with Gray's test (`stats.competing.cuminc`, as R
`cmprsk::cuminc(ftime, fstatus, group)` with failcode 1 = bleeding, 2 = death, 0 = censored).
Reported at `analysis.horizon_days` (30). Population: `sql/bleeding_cuminc.sql`.

Beside the study's comparison:
- `heterogeneity_between_centers`: per group, Gray's test across its centers (R
  `cuminc(time, status, center)` on the group): do the centers' curves differ (issue 18)?
- `stratified_by_center`: Gray's test stratified by center (R `cuminc(..., strata = center)`);
- `bleeds_before_ptr_onset`: the study's groups are fixed from day 0, so a bleed of a patient
  who became refractory only later counts as a PTR bleed; this lists them;
- `bleeding_landmark` (its own analysis, `sql/bleeding_landmark.sql`): PTR status as known at a
  landmark day (`analysis.landmark_days`, `--landmark-day`), events after it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from ..stats.competing import cuminc
from . import _plots
from ._common import (
    GROUP_LABELS,
    PTR_GROUPS,
    AnalysisResult,
    Context,
    center_ids,
    estimable,
    fmt,
    headline,
    not_estimable,
    num,
)
from .registry import analysis

STATUS = {"censored": 0, "bleeding": 1, "death": 2}


def _prepare(df: pl.DataFrame, group: pl.Expr) -> pl.DataFrame:
    df = df.with_columns(group=group, status=pl.col("event_type").replace_strict(STATUS, default=None))
    unknown = df.filter(pl.col("status").is_null())["event_type"].unique().to_list()
    if unknown:
        raise ValueError(f"patient_summary.event_type has unknown values: {unknown}")
    return df


def _compare(df: pl.DataFrame, horizon: float, title: str, xlabel: str, label: str,
             extra: dict[str, Any] | None = None) -> AnalysisResult:
    """Aalen-Johansen CIF per group and Gray's test (pooled, and stratified by center)."""
    events = {
        g: {k: int(((df["group"] == g) & (df["event_type"] == k)).sum()) for k in STATUS}
        for g in PTR_GROUPS
    }
    n = {g: int((df["group"] == g).sum()) for g in PTR_GROUPS}
    if min(n.values()) == 0:
        return not_estimable(f"group {min(n, key=n.get)} has no patient", n=n)
    time = df["event_time_days"].cast(pl.Float64).to_numpy()
    status = df["status"].to_numpy().astype(np.int64)
    group = np.asarray(df["group"].to_list(), dtype=object)
    res = dict(cuminc(time, status, group, horizon))
    centers = (df["center_id"].cast(pl.Utf8).to_list() if "center_id" in df.columns
               else [None] * df.height)

    def stratified() -> dict[str, Any]:
        from ..stats._common import NotEstimable

        if None in centers or len(center_ids(df)) < 2:
            raise NotEstimable("one center: the stratified test is the pooled one")
        s = cuminc(time, status, group, horizon, strata=np.asarray(centers, dtype=object))
        return {k: s[k] for k in ("test", "statistic", "p_value", "df") if k in s} | {
            "variant": "Gray's test stratified by center (R cmprsk::cuminc(strata = center))"}

    def between_centers(g: str) -> dict[str, Any]:
        """Do the centers' curves differ within group g? Gray's test with the center as the
        group (R cmprsk::cuminc(time, status, center) on the group's patients)."""
        from ..stats._common import NotEstimable

        mask = group == g
        cs = np.asarray(centers, dtype=object)[mask]
        if None in cs.tolist() or len(set(cs.tolist())) < 2:
            raise NotEstimable("fewer than two centers in the group")
        s = cuminc(time[mask], status[mask], cs, horizon)
        return {k: s[k] for k in ("statistic", "p_value", "df") if k in s} | {
            "test": "gray", "centers": sorted(set(cs.tolist())),
            "variant": "Gray's test across centers within the group (R cmprsk::cuminc(group = center))"}

    data = num({**res, "horizon_days": horizon, "n": n, "events": events,
                "failcode": "bleeding", "competing": "death", "groups_order": list(PTR_GROUPS),
                "stratified_by_center": estimable(stratified),
                "heterogeneity_between_centers": {g: estimable(lambda g=g: between_centers(g))
                                                  for g in PTR_GROUPS},
                **(extra or {})})
    cif = data.get("cif_at_horizon") or {}
    strat = data["stratified_by_center"]
    table = pl.DataFrame(
        {
            "group": [GROUP_LABELS[g] for g in PTR_GROUPS],
            "n": [n[g] for g in PTR_GROUPS],
            "grade_3_4_bleeding": [events[g]["bleeding"] for g in PTR_GROUPS],
            "death_first": [events[g]["death"] for g in PTR_GROUPS],
            "censored": [events[g]["censored"] for g in PTR_GROUPS],
            "horizon_days": [horizon, horizon],
            "cif_at_horizon": [_f(cif.get(g)) for g in PTR_GROUPS],
            "gray_statistic": [_f(data.get("statistic")), None],
            "p_value": [_f(data.get("p_value")), None],
            "gray_by_center_p_value": [_f(strat.get("p_value")), None],
            "centers_differ_p_value": [_f(data["heterogeneity_between_centers"][g].get("p_value"))
                                       for g in PTR_GROUPS],
        },
        schema_overrides={"cif_at_horizon": pl.Float64, "gray_statistic": pl.Float64,
                          "p_value": pl.Float64, "gray_by_center_p_value": pl.Float64,
                          "centers_differ_p_value": pl.Float64},
    )
    curves = data.get("curves") or {}
    at_risk = {g: _at_risk(time[group == g], horizon) for g in PTR_GROUPS}
    data["at_risk"] = at_risk

    def figure():
        return _plots.cuminc_curves(
            {g: curves[g] for g in PTR_GROUPS if g in curves},
            {g: f"{GROUP_LABELS[g]} (n = {n[g]})" for g in PTR_GROUPS}, horizon,
            data.get("p_value"), title, "Cumulative incidence of grade 3-4 bleeding",
            at_risk=at_risk, xlabel=xlabel,
        )

    text = f"{label} day {horizon:g}: " + " vs ".join(fmt(cif.get(g), 2) or "n/a" for g in PTR_GROUPS)
    return AnalysisResult(data, table, figure, [headline(text, data, n)])


def _at_risk(times: np.ndarray, horizon: float) -> dict[str, list[float]]:
    """Patients still under observation (first event or censoring at or after t) at 0, 5, ...
    up to the horizon: the number-at-risk table under the curves."""
    step = 5.0 if horizon > 10 else 1.0
    ts = list(np.arange(0.0, horizon + 1e-9, step))
    return {"time": [float(t) for t in ts], "n": [int((times >= t).sum()) for t in ts]}


def _f(x: Any) -> float | None:
    return None if x is None else float(x)


@analysis("bleeding_cuminc", order=100)
def bleeding_cuminc(ctx: Context) -> AnalysisResult:
    horizon = float(ctx.params["horizon_days"])
    df = _prepare(ctx.population("bleeding_cuminc"),
                  pl.when(pl.col("ptr")).then(pl.lit("ptr")).otherwise(pl.lit("non_ptr")))
    return _compare(df, horizon, "Grade 3-4 bleeding after CAR-T (death as competing event)",
                    "Days since CAR-T infusion", "Fig 3B: grade 3-4 bleeding CIF",
                    {"bleeds_before_ptr_onset": _bleeds_vs_onset(df)})


def _bleeds_vs_onset(df: pl.DataFrame) -> dict[str, Any]:
    """The grade 3-4 bleeds of the PTR group, each placed before, on or after the day the
    patient became refractory (the transfusion that completed the PTR rule)."""
    if "ptr_onset_day" not in df.columns:  # a population without onset days (federated release)
        return {"status": "not_estimable", "reason": "the population has no PTR onset day"}
    bleeds = df.filter(pl.col("ptr") & (pl.col("event_type") == "bleeding"))
    rows = []
    for r in bleeds.iter_rows(named=True):
        onset, day = r.get("ptr_onset_day"), r["event_time_days"]
        when = ("unknown" if onset is None else "before" if day < onset
                else "same_day" if day == onset else "after")
        rows.append({"center_id": r.get("center_id"), "patient_id": r.get("patient_id"),
                     "bleeding_day": day, "ptr_onset_day": onset, "bleeding_vs_onset": when})
    counts = {k: sum(r["bleeding_vs_onset"] == k for r in rows)
              for k in ("before", "same_day", "after", "unknown")}
    return {"n_bleeds": len(rows), **counts, "bleeds": rows,
            "note": "bleeds of PTR patients before their PTR onset count as PTR bleeds in the "
                    "fixed-group comparison; see bleeding_landmark for PTR as a time-dependent "
                    "exposure"}


@analysis("bleeding_landmark", order=110)
def bleeding_landmark(ctx: Context) -> AnalysisResult:
    """PTR status at the landmark day L, bleeding and death after L (time from L)."""
    horizon = float(ctx.params["horizon_days"])
    landmark = float(ctx.params.get("landmark_days", 7))
    if not 0 <= landmark < horizon:
        return not_estimable(f"landmark day {landmark:g} is not within 0..{horizon:g}")
    df = ctx.population("bleeding_landmark")
    n_all = df.height
    at_risk = df.filter(pl.col("event_time_days") > landmark)
    ptr_at_l = pl.col("ptr") & pl.col("ptr_onset_day").is_not_null() & (pl.col("ptr_onset_day") <= landmark)
    at_risk = _prepare(at_risk, pl.when(ptr_at_l).then(pl.lit("ptr")).otherwise(pl.lit("non_ptr")))
    at_risk = at_risk.with_columns(pl.col("event_time_days") - landmark)
    later_ptr = int((at_risk["ptr"] & (at_risk["group"] == "non_ptr")).sum())
    res = _compare(
        at_risk, horizon - landmark,
        f"Grade 3-4 bleeding after day {landmark:g} by PTR status at day {landmark:g}",
        f"Days since landmark (day {landmark:g} after infusion)",
        f"Landmark day {landmark:g}: bleeding CIF",
        {"landmark_days": landmark, "excluded_event_before_landmark": n_all - at_risk.height,
         "ptr_after_landmark_counted_non_ptr": later_ptr,
         "variant": f"landmark analysis: PTR as known at day {landmark:g}, events after it, "
                    "time from the landmark; Gray's test (R cmprsk::cuminc)"},
    )
    return res
